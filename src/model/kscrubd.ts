import debugFactory from 'debug';
import { orderPages } from './page';
import type { Parts } from './parts';
import type { ZeroRule, ZeroRuleMachine } from './policies/zero-rules';
import type { NodeBus } from './membw';
import type { ZeroDriver, ZeroResult } from './zero-drivers';
import type { Zone } from './zone';

/** What kscrubd uses of the machine (parts.ts). */
export type KscrubdMachine = Pick<Parts, 'bus' | 'config' | 'cost' | 'cpuZero' | 'cpus' | 'kscrubdWaits' | 'lines' | 'llc' | 'nodeZones' | 'now' | 'sysctl' | 'zeroDrivers'> & ZeroRuleMachine;

/**
 * kscrubd, one per node. Woken when a free coalesces a NOT_ZEROED block of order ≥
 * scrub_start; then it runs a burst of passes over its node's zones, each zone giving up at
 * most one block per pass (the highest-order not-zeroed block ≥ scrub_stop), so that no zone
 * starves the others; the burst ends with a pass that found nothing, and kscrubd sleeps.
 *
 * It is an actor on the shared virtual clock: a block is taken off its list when kscrubd
 * picks it, and returns to the ZEROED lists when its driver finishes (`doneAt`).
 */
const log = debugFactory('kscrubfs:model');

/**
 * A nice-0 task's timeslice in 2.6.11's O(1) scheduler (kernel/sched.c DEF_TIMESLICE,
 * 100 ms). kscrubd is a kernel thread at nice 0 bound to its node's CPUs (V6's kscrubd()
 * daemonizes and set_cpus_allowed(node_to_cpumask)); when it has to share a CPU with a
 * workload thread the two take turns a timeslice at a time, and kscrubd yields between
 * blocks (cond_resched) once its slice is over.
 */
export const SCHED_TIMESLICE_NS = 100e6;

export class Kscrubd {
  readonly node: number;
  private _awake: boolean = false;
  get awake(): boolean { return this._awake; }
  private set awake(v: boolean) { this._awake = v; }
  /** Holding a block, waiting for a CPU of its node (every one runs a workload thread). */
  private _waiting: boolean = false;
  get waiting(): boolean { return this._waiting; }
  private set waiting(v: boolean) { this._waiting = v; }
  /** A busy CPU kscrubd took from a workload thread, and when its timeslice there ends. */
  private sliceCpu = -1;
  private sliceEnd = 0;
  /** The CPU it runs on for the current block (the node's most idle at pick time). */
  private _cpu: number = -1;
  get cpu(): number { return this._cpu; }
  private set cpu(v: number) { this._cpu = v; }
  /** When the current step ends: the block in flight is done, or the next pick is due. */
  private _nextAt: number = Number.POSITIVE_INFINITY;
  get nextAt(): number { return this._nextAt; }
  private set nextAt(v: number) { this._nextAt = v; }
  /** The block in flight; `left`: pages still to clear (a rule may clear it in several runs). */
  private block: { zone: Zone; pfn: number; order: number; cpuNs: number; driver: ZeroDriver['name']; left: number } | null = null;
  private zoneCursor = 0;
  private passZeroed = 0;
  /** Counters (vmstat, stats). */
  private _wakes: number = 0;
  get wakes(): number { return this._wakes; }
  private set wakes(v: number) { this._wakes = v; }
  private _bursts: number = 0;
  get bursts(): number { return this._bursts; }
  private set bursts(v: number) { this._bursts = v; }
  private _blocks: number = 0;
  get blocks(): number { return this._blocks; }
  private set blocks(v: number) { this._blocks = v; }
  private _pages: number = 0;
  get pages(): number { return this._pages; }
  private set pages(v: number) { this._pages = v; }
  private _cpuNs: number = 0;
  get cpuNs(): number { return this._cpuNs; }
  private set cpuNs(v: number) { this._cpuNs = v; }
  private _bteBlocks: number = 0;
  get bteBlocks(): number { return this._bteBlocks; }
  private set bteBlocks(v: number) { this._bteBlocks = v; }
  private _bteFallbacks: number = 0;
  get bteFallbacks(): number { return this._bteFallbacks; }
  private set bteFallbacks(v: number) { this._bteFallbacks = v; }
  private _lastBurstStart: number = 0;
  get lastBurstStart(): number { return this._lastBurstStart; }
  private set lastBurstStart(v: number) { this._lastBurstStart = v; }
  private _lastBurstEnd: number = 0;
  get lastBurstEnd(): number { return this._lastBurstEnd; }
  private set lastBurstEnd(v: number) { this._lastBurstEnd = v; }

