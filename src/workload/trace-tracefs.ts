import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import debugFactory from 'debug';
import { WorkloadError } from './client';

const log = debugFactory('kscrubfs:trace');

/**
 * The kernel's tracing, used without disturbing anyone: a private ftrace instance
 * (instances/kscrubfs-trace-<pid>) with its own buffer, events and pid filter, removed at the
 * end. The global tracing files are never written. If tracefs is not mounted, it is mounted on
 * a temporary directory for the recording and unmounted after.
 */

/** The events a recording needs: faults, task lifetimes, and the syscalls that change mappings. */
export const TRACE_EVENTS = [
  'exceptions/page_fault_user',
  'task/task_newtask',
  'sched/sched_process_exec',
  'sched/sched_process_exit',
  ...['mmap', 'munmap', 'brk', 'mremap', 'madvise'].flatMap((s) => [`syscalls/sys_enter_${s}`, `syscalls/sys_exit_${s}`]),
] as const;

// A recorder names its instance and its private mount point by its pid and start time:
// kscrubfs-trace-<pid>-<unix seconds>, kscrubfs-tracefs-<pid>-<unix seconds>-XXXXXX. One left
// behind is cleared by the next recorder when its pid is gone and it is over an hour old: a
// recorder in another pid namespace (sharing the mount table) looks gone while it runs.
const INSTANCE_PREFIX = 'kscrubfs-trace-';
const OWN_MOUNT_PREFIX = 'kscrubfs-tracefs-';
const STALE_AFTER_S = 3600;
const STARTED_S = Math.floor(Date.now() / 1000);
/** Per-CPU buffer: big enough that a reader polling every few ms never falls behind a fault storm. */
const BUFFER_KB_PER_CPU = 16384;
const BUFFER_KB_TOTAL_MAX = 1 << 20;

/** tracefs mount points, from mountinfo (octal escapes undone). */
function tracefsMounts(): { tracefs: string[]; debugfsTracing: string | null } {
  let info = '';
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // no mountinfo: nothing is known to be mounted
  }
  const tracefs: string[] = [];
  let debugfsTracing: string | null = null;
  for (const line of info.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    const mp = (line.slice(0, sep).split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (fstype === 'tracefs') tracefs.push(mp);
    if (fstype === 'debugfs' && fs.existsSync(path.join(mp, 'tracing/events'))) debugfsTracing = path.join(mp, 'tracing');
  }
  return { tracefs, debugfsTracing };
}

/** The pid of the recorder that mounted `mp` or made instance `mp` for itself, else null. */
export function recorderOf(mp: string): number | null {
  const m = new RegExp(`^(?:${OWN_MOUNT_PREFIX}|${INSTANCE_PREFIX})(\\d+)-`).exec(path.basename(mp));
  return m ? Number(m[1]) : null;
}

/** A recorder's mount or instance that its owner left: pid gone and over an hour old. */
function stale(name: string): boolean {
  const m = new RegExp(`^(?:${OWN_MOUNT_PREFIX}|${INSTANCE_PREFIX})(\\d+)-(\\d+)`).exec(path.basename(name));
  return m !== null && !alive(Number(m[1])) && STARTED_S - Number(m[2]) > STALE_AFTER_S;
}

/**
 * Where tracefs is mounted for everyone (tracefs itself, or debugfs's tracing directory).
 * Another recorder's private mount is not used (it unmounts it when done) unless `any`.
 */
