/**
 * The periodic load balancer of a kernel that does not balance on fork (2.6.10/2.6.11 on
 * ia64: kernel/sched.c `rebalance_tick`, `load_balance`, `find_busiest_group`), kept in
 * virtual time: it decides where and when each new thread of a process first runs. Such a
 * kernel puts every new thread on its parent's CPU (`wake_up_new_task`); an idle CPU takes
 * one only when one of its scheduling domains is due to balance. Each CPU keeps, per domain,
 * `last_balance` and `balance_interval`: the interval doubles at each balanced look up to
 * `max_interval`, returns to `min_interval` after a pull, grows by 1 ms after a failed one,
 * and is `busy_factor` times longer while the CPU runs something. So how long a new thread
 * waits depends on what the CPUs did before — a pull in the last repetition resets a timer.
 *
 * Domains (arch/ia64/kernel/domain.c, 2.6.10, no SMT): a node's CPUs (`phys_domains`,
 * SD_CPU_INIT; each CPU a group of cpu_power SCHED_LOAD_SCALE) under all nodes (`node_domains`,
 * ia64's SD_NODE_INIT; each node a group of cpu_power SCHED_LOAD_SCALE × its CPUs; spans up to
 * SD_NODES_PER_DOMAIN = 6 nodes, which covers every preset that uses it). Loads are
 * nr_running × SCHED_LOAD_SCALE (the kernel averages them over ticks; a fork's load is at full
 * within a few ms, against balance intervals of 80–320 ms).
 *
 * Not modelled: a busy CPU's pulls (its interval is busy_factor times longer: 25.6 s for a node
 * domain after a pull), active balancing after repeated failures (the migration thread pushing
 * a running thread), kscrubd's turns (a CPU running it is not idle), and threads sharing their
 * queue's CPU in turns while they wait (the wait is wall time, not CPU time).
 */

/** SCHED_LOAD_SCALE: the load of one runnable task. */
const SCALE = 128;

/** A scheduling domain level's tunables (ms), as the kernel's SD_*_INIT set them. */
export interface DomainTunables {
  readonly minInterval: number;
  readonly maxInterval: number;
  readonly busyFactor: number;
  /** balance_interval when the domain is built at boot. */
  readonly initInterval: number;
  readonly imbalancePct: number;
}

/** include/linux/topology.h SD_CPU_INIT (2.6.10): a node's CPUs. */
export const SD_CPU_INIT: DomainTunables = { minInterval: 1, maxInterval: 4, busyFactor: 64, initInterval: 1, imbalancePct: 125 };
/** include/asm-ia64/topology.h SD_NODE_INIT (2.6.10): across nodes. */
export const SD_NODE_INIT_IA64: DomainTunables = { minInterval: 80, maxInterval: 320, busyFactor: 320, initInterval: 1, imbalancePct: 125 };

/** The kernel configuration the balancer's clock follows: ia64's HZ, sn2_defconfig's NR_CPUS. */
export interface BalanceClock {
  readonly hz: number;
  readonly nrCpus: number;
}
export const IA64_SN2_CLOCK: BalanceClock = { hz: 1024, nrCpus: 512 };

const LEVELS = 2;
const BALANCED = 0;
const MOVED = 1;
const FAILED = 2;
/** How far past a fork the placement looks for a pull (ticks are cheap; a stuck search must end). */
const PLACE_HORIZON_S = 60;

/** Where each thread of a new process first runs, and from when (virtual ns), in thread order. */
export interface Placement {
  readonly cpu: Int32Array;
  readonly startNs: Float64Array;
}

