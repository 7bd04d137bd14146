import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Option, type Command } from 'commander';
import createDebug from 'debug';
import { controlEntry } from '../control';
import { mountProcTree, type MountedTree } from '../fuse/mount';
import { findMount, mountPointPath, servedBy } from '../fuse/mountpoint';
import { createMachine, formatSize, parseCostOverrides, PRESETS, ZERO_DRIVERS, type Machine, type MachineOptions } from '../model';
import { buildProcTree } from '../procfs';
import { action, CliError } from './errors';
import { integer, nameList, positiveNumber } from './options';
import { pollUntil } from './poll';

const log = createDebug('kscrubfs:cli');

/** How long `--background` waits for the daemon's mount to answer. */
const BACKGROUND_READY_MS = 30_000;
/** A file every tree has: the mount "answers" once it can be stat'ed. */
/** How long a stopping daemon may take to unmount before it exits anyway. */
const UNMOUNT_GRACE_MS = 5_000;

interface MountFlags {
  preset?: string;
  mem?: string;
  nodes?: number;
  cpus?: number;
  pageSize?: string;
  maxOrder?: number;
  cpuMhz?: number;
  clock?: 'live' | 'manual';
  speed?: number;
  buddyinfo: 'v6' | 'stock';
  zeroDrivers?: string[];
  cost?: string;
  background?: boolean;
}

export function registerMount(program: Command): void {
  program
    .command('mount')
    .description('serve a simulated machine as a procfs on DIR (foreground; Ctrl-C unmounts)')
    .argument('[dir]', 'mount point (created if missing)', './mount')
    .addOption(new Option('--preset <name>', 'machine preset').choices(PRESETS))
    .option('--mem <size>', 'memory size, e.g. 6G, 512M')
    .option('--nodes <n>', 'NUMA nodes', integer(1))
    .option('--cpus <n>', 'CPUs, spread evenly over the nodes', integer(1))
    .option('--page-size <size>', 'page size, e.g. 4K, 16K')
    .option('--max-order <n>', 'MAX_ORDER (orders 0 … n-1)', integer(1))
    .option('--cpu-mhz <n>', 'core clock for presets whose costs are in cycles (i386: 450, or 500)', integer(1))
    .addOption(new Option('--clock <mode>', 'live: virtual time follows the wall; manual: only faults and tick move it').choices(['live', 'manual']))
    .option('--speed <x>', 'live clock: virtual seconds per wall second', positiveNumber)
    .addOption(new Option('--buddyinfo <format>', 'v6: zeroed and not-zeroed lines (the patch); stock: one line per zone').choices(['v6', 'stock']).default('v6'))
    .option('--zero-drivers <list>', `zero drivers, newest first (comma list of ${ZERO_DRIVERS.join(', ')})`, nameList(ZERO_DRIVERS))
    .option('--cost <list>', 'override cost figures of src/model/cost-<preset>.ts, e.g. zeroBytesPerNs=2,remoteFactor=1.5')
    .option('--background', 'start the daemon detached, wait until the mount answers, print its pid')
    .action(action(async (dir: string, flags: MountFlags) => {
      if (flags.background) await mountInBackground(dir);
      else await mountInForeground(dir, flags);
    }));
}

/** The daemon: build the machine, mount, serve until a signal (or an outside unmount). */
async function mountInForeground(dir: string, flags: MountFlags): Promise<void> {
  const machine = createMachine(machineOptions(flags));
  // Monotonic, on the epoch scale: live virtual time must never step back with the wall.
  const wallClockMs = (): number => performance.timeOrigin + performance.now();
  const tree = buildProcTree(machine, {
    buddyinfo: flags.buddyinfo,
    wallClockMs,
    control: controlEntry(machine, wallClockMs),
  });
  const mounted = await mountProcTree(dir, tree);
  stopOnSignals(mounted, exitWhenUnmounted(mounted));
  reportRequestsOnSignal(mounted);
  process.stdout.write(`kscrubfs: ${describe(machine)} mounted on ${mounted.dir} — Ctrl-C or 'kscrubfs umount ${dir}' to stop\n`);
}

