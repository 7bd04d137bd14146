import { AllocResult } from './alloc-result';
import type { Cacheline, LineCosts } from './cacheline';
import { coldLinesNs } from './llc';
import type { Parts } from './parts';
import { kernelAtLeast } from './presets';
import { folioClearExtent } from './zero-drivers';
import type { Cpus } from './sched';
import type { Runner, TouchCounts } from './runner';

/** What fault-price uses of the machine (parts.ts). */
export type FaultPricingMachine = Pick<Parts, 'bus' | 'config' | 'cost' | 'cpuZero' | 'cpus' | 'freePages' | 'llc' | 'pageSize' | 'pagevecs' | 'vm' | 'zoneOf'>;

/**
 * What the pieces of a fault cost the faulting CPU: system time (sys), the struct page and
 * zone->lock of an allocation, hot zeroing on the node's bus, the program's own touches of
 * its lines, the lines of mm_struct it pulls over, and the LRU pagevec's drains.
 */
export class FaultPricing {
  /** How allocPages() served the page just allocated (priceAlloc() reads it). */
  readonly served = new AllocResult();
  private readonly c: FaultPricingMachine['cost'];
  private readonly cpus: Cpus;
  private readonly ps: number;
  /** priceAlloc()'s figures for a page from the runner's node and from another, worked out once. */
  private readonly allocNs: number;
  private readonly allocRemoteNs: number;
  /** Hot zeroing of one page by a CPU alone on its bus, local and remote (clear_page). */
  private readonly zeroNs: number;
  private readonly zeroRemoteNs: number;
  /** The program's lines of a page: bytes, and what writing them costs when cold, local and remote. */
  private readonly lineBytes: number;
  private readonly coldNs: number;
  private readonly coldRemoteNs: number;

  constructor(
    private readonly m: FaultPricingMachine,
    readonly lines: LineCosts,
    /** Cachelines the program writes in each page it touches. */
    private readonly linesPerPage: number,
    private readonly counts: TouchCounts,
  ) {
    this.c = m.cost;
    this.cpus = m.cpus;
    this.ps = m.pageSize;
    const c = this.c;
    // The same operations in the same order as pricing each page would do (× 1 for a local
    // page changes no bit), so the sums are the same to the last bit.
    this.allocNs = c.pcpAllocNs + c.structPageLines * c.lineMissNs;
    this.allocRemoteNs = c.pcpAllocNs + c.structPageLines * c.lineMissNs * c.remoteFactor;
    // Hot zeroing is clear_page() on the faulting CPU: the CPU zero driver's price for a page.
    this.zeroNs = m.cpuZero.zero(this.ps, false).cpuNs;
    this.zeroRemoteNs = m.cpuZero.zero(this.ps, true).cpuNs;
    this.lineBytes = linesPerPage * m.config.lineSize;
    this.coldNs = coldLinesNs(c, linesPerPage, m.config.lineSize, false);
    this.coldRemoteNs = coldLinesNs(c, linesPerPage, m.config.lineSize, true);
  }

  /**
   * A page the fault took goes back (a prefaulted pte filled meanwhile, a huge fault that lost
   * its race): the runner frees it, and under init_on_free clears it first, on its own CPU.
   */
  release(r: Runner, pfn: number, order: number): void {
    const cleared = this.m.vm.initOnFreeNs;
    this.m.freePages(pfn, order, r.cpu);
    const ns = this.m.vm.initOnFreeNs - cleared;
    if (ns > 0) this.sys(r, ns);
  }

  /** `ns` of system time on r's CPU, now. */
  sys(r: Runner, ns: number): void {
    r.sysNs += ns;
    this.cpus.addSystem(r.cpu, ns);
    r.t += ns;
  }

  /** An atomic on `line` (mmap_sem's count, a lock word): pull it from whoever wrote it last. */
  take(r: Runner, line: Cacheline): void {
    this.sys(r, this.lines.take(line, r.cpu));
  }

  /**
   * Price the page allocPages() just handed out (this.served): the per-cpu list, struct page,
   * zone->lock on a refill, and hot zeroing when no prezeroed page came. Returns hot-zeroed.
   * A huge page (thp.ts) passes the bytes its hot zeroing clears (one extent).
   */
  priceAlloc(r: Runner, zeroBytes = this.ps, clear = false): boolean {
    const info = this.served;
    const zone = info.zone!;
    const local = zone.node === r.node;
    // struct page of the new page: count, flags, LRU links — misses, dearer on another node.
    this.sys(r, local ? this.allocNs : this.allocRemoteNs);
    if (info.lockedPages > 0) {
      // rmqueue_bulk under zone->lock (buffered_rmqueue): every CPU allocating from this zone takes it.
      this.sys(r, zone.lock.hold(this.lines, r.cpu, r.t, 1, info.lockedPages * this.c.buddyPerPageNs));
    }
    // `clear`: a GFP_HIGHUSER page the fault clears itself (clear_user_highpage), whatever its class.
    const hot = info.hotZeroed || clear;
    if (hot) this.hotZero(r, local, zeroBytes);
    return hot;
  }

