import { MAX_LINE_BYTES, MAX_THREADS, formatCommand, kscrubdSysctls } from '../uapi';
import { type Control, ControlClient, WorkloadError, run } from './client';
import { settle } from './pft';
import { type ConfigPairs, readConfig } from './provenance';
import { Trace } from './trace-format';
import { PageRanges } from './trace-ranges';
import { kscrubdShare } from './kscrubd-cost';

/**
 * `trace replay`: a recorded program's page faults, run on the model through the control
 * file. Each traced process is an mm (`mm new`, ended by `mm exit` when its last task exits
 * or it execs); its anonymous mappings are `mmap … addr=` at the traced addresses (munmap,
 * madvise DONTNEED as munmap + mmap); each anonymous fault is an entry of a `faults` command
 * on the task (thread) that took it. Faults on file-backed or unknown memory are counted, not
 * replayed.
 *
 * Threads overlap as pft's do: each runs its own faults back to back, whatever the host's
 * scheduler did to them while they were traced (on a busy host one thread's faults come in
 * long runs while the other waits for a CPU). A `faults` command is a barrier (its threads all
 * finish before the next command), so faults are queued per thread and each command takes
 * them round robin; the queues are sent out only when a mapping change covers a queued
 * fault's page (a thread's exit unmaps its stack: the other thread's faults need not wait for
 * that), at exec or exit, or when they grow past QUEUE_CAP.
 * munmap and exit are timed as pft times its process's exit: their System and Wall count.
 *
 * Page sizes: a host page p is the model page holding address p × host page size. On a model
 * with bigger pages (altix: 16 KiB, from a 4 KiB host) several host faults land in one model
 * page; the first faults, the others find it mapped (they count as accesses, not faults). A
 * model page stays mapped while any host page in it is.
 *
 * A fault trace has no record of what the program touches after a fault: `lines` (default 1)
 * cachelines are written per fault, and the program's compute time between faults is not
 * replayed (faults run back to back, as in pft).
 */
export interface ReplayOptions {
  /** The sides to run, in order ('off' before 'on': pages kscrubd zeroed would serve the off side). */
  sides: readonly ('off' | 'on')[];
  lines: number;
  /** Each thread on its own simulated CPU (pft's placement), instead of the host CPU it ran on. */
  threadsAsCpus: boolean;
  /** vm.max_prealloc_order for the run (default 0: no mainline kernel prefaults anonymous memory). */
  prealloc?: number;
  /**
   * Replay the program's own time between faults as idle time (a manual clock's `tick`), so
   * kscrubd can zero meanwhile: no fault runs earlier, after the replay's start, than it
   * came after the trace's.
   */
  gaps?: boolean;
  /** What runs now, and how many of how many faults are replayed (for an estimate of the time left). */
  progress?: ((msg: string, done?: number, total?: number) => void) | undefined;
}

export interface ReplayRow {
  scrub: 'off' | 'on';
  /** Anonymous faults of the trace, replayed. */
  faults: number;
  /** Model faults they caused (host faults into an already mapped model page do not fault). */
  modelFaults: number;
  /** Pages the faults allocated (prezeroed + hot zeroed): what pft's `pages` is. */
  pages: number;
  userS: number;
  systemS: number;
  wallS: number;
  fltPerCpuS: number;
  faultPerWsec: number;
  prezeroed: number;
  hotZeroed: number;
  /** prezeroed ÷ pages (0 when no page was allocated). */
  prezeroedShare: number;
  /** Hot zeroing in the fault path, and kscrubd's CPU time during the run. */
  zeroingS: number;
  kscrubdS: number;
  /** Idle time ticked between faults (--gaps), not in Wall. */
  idleS: number;
  /**
   * kscrubd's CPU for the pages this side took prezeroed (zeroed before the run, while the
   * machine settled: in no other column), and fault/wsec with it counted
   * (src/workload/kscrubd-cost.ts), and the bandwidth its clearing took over that wall.
   */
  kscrubdPrepS: number;
  faultPerWsecWithKscrubd: number;
  kscrubdBytesPerS: number;
  /** CPUs the replayed faults ran on. */
  cpusUsed: number;
  prefaulted: number;
  oom: number;
  /** Faults counted but not replayed. */
  fileFaults: number;
  unknownFaults: number;
  /** Simulated processes (mm) made: one per traced process and another at each exec (a new address space), so more than the record's process count. */
  processes: number;
  hostPageSize: number;
  pageSize: number;
  cpus: number;
}

