import { Balancer, type Placement, SD_NODE_INIT_IA64 } from './balance';

/**
 * The CPUs and the scheduler: which CPU runs what and until when, and the only writer of
 * per-CPU time (what `stat` shows), context switches, the run queue's length and the load
 * average's samples. Spinning is system time; waiting for a CPU is not CPU time; a CPU's
 * idle time is what is neither user nor system.
 */
export class Cpus {
  readonly count: number;
  readonly nodeOf: Int32Array;
  /** Virtual time at which the CPU is next free (a fault's event, a kscrubd block, a zap ends). */
  private readonly free: Float64Array;
  private readonly user: Float64Array;
  private readonly system: Float64Array;
  /** From when a woken kernel thread may take each CPU from its workload thread again. */
  private readonly preemptFrom: Float64Array;
  /** Per CPU: is a workload thread on it now (kscrubd prefers a CPU without one)? */
  private readonly threadOn: Uint8Array;
  /** Workload tasks runnable now (loadavg, procs_running); kscrubd is counted apart. */
  private nrRunning = 0;
  /** Workload threads switched in and out (stat's ctxt adds kscrubd's). */
  private nrSwitches = 0;
  /**
   * A kernel thread's run in progress on each CPU (kscrubd clearing a block), booked as system
   * time when it ends but shown as it runs: the scheduler tick charges the running task every
   * jiffy (account_system_time), so /proc/stat never sees a 512 MiB clear land at once.
   * runDone: the run's earlier steps' CPU; runFrom/runNs: the step on the CPU now.
   */
  private readonly runDone: Float64Array;
  private readonly runFrom: Float64Array;
  private readonly runNs: Float64Array;

  /** CPUs of a node, and CPUs that share one last-level cache (consecutive ids). */
  private readonly perNode: number;
  private readonly llcCpus: number;
  /**
   * Where the kernel does not balance on fork: the node domain's longest balance interval, and
   * the periodic balancer in virtual time that places new threads (balance.ts), else null: a
   * thread on another node than its parent's then waits half that interval (its mean).
   */
  private readonly nodeBalanceMaxNs: number;
  private readonly balancer: Balancer | null;

  constructor(count: number, nodes: number, llcCpus = 1, nodeBalanceMaxNs = 0, balanceTimers = false) {
    this.count = count;
    this.nodeOf = new Int32Array(count);
    const perNode = count / nodes;
    this.perNode = perNode;
    this.llcCpus = llcCpus;
    for (let c = 0; c < count; c++) this.nodeOf[c] = Math.floor(c / perNode);
    this.nodeBalanceMaxNs = nodeBalanceMaxNs;
    this.balancer = nodeBalanceMaxNs > 0 && balanceTimers
      ? new Balancer(count, this.nodeOf, { ...SD_NODE_INIT_IA64, maxInterval: nodeBalanceMaxNs / 1e6 })
      : null;
    this.free = new Float64Array(count);
    this.user = new Float64Array(count);
    this.system = new Float64Array(count);
    this.preemptFrom = new Float64Array(count);
    this.threadOn = new Uint8Array(count);
    this.runDone = new Float64Array(count);
    this.runFrom = new Float64Array(count);
    this.runNs = new Float64Array(count);
  }

  /**
   * The CPU the scheduler gives a workload's thread `i` when the threads start together on an
   * idle machine. Fork balancing (sched_balance_find_dst_group, SD_BALANCE_FORK) puts each new
   * thread in the idlest group of each domain level: within a node the groups of the MC level
   * are its LLC domains (SD_SHARE_LLC: a Zen CCX), so a small run gets one L3 per thread
   * before two threads share one; across nodes the NUMA imbalance allowance keeps a run on its
   * first node until that node is full. With one LLC per CPU or per node this is thread i on
   * CPU i. 8 threads on Milan (8 CCXs of 8 per socket): CPUs 0, 8, 16, …, 56; the 9th on 1.
   */
  forThread(i: number): number {
    const node = Math.floor(i / this.perNode) % (this.count / this.perNode);
    const j = i % this.perNode;
    const llcs = Math.max(1, Math.floor(this.perNode / this.llcCpus));
    const local = j < llcs * this.llcCpus ? (j % llcs) * this.llcCpus + Math.floor(j / llcs) : j;
    return node * this.perNode + local;
  }

