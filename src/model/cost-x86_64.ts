import type { CostModel } from './cost';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { type Figures, derived, fitted, measured } from './figures';
import { fixedClock } from './cost-clock';

const K8_CLOCK = fixedClock(2, 'an Opteron-class core of 2005 (K8) runs at its one clock (no boost), so the clearing rates hold as stated');

/** A 2005 dual-core Opteron-class box: faster traps, 4 KiB pages, 64-byte lines, no BTE. */
export const X86_64_COST: CostModel = {
  trapNs: 250,
  handlerNs: 100,
  lineBounceNs: 120,
  // One node: a remote transfer never happens; a HyperTransport hop if nodes are configured.
  lineRemoteNs: 200,
  structPageLines: 3,
  ptlCheckNs: 40,
  ptlSetNs: 60,
  pcpAllocNs: 50,
  buddyPerPageNs: 30,
  lruPerPageNs: 20,
  zeroBytesPerNs: 3.2,
  // No extent-dependent mode: clear_pages() of any size runs at the one rate.
  zeroHugeBytesPerNs: 3.2,
  zeroGiantBytesPerNs: 3.2,
  zeroRunBytesPerNs: 3.2,
  ...K8_CLOCK.value,
  cacheBytes: 1 * 2 ** 20,
  writebackBytesPerNs: 3.0,
  remoteFactor: 1.4,
  // Dual-channel DDR400 behind the on-die controller, 6.4 GB/s: what one CPU's 3.2 GB/s of
  // clear_page moves (each line read for ownership, then written back); a second CPU zeroing
  // at once halves both.
  fsbBytesPerNs: 6.4,
  lineMissNs: 70,
  // AMD64 optimization guide: at most eight concurrent memory requests to different lines.
  missesInFlight: 8,
  // K8 has movnti but nobody published its clearing rate; no CLZERO before Zen.
  ntBytesPerNs: 0,
  clzeroBytesPerNs: 0,
  lineHitNs: 3,
  userPageNs: 20,
  freePageNs: 120,
  ...NO_BTE,
  wakeupNs: 10_000,
};

/**
 * The generic x86_64 box is no particular machine and has no published rows: every figure
 * is fitted to none, held where it is, and its bounds (an Opteron-class core at 2 GHz,
 * DDR400) say how sure that is.
 */
const est = (lo: number, hi: number, why: string) => fitted(lo, hi, why, 'none');
export const X86_64_FIGURES: Figures = {
  trapNs: est(100, 600, '#PF entry and iretq: 200–1200 cycles at 2 GHz'),
  handlerNs: est(40, 400, 'find_vma and the four-level walk: 80–800 cycles'),
  lineBounceNs: est(50, 300, 'a line from the other core of the package or over HyperTransport'),
  lineRemoteNs: est(100, 500, 'a line from another socket over HyperTransport'),
  structPageLines: est(1, 4, "struct page (64 bytes, one line) plus the LRU neighbour's links"),
  ptlCheckNs: est(10, 200, 'a locked instruction and a pte read: 20–400 cycles'),
  ptlSetNs: est(20, 300, 'set_pte, rmap, a pagevec slot: 40–600 cycles'),
  pcpAllocNs: est(20, 300, 'the per-cpu fast path: 40–600 cycles'),
  buddyPerPageNs: est(10, 150, '__rmqueue per page under zone->lock: 20–300 cycles'),
  lruPerPageNs: est(5, 100, 'a list_add per page under zone->lru_lock: 10–200 cycles'),
  zeroBytesPerNs: est(1, 6.4, 'clear_page to DDR400: at most the 6.4 GB/s of two channels'),
  zeroHugeBytesPerNs: derived('zeroBytesPerNs', 'no extent-dependent mode of the K8\'s clear: the page clear rate'),
  zeroGiantBytesPerNs: derived('zeroBytesPerNs', 'no extent-dependent mode of the K8\'s clear: the page clear rate'),
  zeroRunBytesPerNs: derived('zeroBytesPerNs', 'no extent-dependent mode of the K8\'s clear: a run of pages clears as its pages'),
  ...K8_CLOCK.figures,
  cacheBytes: measured('datasheet: each core of a dual-core Opteron (2005, 2xx/8xx) has its own 1 MB L2, 64-byte lines, its last-level cache (AMD Opteron Processor Product Data Sheet, 23932)'),
  writebackBytesPerNs: est(1, 6.4, 'write-back to DDR400: at most two channels\' 6.4 GB/s'),
  remoteFactor: est(1.05, 2, 'another socket\'s memory: one or two HyperTransport hops farther'),
  fsbBytesPerNs: est(3.2, 6.4, 'dual-channel DDR400: 6.4 GB/s peak, at least half sustained'),
  lineMissNs: est(40, 150, 'a line from local DDR400 through the on-die controller'),
  missesInFlight: measured('published: "The AMD Athlon 64 and AMD Opteron processors support a maximum of eight concurrent memory requests to different cache lines" (Software Optimization Guide for AMD64 Processors, 25112 rev. 3.06, §5.6)'),
  ntBytesPerNs: measured('unavailable: no published clearing rate with movnti for this machine; the driver is not offered'),
  clzeroBytesPerNs: measured('unavailable: CLZERO first came with Zen (2017)'),
  lineHitNs: est(1, 20, 'an L1/L2 hit after hot zeroing'),
  userPageNs: est(2, 100, "pft's loop per page"),
  freePageNs: est(50, 600, 'zap and free per page plus a struct page miss'),
  ...NO_BTE_FIGURES,
  wakeupNs: est(1000, 50_000, 'an IPI and a schedule() on an idle core'),
};