interface Proc {
  readonly key: number;
  readonly mm: number;
  /** Host pages mapped anonymous, and the model pages that holds. */
  host: PageRanges;
  model: PageRanges;
  /** tid → task index in this mm (the model's Task, its prefault state). */
  readonly taskOf: Map<number, number>;
}

/** Leave room for "faults mm=<id> at=" and the cpus and lines keys. */
const LINE_BUDGET = MAX_LINE_BYTES - 600;
/** Faults queued before they are sent regardless (the replay's memory stays bounded). */
const QUEUE_CAP = 1 << 20;
/** Records between yields to the event loop. */
const YIELD_EVERY = 20_000;

/**
 * Replay `trace` on the mount at `dir`, one row per side; `configs` is the daemon's `config`
 * as each side started (after its sysctl settings): how each row was made.
 */
export async function replay(dir: string, trace: Trace, o: ReplayOptions): Promise<{ rows: ReplayRow[]; configs: ConfigPairs[] }> {
  return replayOn(new ControlClient(dir), trace, o);
}

/** replay on any control channel (a mount's control file, or a machine in this process); closes it. */
export async function replayOn(ctl: Control, trace: Trace, o: ReplayOptions): Promise<{ rows: ReplayRow[]; configs: ConfigPairs[] }> {
  const saved = new Map<string, number>();
  const set = (name: string, v: number): void => {
    if (!saved.has(name)) saved.set(name, ctl.readSysctl(name));
    ctl.writeSysctl(name, v);
  };
  const rows: ReplayRow[] = [];
  const configs: ConfigPairs[] = [];
  try {
    const stats = run(ctl, { verb: 'stats' });
    const maxOrder = stats.max_order;
    // A trace comes from a mainline kernel, and none prefaults anonymous memory: replay does
    // not either unless asked (--prealloc 4 is the V2 patch).
    set('max_prealloc_order', o.prealloc ?? 0);
    for (const [i, side] of o.sides.entries()) {
      for (const [name, v] of kscrubdSysctls(side, maxOrder)) set(name, v);
      if (side === 'on') await settle(ctl, o.progress);
      configs.push(readConfig(ctl));
      o.progress?.(`replaying with kscrubd ${side}`);
      // kscrubd's CPU per page it zeroed since boot, to price the pages this side takes prezeroed.
      const k = run(ctl, { verb: 'stats' });
      const cpuSPerPage = k.kscrubd_pages > 0 ? k.kscrubd_cpu_us / 1e6 / k.kscrubd_pages : 0;
      rows.push(await new Replayer(ctl, trace, o, side, i, cpuSPerPage).run());
    }
  } finally {
    try {
      for (const [name, v] of [...saved].reverse()) ctl.writeSysctl(name, v);
    } finally {
      ctl.close();
    }
  }
  return { rows, configs };
}