  /**
   * `rule`: another kernel's zeroing thread run the same way (kprezerod, the idle zeroer:
   * policies/zero-rules.ts); null for Lameter's kscrubd.
   */
  constructor(node: number, readonly rule: ZeroRule | null = null) {
    this.node = node;
    // Times are doubles from the start (as TouchCounts' are): each node's kscrubd would
    // otherwise keep the old shape until its own first fraction, and fail the map checks of
    // code a free or a fault runs (coalesced(), wake) once per node.
    this.sliceEnd = this._cpuNs = this._lastBurstStart = this._lastBurstEnd = 0.5;
    this.sliceEnd = this._cpuNs = this._lastBurstStart = this._lastBurstEnd = 0;
  }

  /** A rule's thread that is asleep sets its timer afresh from now (booted, or its settings changed). */
  armTimer(m: KscrubdMachine): void {
    if (this.rule && !this.awake) this.nextAt = this.rule.wakeAt(m, m.now);
  }

  /** Blocks the last burst zeroed (a timer-driven thread has settled once a burst zeroes none). */
  private _lastBurstBlocks = 0;
  get lastBurstBlocks(): number { return this._lastBurstBlocks; }
  private burstBlocks0 = 0;
  /** A burst began and its rule has not been told yet. */
  private burstFresh = false;

  /** Block kscrubd holds off-list right now, for check(). */
  inFlight(): { zone: Zone; pfn: number; order: number } | null {
    return this.block;
  }

  /** wakeup_kscrubd(): start a burst at time t unless one is running. */
  wake(t: number, wakeupNs: number): boolean {
    if (this.awake) return false;
    this.awake = true;
    this.wakes++;
    this.bursts++;
    this.zoneCursor = 0;
    this.passZeroed = 0;
    this.lastBurstStart = t;
    this.burstBlocks0 = this.blocks;
    this.burstFresh = true;
    this.nextAt = t + wakeupNs;
    return true;
  }

  /** Run every step due at or before t (a sleeping thread's timer wakes it). */
  advance(m: KscrubdMachine, t: number): void {
    while (this.nextAt <= t) {
      if (this.awake) this.step(m, this.nextAt);
      else this.wake(this.nextAt, m.cost.wakeupNs);
    }
  }

  private step(m: KscrubdMachine, at: number): void {
    if (this.block && this.block.left > 0) return this.run(m, at);
    if (this.block) this.finish(m, at);
    if (this.rule) return this.ruleStep(m, at);
    const zones = m.nodeZones[this.node]!;
    // One pass = one visit to each zone; a pass that zeroes nothing ends the burst.
    for (let visited = 0; visited <= zones.length; visited++) {
      if (this.zoneCursor === zones.length) {
        if (this.passZeroed === 0) return this.sleep(at);
        this.zoneCursor = 0;
        this.passZeroed = 0;
      }
      const zone = zones[this.zoneCursor++]!;
      const got = zone.takeForScrub(m.sysctl.scrub_stop);
      if (got) {
        this.passZeroed++;
        return this.start(m, zone, got.pfn, got.order, at);
      }
    }
    this.sleep(at);
  }

  /** A rule's thread: its next block, or sleep. */
  private ruleStep(m: KscrubdMachine, at: number): void {
    const rule = this.rule!;
    if (this.burstFresh) {
      rule.begin(m);
      this.burstFresh = false;
    }
    const got = rule.next(m);
    if (!got) return this.sleep(at, m);
    this.start(m, got.zone, got.pfn, got.order, at);
  }

