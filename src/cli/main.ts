#!/usr/bin/env node
import { Command, type CommanderError } from 'commander';
import { report } from './errors';
import { VERSION } from './version';

// Node opens its inspector on 127.0.0.1:9229 when a process without a SIGUSR1 listener gets
// SIGUSR1, and any local user can then run code in it — in a root daemon, as root. Logrotate-
// style scripts send USR1 to daemons; it must do nothing here. A listener is Node 20's only way
// to keep the inspector shut (--disable-sigusr1 came in 22.14), so install it before anything.
process.on('SIGUSR1', () => undefined);

// Only wiring: each command lives in its own file and registers itself here. A module is
// loaded only when its command runs (or for help and the man page, which show them all), so a
// client such as `kscrubfs pft` or `watch` loads none of the daemon's side: no model, no procfs.
type Register = (program: Command) => void;
const COMMANDS: ReadonlyArray<{ readonly names: readonly string[]; load(): Register }> = [
  { names: ['mount'], load: () => (require('./mount') as typeof import('./mount')).registerMount },
  { names: ['umount'], load: () => (require('./umount') as typeof import('./umount')).registerUmount },
  { names: ['pft'], load: () => (require('./pft') as typeof import('./pft')).registerPft },
  { names: ['calibrate'], load: () => (require('./calibrate') as typeof import('./calibrate')).registerCalibrate },
  { names: ['watch'], load: () => (require('./watch') as typeof import('./watch')).registerWatch },
  { names: ['trace'], load: () => (require('./trace') as typeof import('./trace')).registerTrace },
  { names: ['sweep'], load: () => (require('./sweep') as typeof import('./sweep')).registerSweep },
  { names: ['replay'], load: () => (require('./replay') as typeof import('./replay')).registerReplay },
  { names: ['policies'], load: () => (require('./policies') as typeof import('./policies')).registerPolicies },
  { names: ['payoff', 'with-procfs'], load: () => (require('./scripts') as typeof import('./scripts')).registerScripts },
  { names: ['presets'], load: () => (require('./presets') as typeof import('./presets')).registerPresets },
  // The man page and completions describe every command: they need the whole tree.
  { names: [], load: () => (require('./docs') as typeof import('./docs')).registerDocs },
];

/** The commands to register for this argv: the one it names, else all (help, --version, man, a typo). */
function commandsFor(argv: readonly string[]): ReadonlyArray<{ load(): Register }> {
  const name = argv[2];
  const one = name === undefined ? undefined : COMMANDS.find((c) => c.names.includes(name));
  return one ? [one] : COMMANDS;
}

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
for (const command of commandsFor(process.argv)) command.load()(program);

// A reader that stops early (`| head`) is not an error: stop writing, quietly, as cat does.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(0);
});

program.parseAsync(process.argv).catch(report);
