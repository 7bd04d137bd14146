import type { CostModel } from './cost';
import { type Figures, derived, fitted, measured } from './figures';
import { ALTIX_FITTED } from './fitted-altix';
import { fixedClock } from './cost-clock';

/** The figures fitted to the altix rows: written by `kscrubfs calibrate --fit altix --write`, and only by it. */
const F = ALTIX_FITTED.values;
const ALTIX_CLOCK = fixedClock(1.5, 'datasheet: the 1.5 GHz Itanium 2 (Madison) runs every core at its one clock (no boost), so the clearing rates hold as stated');

/**
 * The `altix` preset's costs: the 1.5 GHz Itanium 2 (Madison) SGI Altix (SN2) of Lameter's
 * measurements — 16 KiB pages, 128-byte lines, two CPUs on each node's front-side bus, SHub
 * and NUMAlink between nodes. The figures no datasheet or kernel constant gives (ALTIX_FIGURES
 * says which) are fitted together over every altix row of docs/calibration.md, within physical
 * bounds, by `kscrubfs calibrate --fit altix --write` (into fitted-altix.ts). No figure belongs
 * to a thread count: what threads do to each other follows from the mechanisms of the fault
 * path (anon-fault.ts, ptlock.ts, fault-price.ts); the comments say what each figure is.
 */
export const ALTIX_COST: CostModel = {
  // ia64 trap entry/exit: SAVE_MIN_WITH_COVER + SAVE_REST, the VHPT miss that precedes the
  // page-not-present fault, rfi.
  trapNs: F.trapNs,
  // ia64_do_page_fault: find_vma (mmap_cache hit), handle_mm_fault bookkeeping.
  handlerNs: F.handlerNs,
  // An Itanium 2 bus snoop that hits a modified line in the other CPU of the node (HITM).
  lineBounceNs: F.lineBounceNs,
  // A line modified in another node's cache: request to the home SHub, intervention to the
  // owner, data back over NUMAlink (three hops; ~3× a local memory access on SN2).
  lineRemoteNs: F.lineRemoteNs,
  // struct page of the new page: flags/_count, lru links, mapping/index — misses.
  structPageLines: F.structPageLines,
  ptlCheckNs: F.ptlCheckNs,
  ptlSetNs: F.ptlSetNs,
  pcpAllocNs: F.pcpAllocNs,
  buddyPerPageNs: F.buddyPerPageNs,
  // SetPageLRU/SetPageActive and the list insertion of one page (its struct page is in cache).
  lruPerPageNs: F.lruPerPageNs,
  // clear_page's store bandwidth to local SN2 memory.
  zeroBytesPerNs: F.zeroBytesPerNs,
  // No extent-dependent mode: clear_pages() of any size runs at the one rate.
  zeroHugeBytesPerNs: F.zeroBytesPerNs,
  zeroGiantBytesPerNs: F.zeroBytesPerNs,
  zeroRunBytesPerNs: F.zeroBytesPerNs,
  ...ALTIX_CLOCK.value,
  // The 1.5 GHz Madison's 6 MB L3 (measured, below); the node's writeback rate to its SHub is fitted.
  cacheBytes: 6 * 2 ** 20,
  writebackBytesPerNs: F.writebackBytesPerNs,
  remoteFactor: F.remoteFactor,
  // The node's front-side bus: 128 bits at 400 MT/s = 6.4 GB/s peak (SGI Altix 3000 C-brick
  // specification, Linux Journal #6440); a bus turning around between reads and writebacks
  // sustains only a share of that.
  fsbBytesPerNs: F.fsbBytesPerNs,
  // A store's fetch of one 128-byte line that is in no cache.
  lineMissNs: F.lineMissNs,
  // The system interface's out-of-order queue holds 18 deferred requests (below); a stream of
  // store misses is bounded by the node bus long before that.
  missesInFlight: 18,
  // Itanium 2 has neither movnti nor CLZERO; the SN2 BTE is its cache-free clear.
  ntBytesPerNs: 0,
  clzeroBytesPerNs: 0,
  lineHitNs: F.lineHitNs,
  userPageNs: F.userPageNs,
  // zap_pte_range + page_remove_rmap + release_pages + free_hot_cold_page: two dependent
  // misses (the page's struct page, its buddy's when it coalesces), plus the code.
  freePageNs: F.freePageNs,
  // The SN2 BTE: ~500 MB/s; V6 refuses transfers under 60,000 bytes and from BTE_MAX_XFER
  // (64K lines × 128 B = 8 MiB) up.
  bteBytesPerNs: 0.5,
  bteSetupNs: 2_000,
  bteMinBytes: 60_000,
  bteMaxBytes: 8 * 2 ** 20,
  wakeupNs: F.wakeupNs,
};

/**
 * Where each altix figure comes from. The machine's CPU part (Madison 3, 4, 6 or 9 MiB L3;
 * 1.3–1.6 GHz) and memory were not published with the measurements, so only what every SN2
 * of the era shares, and the kernel's own constants, count as measured; the rest is fitted
 * by `kscrubfs calibrate --fit` over every altix row of docs/calibration.md, inside bounds
 * the hardware allows.
 */