  /**
   * Zero a block it took off its list. kscrubd runs on the most idle CPU of its node; when
   * every CPU there runs a workload thread, it waits (the block held off-list) until one of
   * them reaches a point where a woken kernel thread preempts it — the return to user mode
   * between two faults, and under CONFIG_PREEMPT the fault's allocation outside
   * page_table_lock (runOn; FaultLoop.preemptible) — or the threads go away (Machine.cpusReleased).
   */
  private start(m: KscrubdMachine, zone: Zone, pfn: number, order: number, at: number): void {
    this.block = { zone, pfn, order, cpuNs: 0, driver: 'cpu', left: orderPages(order) };
    this.run(m, at);
  }

  /** Find a CPU for the block's next run (an idle-only rule never takes a thread's). */
  private run(m: KscrubdMachine, at: number): void {
    const cpu = m.cpus.mostIdle(this.node, at);
    if (!m.cpus.inUse(cpu)) return this.zeroOn(m, cpu, at);
    // Within its timeslice on a CPU it took from a thread, it goes on there.
    // (Not while its thread spins on a lock there: that CPU is not to be had.)
    const slice = this.sliceCpu;
    if (this.rule?.idleOnly !== true && slice >= 0 && at < this.sliceEnd && m.cpus.inUse(slice) && Number.isFinite(m.cpus.freeAt(slice))) return this.zeroOn(m, slice, at);
    this.sliceCpu = -1;
    this.waiting = true;
    m.kscrubdWaits(1);
    this.nextAt = Number.POSITIVE_INFINITY;
  }

  /**
   * A CPU of its node comes free, or its thread reaches a preemption point, at time t.
   * An idle CPU kscrubd takes at once; a thread's CPU only when the thread has had its
   * timeslice since kscrubd last took it (they take turns). True if kscrubd took it.
   */
  runOn(m: KscrubdMachine, cpu: number, t: number): boolean {
    if (!this.waiting) return false;
    if (m.cpus.inUse(cpu)) {
      if (this.rule?.idleOnly === true) return false;
      const end = m.cpus.preempt(cpu, t, SCHED_TIMESLICE_NS);
      if (end < 0) return false;
      this.sliceCpu = cpu;
      this.sliceEnd = end;
    }
    this.waiting = false;
    m.kscrubdWaits(-1);
    this.zeroOn(m, cpu, t);
    return true;
  }

  private zeroOn(m: KscrubdMachine, cpu: number, at: number): void {
    const b = this.block!;
    const first = b.left === orderPages(b.order);
    // The block came off its free list under zone->lock (V6's scrub_pgdat → rmqueue-like
    // removal): kscrubd spins there like any other taker, then zeroes.
    const free = Math.max(at, m.cpus.freeAt(cpu));
    const lockNs = first ? b.zone.lock.hold(m.lines, cpu, free, 1, m.cost.buddyPerPageNs) : 0;
    const begin = free + lockNs;
    if (this.rule) return this.zeroPagesOn(m, cpu, begin, lockNs);
    b.left = 0;
    const bytes = orderPages(b.order) * m.config.pageSize;
    let driver: ZeroDriver | undefined;
    let result = null;
    for (const d of m.zeroDrivers) {
      if (!d.accepts(bytes)) continue;
      result = clearOnBus(d, m.bus, bytes, this.node, begin, cpu);
      if (result) { driver = d; break; }
      this.bteFallbacks++; // a failed transfer: the CPU does it after all
      break;
    }
    if (!result || !driver) {
      driver = m.cpuZero;
      // clear_pages shares the node's bus with the CPUs zeroing there when it starts, after
      // what the program's misses under way still move.
      result = clearOnBus(m.cpuZero, m.bus, bytes, this.node, begin, cpu)!;
    }
    // The CPU's stores (cached or not) share the node's bus with the node's other zeroing
    // CPUs; the BTE's transfer is the SHub's, not a CPU's.
    const busBytes = driver.busBytes(bytes);
    if (busBytes > 0) onBus(m.bus, cpu, begin, begin + result.wallNs, busBytes);
    // Cached stores leave the block's lines in the cache of the CPU kscrubd ran on.
    m.llc.clear(cpu, driver.fills(bytes));
    // kscrubd's CPU time is system time of its CPU (a BTE transfer is busy-polled: the same).
    m.cpus.busyUntil(cpu, begin + result.cpuNs);
    m.cpus.kernelRun(cpu, begin, result.cpuNs);
    this.cpu = cpu;
    b.cpuNs = lockNs + result.cpuNs;
    b.driver = driver.name;
    this.nextAt = begin + result.wallNs;
  }

