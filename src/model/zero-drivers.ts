import { CostModel } from './cost';
import { ZeroDriverName } from './presets';
import type { HugeClearMode } from '../uapi/hugetlb';

/**
 * Zero drivers (V6's struct zero_driver): kscrubd offers each block to the registered
 * drivers, newest first; the first that accepts zeroes it. The CPU's clear_pages() takes
 * anything and is always there as the last resort.
 */
export interface ZeroResult {
  /** Virtual time the block is busy being zeroed. */
  readonly wallNs: number;
  /** CPU time kscrubd spends on it (system time of its CPU). */
  readonly cpuNs: number;
}

export interface ZeroDriver {
  readonly name: ZeroDriverName;
  /** Will the driver take a block of this many bytes? */
  accepts(bytes: number): boolean;
  /**
   * Zero it; null when the transfer failed and the caller must fall back to the CPU.
   * `sharers`: CPUs of the node zeroing at once, this one included (they share its bus);
   * `otherBytes`: what the program's transfers under way on that bus still move (NodeBus.bytesLeft).
   */
  zero(bytes: number, remote: boolean, sharers?: number, otherBytes?: number): ZeroResult | null;
  /** Bytes of lines clearing `bytes` this way leaves in the cache of the CPU that ran it (llc.ts). */
  fills(bytes: number): number;
  /** Bytes clearing `bytes` this way moves over the node's bus (membw.ts). */
  busBytes(bytes: number): number;
}

const HUGE_EXTENT = 2 ** 21;

/**
 * The largest extent the multi-page clearing series clears in one clear_pages() call on a
 * kernel without full preemption (where the clear must reach a cond_resched() now and then):
 * its PROCESS_PAGES_NON_PREEMPT_BATCH, 32 MiB.
 */
export const NON_PREEMPT_EXTENT_BYTES = 32 * 2 ** 20;

/**
 * What one clear_page / clear_pages() call of folio_zero_user covers when it clears a huge
 * folio of `bytes`, hugetlb's or a THP's alike: `pages`, a base page a call (a kernel before
 * the multi-page clearing series); `extents`, the whole folio on a fully preemptible kernel,
 * else NON_PREEMPT_EXTENT_BYTES at a time.
 */
export function folioClearExtent(mode: HugeClearMode, preempt: boolean, bytes: number, pageSize: number): number {
  if (mode === 'pages') return pageSize;
  return preempt ? bytes : Math.min(bytes, NON_PREEMPT_EXTENT_BYTES);
}

/**
 * The rate of one clear_pages() call over `bytes` (bytes per ns). A page clears at
 * zeroBytesPerNs and a 2 MiB extent at zeroHugeBytesPerNs, in between following log2 of the
 * extent; up to the cache's size the 2 MiB rate holds, past it zeroGiantBytesPerNs (the CPU
 * stops allocating lines for a store stream it knows outgrows the cache).
 */
export function clearBytesPerNs(c: CostModel, pageSize: number, bytes: number, clock = 1): number {
  if (bytes <= pageSize) return c.zeroBytesPerNs * clock;
  if (elides(c, bytes)) return c.zeroGiantBytesPerNs;
  if (bytes > c.cacheBytes && bytes > HUGE_EXTENT) return c.zeroGiantBytesPerNs * clock;
  if (bytes >= HUGE_EXTENT) return c.zeroHugeBytesPerNs * clock;
  const f = Math.log2(bytes / pageSize) / Math.log2(HUGE_EXTENT / pageSize);
  return (c.zeroBytesPerNs + f * (c.zeroHugeBytesPerNs - c.zeroBytesPerNs)) * clock;
}

/**
 * Does one string store over `bytes` stop allocating lines (Zen past its L3)? Only where the
 * CPU's rate for such extents differs from its 2 MiB rate: Intel allocates at every extent.
 * The clear_pages() series names it "cacheline allocation elision": the lines are neither
 * read for ownership nor filled, but written to memory as they are stored.
 */
function elides(c: CostModel, bytes: number): boolean {
  return bytes > c.cacheBytes && bytes > HUGE_EXTENT && c.zeroGiantBytesPerNs !== c.zeroHugeBytesPerNs;
}

/**
 * The clock of a core clearing while `sharers` cores of its node (of `nodeCpus`) clear, over
 * the clock the rates were measured at: a core alone runs at its boost, and the clock falls
 * towards the all-core one as more of the node's cores are busy (the boost algorithms of
 * both vendors trade clock for active cores within the socket's power). The model counts the
 * cores clearing at once, not every busy one.
 */
export function clearClockScale(c: CostModel, sharers: number, nodeCpus: number): number {
  const busy = nodeCpus <= 1 ? 0 : Math.min(1, Math.max(0, (sharers - 1) / (nodeCpus - 1)));
  return (c.boostGHz - busy * (c.boostGHz - c.allCoreGHz)) / c.zeroRateGHz;
}

/**
 * clear_pages(page, order): the CPU writes every line, at the extent's zeroing bandwidth (bound
 * by the misses it can keep in flight, so remote memory is remoteFactor slower), or at its
 * share of the node's bus when other CPUs of the node zero too: every byte stored crosses the
 * bus twice, as a read for ownership and later as a writeback (once, where the CPU elides the
 * allocation). Alone, one CPU cannot fill the bus; two can.
 */