export class Balancer {
  private readonly count: number;
  private readonly nodeOf: Int32Array;
  private readonly perNode: number;
  private readonly levels: readonly DomainTunables[];
  private readonly jiffyNs: number;
  private readonly hz: number;
  /** CPU_OFFSET(cpu) = HZ × cpu / NR_CPUS: each CPU's ticks look ahead so they do not all balance at once. */
  private readonly offset: Int32Array;
  /** Per level × CPU: balance_interval (ms), last_balance (jiffies, in the CPU's offset time), the tick it last looked. */
  private readonly interval: Float64Array;
  private readonly last: Float64Array;
  private readonly lastLook: Float64Array;
  /** Per CPU: the ticks [busyFrom, busyTo) it last ran a workload thread (busyTo +∞: still running). */
  private readonly busyFrom: Float64Array;
  private readonly busyTo: Float64Array;

  constructor(count: number, nodeOf: Int32Array, node: DomainTunables, clock: BalanceClock = IA64_SN2_CLOCK) {
    this.count = count;
    this.nodeOf = nodeOf;
    this.perNode = count / (nodeOf[count - 1]! + 1);
    this.levels = [SD_CPU_INIT, node];
    this.hz = clock.hz;
    this.jiffyNs = 1e9 / clock.hz;
    this.offset = Int32Array.from({ length: count }, (_, c) => Math.floor((clock.hz * c) / clock.nrCpus));
    this.interval = new Float64Array(LEVELS * count);
    this.last = new Float64Array(LEVELS * count);
    this.lastLook = new Float64Array(LEVELS * count).fill(-1);
    for (let l = 0; l < LEVELS; l++) this.interval.fill(this.levels[l]!.initInterval, l * count, (l + 1) * count);
    // No workload ran yet: an empty span before the first tick.
    this.busyFrom = new Float64Array(count).fill(-1);
    this.busyTo = new Float64Array(count).fill(-1);
  }

  /** msecs_to_jiffies (HZ does not divide 1000 on ia64: rounded up), at least one tick. */
  private jiffies(ms: number): number {
    return Math.max(1, Math.ceil((ms * this.hz) / 1000));
  }

  /** The first tick at or after virtual time t. */
  private tickAt(t: number): number {
    return Math.ceil(t / this.jiffyNs - 1e-9);
  }

  /**
   * The tick at which CPU c's domain at `level` next looks, not before tick `from`, and
   * whether c is busy then: `rebalance_tick` looks when jiffies + CPU_OFFSET − last_balance
   * reaches the interval (× busy_factor while busy), at most once a tick.
   */
  private nextLook(level: number, c: number, from: number): { tick: number; busy: boolean } {
    const i = level * this.count + c;
    const lo = Math.max(from, this.lastLook[i]! + 1);
    const due = this.last[i]! - this.offset[c]!;
    const ms = this.interval[i]!;
    const idle = due + this.jiffies(ms);
    const b0 = this.busyFrom[c]!;
    const b1 = this.busyTo[c]!;
    const a = Math.max(lo, idle);
    if (a < b0) return { tick: a, busy: false };
    const b = Math.max(lo, b0, due + this.jiffies(ms * this.levels[level]!.busyFactor));
    if (b < b1) return { tick: b, busy: true };
    return { tick: Math.max(a, b1), busy: false };
  }

  /** A look at `tick`: last_balance moves on by the interval it used; the interval follows the outcome (load_balance). */
  private look(level: number, c: number, tick: number, busy: boolean, outcome: number): void {
    const i = level * this.count + c;
    const sd = this.levels[level]!;
    const ms = this.interval[i]!;
    this.last[i]! += this.jiffies(busy ? ms * sd.busyFactor : ms);
    this.lastLook[i] = tick;
    if (outcome === MOVED) this.interval[i] = sd.minInterval;
    else if (ms < sd.maxInterval) this.interval[i] = outcome === BALANCED ? ms * 2 : ms + 1;
  }