  /**
   * A rule's run: up to runPages() pages of the block cleared one clear_highpage() at a time,
   * on `cpu` from `begin` (the CPU driver's one-page price, sharing the node's bus).
   */
  private zeroPagesOn(m: KscrubdMachine, cpu: number, begin: number, lockNs: number): void {
    const b = this.block!;
    const pages = Math.min(b.left, this.rule!.runPages(m));
    const one = clearOnBus(m.cpuZero, m.bus, m.config.pageSize, this.node, begin, cpu)!;
    const wallNs = pages * one.wallNs;
    const bytes = pages * m.config.pageSize;
    // Page by page: each clear_highpage() reads its lines for ownership, as one page's clear does.
    onBus(m.bus, cpu, begin, begin + wallNs, pages * m.cpuZero.busBytes(m.config.pageSize));
    // clear_highpage is `rep stos`: cached stores that fill the cache of the CPU it ran on.
    m.llc.clear(cpu, pages * m.cpuZero.fills(m.config.pageSize));
    m.cpus.busyUntil(cpu, begin + pages * one.cpuNs);
    if (this.cpu >= 0 && this.cpu !== cpu) m.cpus.kernelRunMove(this.cpu, cpu);
    m.cpus.kernelRun(cpu, begin, pages * one.cpuNs);
    b.left -= pages;
    b.cpuNs += lockNs + pages * one.cpuNs;
    this.cpu = cpu;
    this.nextAt = begin + wallNs;
  }

  /** end_zero_page() at time `at`: hand the block back as ZEROED under zone->lock, and account the work. */
  private finish(m: KscrubdMachine, at: number): void {
    const b = this.block!;
    this.block = null;
    const cpu = this.cpu;
    const lockNs = b.zone.lock.hold(m.lines, cpu, at, 1, m.cost.buddyPerPageNs);
    m.cpus.busyUntil(cpu, Math.max(m.cpus.freeAt(cpu), at + lockNs));
    b.cpuNs += lockNs;
    m.cpus.kernelRunEnd(cpu);
    m.cpus.addSystem(cpu, b.cpuNs);
    this.cpuNs += b.cpuNs;
    this.blocks++;
    if (b.driver === 'bte') this.bteBlocks++;
    this.pages += orderPages(b.order);
    b.zone.endScrub(b.pfn, b.order);
    this.rule?.zeroed(m);
  }

  /** The burst is over: asleep until woken, or until the rule's timer. */
  private sleep(at: number, m?: KscrubdMachine): void {
    this.awake = false;
    this.nextAt = this.rule && m ? this.rule.wakeAt(m, at) : Number.POSITIVE_INFINITY;
    this.lastBurstEnd = at;
    this._lastBurstBlocks = this.blocks - this.burstBlocks0;
    log('kscrubd%d: burst over after %d ms of virtual time, %d pages zeroed so far', this.node, (at - this.lastBurstStart) / 1e6, this.pages);
  }
}


/**
 * `d` clears `bytes` for kscrubd on `cpu` from t, sharing `node`'s bus with the CPUs zeroing
 * there and behind the program's bytes still moving (NodeBus takes its doubles in io).
 */
function clearOnBus(d: ZeroDriver, bus: NodeBus, bytes: number, node: number, t: number, cpu: number): ZeroResult | null {
  bus.io[0] = t;
  const sharers = bus.zeroingOn(node, cpu) + 1;
  bus.bytesLeft(node, cpu);
  return d.zero(bytes, false, sharers, bus.io[0]!);
}

/** NodeBus.zeroing(): `cpu` moves `bytes` over its node's bus during [from, until). */
function onBus(bus: NodeBus, cpu: number, from: number, until: number, bytes: number): void {
  bus.io[0] = from;
  bus.io[1] = until;
  bus.io[2] = bytes;
  bus.zeroing(cpu);
}