class Replayer {
  private readonly hps: number;
  private readonly mps: number;
  private readonly cpus: number;
  private readonly procs = new Map<number, Proc>();
  private cur: Proc | null = null;
  private tid = -1;
  private readonly cpuOf = new Map<number, number>();
  /** Faults queued for `batchProc`, per task: addresses, writes, trace times (µs); `head` is the next to send. */
  private readonly queues = new Map<number, { addrs: number[]; writes: (0 | 1)[]; us: number[]; head: number }>();
  private queued = 0;
  private batchProc: Proc | null = null;
  private readonly batchCpus = new Map<number, number>();
  /** The model's clock when the run began. */
  private startNs = 0;
  private idleNs = 0;
  private readonly sum = { faults: 0, modelFaults: 0, prezeroed: 0, hotZeroed: 0, prefaulted: 0, oom: 0, user: 0, sys: 0, wall: 0, zero: 0 };
  private file = 0;
  private unknown = 0;
  private processes = 0;
  /** CPUs the faults ran on. */
  private readonly used = new Set<number>();

  constructor(
    private readonly ctl: Control,
    private readonly trace: Trace,
    private readonly o: ReplayOptions,
    private readonly side: 'off' | 'on',
    /** Which of o.sides this run is: the time left counts the runs still to come. */
    private readonly sideIndex: number,
    private readonly kscrubdCpuSPerPage = 0,
  ) {
    const stats = run(ctl, { verb: 'stats' });
    this.hps = trace.header.page_size;
    this.mps = stats.page_size;
    this.cpus = stats.cpus;
  }

  async run(): Promise<ReplayRow> {
    const stats0 = run(this.ctl, { verb: 'stats' });
    const kscrubd0 = stats0.kscrubd_cpu_us * 1e3;
    this.startNs = stats0.now_ns;
    let n = 0;
    try {
      for (const r of this.trace.records()) {
        // Now and then let the event loop run: a signal's handler (Ctrl-C) must get its turn.
        if (++n % YIELD_EVERY === 0) {
          await new Promise((resolve) => setImmediate(resolve));
          const anon = this.trace.summary?.faults.anon;
          this.o.progress?.(`replaying with kscrubd ${this.side}: ${this.sum.faults}${anon === undefined ? '' : ` of ${anon}`} faults`,
            anon === undefined ? undefined : this.sideIndex * anon + this.sum.faults, anon === undefined ? undefined : this.o.sides.length * anon);
        }
        switch (r.type) {
          case 'task': {
            this.tid = r.tid;
            this.cur = this.proc(r.process);
            if (!this.cur.taskOf.has(r.tid)) this.cur.taskOf.set(r.tid, this.cur.taskOf.size % MAX_THREADS);
            break;
          }
          case 'cpu':
            this.cpuOf.set(this.tid, r.cpu);
            break;
          case 'fault':
            this.fault(r.t, r.page, r.write, r.cls);
            break;
          case 'map':
            this.map(r.page, r.page + r.pages);
            break;
          case 'unmap':
            this.unmap(r.page, r.page + r.pages);
            break;
          case 'zap':
            this.zap(r.page, r.page + r.pages);
            break;
          case 'exec':
            this.exec();
            break;
          case 'exit':
            if (r.last) this.exitProc();
            break;
          case 'lost':
            break;
        }
      }
      this.flush();
    } finally {
      for (const key of [...this.procs.keys()]) this.end(key);
    }
    const kscrubdNs = run(this.ctl, { verb: 'stats' }).kscrubd_cpu_us * 1e3 - kscrubd0;
    const s = this.sum;
    const pages = s.prezeroed + s.hotZeroed;
    const share = kscrubdShare({
      wallS: s.wall / 1e9, prezeroedPages: s.prezeroed, pageSize: this.mps, cpuSPerPage: this.kscrubdCpuSPerPage, cpus: this.cpus, busy: this.used.size,
    });
    return {
      scrub: this.side, faults: s.faults, modelFaults: s.modelFaults, pages,
      userS: s.user / 1e9, systemS: s.sys / 1e9, wallS: s.wall / 1e9,
      fltPerCpuS: s.user + s.sys > 0 ? pages / ((s.user + s.sys) / 1e9) : 0,
      faultPerWsec: s.wall > 0 ? pages / (s.wall / 1e9) : 0,
      prezeroed: s.prezeroed, hotZeroed: s.hotZeroed, prezeroedShare: pages > 0 ? s.prezeroed / pages : 0,
      zeroingS: s.zero / 1e9, kscrubdS: kscrubdNs / 1e9, idleS: this.idleNs / 1e9,
      kscrubdPrepS: share.cpuS, faultPerWsecWithKscrubd: share.wallS > 0 ? pages / share.wallS : 0, kscrubdBytesPerS: share.bytesPerS, cpusUsed: this.used.size,
      prefaulted: s.prefaulted, oom: s.oom,
      fileFaults: this.file, unknownFaults: this.unknown, processes: this.processes,
      hostPageSize: this.hps, pageSize: this.mps, cpus: this.cpus,
    };
  }