  /**
   * Where and when each of a new process's threads (`ids`, thread 0 first) first runs, forked at `t` on
   * `parent`. A kernel that balances on fork places them at once (forThread); one that does
   * not (nodeBalanceMaxNs > 0: 2.6.10/2.6.11) queues them on the parent's CPU until idle
   * CPUs' periodic balances pull them: with MachineConfig.balanceTimers each CPU's balance
   * timer in virtual time decides (balance.ts), else a thread placed on another node than its
   * parent's starts half the node domain's longest interval later, the mean over where the
   * timer stands.
   */
  placeThreads(ids: readonly number[], parent: number, t: number): Placement {
    if (this.balancer) return this.balancer.place(ids.length, parent, t);
    const cpu = Int32Array.from(ids, (i) => this.forThread(i));
    return { cpu, startNs: Float64Array.from(cpu, (c) => this.firstRun(c, parent, t)) };
  }

  /** When a new task bound to `cpu` (a replayed trace's) first runs, its parent on `parent`, forked at t. */
  firstRun(cpu: number, parent: number, t: number): number {
    if (this.balancer) return this.balancer.firstRun(cpu, parent, t);
    return this.nodeBalanceMaxNs === 0 || this.nodeOf[cpu] === this.nodeOf[parent] ? t : t + this.nodeBalanceMaxNs / 2;
  }

  /** A workload thread ran on `cpu` from `from` to `to` (the balancer's timers look less often meanwhile). */
  ranThread(cpu: number, from: number, to: number): void {
    this.balancer?.ran(cpu, from, to);
  }

  // ---- what the CPUs did -------------------------------------------------------------------

  freeAt(cpu: number): number {
    return this.free[cpu]!;
  }
  userNs(cpu: number): number {
    return this.user[cpu]!;
  }
  /** System time booked; given `now`, with the part of a kernel thread's run in progress that has elapsed by then (what stat shows). */
  systemNs(cpu: number, now?: number): number {
    const booked = this.system[cpu]!;
    if (now === undefined) return booked;
    return booked + this.runDone[cpu]! + Math.min(this.runNs[cpu]!, Math.max(0, now - this.runFrom[cpu]!));
  }
  /** Idle time at `now`: whatever was not user or system (never negative). */
  idleNs(cpu: number, now: number): number {
    return Math.max(0, now - this.user[cpu]! - this.systemNs(cpu, now));
  }
  /** Is a workload thread on `cpu`? */
  inUse(cpu: number): boolean {
    return this.threadOn[cpu] === 1;
  }
  get runningTasks(): number {
    return this.nrRunning;
  }
  get contextSwitches(): number {
    return this.nrSwitches;
  }

  // ---- what the model tells them -----------------------------------------------------------

  /** `cpu` runs something until t (+∞: until further notice — a spinner until its grant). */
  busyUntil(cpu: number, t: number): void {
    this.free[cpu] = t;
  }
  addSystem(cpu: number, ns: number): void {
    this.system[cpu]! += ns;
  }
  /** A kernel thread's run on `cpu` takes `ns` of CPU from `from` (a step of it; earlier steps are done). */
  kernelRun(cpu: number, from: number, ns: number): void {
    this.runDone[cpu]! += this.runNs[cpu]!;
    this.runFrom[cpu] = from;
    this.runNs[cpu] = ns;
  }
  /** The run goes on on `to` (a rule's next step picked another CPU): what it did on `from` moves with it, booked where it ends. */
  kernelRunMove(from: number, to: number): void {
    this.runDone[to]! += this.runDone[from]! + this.runNs[from]!;
    this.kernelRunEnd(from);
  }
  /** The run ends and its CPU is booked as system time (the caller's addSystem: the whole, once). */
  kernelRunEnd(cpu: number): void {
    this.runDone[cpu] = 0;
    this.runFrom[cpu] = 0;
    this.runNs[cpu] = 0;
  }
  addUser(cpu: number, ns: number): void {
    this.user[cpu]! += ns;
  }

  /** A workload thread is switched in on `cpu` (runnable, one context switch). */
  switchIn(cpu: number): void {
    this.threadOn[cpu] = 1;
    this.nrRunning++;
    this.nrSwitches++;
  }
  /** The thread on `cpu` has run its last event: the CPU is free for kscrubd (it is still counted runnable). */
  threadDone(cpu: number): void {
    this.threadOn[cpu] = 0;
  }
  /** The thread on `cpu` is switched out for good (it exits; one context switch). */
  switchOut(cpu: number): void {
    this.threadOn[cpu] = 0;
    this.nrRunning--;
    this.nrSwitches++;
  }

