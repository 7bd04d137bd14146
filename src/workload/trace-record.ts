import { spawn, spawnSync } from 'node:child_process';
import type { Writable } from 'node:stream';
import * as fs from 'node:fs';
import * as os from 'node:os';
import debugFactory from 'debug';
import { WorkloadError } from './client';
import { FaultClass, TraceSummary, TraceWriter } from './trace-format';
import { PageRanges } from './trace-ranges';
import { TraceInstance } from './trace-tracefs';

const log = debugFactory('kscrubfs:trace');

/**
 * `trace record`: run CMD under a private ftrace instance and turn its event text into a
 * trace file (trace-format.ts). The events are read as they come from the instance's
 * trace_pipe (text, merged in time order across CPUs by the kernel), so the recorder knows
 * each process's mappings at the moment of each fault and marks the fault anonymous,
 * file-backed or unknown there.
 *
 * CMD starts behind a gate: a shell that waits on a pipe, so its pid is in set_event_pid
 * before it execs CMD; events before that exec (the shell's own) are dropped.
 */

const CLONE_VM = 0x100;
const CLONE_THREAD = 0x10000;
const MAP_SHARED = 0x01;
const MAP_ANONYMOUS = 0x20;
const MADV_DONTNEED = 4;
const MADV_REMOVE = 9;
const MADV_DONTNEED_LOCKED = 24;
const PF_WRITE = 0x2;
const POLL_MS = 5;

export interface RecordOptions {
  out: string;
  command: string;
  args: readonly string[];
}

export interface RecordResult {
  summary: TraceSummary;
  bytes: number;
}

/** A traced process: its address space as the trace has seen it. */
interface Proc {
  readonly key: number;
  anon: PageRanges;
  file: PageRanges;
  /** Current program break (bytes), -1 until the first brk returns. */
  brk: number;
  readonly live: Set<number>;
  /** /proc/<key>/maps was read since the last exec (it is read once, for exec-time mappings). */
  mapsRead: boolean;
  /** false for the gate shell until it execs CMD. */
  started: boolean;
}

interface Pending {
  readonly name: string;
  readonly args: Record<string, number>;
}

