/**
 * The cost model: every figure is a physical quantity (a latency, a bandwidth, a lock hold
 * time) with the reason it has its value. Faults, kscrubd and the CPU clocks are all priced
 * from these and nothing else — no run is special-cased. The `altix` figures are for the
 * 1.5 GHz Itanium 2 SGI Altix that Lameter measured (16 KiB pages, 128-byte lines); they were
 * fitted once to the single-thread rows in shared/calibration.md, and the multi-thread, NUMA
 * and kscrubd behaviour follows from the same numbers.
 */
export interface CostModel {
  /** Trap into the kernel and back: ia64 saves/restores a large register frame. */
  readonly trapNs: number;
  /** handle_mm_fault before the pte: find_vma, pgd/pud/pmd walk (under mmap_sem). */
  readonly handlerNs: number;
  /** page_table_lock held to look at the pte (first critical section of a fault). */
  readonly ptlCheckNs: number;
  /** page_table_lock held to install one pte, update rss and the LRU (second section). */
  readonly ptlSetNs: number;
  /** Taking one page off a per-cpu list (irq off, no zone lock). */
  readonly pcpAllocNs: number;
  /** zone->lock held per page moved between the buddy lists and a per-cpu list. */
  readonly buddyPerPageNs: number;
  /** clear_page() bandwidth to local memory, bytes per ns (= GB/s). */
  readonly zeroBytesPerNs: number;
  /** Zeroing or touching another node's memory is this much slower (NUMAlink round trips). */
  readonly remoteFactor: number;
  /** A store to a line that is not in cache: read-for-ownership from local memory. */
  readonly lineMissNs: number;
  /** A store to a line that is in cache (hot zeroing just wrote it). */
  readonly lineHitNs: number;
  /** The benchmark's own loop per page (address arithmetic, branch), user time. */
  readonly userPageNs: number;
  /** Unmapping and freeing one page at munmap/exit (zap_pte_range + free_hot_page). */
  readonly freePageNs: number;
  /** Block-transfer engine: bandwidth, per-transfer setup on the CPU, and its limits. */
  readonly bteBytesPerNs: number;
  readonly bteSetupNs: number;
  readonly bteMinBytes: number;
  readonly bteMaxBytes: number;
  /** From wake_up_interruptible to kscrubd running on its CPU. */
  readonly wakeupNs: number;
}

export const ALTIX_COST: CostModel = {
  trapNs: 900,
  handlerNs: 380,
  ptlCheckNs: 120,
  ptlSetNs: 150,
  pcpAllocNs: 130,
  buddyPerPageNs: 60,
  // 16 KiB in ~10.5 µs: Itanium 2 store bandwidth to local SN2 memory, ≈ 1.56 GB/s.
  zeroBytesPerNs: 1.56,
  remoteFactor: 1.3,
  // Streaming RFO of a 128-byte line: 128 B / ~2 GB/s.
  lineMissNs: 62,
  lineHitNs: 16,
  userPageNs: 170,
  freePageNs: 250,
  // The SN2 BTE: ~500 MB/s, synchronous, refuses transfers under 60,000 bytes.
  bteBytesPerNs: 0.5,
  bteSetupNs: 2_000,
  bteMinBytes: 60_000,
  bteMaxBytes: 2 ** 30,
  wakeupNs: 20_000,
};

/** A 2005 dual-core Opteron-class box: faster traps, 4 KiB pages, 64-byte lines, no BTE. */
export const X86_64_COST: CostModel = {
  trapNs: 250,
  handlerNs: 150,
  ptlCheckNs: 40,
  ptlSetNs: 60,
  pcpAllocNs: 50,
  buddyPerPageNs: 30,
  zeroBytesPerNs: 3.2,
  remoteFactor: 1.4,
  lineMissNs: 70,
  lineHitNs: 3,
  userPageNs: 20,
  freePageNs: 120,
  bteBytesPerNs: 0.5,
  bteSetupNs: 2_000,
  bteMinBytes: 60_000,
  bteMaxBytes: 2 ** 30,
  wakeupNs: 10_000,
};
