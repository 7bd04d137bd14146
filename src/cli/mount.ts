import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Option, type Command } from 'commander';
import createDebug from 'debug';
import { controlEntry } from '../control';
import { LiveClock, MemoryBudget, MOUNT_READY_MS, Scheduler, defaultMaxMemory, mountKey, pollUntil, runtimeDir, withMountLock } from '../daemon';
import { MAX_HANDLES_PER_USER, MAX_OPEN_HANDLES } from '../fuse/adapter';
import { callersKnown } from '../fuse/binding';
import { mountProcTree, type MountedTree } from '../fuse/mount';
import { findMount, inspect, mountPointPath, servedBy } from '../fuse/mountpoint';
import { createMachine, parseCostOverrides, ZERO_DRIVERS, type Machine, type MachineOptions } from '../model';
import { formatSize, parseSize, PRESETS, ZEROING_POLICIES } from '../uapi';
import { buildProcTree } from '../procfs';
import { action, CliError } from './errors';
import { integer, memoryBudget, nameList, positiveNumber, defaultMount, zeroingPolicyList, hugeClearMachineOptions, hugeClearOption, preemptOption } from './options';
import type { PreemptModel } from '../uapi';
import { MAX_RECORD_BYTES, startRecording, type Recording } from './record-file';

const log = createDebug('kscrubfs:cli');

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
  zeroingPolicy?: string[];
  hugeClear?: string;
  preempt?: PreemptModel;
  cost?: string;
  background?: boolean;
  keepLog?: boolean;
  maxMemory?: number;
  fuseDebug?: boolean;
  record?: string;
  allowOther?: boolean;
  recordMax?: string;
  maxHandlesPerUser?: number;
}

export function registerMount(program: Command): void {
  program
    .command('mount')
    .description('serve a simulated machine as a procfs on DIR (foreground; Ctrl-C unmounts)')
    .argument('[dir]', 'mount point (created if missing; default $KSCRUBFS_MOUNT, else ./mount)', defaultMount())
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
    .option('--zeroing-policy <list>', `zeroing policies, several at once where kernels combine them (comma list of ${ZEROING_POLICIES.join(', ')}; default kscrubd)`, zeroingPolicyList)
    .addOption(hugeClearOption())
    .addOption(preemptOption())
    .option('--cost <list>', 'override cost figures of src/model/cost-<preset>.ts, e.g. zeroBytesPerNs=2,remoteFactor=1.5')
    .option('--background', 'start the daemon detached, wait until the mount answers, print its pid')
    .option('--max-memory <size>', `the daemon's memory budget: a command that could pass it is refused before it runs (default: half the host's memory, at most 4G; here ${formatSize(defaultMaxMemory())})`, memoryBudget)
    .option('--keep-log', '--background: keep the daemon\'s log after it stops (default: removed at umount)')
    .option('--record <file>', 'record every control command, sysctl write and clock advance (JSONL), and at umount a digest of every file, for kscrubfs replay FILE')
    .option('--allow-other', 'let other users read the mount (the default for root; anyone else needs user_allow_other in /etc/fuse.conf)')
    .option('--no-allow-other', 'only the user who mounted may read it (the default for anyone but root)')
    .option('--record-max <size>', `with --record: stop recording (and say so) when the record reaches this size (at most and by default ${formatSize(MAX_RECORD_BYTES)})`)
    .option('--max-handles-per-user <n>', `open files one user other than root may hold at once (EMFILE past it; 1 to ${MAX_OPEN_HANDLES}, default ${MAX_HANDLES_PER_USER})`, integer(1))
    .option('--fuse-debug', "libfuse's dump of every FUSE request, on stderr (DEBUG=kscrubfs:* does not turn it on)")
    .action(action(async (dir: string, flags: MountFlags) => {
      if (flags.background) await mountInBackground(dir);
      else await mountInForeground(dir, flags);
    }));
}

/** The daemon: build the machine, mount, serve until a signal (or an outside unmount). */
async function mountInForeground(dir: string, flags: MountFlags): Promise<void> {
  const machine = createMachine(machineOptions(flags));
  // Monotonic, on the epoch scale: live virtual time must never step back with the wall.
  const wall = (): number => performance.timeOrigin + performance.now();
  const scheduler = new Scheduler();
  const maxMemory = flags.maxMemory ?? defaultMaxMemory();
  const clock = new LiveClock(machine, wall, scheduler);
  // --record: the recorder sees every sync of the clock and every write to the tree.
  const recordMax = flags.recordMax === undefined ? MAX_RECORD_BYTES : parseSize(flags.recordMax, '--record-max');
  if (recordMax > MAX_RECORD_BYTES || recordMax < 4096) throw new CliError('KSCRUB_USAGE', `--record-max: ${flags.recordMax} is not 4K to ${formatSize(MAX_RECORD_BYTES)} (replay reads a record whole)`);
  if (flags.maxHandlesPerUser !== undefined && flags.maxHandlesPerUser > MAX_OPEN_HANDLES) {
    throw new CliError('KSCRUB_USAGE', `--max-handles-per-user: ${flags.maxHandlesPerUser} is more than the mount's ${MAX_OPEN_HANDLES} handles`);
  }
  const recording = flags.record === undefined ? undefined : startRecording(flags.record, machine, machineOptions(flags), flags.buddyinfo, clock.sync, recordMax, () => scheduler.steps);
  const syncClock = recording?.syncClock ?? clock.sync;
  const tree = buildProcTree(machine, {
    buddyinfo: flags.buddyinfo,
    syncClock,
    control: controlEntry(machine, syncClock, scheduler, new MemoryBudget(maxMemory)),
    generation: () => scheduler.slices,
    // What open handles hold of rendered text is part of the budget: a quarter of it.
    maxHeldBytes: Math.floor(maxMemory / 4),
  });
  const mounted = await withMountLock(mountPointPath(dir), () => mountProcTree(dir, recording ? recording.tree(tree) : tree, {
    fuseDebug: flags.fuseDebug === true, ...(flags.allowOther !== undefined && { allowOther: flags.allowOther }),
    ...(flags.maxHandlesPerUser !== undefined && { maxHandlesPerUser: flags.maxHandlesPerUser }),
  }));
  if (!callersKnown) {
    process.stderr.write('kscrubfs: the FUSE binding is fuse-native\'s prebuild (scripts/build-native.sh could not build native/): handles are capped for the mount only, not per user, and a signal does not stop a running command\n');
  }
  clock.start();
  const logFile = takeLogFile(flags.keepLog === true);
  stopOnSignals(mounted, exitWhenUnmounted(mounted, logFile, recording), scheduler, logFile, recording);
  reportRequestsOnSignal(mounted);
  process.stdout.write(`kscrubfs: ${describe(machine)} mounted on ${mounted.dir} — Ctrl-C or 'kscrubfs umount ${dir}' to stop\n`);
}