export function findTracefs(any = false): string | null {
  const { tracefs, debugfsTracing } = tracefsMounts();
  return tracefs.find((mp) => any || recorderOf(mp) === null) ?? debugfsTracing;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Unmount tracefs mounts left by recorders that were killed (their pid is gone). */
function clearStaleMounts(): void {
  for (const mp of tracefsMounts().tracefs) {
    if (!stale(mp)) continue;
    log('unmounting %s, left by a recorder', mp);
    if (spawnSync('umount', [mp]).status !== 0) continue;
    try {
      fs.rmdirSync(mp);
    } catch {
      // not empty or gone: the mount is what mattered
    }
  }
}

/** A private ftrace instance on a (possibly privately mounted) tracefs. */
export class TraceInstance {
  readonly root: string;
  readonly dir: string;
  /** The mount point this recording made (unmounted at close), else null. */
  private readonly ownMount: string | null;
  private closed = false;

  private constructor(root: string, ownMount: string | null) {
    this.root = root;
    this.ownMount = ownMount;
    this.dir = path.join(root, 'instances', `${INSTANCE_PREFIX}${process.pid}-${STARTED_S}`);
  }

  /** Mount tracefs if needed, clear instances left by dead recorders, make ours. */
  static open(): TraceInstance {
    if (process.getuid?.() !== 0) {
      throw new WorkloadError('trace record needs root: it reads the kernel\'s tracepoints through tracefs (run it with sudo)');
    }
    clearStaleMounts();
    let root = findTracefs();
    let own: string | null = null;
    if (root === null) {
      // Our own mount point, named by our pid: a recorder running beside us leaves it alone.
      own = fs.mkdtempSync(path.join(os.tmpdir(), `${OWN_MOUNT_PREFIX}${process.pid}-${STARTED_S}-`));
      const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', own], { encoding: 'utf8' });
      if (r.status !== 0) {
        fs.rmdirSync(own);
        throw new WorkloadError(`trace record: tracefs is not mounted and mounting it failed: ${(r.stderr || r.error?.message || `mount exited ${r.status}`).trim()}`);
      }
      root = own;
      log('mounted tracefs on %s', own);
    }
    const t = new TraceInstance(root, own);
    try {
      t.clearStale();
      t.create();
    } catch (err) {
      t.close();
      throw err;
    }
    return t;
  }

  private clearStale(): void {
    const dir = path.join(this.root, 'instances');
    if (!fs.existsSync(dir)) throw new WorkloadError(`trace record: ${this.root} has no instances/ directory (the kernel is too old for ftrace instances)`);
    for (const name of fs.readdirSync(dir)) {
      if (stale(name)) {
        log('removing stale instance %s', name);
        fs.rmdirSync(path.join(dir, name));
      }
    }
  }

  private create(): void {
    const missing = TRACE_EVENTS.filter((e) => !fs.existsSync(path.join(this.root, 'events', e)));
    if (missing.length > 0) {
      throw new WorkloadError(`trace record: this kernel lacks the tracepoint(s) ${missing.join(', ')} (under ${path.join(this.root, 'events')})`);
    }
    fs.mkdirSync(this.dir);
    this.write('tracing_on', '0');
    const kb = Math.min(BUFFER_KB_PER_CPU, Math.floor(BUFFER_KB_TOTAL_MAX / os.cpus().length));
    this.write('buffer_size_kb', String(kb));
    this.write('trace_clock', 'mono');
    // Children (processes and threads) of a traced task join set_event_pid as they are made.
    this.write('options/event-fork', '1');
    for (const e of TRACE_EVENTS) this.write(`events/${e}/enable`, '1');
  }

  /** Trace `pid` (and what it forks) from now on. */
  start(pid: number): void {
    this.write('set_event_pid', String(pid));
    this.write('tracing_on', '1');
  }

  stop(): void {
    if (!this.closed) this.write('tracing_on', '0');
  }

  write(file: string, value: string): void {
    try {
      fs.writeFileSync(path.join(this.dir, file), value);
    } catch (err) {
      throw new WorkloadError(`trace record: cannot set ${path.join(this.dir, file)} to ${value}: ${(err as Error).message}`);
    }
  }

  /** The instance's consuming reader, non-blocking (EAGAIN when the buffer is empty). */
  openPipe(): number {
    return fs.openSync(path.join(this.dir, 'trace_pipe'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  }

  /** Remove the instance (its buffer, events, filters go with it) and our mount. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (fs.existsSync(this.dir)) {
        fs.writeFileSync(path.join(this.dir, 'tracing_on'), '0');
        fs.rmdirSync(this.dir);
      }
    } catch (err) {
      log('removing %s: %O', this.dir, err);
    } finally {
      if (this.ownMount !== null) {
        const r = spawnSync('umount', [this.ownMount], { encoding: 'utf8' });
        if (r.status !== 0) log('umount %s: %s', this.ownMount, r.stderr);
        else fs.rmdirSync(this.ownMount);
      }
    }
  }
}
