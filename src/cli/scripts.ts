import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { defaultMount } from './options';
import { PACKAGE_ROOT } from './version';

// `kscrubfs payoff` and `kscrubfs with-procfs`: the programs shipped in scripts/, on the PATH
// of anyone who installed the package (the scripts themselves are not: npm links one bin).

/**
 * Run a shipped script with this process's stdio and exit as it did. A terminal's Ctrl-C
 * reaches the script's whole process group already; SIGTERM and SIGHUP sent to us alone are
 * passed on, and we wait for the script to finish its cleanup (payoff unmounts its machines).
 */
function runScript(file: string, argv: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(file, argv, { stdio: 'inherit' });
    const pass = (sig: NodeJS.Signals): void => { child.kill(sig); };
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    for (const s of signals) process.on(s, pass);
    const done = (code: number): void => {
      for (const s of signals) process.off(s, pass);
      process.exitCode = code;
      resolve();
    };
    child.on('error', (err) => {
      process.stderr.write(`kscrubfs: cannot run ${file}: ${err.message}\n`);
      done(125);
    });
    child.on('exit', (code, signal) => done(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
}

/** with-procfs's exit status for its own failures, as scripts/with-procfs and env(1) have it. */
const OWN_FAILURE = 125;

export function registerScripts(program: Command): void {
  program
    .command('payoff')
    .description('would kscrubd pay off today? pft on the Altix, a Pentium III pair and an EPYC, kscrubd off and on')
    .option('--svg <file>', 'also draw the gains')
    .option('--quick', 'an eighth of the sizes (for tests); the line under the table says how far that was measured from full size')
    .option('--machines <list>', 'only these of altix, i386, epyc (comma list)')
    .option('--band', 'also run every fitted cost figure of each preset at each of its bounds (2 runs a fitted figure, each on a fresh mount) and print each gain with its band')
    .option('--tornado <file>', 'with --band: draw which figures move the every-CPU gains most (SVG)')
    .option('--quick-distance', 'run --quick and full size, every row, and print how far apart their gains are')
    .addHelpText('after', `
Each machine is a private kscrubfs mount (manual clock), unmounted afterwards whatever happens.
Takes a few minutes (--band: about 15 times as long); progress goes to stderr on a terminal.
Defaults as pft's and trace replay's: no prefault, one cacheline a page. The prezeroed
fault/wsec is also given with kscrubd's zeroing of the row's pages counted, done during the
run on the CPUs pft leaves idle first.`)
    .action(async (o: { svg?: string; quick?: boolean; machines?: string; band?: boolean; tornado?: string; quickDistance?: boolean }) => {
      const argv = [
        ...(o.machines !== undefined ? ['--machines', o.machines] : []),
        ...(o.svg !== undefined ? ['--svg', o.svg] : []), ...(o.quick === true ? ['--quick'] : []), ...(o.band === true ? ['--band'] : []),
        ...(o.tornado !== undefined ? ['--tornado', o.tornado] : []), ...(o.quickDistance === true ? ['--quick-distance'] : []),
      ];
      await runScript(process.execPath, [path.join(PACKAGE_ROOT, 'scripts/payoff'), ...argv]);
    });

  program
    .command('with-procfs')
    .description("run CMD with the model's meminfo, stat, vmstat, loadavg, uptime, zoneinfo and buddyinfo over /proc (root)")
    .option('-m, --mount <dir>', 'the kscrubfs mount (default $KSCRUBFS_MOUNT, else ./mount)', defaultMount())
    .argument('<cmd>', 'the program to run')
    .argument('[args...]', 'its arguments (after --)')
    .passThroughOptions()
    // Its usage errors are its own failures: 125 like the script's, so a caller can tell them
    // from CMD's own status 2 (env(1) and timeout(1) do the same).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : OWN_FAILURE))
    .addHelpText('after', `
CMD runs in a private mount namespace where the model's files are bind-mounted over the real
/proc ones; the host's /proc is never touched. Exit status: CMD's, 125 if with-procfs fails.

Example:
  sudo kscrubfs with-procfs -- free -m`)
    .action(async (cmd: string, args: string[], o: { mount: string }) => {
      await runScript('bash', [path.join(PACKAGE_ROOT, 'scripts/with-procfs'), '--mount', o.mount, '--', cmd, ...args]);
    });
}