function machineOptions(flags: MountFlags): MachineOptions {
  const { preset, mem, nodes, cpus, pageSize, maxOrder, cpuMhz, clock, speed, zeroDrivers } = flags;
  const all = { preset, mem, nodes, cpus, pageSize, maxOrder, cpuMhz, clock, speed, zeroDrivers };
  // Only what the user said: the preset fills in the rest.
  const opts = Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined)) as MachineOptions;
  if (flags.cost !== undefined) opts.cost = parseCostOverrides(flags.cost);
  return opts;
}

function describe(machine: Machine): string {
  const { preset, memBytes, nodes, cpus } = machine.config;
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return `${preset} machine (${formatSize(memBytes)}, ${plural(nodes, 'node')}, ${plural(cpus, 'CPU')})`;
}

/** SIGINT, SIGTERM, SIGHUP: unmount cleanly and exit 0 (1 if the unmount fails). */
function stopOnSignals(mounted: MountedTree, watcher: NodeJS.Timeout): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(watcher);
    log('%s: unmounting %s', signal, mounted.dir);
    setTimeout(() => {
      process.stderr.write(`kscrubfs: unmounting ${mounted.dir} took over ${UNMOUNT_GRACE_MS / 1000} s; exiting anyway\n`);
      process.exit(1);
    }, UNMOUNT_GRACE_MS).unref();
    mounted.unmount().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`kscrubfs: ${err.message}\n`);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
}

/**
 * `kill -USR2 <pid>`: one line on stderr (the log file, for --background) with the FUSE
 * requests served since mount, per op, as JSON — `kscrubfs: requests {"getattr":12,…}`;
 * getattr includes lookups (libfuse folds them together). test/bench counts with it.
 */
function reportRequestsOnSignal(mounted: MountedTree): void {
  process.on('SIGUSR2', () => process.stderr.write(`kscrubfs: requests ${JSON.stringify(mounted.counts)}\n`));
}

/**
 * `fusermount -u DIR` behind our back ends the FUSE session but not the process: notice it
 * (mountinfo, once a second) and exit instead of lingering with nothing to serve.
 */
function exitWhenUnmounted(mounted: MountedTree): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (findMount(mounted.dir)) return;
    process.stderr.write(`kscrubfs: ${mounted.dir} was unmounted from outside; exiting\n`);
    process.exit(0);
  }, 1000);
  timer.unref();
  return timer;
}

/**
 * Re-run this command without --background as a detached daemon (output to a log file),
 * wait until its mount answers, print its pid. If it dies first, show why and exit as it did.
 */
async function mountInBackground(dir: string): Promise<void> {
  const abs = mountPointPath(dir);
  const logPath = daemonLogPath(abs);
  const argv = [...process.execArgv, ...process.argv.slice(1).filter((arg) => arg !== '--background')];
  // O_NOFOLLOW: we may be root writing in a shared /tmp.
  const fd = openSync(logPath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  const child = (() => {
    try {
      return spawn(process.execPath, argv, { detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
  })();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  child.on('error', (err) => {
    log('spawn: %O', err);
    exit = { code: 1, signal: null };
  });
  child.unref();
  const pid = child.pid;
  log('daemon pid %d, log %s', pid, logPath);

  const outcome = await pollUntil(async () => {
    if (exit) return 'exited';
    return (await servedBy(abs, pid)) ? 'ready' : undefined;
  }, { timeoutMs: BACKGROUND_READY_MS, intervalMs: 50 });

  if (outcome === 'ready') {
    process.stdout.write(`kscrubfs: daemon pid ${pid} mounted on ${abs} (log ${logPath}) — 'kscrubfs umount ${dir}' to stop\n`);
    return;
  }
  if (outcome === 'exited' && exit) {
    // The daemon already said what went wrong, prefixed with "kscrubfs: ": pass it on.
    process.stderr.write(readFileSync(logPath, 'utf8') || `kscrubfs: the daemon exited (${exit.signal ?? exit.code}) before mounting\n`);
    unlinkSync(logPath);
    process.exitCode = exit.code || 1;
    return;
  }
  if (pid !== undefined) process.kill(pid, 'SIGTERM');
  throw new CliError(`the daemon (pid ${pid}) did not answer on ${abs} within ${BACKGROUND_READY_MS / 1000} s; stopped it — see ${logPath}`);
}

/** One log per mount point, so a restart replaces the last run's log. */
function daemonLogPath(abs: string): string {
  const key = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `kscrubfs-${key}.log`);
}
