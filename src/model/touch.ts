import { type FaultCounts, MAX_THREADS, ModelError } from '../uapi';
import { AnonFault, type AnonFaultMachine } from './anon-fault';
import { FaultLoop, type FaultLoopMachine } from './fault-loop';
import { FaultPricing, type FaultPricingMachine } from './fault-price';
import type { Mm, ProcessTable, Task } from './mm-types';
import { PAGEVEC_SIZE } from './pagevec';
import type { Parts } from './parts';
import { PtLocks, type PtLockMachine } from './ptlock';
import { type FaultScope, Runner, TouchCounts } from './runner';

/** What touch uses of the machine (parts.ts). */
export type TouchMachine = Pick<Parts, 'advanceTo' | 'config' | 'cpus' | 'lines' | 'now' | 'pageSize' | 'sysctl'> & { readonly procs: ProcessTable } & FaultPricingMachine & PtLockMachine & AnonFaultMachine & FaultLoopMachine;

/**
 * A touch: threads of one mm writing (or reading) a range, or a list of single-page accesses
 * (a replayed trace), each thread a runner of the fault simulation (fault-loop.ts, the event
 * loop; anon-fault.ts, the fault itself). This file makes the runners, checks what the
 * caller asked, runs the loop in slices and sums the result.
 */

export interface TouchOptions {
  addr: number;
  size: number;
  threads: number;
  /** Cachelines written per page, from the page's start. */
  lines: number;
  write: boolean;
  /** Distance between touched addresses (a multiple of the page size). */
  stride: number;
}

/**
 * A list of single-page accesses, each by one task of the mm (a replayed trace's faults):
 * entry i is addrs[i], by task tasks[i], a write when writes[i] is 1. Each task's entries run
 * in list order on its own runner; the tasks overlap in time as touch's threads do.
 */
export interface FaultList {
  readonly addrs: readonly number[];
  readonly tasks: readonly number[];
  readonly writes: readonly (0 | 1)[];
  /** CPU of each task (index = task), else task mod the machine's CPUs. */
  readonly cpus?: readonly number[];
  /** Cachelines written after each access. */
  readonly lines: number;
}

export interface TouchResult extends FaultCounts {
  userNs: number;
  sysNs: number;
  wallNs: number;
  /** Of sysNs, the time spent hot-zeroing pages in the fault path. */
  zeroNs: number;
  /** The slowest fault, trap to return. */
  maxFaultNs: number;
}

/**
 * A touch that can run a few events at a time (DESIGN §5: the daemon slices long commands so
 * it can answer readers in between). `run(budget)` runs at most `budget` events and says
 * whether the touch is complete; the events run are the same, in the same order, however the
 * budget splits them, so the result and the machine's state are the same to the last bit.
 * While a touch is in progress its runners' CPUs are marked in use; nothing else may run
 * events on this machine meanwhile (the caller serializes commands).
 * `what` names the command in error messages: touch, or fault (one page).
 */
export class TouchJob {
  private readonly loop: FaultLoop;
  private readonly counts = new TouchCounts();
  private readonly runners: Runner[] = [];
  private readonly start: number;
  /** When each runner first ran (its first event). */
  private readonly starts: Float64Array;
  private outcome: TouchResult | null = null;
  private failed = false;

  /** A range (touch, fault) or a list of accesses (faults). */
  constructor(private readonly m: TouchMachine, mm: Mm, o: TouchOptions | FaultList, what: 'touch' | 'fault' = 'touch') {
    const procs = m.procs;
    this.start = m.now;
    const opts = 'addrs' in o ? this.listRunners(mm, o) : this.rangeRunners(mm, o, what);
    const cpus = this.runners.map((r) => r.cpu);
    const scope: FaultScope = { mm, shared: cpus.length > 1, spinOwnsCpu: new Set(cpus).size === cpus.length };
    const pricing = new FaultPricing(m, m.lines, opts.lines, this.counts);
    const locks = new PtLocks(m, scope, pricing, procs.pmdBytes);
    const fault = new AnonFault(m, procs, scope, pricing, locks, this.counts, opts.stride);
    this.loop = new FaultLoop(m, scope, fault, locks);
    this.starts = Float64Array.from(this.runners, (r) => r.t);
    for (const r of this.runners) m.cpus.switchIn(r.cpu);
  }