  /**
   * Every look before `tick` of CPU c's domains, each finding the machine balanced (nothing
   * waits between a process's exit and the next fork). Once idle at its longest interval the
   * looks repeat at that interval: skipped in one step, so a day of idle time costs nothing.
   */
  private advance(c: number, tick: number): void {
    for (let level = 0; level < LEVELS; level++) {
      const i = level * this.count + c;
      for (;;) {
        const next = this.nextLook(level, c, 0);
        if (next.tick >= tick) break;
        const ms = this.interval[i]!;
        if (!next.busy && next.tick >= this.busyTo[c]! && ms >= this.levels[level]!.maxInterval &&
            next.tick === this.last[i]! - this.offset[c]! + this.jiffies(ms)) {
          const step = this.jiffies(ms);
          const n = Math.floor((tick - 1 - next.tick) / step) + 1;
          this.last[i]! += n * step;
          this.lastLook[i] = next.tick + (n - 1) * step;
          break;
        }
        this.look(level, c, next.tick, next.busy, BALANCED);
      }
    }
  }

  /** CPU c ran a workload thread from `fromNs` to `toNs`: its timers look with busy_factor then. */
  ran(c: number, fromNs: number, toNs: number): void {
    const from = this.tickAt(fromNs);
    this.advance(c, from);
    this.busyFrom[c] = from;
    this.busyTo[c] = Math.max(from, this.tickAt(toNs));
  }

  /**
   * find_busiest_group + find_busiest_queue + move_tasks for idle CPU c at `level`, with `nr`
   * tasks on each CPU: how many c pulls and from which CPU, or why not (BALANCED, FAILED).
   */
  private balance(level: number, c: number, nr: Int32Array): { outcome: number; from: number; moved: number } {
    const sd = this.levels[level]!;
    const node = this.nodeOf[c]!;
    // Groups in the kernel's ring order, starting at c's own: CPUs of c's node, or nodes.
    const groups = level === 0 ? this.perNode : this.count / this.perNode;
    const size = level === 0 ? 1 : this.perNode;
    const first = level === 0 ? node * this.perNode : 0;
    const own = level === 0 ? c - first : node;
    const power = SCALE * size;
    let thisLoad = 0;
    let maxLoad = 0;
    let busiest = -1;
    let total = 0;
    for (let k = 0; k < groups; k++) {
      const g = (own + k) % groups;
      let sum = 0;
      for (let j = 0; j < size; j++) sum += nr[first + g * size + j]! * SCALE;
      total += sum;
      const avg = Math.floor((sum * SCALE) / power);
      if (g === own) thisLoad = avg;
      else if (avg > maxLoad) { maxLoad = avg; busiest = g; }
    }
    let imbalance = 0;
    const avgLoad = Math.floor((SCALE * total) / (power * groups));
    if (busiest >= 0 && thisLoad < maxLoad && thisLoad < avgLoad && 100 * maxLoad > sd.imbalancePct * thisLoad) {
      const raw = Math.floor((Math.min(maxLoad - avgLoad, avgLoad - thisLoad) * power) / SCALE);
      if (raw >= SCALE - 1) imbalance = Math.floor((raw + 1) / SCALE);
      else if (maxLoad - thisLoad >= SCALE * 2) imbalance = 1;
      else if (pwrGain(maxLoad, thisLoad, power)) imbalance = 1;
    }
    // out_balanced: an idle CPU still takes one from a group running more than one task.
    if (imbalance === 0 && busiest >= 0 && maxLoad > SCALE) imbalance = 1;
    if (imbalance === 0) return { outcome: BALANCED, from: -1, moved: 0 };
    let from = -1;
    for (let j = 0; j < size; j++) {
      const cpu = first + busiest * size + j;
      if (from < 0 || nr[cpu]! > nr[from]!) from = cpu;
    }
    if (nr[from]! <= 1) return { outcome: FAILED, from, moved: 0 };
    return { outcome: MOVED, from, moved: Math.min(imbalance, nr[from]! - 1) };
  }

