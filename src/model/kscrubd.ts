import debugFactory from 'debug';
import type { Machine } from './machine';
import { orderPages } from './page';
import type { ZeroDriver } from './zero-drivers';
import type { Zone } from './zone';

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

export class Kscrubd {
  readonly node: number;
  awake = false;
  /** The CPU it runs on for the current block (the node's most idle at pick time). */
  cpu = -1;
  /** When the current step ends: the block in flight is done, or the next pick is due. */
  nextAt = Number.POSITIVE_INFINITY;
  private block: { zone: Zone; pfn: number; order: number; cpuNs: number; driver: string } | null = null;
  private zoneCursor = 0;
  private passZeroed = 0;
  /** Counters (vmstat, stats). */
  wakes = 0;
  bursts = 0;
  blocks = 0;
  pages = 0;
  cpuNs = 0;
  bteBlocks = 0;
  bteFallbacks = 0;
  lastBurstStart = 0;
  lastBurstEnd = 0;

  constructor(node: number) {
    this.node = node;
  }

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
    this.nextAt = t + wakeupNs;
    return true;
  }

  /** Run every step due at or before t. */
  advance(m: Machine, t: number): void {
    while (this.awake && this.nextAt <= t) this.step(m, this.nextAt);
  }

  private step(m: Machine, at: number): void {
    if (this.block) this.finish(m);
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

  private start(m: Machine, zone: Zone, pfn: number, order: number, at: number): void {
    const bytes = orderPages(order) * m.config.pageSize;
    const cpu = m.cpus.mostIdle(this.node, at, m.procs.cpuInUse);
    const begin = Math.max(at, m.cpus.freeAt[cpu]!);
    let driver: ZeroDriver | undefined;
    let result = null;
    for (const d of m.zeroDrivers) {
      if (!d.accepts(bytes)) continue;
      result = d.zero(bytes, false);
      if (result) { driver = d; break; }
      this.bteFallbacks++; // a failed transfer: the CPU does it after all
      break;
    }
    if (!result || !driver) {
      driver = m.cpuZero;
      result = m.cpuZero.zero(bytes, false);
    }
    // kscrubd's CPU time is system time of its CPU; a synchronous BTE wait leaves it free.
    m.cpus.freeAt[cpu] = begin + result.cpuNs;
    this.cpu = cpu;
    this.block = { zone, pfn, order, cpuNs: result.cpuNs, driver: driver.name };
    this.nextAt = begin + result.wallNs;
  }

  /** end_zero_page(): account the work and hand the block back as ZEROED. */
  private finish(m: Machine): void {
    const b = this.block!;
    this.block = null;
    m.cpus.systemNs[this.cpu]! += b.cpuNs;
    this.cpuNs += b.cpuNs;
    this.blocks++;
    if (b.driver === 'bte') this.bteBlocks++;
    this.pages += orderPages(b.order);
    b.zone.endScrub(b.pfn, b.order);
  }

  private sleep(at: number): void {
    this.awake = false;
    this.nextAt = Number.POSITIVE_INFINITY;
    this.lastBurstEnd = at;
    log('kscrubd%d: burst over after %d ms of virtual time, %d pages zeroed so far', this.node, (at - this.lastBurstStart) / 1e6, this.pages);
  }
}