function machineOptions(flags: MountFlags): MachineOptions {
  const { preset, mem, nodes, cpus, pageSize, maxOrder, cpuMhz, clock, speed, zeroDrivers, zeroingPolicy } = flags;
  const all = { preset, mem, nodes, cpus, pageSize, maxOrder, cpuMhz, clock, speed, zeroDrivers, zeroingPolicy };
  // Only what the user said: the preset fills in the rest.
  const opts = { ...Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined)), ...hugeClearMachineOptions(flags) } as MachineOptions;
  if (flags.cost !== undefined) opts.cost = parseCostOverrides(flags.cost);
  return opts;
}

function describe(machine: Machine): string {
  const { preset, memBytes, nodes, cpus } = machine.config;
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  return `${preset} machine (${formatSize(memBytes)}, ${plural(nodes, 'node')}, ${plural(cpus, 'CPU')})`;
}

/**
 * The log --background made for this daemon (KSCRUBFS_LOG), to remove when it stops cleanly
 * unless --keep-log; undefined in the foreground. Children never inherit the variable.
 */
function takeLogFile(keep: boolean): string | undefined {
  const file = process.env.KSCRUBFS_LOG;
  delete process.env.KSCRUBFS_LOG;
  return keep ? undefined : file;
}

function removeLog(file: string | undefined): void {
  if (file === undefined) return;
  try {
    unlinkSync(file);
  } catch (err) {
    log('removing %s: %s', file, (err as Error).message);
  }
}

/** SIGINT, SIGTERM, SIGHUP: unmount cleanly and exit 0 (1 if the unmount fails). */
function stopOnSignals(mounted: MountedTree, watcher: NodeJS.Timeout, scheduler: Scheduler, logFile: string | undefined, recording?: Recording): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(watcher);
    // The digests of the machine as it stands, before anything can change it.
    recording?.finish();
    // A command in progress fails (its write answers EIO): the unmount must not wait for it.
    scheduler.stop(`the daemon is stopping (${signal})`);
    log('%s: unmounting %s', signal, mounted.dir);
    setTimeout(() => {
      process.stderr.write(`kscrubfs: unmounting ${mounted.dir} took over ${UNMOUNT_GRACE_MS / 1000} s; exiting anyway\n`);
      process.exit(1);
    }, UNMOUNT_GRACE_MS).unref();
    mounted.unmount().then(
      () => {
        removeLog(logFile);
        process.exit(0);
      },
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
function exitWhenUnmounted(mounted: MountedTree, logFile: string | undefined, recording?: Recording): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (findMount(mounted.dir)) return;
    recording?.finish();
    process.stderr.write(`kscrubfs: ${mounted.dir} was unmounted from outside; exiting\n`);
    removeLog(logFile);
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
  // Refuse a live mount before making anything (a second mount never touches the first's log).
  const found = await inspect(abs);
  if (found.state === 'live') {
    throw new CliError('KSCRUB_MOUNT_BUSY', found.kscrubfs
      ? `${abs} is already mounted by a running daemon (pid ${found.pid ?? 'unknown'}) — run 'kscrubfs umount ${abs}' first`
      : `${abs} is already a mount point (${found.mount.fsType} from ${found.mount.source}) — choose another directory`);
  }
  const { logPath, fd } = createLog(abs);
  const argv = [...process.execArgv, ...process.argv.slice(1).filter((arg) => arg !== '--background')];
  const child = (() => {
    try {
      return spawn(process.execPath, argv, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, KSCRUBFS_LOG: logPath } });
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
  }, { timeoutMs: MOUNT_READY_MS, intervalMs: 50 });

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
  throw new CliError('KSCRUB_DAEMON_DOWN', `the daemon (pid ${pid}) did not answer on ${abs} within ${MOUNT_READY_MS / 1000} s; stopped it — see ${logPath}`);
}

/**
 * A new log for one daemon, in a directory only this user can write (runtimeDir), under a
 * name nobody else has: created O_EXCL | O_NOFOLLOW, so no planted file, link or fifo is
 * ever opened and no other daemon's log is truncated.
 */
function createLog(abs: string): { logPath: string; fd: number } {
  const logPath = path.join(runtimeDir(), `mount-${mountKey(abs)}-${randomBytes(6).toString('hex')}.log`);
  const fd = openSync(logPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  return { logPath, fd };
}
