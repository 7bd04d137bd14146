#!/usr/bin/env node
import { Command } from 'commander';
import { report } from './errors';
import { registerMount } from './mount';
import { registerCalibrate } from './calibrate';
import { registerPft } from './pft';
import { registerTrace } from './trace';
import { registerUmount } from './umount';
import { registerWatch } from './watch';
import { VERSION } from './version';

// Only wiring: each command lives in its own file and registers itself here.
const COMMANDS: ReadonlyArray<(program: Command) => void> = [registerMount, registerUmount, registerPft, registerCalibrate, registerWatch, registerTrace];


const program = new Command()
  .name('kscrubfs')
  .description("a simulated Linux 2.6.11 page allocator with Lameter's prezeroing (kscrubd), served as a procfs over FUSE")
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');
for (const register of COMMANDS) register(program);

program.parseAsync(process.argv).catch(report);