  private proc(key: number): Proc {
    let p = this.procs.get(key);
    if (!p) {
      const mm = run(this.ctl, { verb: 'mm new' }).mm;
      p = { key, mm, host: new PageRanges(), model: new PageRanges(), taskOf: new Map() };
      this.procs.set(key, p);
      this.processes++;
    }
    return p;
  }

  private current(): Proc {
    if (!this.cur) throw new WorkloadError('trace replay: the trace has a record before its first task record (damaged?)');
    return this.cur;
  }

  /** Model pages holding host pages [s, e). */
  private modelRange(s: number, e: number): [number, number] {
    return [Math.floor((s * this.hps) / this.mps), Math.ceil((e * this.hps) / this.mps)];
  }

  /** Host pages inside model page mp. */
  private hostRange(mp: number): [number, number] {
    return [Math.floor((mp * this.mps) / this.hps), Math.ceil(((mp + 1) * this.mps) / this.hps)];
  }

  private fault(us: number, page: number, write: boolean, cls: 'anon' | 'file' | 'unknown'): void {
    if (cls === 'file') return void this.file++;
    if (cls === 'unknown') return void this.unknown++;
    const p = this.current();
    const mp = Math.floor((page * this.hps) / this.mps);
    if (!p.model.has(mp)) return void this.unknown++; // the trace's own bookkeeping says anonymous; be safe
    if (this.batchProc !== p) this.flush();
    this.batchProc = p;
    const task = p.taskOf.get(this.tid) ?? 0;
    let q = this.queues.get(task);
    if (!q) this.queues.set(task, (q = { addrs: [], writes: [], us: [], head: 0 }));
    q.addrs.push(mp * this.mps);
    q.writes.push(write ? 1 : 0);
    q.us.push(us);
    this.queued++;
    if (!this.batchCpus.has(task)) this.batchCpus.set(task, (this.cpuOf.get(this.tid) ?? 0) % this.cpus);
    this.sum.faults++;
    if (this.queued >= QUEUE_CAP) this.send(QUEUE_CAP / 2);
  }

  /** Send every queued fault, and forget the threads' placement (the next process has its own). */
  private flush(): void {
    this.send(0);
    this.queues.clear();
    this.batchCpus.clear();
  }

