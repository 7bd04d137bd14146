#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { report } from './errors';
import { registerMount } from './mount';
import { registerCalibrate } from './calibrate';
import { registerPft } from './pft';
import { registerTrace } from './trace';
import { registerUmount } from './umount';
import { registerWatch } from './watch';

// Only wiring: each command lives in its own file and registers itself here.
const COMMANDS: ReadonlyArray<(program: Command) => void> = [registerMount, registerUmount, registerPft, registerCalibrate, registerWatch, registerTrace];

const { version } = JSON.parse(readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { version: string };

const program = new Command()
  .name('kscrubfs')
  .description("a simulated Linux 2.6.11 page allocator with Lameter's prezeroing (kscrubd), served as a procfs over FUSE")
  .version(version)
  .showHelpAfterError('(run with --help for usage)');
for (const register of COMMANDS) register(program);

program.parseAsync(process.argv).catch(report);