  /**
   * A woken kernel thread at a preemption point of `cpu`'s workload thread at time t: it takes
   * the CPU for a timeslice of `sliceNs` if the thread has had its own turn since the last
   * time; then the thread gets a timeslice before the next. Returns the end of the kernel
   * thread's turn, or -1 when it is the thread's turn.
   */
  preempt(cpu: number, t: number, sliceNs: number): number {
    if (t < this.preemptFrom[cpu]!) return -1;
    const end = t + sliceNs;
    this.preemptFrom[cpu] = end + sliceNs;
    return end;
  }

  /**
   * Where a node's kernel thread runs at time t: the node's most idle CPU — one no workload
   * thread is on, then the one free soonest, then the least busy overall, then the lowest id.
   */
  mostIdle(node: number, t: number): number {
    const inUse = this.threadOn;
    let best = -1;
    for (let c = 0; c < this.count; c++) {
      if (this.nodeOf[c] !== node) continue;
      if (best < 0) { best = c; continue; }
      if (inUse[c] !== inUse[best]) {
        if (inUse[c]! < inUse[best]!) best = c;
        continue;
      }
      const a = Math.max(t, this.free[c]!);
      const b = Math.max(t, this.free[best]!);
      if (a < b || (a === b && this.user[c]! + this.system[c]! < this.user[best]! + this.system[best]!)) best = c;
    }
    return best;
  }
}

/**
 * The load average as kernel/sched/loadavg.c computes it: every LOAD_FREQ (5 s) the number
 * of runnable tasks is folded into three exponentially decaying averages in 11-bit fixed point.
 */
export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;
const EXP = [1884, 2014, 2037] as const; // 1/exp(5s/1min), 5min, 15min in fixed point
export const LOAD_FREQ_NS = 5e9;

export class LoadAvg {
  readonly avenrun = [0, 0, 0];
  private _nextSample = LOAD_FREQ_NS;
  /** When the next sample is due (every LOAD_FREQ: sample() and skipStillSamples() move it). */
  get nextSample(): number { return this._nextSample; }
  private set nextSample(v: number) { this._nextSample = v; }

  /**
   * calc_load(): fold `active` in, and the next sample is LOAD_FREQ later; false when the
   * averages stood still (they reached their fixed point).
   */
  sample(active: number): boolean {
    this.nextSample += LOAD_FREQ_NS;
    const a = active * FIXED_1;
    let moved = false;
    for (let i = 0; i < 3; i++) {
      const e = EXP[i]!;
      let load = this.avenrun[i]! * e + a * (FIXED_1 - e);
      if (a >= this.avenrun[i]!) load += FIXED_1 - 1;
      const next = Math.floor(load / FIXED_1);
      if (next !== this.avenrun[i]) moved = true;
      this.avenrun[i] = next;
    }
    return moved;
  }

  /**
   * Skip the samples due up to `t` once one stood still: with the same tasks running, each
   * would compute the same averages again. A day of idle virtual time (or a fault that a slow
   * cost model stretches to hours) is then a few thousand samples, not millions.
   */
  skipStillSamples(t: number): void {
    if (t < this.nextSample) return;
    const next = this.nextSample + (Math.floor((t - this.nextSample) / LOAD_FREQ_NS) + 1) * LOAD_FREQ_NS;
    // Far out (past 2^53 × 5 s) a double cannot hold t + 5 s: step at least one unit of t's precision.
    this.nextSample = next > t ? next : t + Math.max(LOAD_FREQ_NS, t * Number.EPSILON);
  }

  /** As the kernel prints it: "%lu.%02lu". */
  format(i: 0 | 1 | 2): string {
    const v = this.avenrun[i]!;
    const whole = v >> FSHIFT;
    const frac = Math.floor(((v & (FIXED_1 - 1)) * 100) / FIXED_1);
    return `${whole}.${String(frac).padStart(2, '0')}`;
  }

  /** The 1-minute average as a plain number (scrub_load compares against it). */
  one(): number {
    return this.avenrun[0]! / FIXED_1;
  }
}