  /** Send queued faults as `faults` commands, each taking the threads' queues round robin, until `keep` are left. */
  private send(keep: number): void {
    const p = this.batchProc;
    if (p === null) return;
    let cpus: number[] | undefined;
    if (!this.o.threadsAsCpus && this.batchCpus.size > 0) {
      const top = Math.max(...this.batchCpus.keys());
      cpus = Array.from({ length: top + 1 }, (_, i) => this.batchCpus.get(i) ?? i % this.cpus);
    }
    const tasks = [...this.queues.keys()].sort((a, b) => a - b);
    while (this.queued > keep) {
      const at = { addrs: [] as number[], tasks: [] as number[], writes: [] as (0 | 1)[] };
      let bytes = 0;
      let firstUs = Number.POSITIVE_INFINITY;
      for (let took = true; took && bytes < LINE_BUDGET && this.queued > keep;) {
        took = false;
        for (const task of tasks) {
          const q = this.queues.get(task)!;
          if (q.head === q.addrs.length) continue;
          const addr = q.addrs[q.head]!;
          // The entry as formatted: task, r|w, hex address, comma.
          bytes += String(task).length + 2 + addr.toString(16).length;
          at.addrs.push(addr);
          at.tasks.push(task);
          at.writes.push(q.writes[q.head]!);
          firstUs = Math.min(firstUs, q.us[q.head]!);
          q.head++;
          this.queued--;
          took = true;
          if (bytes >= LINE_BUDGET || this.queued <= keep) break;
        }
      }
      if (at.addrs.length === 0) break;
      if (this.o.gaps) this.idleUntil(this.startNs + firstUs * 1000);
      this.runFaults(p, at, cpus);
    }
    // Drop what was sent (the heads), so a long run's queues do not keep it.
    for (const q of this.queues.values()) {
      q.addrs.splice(0, q.head);
      q.writes.splice(0, q.head);
      q.us.splice(0, q.head);
      q.head = 0;
    }
  }

  private runFaults(p: Proc, at: { addrs: number[]; tasks: number[]; writes: (0 | 1)[] }, cpus: number[] | undefined): void {
    for (const task of new Set(at.tasks)) this.used.add(cpus ? cpus[task]! : task % this.cpus);
    const r = run(this.ctl, { verb: 'faults', mm: p.mm, at, lines: this.o.lines, ...(cpus && { cpus }) });
    const s = this.sum;
    s.modelFaults += r.faults;
    s.prezeroed += r.prezeroed;
    s.hotZeroed += r.hot_zeroed;
    s.prefaulted += r.prefaulted;
    s.oom += r.oom;
    s.user += r.user_ns;
    s.sys += r.sys_ns;
    s.wall += r.wall_ns;
    s.zero += r.zero_ns;
  }

  /** --gaps: tick the manual clock up to `ns` if it is not there yet. */
  private idleUntil(ns: number): void {
    const now = run(this.ctl, { verb: 'stats' }).now_ns;
    const gap = Math.round(ns - now);
    if (gap <= 0) return;
    try {
      this.ctl.call(formatCommand({ verb: 'tick', ns: gap }));
    } catch (err) {
      if (err instanceof WorkloadError && /live/.test(err.message)) {
        throw new WorkloadError('trace replay --gaps needs a manual clock (the private machine has one; a mount needs --clock manual)');
      }
      throw err;
    }
    this.idleNs += gap;
  }

  /** A mapping change of host pages [s, e): queued faults on model pages it covers go first. */
  private before(p: Proc, s: number, e: number): void {
    if (this.batchProc !== p || this.queued === 0) return this.flush();
    const [ms, me] = this.modelRange(s, e);
    const lo = ms * this.mps;
    const hi = me * this.mps;
    for (const q of this.queues.values()) {
      for (let i = q.head; i < q.addrs.length; i++) {
        const a = q.addrs[i]!;
        if (a >= lo && a < hi) return this.flush();
      }
    }
  }

  private map(s: number, e: number): void {
    const p = this.current();
    this.before(p, s, e);
    p.host.add(s, e);
    const [ms, me] = this.modelRange(s, e);
    for (const [a, b] of p.model.add(ms, me)) {
      this.ctl.call(formatCommand({ verb: 'mmap', mm: p.mm, addr: a * this.mps, size: (b - a) * this.mps }));
    }
  }

  /** Model pages of host [s, e) that hold no host page still mapped. */
  private freed(p: Proc, s: number, e: number): [number, number][] {
    const [ms, me] = this.modelRange(s, e);
    const out: [number, number][] = [];
    for (let mp = ms; mp < me; mp++) {
      // Interior model pages are wholly inside [s, e): only the two ends need a look.
      if (mp > ms && mp < me - 1) {
        out.push([mp, me - 1]);
        mp = me - 2;
        continue;
      }
      const [hs, he] = this.hostRange(mp);
      if (p.host.intersect(hs, he).length === 0) out.push([mp, mp + 1]);
    }
    return out;
  }

