import type { CostModel } from './cost';

/**
 * The `altix` preset's costs: the 1.5 GHz Itanium 2 (Madison) SGI Altix (SN2) of Lameter's
 * measurements — 16 KiB pages, 128-byte lines, two CPUs on each node's front-side bus, SHub
 * and NUMAlink between nodes. The single-CPU figures (trap, handler, zeroing, line misses)
 * were fitted to the single-thread rows of docs/calibration.md; the shared-resource figures
 * (bus, line transfers) are the hardware's published ones, and nothing is fitted to a row with
 * more than one thread: what threads do to each other follows from the mechanisms of the fault path (anon-fault.ts, ptlock.ts, fault-price.ts).
 */
export const ALTIX_COST: CostModel = {
  // ia64 trap entry/exit: SAVE_MIN_WITH_COVER + SAVE_REST, the VHPT miss that precedes the
  // page-not-present fault, rfi (~900 cycles at 1.5 GHz).
  trapNs: 550,
  // ia64_do_page_fault: find_vma (mmap_cache hit), handle_mm_fault bookkeeping.
  handlerNs: 150,
  // An Itanium 2 bus snoop that hits a modified line in the other CPU of the node (HITM).
  lineBounceNs: 250,
  // A line modified in another node's cache: request to the home SHub, intervention to the
  // owner, data back over NUMAlink (three hops; ~3× a local memory access on SN2).
  lineRemoteNs: 700,
  // struct page of the new page: flags/_count, lru links, mapping/index — misses.
  structPageLines: 3,
  ptlCheckNs: 100,
  ptlSetNs: 120,
  pcpAllocNs: 80,
  buddyPerPageNs: 60,
  // SetPageLRU/SetPageActive and the list insertion of one page (its struct page is in cache).
  lruPerPageNs: 40,
  // 16 KiB in ~10.5 µs: Itanium 2 store bandwidth to local SN2 memory, ≈ 1.56 GB/s.
  zeroBytesPerNs: 1.56,
  // No extent-dependent mode: clear_pages() of any size runs at the one rate.
  zeroHugeBytesPerNs: 1.56,
  zeroGiantBytesPerNs: 1.56,
  // Itanium 2 (Madison 9M) has a 6 MiB L3; SN2 sustains ~4 GB/s of writeback per node.
  cacheBytes: 6 * 2 ** 20,
  writebackBytesPerNs: 4.0,
  remoteFactor: 1.3,
  // The node's front-side bus: 128 bits at 400 MT/s = 6.4 GB/s peak (SGI Altix 3000 C-brick
  // specification, Linux Journal #6440); a bus turning around between reads and writebacks
  // sustains about 60 % of that.
  fsbBytesPerNs: 3.84,
  // Streaming RFO of a 128-byte line: 128 B / ~2 GB/s.
  lineMissNs: 62,
  lineHitNs: 26,
  userPageNs: 160,
  // zap_pte_range + page_remove_rmap + release_pages + free_hot_cold_page: two dependent
  // misses (the page's struct page, its buddy's when it coalesces) at ~160 ns, plus the code.
  freePageNs: 450,
  // The SN2 BTE: ~500 MB/s; V6 refuses transfers under 60,000 bytes and from BTE_MAX_XFER
  // (64K lines × 128 B = 8 MiB) up.
  bteBytesPerNs: 0.5,
  bteSetupNs: 2_000,
  bteMinBytes: 60_000,
  bteMaxBytes: 8 * 2 ** 20,
  wakeupNs: 20_000,
};