  private rangeRunners(mm: Mm, o: TouchOptions, what: 'touch' | 'fault'): TouchOptions {
    const m = this.m;
    const ps = m.pageSize;
    const { vma, size } = m.procs.range(mm, o.addr, o.size, what);
    if (!Number.isInteger(o.threads) || o.threads < 1 || o.threads > MAX_THREADS) {
      throw new ModelError('KSCRUB_BAD_OPTION', `touch: threads=${o.threads} must be 1..${MAX_THREADS}`);
    }
    const maxLines = ps / m.config.lineSize;
    if (!Number.isInteger(o.lines) || o.lines < 1 || o.lines > maxLines) {
      throw new ModelError('KSCRUB_BAD_OPTION', `touch: lines=${o.lines} must be 1..${maxLines} (${m.config.lineSize}-byte lines in a ${ps}-byte page)`);
    }
    if (!Number.isSafeInteger(o.stride) || o.stride < ps || o.stride % ps !== 0) {
      throw new ModelError('KSCRUB_BAD_OPTION', `touch: stride=${o.stride} must be a multiple of the page size (${ps})`);
    }
    // The range is split evenly among the threads (in whole strides), each in address order.
    const strides = Math.ceil(size / o.stride);
    // A fault maps at most 2^vm.max_prealloc_order pages (a COW or read fault, one); allocRun()
    // grows the arrays should the sysctl rise while the touch is in progress.
    const maxPages = m.sysctl.max_prealloc_order === 0 ? 1 : PAGEVEC_SIZE;
    const shares: number[] = [];
    for (let i = 0; i < o.threads; i++) {
      if (Math.floor((strides * (i + 1)) / o.threads) > Math.floor((strides * i) / o.threads)) shares.push(i);
    }
    // New threads are placed as the scheduler places them (Cpus.placeThreads), in the order
    // they first run; a thread that ran before stays on its CPU and starts now.
    const fresh = shares.filter((i) => mm.task(i).cpu < 0);
    const parent = mm.task(0).cpu >= 0 ? mm.task(0).cpu : m.cpus.forThread(0);
    const lead = mm.task(0).cpu >= 0 ? 1 : 0;
    const place = fresh.length > 0 ? m.cpus.placeThreads(lead ? [0, ...fresh] : fresh, parent, this.start) : null;
    for (const i of shares) {
      const first = Math.floor((strides * i) / o.threads);
      const last = Math.floor((strides * (i + 1)) / o.threads);
      const task = mm.task(i);
      let t = this.start;
      if (task.cpu < 0) {
        const k = fresh.indexOf(i) + lead;
        task.cpu = place!.cpu[k]!;
        t = place!.startNs[k]!;
      }
      const cpu = task.cpu;
      this.runners.push(new Runner(
        task, cpu, m.cpus.nodeOf[cpu]!, o.addr + first * o.stride,
        Math.min(o.addr + size, o.addr + last * o.stride), t, maxPages, vma, o.write,
      ));
    }
    return o;
  }