  private unmap(s: number, e: number): void {
    const p = this.current();
    this.before(p, s, e);
    p.host.remove(s, e);
    for (const [a, b] of this.freed(p, s, e)) {
      for (const [x, y] of p.model.remove(a, b)) this.timed(run(this.ctl, { verb: 'munmap', mm: p.mm, addr: x * this.mps, size: (y - x) * this.mps }));
    }
  }

  /** A munmap's or an exit's time counts, as pft counts its process's exit. */
  private timed(r: { sys_ns: number; wall_ns: number }): void {
    this.sum.sys += r.sys_ns;
    this.sum.wall += r.wall_ns;
  }

  /**
   * MADV_DONTNEED: the pages go, the mapping stays (munmap + mmap of the same range). A model
   * page goes only when all its host pages do: the model pages wholly inside [s, e).
   */
  private zap(s: number, e: number): void {
    const p = this.current();
    this.before(p, s, e);
    const inner = [Math.ceil((s * this.hps) / this.mps), Math.floor((e * this.hps) / this.mps)] as const;
    for (const [a, b] of p.model.intersect(inner[0], inner[1])) {
      const addr = a * this.mps;
      const size = (b - a) * this.mps;
      this.timed(run(this.ctl, { verb: 'munmap', mm: p.mm, addr, size }));
      this.ctl.call(formatCommand({ verb: 'mmap', mm: p.mm, addr, size }));
    }
  }

  private exec(): void {
    const p = this.current();
    this.end(p.key);
    this.cur = this.proc(p.key);
    this.cur.taskOf.set(this.tid, 0);
  }

  private exitProc(): void {
    this.end(this.current().key);
    this.cur = null;
  }

  private end(key: number): void {
    const p = this.procs.get(key);
    if (!p) return;
    if (this.batchProc === p) this.flush();
    this.procs.delete(key);
    this.timed(run(this.ctl, { verb: 'mm exit', mm: p.mm }));
  }
}

/** The replay table: one row per side, pft's columns and the zeroing ones. */
export function formatReplayTable(rows: readonly ReplayRow[]): string {
  const head = ['scrub', 'faults', 'pages', 'User', 'System', 'Wall', 'flt/cpu/s', 'fault/wsec', 'prezeroed', 'hot-zeroed', 'zeroing', 'kscrubd', 'fault/wsec+kscrubd'];
  const body = rows.map((r) => [
    r.scrub, String(r.faults), String(r.pages), `${r.userS.toFixed(3)}s`, `${r.systemS.toFixed(3)}s`, `${r.wallS.toFixed(3)}s`,
    r.fltPerCpuS.toFixed(3), r.faultPerWsec.toFixed(3), `${(100 * r.prezeroedShare).toFixed(1)}%`, String(r.hotZeroed),
    `${r.zeroingS.toFixed(3)}s`, `${r.kscrubdPrepS.toFixed(3)}s`, r.faultPerWsecWithKscrubd.toFixed(3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' ');
  return [line(head), ...body.map(line)].join('\n') + '\n';
}

/** The ReplayRow fields in table order, for CSV and JSON readers. */
export const REPLAY_COLUMNS: readonly (keyof ReplayRow)[] = [
  'scrub', 'faults', 'modelFaults', 'pages', 'userS', 'systemS', 'wallS', 'fltPerCpuS', 'faultPerWsec', 'prezeroed', 'hotZeroed',
  'prezeroedShare', 'zeroingS', 'kscrubdS', 'idleS', 'kscrubdPrepS', 'faultPerWsecWithKscrubd', 'kscrubdBytesPerS', 'cpusUsed', 'prefaulted', 'oom', 'fileFaults', 'unknownFaults', 'processes', 'hostPageSize', 'pageSize', 'cpus',
];