  /**
   * What one clear of a THP's `bytes` covers. THP came in 2.6.38 with clear_huge_page (today's
   * folio_zero_user), a base page a call in process_huge_page's order until the multi-page
   * clearing series (the mount's hugetlb clear mode, the same function): so a THP fault on
   * today's kernel clears 512 pages one clear_page() at a time, at the 4 KiB rate, not one
   * 2 MiB string store. A 2.6.11 machine has no THP; the model's own clears it as one extent.
   */
  private hugeExtent(bytes: number): number {
    const c = this.m.config;
    return kernelAtLeast(c.kernel, '2.6.38') ? folioClearExtent(c.hugeClear, c.preempt, bytes, this.ps) : bytes;
  }

  /**
   * clear_page() on the faulting CPU. Alone on its node's bus it runs at the CPU's own store
   * rate; with other CPUs of the node zeroing (threads, kscrubd) or moving the program's lines
   * the bus is shared.
   */
  private hotZero(r: Runner, local: boolean, bytes: number): void {
    const bus = this.m.bus;
    const io = bus.io;
    io[0] = r.t;
    const sharers = bus.zeroingOn(r.node, r.cpu) + 1;
    bus.bytesLeft(r.node, r.cpu);
    const others = io[0]!;
    const extent = bytes > this.ps ? this.hugeExtent(bytes) : bytes;
    const calls = bytes / extent;
    const ns = sharers === 1 && others === 0 && extent === this.ps
      ? calls * (local ? this.zeroNs : this.zeroRemoteNs)
      : calls * this.m.cpuZero.zero(extent, !local, sharers, others).cpuNs;
    io[0] = r.t;
    io[1] = r.t + ns;
    io[2] = calls * this.m.cpuZero.busBytes(extent);
    bus.zeroing(r.cpu);
    // clear_page's cached stores fill the faulting CPU's cache with the page's lines.
    this.m.llc.clear(r.cpu, calls * this.m.cpuZero.fills(extent));
    this.sys(r, ns);
    this.counts.zeroedNs += ns;
  }

  /**
   * lru_cache_add_active: the page joins this CPU's pagevec; the one that fills it (14 pages
   * in 2.6.11, a 31-folio batch in today's lru_add) drains it onto the zone's LRU under its lock (__pagevec_lru_add_active; every CPU faulting in
   * that zone takes it), two lines moving per drain: the lock's (with the list head) and the
   * struct page of the page the previous drain left at the head.
   */
  lruAdd(r: Runner, pfn: number): void {
    if (!this.m.pagevecs.add(r.cpu)) return;
    const zone = this.m.zoneOf(pfn);
    this.sys(r, zone.lruLock.hold(this.lines, r.cpu, r.t, 2, this.m.pagevecs.size * this.c.lruPerPageNs));
  }

  /** The program writes its lines of a page: hits if the CPU just zeroed it, else misses. */
  userTouch(r: Runner, cacheHot: boolean, pfn: number): void {
    this.touchLines(r, cacheHot, !cacheHot && pfn >= 0 ? this.m.zoneOf(pfn).node : -1);
  }

  /**
   * userTouch() of a page on `node` (-1: a line miss is not possible, it always hits). Cold
   * lines overlap as the CPU allows (coldLinesNs), fill its cache, and are read over the
   * node's bus, which they share with the node's other CPUs moving memory (NodeBus.misses).
   */
  touchLines(r: Runner, cacheHot: boolean, node: number): void {
    const c = this.c;
    let lines = this.linesPerPage * c.lineHitNs;
    if (!cacheHot && node >= 0) {
      const bus = this.m.bus;
      bus.io[0] = r.t + c.userPageNs;
      bus.io[1] = node !== r.node ? this.coldRemoteNs : this.coldNs;
      bus.misses(r.cpu, this.lineBytes);
      lines = bus.io[0]!;
      this.m.llc.touchCold(r.cpu, this.lineBytes);
    }
    const ns = c.userPageNs + lines;
    r.userNs += ns;
    this.cpus.addUser(r.cpu, ns);
    r.t += ns;
  }
}
