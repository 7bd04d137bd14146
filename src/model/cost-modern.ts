import type { CostModel } from './cost';
import { type Figure, fitted, measured } from './figures';

/**
 * The core work of today's anonymous fault path, in core cycles, shared by the machines of
 * today (epyc, genoa, icelake-x, skylake-sp): the same kernel code runs on each, so only the
 * clock converts it to time, and the trap (which the CPU's mitigations decide) and memory
 * (which the platform decides) differ per machine. No pft rows are published for these
 * machines, so each figure is fitted to none: its bounds are what sensitivity runs move it
 * across.
 */
const CYCLES = {
  // lock_vma_under_rcu (no mmap_lock in the common case), the 4-level walk
  // (pgd → p4d → pud → pmd), pte_offset_map_lock, do_anonymous_page's checks.
  handlerNs: [600, 300, 1500, 'lock_vma_under_rcu, the four-level walk, do_anonymous_page'],
  // Split pte lock: an uncontended spin_lock/unlock pair (a locked cmpxchg ≈ 20 cycles) and the pte_none check.
  ptlCheckNs: [45, 20, 150, 'an uncontended split pte lock and the pte_none check'],
  // set_pte_at, folio_add_new_anon_rmap, folio_add_lru_vma (a folio_batch slot), the per-cpu rss counter, update_mmu_cache.
  ptlSetNs: [180, 80, 500, 'set_pte_at, rmap, folio_add_lru_vma, update_mmu_cache'],
  // vma_alloc_folio → the pcp fast path (pcp_spin_trylock, list_del) plus mem_cgroup_charge (≈ 250 cycles on its own).
  pcpAllocNs: [450, 200, 1200, 'the pcp fast path and mem_cgroup_charge'],
  // rmqueue_bulk per page under zone->lock.
  buddyPerPageNs: [60, 20, 200, 'rmqueue_bulk per page under zone->lock'],
  // folio_batch drain onto the LRU per folio under the lruvec lock.
  lruPerPageNs: [40, 15, 150, 'a folio_batch drain per folio under the lruvec lock'],
  // The line after hot zeroing is in L2 and the new pte's walk hits the page-walk caches.
  lineHitNs: [15, 4, 60, 'an L1/L2 hit after hot zeroing and a page-walk-cache hit'],
  userPageNs: [8, 2, 100, "pft's loop per page"],
} as const satisfies Readonly<Record<string, readonly [number, number, number, string]>>;

type CycleFigure = keyof typeof CYCLES;
/** zap_pte_range, folio_remove_rmap, memcg uncharge and the batched free per page: cycles, plus a struct page miss. */
const FREE_PAGE_CYCLES = 150;

/** A figure stated in cycles at `ghz`, fitted to no rows, its bounds in cycles too. */
export function cyclesFigure(ghz: number, lo: number, hi: number, why: string): Figure {
  const cyc = 1 / ghz;
  return fitted(lo * cyc, hi * cyc, `${why}: ${lo}–${hi} cycles`, 'none');
}

/** The fault path's core work at `ghz`, and the free per page given the machine's DRAM miss. */
export function modernCore(ghz: number, lineMissNs: number): Pick<CostModel, CycleFigure | 'freePageNs'> {
  // Multiplied by ns per cycle, as the cost files state their figures (the same floating-point value).
  const cyc = 1 / ghz;
  const out = {} as Record<CycleFigure, number>;
  for (const k of Object.keys(CYCLES) as CycleFigure[]) out[k] = CYCLES[k][0] * cyc;
  return { ...out, freePageNs: FREE_PAGE_CYCLES * cyc + lineMissNs };
}

/** Their provenance at `ghz`. */
export function modernCoreFigures(ghz: number): Record<CycleFigure | 'freePageNs', Figure> {
  const out = {} as Record<CycleFigure, Figure>;
  for (const k of Object.keys(CYCLES) as CycleFigure[]) {
    const [, lo, hi, why] = CYCLES[k];
    out[k] = cyclesFigure(ghz, lo, hi, why);
  }
  return {
    ...out,
    freePageNs: fitted(80, 600, 'zap, folio_remove_rmap, memcg uncharge and the batched free per page, plus a struct page miss', 'none'),
  };
}

/** The figures every machine of today shares, with the one reason each has. */
export const MODERN_SHARED: Pick<CostModel, 'structPageLines' | 'wakeupNs'> = {
  // struct page is 64 bytes: one line; the folio's LRU neighbour and memcg stats: one more.
  structPageLines: 2,
  // try_to_wake_up → IPI → an idle core leaving C1/C6 (≈ 1–20 µs).
  wakeupNs: 5_000,
};
export const MODERN_SHARED_FIGURES: Record<keyof typeof MODERN_SHARED, Figure> = {
  structPageLines: fitted(1, 4, "struct page (64 bytes, one line), the folio's LRU neighbour and memcg stats", 'none'),
  wakeupNs: fitted(1000, 50_000, 'an IPI and an idle core leaving C1/C6', 'none'),
};

/**
 * Sustained bandwidth of a socket's memory: STREAM on a server socket reaches about 80 % of
 * the channels' peak (Milan: ≈ 165 of 204.8 GB/s), so the figure is 0.8 × peak, bounded by
 * half of peak and peak itself.
 */
export function socketBandwidth(channels: number, mtPerS: number): { value: number; figure: Figure } {
  const peak = (channels * mtPerS * 8) / 1000;
  return {
    value: 0.8 * peak,
    figure: fitted(peak / 2, peak, `${channels} channels at ${mtPerS} MT/s a socket: ${peak.toFixed(1)} GB/s peak, at least half of it sustained`, 'none'),
  };
}

/** The write-back is in the clearing rates (measured over regions far larger than the caches). */
export const WRITEBACK_IN_RATES: Figure = measured('no separate term: the clearing rates were measured over regions far larger than the caches, so they include the write-back');

/**
 * Misses one core keeps in flight, by Little's law from two figures of the machine: a core
 * clearing pages at `clearBytesPerNs` with a memory latency of `lineMissNs` keeps
 * rate × latency / 64 lines in flight. Bounded by the few a core's fill buffers hold at
 * least (8) and the few dozen its L2 miss queue holds at most (64).
 */
export function missesInFlight(clearBytesPerNs: number, lineMissNs: number): { value: number; figure: Figure } {
  return {
    value: (clearBytesPerNs * lineMissNs) / 64,
    figure: fitted(8, 64, "Little's law on the measured or bounded page clear rate and the memory latency; a core's fill buffers up to its L2 miss queue", 'none'),
  };
}

/**
 * One Intel server core's clearing rate, fitted to no rows: stores in flight over the mesh
 * latency (Little's law) bound it to 4–13 GB/s. `why` says what the extent adds.
 */
export function intelCoreClear(why?: string): Figure {
  const bound = "one Intel server core: stores in flight over the mesh latency (Little's law), 4–13 GB/s";
  return fitted(4, 13, why ? `${bound}; ${why}` : bound, 'none');
}