export class CpuZeroDriver implements ZeroDriver {
  readonly name = 'cpu' as const;
  /** `nodeCpus`: the CPUs of a node, over which the clock falls from boost to all-core (clearClockScale). */
  constructor(private readonly cost: CostModel, private readonly pageSize: number, private readonly nodeCpus = 1) {}
  accepts(): boolean {
    return true;
  }
  /**
   * `rep stos` allocates every line it writes, except where the CPU sees an extent larger
   * than its cache and stops allocating (the rate above cacheBytes differs: Zen).
   */
  fills(bytes: number): number {
    return elides(this.cost, bytes) ? 0 : bytes;
  }
  /** Every line read for ownership, then written back; written once where allocation is elided. */
  busBytes(bytes: number): number {
    return elides(this.cost, bytes) ? bytes : 2 * bytes;
  }
  zero(bytes: number, remote: boolean, sharers = 1, otherBytes = 0): ZeroResult {
    const rate = clearBytesPerNs(this.cost, this.pageSize, bytes, clearClockScale(this.cost, sharers, this.nodeCpus));
    return this.priced(bytes, rate, this.busBytes(bytes), remote, sharers, otherBytes);
  }

  /**
   * clear_page() page after page in address order over `bytes` of one contiguous huge page
   * (clear_gigantic_page): one store stream at zeroRunBytesPerNs, scaled by the clock.
   */
  zeroRun(bytes: number, remote: boolean, sharers = 1, otherBytes = 0): ZeroResult {
    const c = this.cost;
    // Each clear_page() is one page: its lines are allocated, read for ownership and written back.
    return this.priced(bytes, c.zeroRunBytesPerNs * clearClockScale(c, sharers, this.nodeCpus), 2 * bytes, remote, sharers, otherBytes);
  }

  /** `moved`: the bus bytes of one CPU's clear (busBytes, or a page-at-a-time run's 2 × bytes). */
  private priced(bytes: number, rate: number, moved: number, remote: boolean, sharers: number, otherBytes: number): ZeroResult {
    const c = this.cost;
    // Stores at the zeroing bandwidth, plus writeback of whatever the cache cannot hold
    // (none to add when the bandwidth was measured with the write-back in it).
    const writeback = c.writebackBytesPerNs > 0 ? Math.max(0, bytes - c.cacheBytes) / c.writebackBytesPerNs : 0;
    // The CPU's own store time, or its share of the bus (what each sharer moves) after the
    // program's transfers under way have moved theirs, whichever is longer.
    const f = remote ? c.remoteFactor : 1;
    const bus = (sharers * moved + otherBytes) / c.fsbBytesPerNs;
    const store = Math.max(bytes / rate, bus / f) + writeback;
    const ns = store * f;
    return { wallNs: ns, cpuNs: ns };
  }
}

/**
 * The SGI SN2 block-transfer engine: zeroes memory without the CPU's caches at ~500 MB/s.
 * V6's bte_zero is synchronous: the calling CPU busy-polls the transfer's status until it is
 * done, so the CPU is busy for the whole transfer — the BTE saves cache pollution, not CPU
 * time. bte_start_bzero refuses len < 60000 (not worth the setup) and len >= BTE_MAX_XFER
 * (8 MiB on SN2), which the CPU driver then zeroes. `failNext` injects transfer failures
 * (timeouts in V6's driver); the CPU zeroes the block instead.
 */
export class BteZeroDriver implements ZeroDriver {
  readonly name = 'bte' as const;
  failNext = 0;
  failures = 0;
  constructor(private readonly cost: CostModel) {}
  accepts(bytes: number): boolean {
    return bytes >= this.cost.bteMinBytes && bytes < this.cost.bteMaxBytes;
  }
  /** The BTE writes memory through the SHub: no CPU cache sees the lines. */
  fills(): number {
    return 0;
  }
  /** Nor the CPUs' bus: the SHub writes its node's memory itself. */
  busBytes(): number {
    return 0;
  }
  zero(bytes: number): ZeroResult | null {
    if (this.failNext > 0) {
      this.failNext--;
      this.failures++;
      return null;
    }
    const ns = this.cost.bteSetupNs + bytes / this.cost.bteBytesPerNs;
    return { wallNs: ns, cpuNs: ns };
  }
}

/**
 * Clearing without allocating lines: non-temporal stores (`nt`: movnti, as in the
 * clear_page_nocache and clear_pages_movnt proposals) or CLZERO (`clzero`, AMD). The CPU
 * issues the stores itself, so its time is the transfer's; every byte crosses the node's bus
 * once (no read for ownership), shared with the node's other zeroing CPUs; no cache fills.
 */
export class UncachedZeroDriver implements ZeroDriver {
  constructor(readonly name: 'nt' | 'clzero', private readonly cost: CostModel) {}
  accepts(): boolean {
    return true;
  }
  fills(): number {
    return 0;
  }
  /** Written once, with no read for ownership. */
  busBytes(bytes: number): number {
    return bytes;
  }
  zero(bytes: number, remote: boolean, sharers = 1, otherBytes = 0): ZeroResult {
    const c = this.cost;
    const rate = this.name === 'nt' ? c.ntBytesPerNs : c.clzeroBytesPerNs;
    const f = remote ? c.remoteFactor : 1;
    const ns = Math.max(bytes / rate, (sharers * bytes + otherBytes) / c.fsbBytesPerNs / f) * f;
    return { wallNs: ns, cpuNs: ns };
  }
}

/** Drivers in the order kscrubd tries them: the configured list, newest (first named) first. */
export function makeZeroDrivers(names: readonly ZeroDriverName[], cost: CostModel, pageSize: number, nodeCpus = 1): ZeroDriver[] {
  return names.map((n): ZeroDriver => {
    switch (n) {
      case 'bte': return new BteZeroDriver(cost);
      case 'nt': case 'clzero': return new UncachedZeroDriver(n, cost);
      case 'cpu': return new CpuZeroDriver(cost, pageSize, nodeCpus);
    }
  });
}