export const ALTIX_FIGURES: Figures = {
  trapNs: fitted(300, 1200, 'ia64 trap entry/exit with SAVE_MIN/SAVE_REST and the VHPT miss before it: 450–1800 cycles at 1.5 GHz', 'altix'),
  handlerNs: fitted(50, 600, 'find_vma with an mmap_cache hit and the pgd/pud/pmd walk: 75–900 cycles', 'altix'),
  lineBounceNs: fitted(100, 500, 'a HITM snoop on the shared node bus: at least a bus transaction, at most a few memory latencies', 'altix'),
  lineRemoteNs: fitted(200, 2000, 'a three-hop directory intervention over SHub and NUMAlink: above a local transfer, below a few microseconds', 'altix'),
  structPageLines: fitted(1, 4, "struct page is 56 bytes on ia64 (1–2 of its 128-byte lines) plus the LRU neighbour's links", 'altix'),
  ptlCheckNs: fitted(20, 400, 'a pte read and a test-and-set under the lock: 30–600 cycles', 'altix'),
  ptlSetNs: fitted(40, 600, 'set_pte, rmap, pagevec slot, mark_page_accessed: 60–900 cycles', 'altix'),
  pcpAllocNs: fitted(20, 400, "buffered_rmqueue's per-cpu fast path with interrupts off: 30–600 cycles", 'altix'),
  buddyPerPageNs: fitted(10, 300, '__rmqueue and a list move per page under zone->lock: 15–450 cycles', 'altix'),
  lruPerPageNs: fitted(10, 200, 'SetPageLRU and a list_add per page under zone->lru_lock: 15–300 cycles', 'altix'),
  zeroBytesPerNs: fitted(0.8, 6.4, "clear_page's stores to local memory: at most the node bus's 6.4 GB/s peak (measured below), at least an eighth of it", 'altix'),
  // One rate, not three: bounds of their own would let a band move kscrubd's 16 MiB clears
  // apart from the page clear they are made of.
  zeroHugeBytesPerNs: derived('zeroBytesPerNs', 'no huge-page clearing on 2.6.11 ia64 anonymous memory: the page clear rate'),
  zeroGiantBytesPerNs: derived('zeroBytesPerNs', 'no extent-dependent clearing on Itanium 2: a block clears at the page clear rate'),
  zeroRunBytesPerNs: derived('zeroBytesPerNs', 'no gigantic pages on 2.6.11 ia64: a run of pages clears as its pages'),
  ...ALTIX_CLOCK.figures,
  cacheBytes: measured('datasheet: the 1.5 GHz Itanium 2 (Madison, 2003) has a 6 MB on-die L3, 128-byte lines (Intel Itanium 2 Processor Datasheet, order 250945; the 1.3 and 1.4 GHz parts have 3 and 4 MB)'),
  writebackBytesPerNs: fitted(0.8, 6.4, "a node's writeback to its SHub: at most the bus's 6.4 GB/s peak", 'altix'),
  remoteFactor: fitted(1.05, 3, 'another node\'s memory is farther by one or more NUMAlink router crossings, never nearer', 'altix'),
  fsbBytesPerNs: fitted(1.6, 6.4, 'sustained share of the 6.4 GB/s Itanium 2 system bus (128 bits at 400 MT/s, Intel Itanium 2 datasheet): a quarter to all of it', 'altix'),
  lineMissNs: fitted(20, 300, "a store's line fetch: from its transfer time on the 6.4 GB/s bus (20 ns, fully overlapped by streaming) to an unoverlapped memory access", 'altix'),
  missesInFlight: measured('published: the Itanium 2 system interface tracks pending transactions in an 8-entry in-order queue and an 18-entry out-of-order queue of deferred requests (C. McNairy, D. Soltis, "Itanium 2 Processor Microarchitecture", IEEE Micro 23(2), 2003)'),
  ntBytesPerNs: measured('unavailable: Itanium 2 has no non-temporal store clear in this kernel (the SN2 BTE is its cache-free clear)'),
  clzeroBytesPerNs: measured('unavailable: CLZERO is an AMD x86 instruction'),
  lineHitNs: fitted(2, 100, 'a store that hits L2/L3 after hot zeroing, with a TLB walk: a few to 150 cycles', 'altix'),
  userPageNs: fitted(2, 300, "pft's loop per page: a handful of instructions up to the TLB miss of a new page", 'altix'),
  freePageNs: fitted(100, 2000, 'zap, rmap and free per page at exit: one to several dependent misses plus the code', 'altix'),
  bteBytesPerNs: fitted(0.1, 3.2, "no published BTE rate (0.5 GB/s is the patch author's estimate for kscrubd's sleep); at most a NUMAlink4 link's 3.2 GB/s; CPU-only rows never use it", 'none'),
  bteSetupNs: fitted(200, 20_000, 'programming the BTE registers and polling for completion: uncached MMIO round trips; CPU-only rows never use it', 'none'),
  bteMinBytes: measured('kernel constant: the prezeroing V6 patch\'s bte_start_bzero() refuses transfers under 60,000 bytes'),
  bteMaxBytes: measured('kernel constant: BTE_MAX_XFER = (1 << BTE_LEN_BITS) × L1_CACHE_BYTES = 65536 × 128 bytes (include/asm-ia64/sn/bte.h, 2.6.11)'),
  wakeupNs: fitted(2_000, 100_000, "wake_up_interruptible to kscrubd running: an IPI and a schedule(), a few µs up to a tick's tenth", 'altix'),
};
