#!/usr/bin/env node
import { Command, type CommanderError } from 'commander';
import { report } from './errors';
import { registerMount } from './mount';
import { registerCalibrate } from './calibrate';
import { registerPft } from './pft';
import { registerTrace } from './trace';
import { registerUmount } from './umount';
import { registerSweep } from './sweep';
import { registerReplay } from './replay';
import { registerScripts } from './scripts';
import { registerDocs } from './docs';
import { registerPresets } from './presets';
import { registerWatch } from './watch';
import { registerPolicies } from './policies';
import { VERSION } from './version';

// Node opens its inspector on 127.0.0.1:9229 when a process without a SIGUSR1 listener gets
// SIGUSR1, and any local user can then run code in it — in a root daemon, as root. Logrotate-
// style scripts send USR1 to daemons; it must do nothing here. A listener is Node 20's only way
// to keep the inspector shut (--disable-sigusr1 came in 22.14), so install it before anything.
process.on('SIGUSR1', () => undefined);

// Only wiring: each command lives in its own file and registers itself here.
const COMMANDS: ReadonlyArray<(program: Command) => void> = [registerMount, registerUmount, registerPft, registerCalibrate, registerWatch, registerTrace, registerSweep, registerReplay, registerPolicies, registerScripts, registerPresets, registerDocs];


/** Commander's exit for --help and --version is 0; every error it reports is a usage error: 2. */
function usageExit(err: CommanderError): never {
  process.exit(err.exitCode === 0 ? 0 : 2);
}

const program = new Command()
  .name('kscrubfs')
  .description("a simulated Linux 2.6.11 page allocator with Lameter's prezeroing (kscrubd), served as a procfs over FUSE")
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  // with-procfs passes everything after CMD to it (and trace has its own positional options).
  .enablePositionalOptions()
  .exitOverride(usageExit);
for (const register of COMMANDS) register(program);

// A reader that stops early (`| head`) is not an error: stop writing, quietly, as cat does.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

program.parseAsync(process.argv).catch(report);