// `           bash-19330   [001] d....   553.175120: page_fault_user: address=0x7ffc… ip=0x… error_code=0x7`
const LINE = /^\s*(.*)-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+)\.(\d+): ([\w]+)(?:: |\(|\s->\s)(.*)$/;
const LOST = /^CPU:(\d+) \[LOST (\d+) EVENTS\]/;

/** A syscall tracepoint's number: "0x7f…" hex, else decimal. */
function num(text: string): number {
  return text.startsWith('0x') ? Number.parseInt(text.slice(2), 16) : Number(text);
}

/** A syscall's return: negative (an errno) or past any user address means it failed. */
function okRet(v: number): boolean {
  return Number.isFinite(v) && v >= 0 && v < 2 ** 57;
}

export class Recorder {
  private readonly tasks = new Map<number, Proc>();
  private readonly pending = new Map<number, Pending>();
  private readonly ps: number;
  private readonly w: TraceWriter;
  private lastUs = 0;
  readonly counts = { anon: 0, file: 0, unknown: 0 };
  writeFaults = 0;
  lost = 0;
  processes = 0;
  taskCount = 0;

  constructor(w: TraceWriter, pageSize: number, rootPid: number) {
    this.w = w;
    this.ps = pageSize;
    const root = this.newProc(rootPid);
    root.started = false;
    this.tasks.set(rootPid, root);
    root.live.add(rootPid);
  }

  private newProc(key: number): Proc {
    return { key, anon: new PageRanges(), file: new PageRanges(), brk: -1, live: new Set(), mapsRead: false, started: true };
  }

  get nowUs(): number {
    return this.lastUs;
  }

  /** One line of trace_pipe text. */
  line(text: string): void {
    const m = LINE.exec(text);
    if (!m) {
      const lost = LOST.exec(text);
      if (lost) {
        this.lost += Number(lost[2]);
        this.w.lost(this.lastUs, Number(lost[2]));
      } else if (text.trim() !== '') log('unparsed: %s', text);
      return;
    }
    const tid = Number(m[2]);
    const proc = this.tasks.get(tid);
    if (!proc) return; // not ours (set_event_pid can hold a recycled pid)
    const us = Number(m[4]) * 1e6 + Number(m[5]!.padEnd(6, '0').slice(0, 6));
    this.lastUs = us;
    const event = m[6]!;
    const rest = m[7]!;
    if (event === 'sched_process_exec') return this.exec(us, tid, proc);
    if (!proc.started) return;
    switch (event) {
      case 'page_fault_user':
        return this.fault(us, tid, Number(m[3]), proc, rest);
      case 'task_newtask':
        return this.newTask(us, tid, proc, rest);
      case 'sched_process_exit':
        return this.exit(us, tid, proc);
      default:
        if (event.startsWith('sys_')) this.syscall(us, tid, proc, event.slice(4), text.includes(`${event} -> `), rest);
    }
  }

  private emitTask(us: number, tid: number, proc: Proc, force = false): void {
    this.w.task(us, tid, proc.key, force);
  }

  private fault(us: number, tid: number, cpu: number, proc: Proc, rest: string): void {
    const a = /address=0x([0-9a-f]+) .*error_code=0x([0-9a-f]+)/.exec(rest);
    if (!a) return;
    const page = Math.floor(Number.parseInt(a[1]!, 16) / this.ps);
    const write = (Number.parseInt(a[2]!, 16) & PF_WRITE) !== 0;
    this.emitTask(us, tid, proc);
    let cls = this.classify(proc, page);
    if (cls === 'unknown' && !proc.mapsRead) {
      this.readMaps(us, proc);
      cls = this.classify(proc, page);
    }
    this.w.cpu(us, cpu);
    this.w.fault(us, page, write, cls);
    this.counts[cls]++;
    if (write) this.writeFaults++;
  }

  private classify(proc: Proc, page: number): FaultClass {
    if (proc.anon.has(page)) return 'anon';
    if (proc.file.has(page)) return 'file';
    return 'unknown';
  }

  /**
   * Mappings made at exec (the stack, the program's and ld.so's segments, bss) come from no
   * syscall: read them once from /proc/<pid>/maps while the process lives. Only what the
   * trace does not know yet is added.
   */
  private readMaps(us: number, proc: Proc): void {
    proc.mapsRead = true;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${proc.key}/maps`, 'utf8');
    } catch {
      return; // gone already: its exec-time mappings stay unknown
    }
    for (const line of text.split('\n')) {
      const f = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (!f) continue;
      const start = Math.floor(Number.parseInt(f[1]!, 16) / this.ps);
      const end = Math.ceil(Number.parseInt(f[2]!, 16) / this.ps);
      const name = f[3]!;
      const anon = name === '' || name === '[heap]' || name.startsWith('[stack') || name.startsWith('[anon:');
      for (const [s, e] of proc.anon.gaps(start, end)) {
        for (const [gs, ge] of proc.file.gaps(s, e)) this.map(us, proc, gs, ge, anon);
      }
    }
  }

  /** Add pages [s, e) as anonymous (with a MAP record) or file-backed. */
  private map(us: number, proc: Proc, s: number, e: number, anon: boolean): void {
    if (!anon) {
      proc.file.add(s, e);
      return;
    }
    for (const [as, ae] of proc.anon.add(s, e)) this.w.range('map', us, as, ae - as);
  }

  private unmap(us: number, proc: Proc, s: number, e: number): void {
    proc.file.remove(s, e);
    for (const [rs, re] of proc.anon.remove(s, e)) this.w.range('unmap', us, rs, re - rs);
  }

  private exec(us: number, tid: number, proc: Proc): void {
    let p = proc;
    if (!proc.started) {
      proc.started = true; // the gate became CMD: the recording starts here
      this.processes++;
      this.taskCount++;
    } else if (proc.key !== tid) {
      // A vfork child (it shared its parent's mm until now) or a thread: it gets a new mm.
      proc.live.delete(tid);
      p = this.newProc(tid);
      p.live.add(tid);
      this.tasks.set(tid, p);
      this.processes++;
    } else {
      this.emitTask(us, tid, proc);
      this.w.exec(us);
      proc.anon.clear();
      proc.file.clear();
      proc.brk = -1;
      proc.mapsRead = false;
    }
    this.emitTask(us, tid, p, true);
    this.readMaps(us, p);
  }

  private newTask(us: number, parent: number, proc: Proc, rest: string): void {
    const a = /pid=(\d+) .*clone_flags=([0-9a-f]+)/.exec(rest);
    if (!a) return;
    const child = Number(a[1]);
    const flags = Number.parseInt(a[2]!, 16);
    this.taskCount++;
    if ((flags & (CLONE_THREAD | CLONE_VM)) !== 0) {
      this.tasks.set(child, proc);
      proc.live.add(child);
      return;
    }
    // fork: the child starts with a copy of the parent's address space.
    const p = this.newProc(child);
    p.anon = proc.anon.copy();
    p.file = proc.file.copy();
    p.brk = proc.brk;
    p.mapsRead = proc.mapsRead;
    p.live.add(child);
    this.tasks.set(child, p);
    this.processes++;
    this.emitTask(us, child, p);
    for (const [s, e] of p.anon.ranges) this.w.range('map', us, s, e - s);
    this.emitTask(us, parent, proc);
  }

  private exit(us: number, tid: number, proc: Proc): void {
    proc.live.delete(tid);
    this.tasks.delete(tid);
    this.pending.delete(tid);
    this.emitTask(us, tid, proc);
    this.w.exit(us, proc.live.size === 0);
  }

  private syscall(us: number, tid: number, proc: Proc, name: string, isExit: boolean, rest: string): void {
    if (!isExit) {
      const args: Record<string, number> = {};
      for (const kv of rest.replace(/\)\s*$/, '').split(', ')) {
        const [k, v] = kv.split(': ');
        if (k !== undefined && v !== undefined) args[k] = num(v);
      }
      this.pending.set(tid, { name, args });
      return;
    }
    const call = this.pending.get(tid);
    this.pending.delete(tid);
    if (call?.name !== name) return;
    const ret = num(rest.trim());
    if (!okRet(ret)) return;
    this.emitTask(us, tid, proc);
    const a = call.args;
    const ps = this.ps;
    const first = (addr: number): number => Math.floor(addr / ps);
    const past = (addr: number): number => Math.ceil(addr / ps);
    switch (name) {
      case 'mmap': {
        const flags = a.flags ?? 0;
        const [s, e] = [first(ret), past(ret + (a.len ?? 0))];
        this.unmap(us, proc, s, e); // MAP_FIXED replaces what was there
        this.map(us, proc, s, e, (flags & MAP_ANONYMOUS) !== 0 && (flags & MAP_SHARED) === 0);
        break;
      }
      case 'munmap':
        if (ret === 0) this.unmap(us, proc, first(a.addr ?? 0), past((a.addr ?? 0) + (a.len ?? 0)));
        break;
      case 'brk': {
        if (proc.brk >= 0 && ret > proc.brk) this.map(us, proc, past(proc.brk), past(ret), true);
        if (proc.brk >= 0 && ret < proc.brk) this.unmap(us, proc, past(ret), past(proc.brk));
        proc.brk = ret;
        break;
      }
      case 'mremap': {
        const addr = a.addr ?? 0;
        const oldLen = a.old_len ?? 0;
        const newLen = a.new_len ?? 0;
        const anon = proc.anon.has(first(addr));
        if (ret === addr) {
          if (newLen > oldLen) this.map(us, proc, past(addr + oldLen), past(addr + newLen), anon);
          else this.unmap(us, proc, past(addr + newLen), past(addr + oldLen));
        } else {
          // Moved: the kernel moves the pages; the replay frees them and maps the new range
          // empty (the moved pages are not faulted again, so the model just holds fewer).
          this.unmap(us, proc, first(addr), past(addr + oldLen));
          this.map(us, proc, first(ret), past(ret + newLen), anon);
        }
        break;
      }
      case 'madvise': {
        const b = a.behavior ?? -1;
        if (ret !== 0 || (b !== MADV_DONTNEED && b !== MADV_REMOVE && b !== MADV_DONTNEED_LOCKED)) break;
        const start = a.start ?? 0;
        for (const [s, e] of proc.anon.intersect(past(start), Math.floor((start + (a.len_in ?? 0)) / ps))) {
          this.w.range('zap', us, s, e - s);
        }
        break;
      }
    }
  }
}

function hostPageSize(): number {
  const r = spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 4096;
}

/** The host's THP mode, the bracketed word of transparent_hugepage/enabled. */
function hostThp(): string {
  try {
    return /\[(\w+)\]/.exec(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Record CMD. Resolves with the summary once CMD has exited and every event is in the file;
 * the tracing instance (and a tracefs mount it made) is gone by then, whatever happened.
 * A signal to the recorder is passed on to CMD, and the trace ends where CMD stopped.
 */
export async function record(o: RecordOptions): Promise<RecordResult> {
  let child: ReturnType<typeof spawn> | null = null;
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = sig;
    log('%s: passing it on to %s', sig, o.command);
    if (child && child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  // Listening before anything changes: a signal that came first would kill us with the instance left.
  for (const s of SIGNALS) process.on(s, onSignal);
  let inst: TraceInstance;
  try {
    inst = TraceInstance.open();
  } catch (err) {
    for (const s of SIGNALS) process.off(s, onSignal);
    throw err;
  }
  let writer: TraceWriter | null = null;
  let pipe = -1;
  try {
    const ps = hostPageSize();
    // The file first: a path we cannot write fails before CMD runs.
    writer = new TraceWriter(o.out, {
      page_size: ps, command: [o.command, ...o.args], kernel: os.release(), host_cpus: os.cpus().length,
      started: new Date().toISOString(), source: 'ftrace instance, trace_pipe text', thp: hostThp(),
    }, -1);
    // The gate: a shell that waits for one line on fd 3, then becomes CMD.
    child = spawn('/bin/sh', ['-c', 'read _ <&3; exec 3<&-; exec "$0" "$@"', o.command, ...o.args], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
    });
    // The gate's pipe: a signal handled at our first await kills the shell before it has read
    // "go", and the socket then ends in ECONNRESET (or EPIPE). Nothing is lost by that (CMD never
    // ran), so the error is only logged; unhandled it would crash us with the instance left.
    const gate = child.stdio[3] as Writable;
    gate.on('error', (err: Error) => log('gate pipe: %s', err.message));
    if (interrupted !== null) child.kill(interrupted); // it came while we set up: CMD never runs
    const exited = new Promise<number>((resolve, reject) => {
      child!.on('error', (err) => reject(new WorkloadError(`trace record: cannot start ${o.command}: ${err.message}`)));
      child!.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.constants.signals[signal] : 0)));
    });
    let status: number | null = null;
    void exited.then((s) => { status = s; }, () => { status = 127; });
    const pid = child.pid;
    if (pid === undefined) throw new WorkloadError(`trace record: cannot start ${o.command}`);
    const rec = new Recorder(writer, ps, pid);
    pipe = inst.openPipe();
    inst.start(pid);
    gate.end('go\n');
    const buf = Buffer.alloc(1 << 20);
    let partial = '';
    let firstUs = -1;
    let stopped = false;
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(pipe, buf, 0, buf.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n > 0) {
        const lines = (partial + buf.toString('utf8', 0, n)).split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          rec.line(l);
          if (firstUs < 0 && rec.nowUs > 0) firstUs = rec.nowUs;
        }
        continue;
      }
      if (stopped) break; // CMD is gone and the buffer is empty: every event is in
      if (status !== null) {
        inst.stop();
        stopped = true;
        continue;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (partial !== '') rec.line(partial);
    const exitStatus = await exited;
    const summary: TraceSummary = {
      exit_status: exitStatus, interrupted: interrupted !== null, faults: { ...rec.counts }, write_faults: rec.writeFaults,
      processes: rec.processes, tasks: rec.taskCount, lost_events: rec.lost,
      duration_us: firstUs < 0 ? 0 : Math.round(rec.nowUs - firstUs),
    };
    writer.end(rec.nowUs, summary);
    writer = null;
    return { summary, bytes: fs.statSync(o.out).size };
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    writer?.abandon();
    if (pipe >= 0) fs.closeSync(pipe);
    inst.close();
  }
}