  /**
   * A fault list: one runner per task, walking its entries in list order, all starting now.
   * Every entry is checked (page aligned, mapped) before anything runs.
   */
  private listRunners(mm: Mm, l: FaultList): TouchOptions {
    const m = this.m;
    const ps = m.pageSize;
    const maxLines = ps / m.config.lineSize;
    if (!Number.isInteger(l.lines) || l.lines < 1 || l.lines > maxLines) {
      throw new ModelError('KSCRUB_BAD_OPTION', `faults: lines=${l.lines} must be 1..${maxLines} (${m.config.lineSize}-byte lines in a ${ps}-byte page)`);
    }
    const byTask = new Map<number, number[]>();
    l.addrs.forEach((addr, i) => {
      m.procs.range(mm, addr, ps, 'faults');
      const task = l.tasks[i]!;
      if (!Number.isInteger(task) || task < 0 || task >= MAX_THREADS) {
        throw new ModelError('KSCRUB_BAD_OPTION', `faults: task ${task} must be 0..${MAX_THREADS - 1}`);
      }
      const mine = byTask.get(task) ?? [];
      mine.push(i);
      byTask.set(task, mine);
    });
    const maxPages = m.sysctl.max_prealloc_order === 0 ? 1 : PAGEVEC_SIZE;
    for (const [task, entries] of byTask) {
      const cpu = l.cpus?.[task] ?? m.cpus.forThread(task);
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= m.config.cpus) {
        throw new ModelError('KSCRUB_BAD_OPTION', `faults: cpu ${cpu} of task ${task} must be 0..${m.config.cpus - 1}`);
      }
      const first = l.addrs[entries[0]!]!;
      const t = mm.task(task);
      const parentCpu = l.cpus?.[0] ?? 0;
      const from = t.cpu >= 0 ? this.start : m.cpus.firstRun(cpu, parentCpu, this.start);
      t.cpu = cpu;
      const r = new Runner(t, cpu, m.cpus.nodeOf[cpu]!, first, Number.POSITIVE_INFINITY, from, maxPages,
        mm.findVma(first)!, l.writes[entries[0]!] === 1);
      r.list = Float64Array.from(entries, (i) => l.addrs[i]!);
      r.writes = Uint8Array.from(entries, (i) => l.writes[i]!);
      this.runners.push(r);
    }
    // Two tasks on one CPU take turns on it (step() waits for the CPU), as tasks would.
    return { addr: 0, size: ps, threads: this.runners.length, lines: l.lines, write: true, stride: ps };
  }

  /** Run at most `budget` events (≥ 1); true once the touch is complete (see result). */
  run(budget = Number.POSITIVE_INFINITY): boolean {
    if (this.outcome) return true;
    if (this.failed) throw new Error('touch: run() after the touch failed');
    let done: boolean;
    try {
      done = this.loop.run(this.runners, Math.max(1, budget));
    } catch (err) {
      this.failed = true;
      this.release();
      throw err;
    }
    if (done) this.finish();
    return done;
  }

  /**
   * Stop at the next page, as a signal stops a program between faults: each runner ends the
   * fault in flight (the kernel never abandons one half-done) and touches no further page.
   * Go on calling run() until it returns true — a few events more at most; the result then
   * counts what was done.
   */
  stop(): void {
    for (const r of this.runners) {
      if (r.list) r.list = r.list.subarray(0, r.li + 1);
      else r.end = Math.min(r.end, r.addr);
    }
  }

  /** The touch's result; only once run() has returned true. */
  get result(): TouchResult {
    if (!this.outcome) throw new Error('touch: result read before the touch completed');
    return this.outcome;
  }

  private finish(): void {
    let end = this.start;
    let userNs = 0;
    let sysNs = 0;
    for (const r of this.runners) {
      end = Math.max(end, r.t);
      userNs += r.userNs;
      sysNs += r.sysNs;
    }
    this.release();
    this.m.advanceTo(end);
    const sim = this.counts;
    // Made here, whole: a literal whose fields change type after it is made (0, then a
    // double) costs optimized code a map check failure per touch.
    this.outcome = {
      pages: sim.pages, faults: sim.faults, prezeroed: sim.prezeroed, hotZeroed: sim.hotZeroed,
      prefaulted: sim.prefaulted, oom: sim.oom, userNs, sysNs, wallNs: end - this.start, zeroNs: sim.zeroedNs,
      maxFaultNs: sim.maxFaultNs,
    };
  }

  /** The threads leave their CPUs (done, or the touch failed), which the balancer's timers learn: each CPU ran from its first thread's start to its last's end. */
  private release(): void {
    const from = new Map<number, number>();
    const to = new Map<number, number>();
    this.runners.forEach((r, i) => {
      from.set(r.cpu, Math.min(from.get(r.cpu) ?? Number.POSITIVE_INFINITY, this.starts[i]!));
      to.set(r.cpu, Math.max(to.get(r.cpu) ?? 0, r.t));
    });
    for (const [cpu, f] of from) this.m.cpus.ranThread(cpu, f, to.get(cpu)!);
    for (const r of this.runners) this.m.cpus.switchOut(r.cpu);
  }
}

/** A whole touch at once (what the model's callers and tests use). */
export function touch(m: TouchMachine, mm: Mm, o: TouchOptions, what: 'touch' | 'fault' = 'touch'): TouchResult {
  const job = new TouchJob(m, mm, o, what);
  job.run();
  return job.result;
}