  /**
   * Where and when the `threads` threads of a process forked at `tNs` on `parent` first run:
   * thread 0 on the parent's CPU at once; the others wait on its queue until idle CPUs' due
   * balances pull them (a CPU that pulls two hands one on to an idle sibling at its own next
   * look). Threads are numbered in the order they first run. Threads no idle CPU takes share
   * the CPU their queue is on from the fork (the event loop lets them take turns).
   */
  place(threads: number, parent: number, tNs: number): Placement {
    const k0 = this.tickAt(tNs);
    for (let c = 0; c < this.count; c++) this.advance(c, k0);
    const nr = new Int32Array(this.count);
    nr[parent] = threads;
    const cpu = new Int32Array(threads);
    const start = new Float64Array(threads).fill(tNs);
    cpu[0] = parent;
    this.busyFrom[parent] = k0;
    this.busyTo[parent] = Number.POSITIVE_INFINITY;
    let placed = 1;
    const horizon = k0 + PLACE_HORIZON_S * this.hz;
    while (placed < threads) {
      const due = this.firstIdleLook(nr, k0);
      if (!due || due.tick > horizon) break;
      const r = this.balance(due.level, due.cpu, nr);
      this.look(due.level, due.cpu, due.tick, due.busy, r.outcome);
      if (r.outcome !== MOVED) continue;
      nr[r.from]! -= r.moved;
      nr[due.cpu]! += r.moved;
      cpu[placed] = due.cpu;
      start[placed++] = Math.max(tNs, due.tick * this.jiffyNs);
      this.busyFrom[due.cpu] = due.tick;
      this.busyTo[due.cpu] = Number.POSITIVE_INFINITY;
    }
    // Left on a queue (more threads than idle CPUs): they take turns on that CPU from the fork.
    for (let c = 0; c < this.count; c++) {
      for (let extra = nr[c]! - 1; extra > 0 && placed < threads; extra--) cpu[placed++] = c;
    }
    return { cpu, startNs: start };
  }

  /** The next look of any idle CPU's domains (nr[c] 0) from tick `from`: earliest, then lowest CPU, then lowest level. */
  private firstIdleLook(nr: Int32Array, from: number): { cpu: number; level: number; tick: number; busy: boolean } | null {
    let best: { cpu: number; level: number; tick: number; busy: boolean } | null = null;
    for (let c = 0; c < this.count; c++) {
      if (nr[c] !== 0) continue;
      for (let level = 0; level < LEVELS; level++) {
        const n = this.nextLook(level, c, from);
        if (!best || n.tick < best.tick) best = { cpu: c, level, tick: n.tick, busy: n.busy };
      }
    }
    return best;
  }

  /**
   * When a new task bound to `c` (a replayed trace names its CPU) first runs there, its parent
   * on `parent`: at once on the parent's CPU, else at c's next look of the lowest domain that
   * spans both, which pulls it.
   */
  firstRun(c: number, parent: number, tNs: number): number {
    if (c === parent) return tNs;
    const k0 = this.tickAt(tNs);
    this.advance(c, k0);
    const level = this.nodeOf[c] === this.nodeOf[parent] ? 0 : 1;
    const n = this.nextLook(level, c, k0);
    this.look(level, c, n.tick, n.busy, MOVED);
    return Math.max(tNs, n.tick * this.jiffyNs);
  }
}

/**
 * find_busiest_group's last test when the imbalance is under one task: would moving one task
 * gain an eighth of a CPU of throughput (pwr_move ≥ pwr_now + SCHED_LOAD_SCALE / 8)?
 */
function pwrGain(maxLoad: number, thisLoad: number, power: number): boolean {
  let now = power * Math.min(SCALE, maxLoad) + power * Math.min(SCALE, thisLoad);
  now = Math.floor(now / SCALE);
  const sub = Math.floor((SCALE * SCALE) / power);
  let move = maxLoad > sub ? power * Math.min(SCALE, maxLoad - sub) : 0;
  const add = Math.min(sub, maxLoad);
  move += power * Math.min(SCALE, thisLoad + add);
  move = Math.floor(move / SCALE);
  return move >= now + SCALE / 8;
}
