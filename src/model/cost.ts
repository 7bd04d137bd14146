import type { CostName } from '../uapi/bounds';

/**
 * The cost model: every figure is a physical quantity (a latency, a bandwidth, a lock hold
 * time) with the reason it has its value. Faults, kscrubd and the CPU clocks are all priced
 * from these and nothing else — no run is special-cased. The `altix` figures are for the
 * 1.5 GHz Itanium 2 SGI Altix that Lameter measured (16 KiB pages, 128-byte lines). What a
 * second thread costs is not a figure of its own: it follows from the shared resources the
 * kernel's fault path really contends on — mm->page_table_lock and the cachelines of
 * mm_struct, zone->lock, zone->lru_lock, and each node's front-side bus (docs/calibration.md
 * walks through the 2.6.11 code and where every figure comes from).
 */
export interface CostModel {
  /** Trap into the kernel and back: ia64 saves/restores a large register frame. */
  readonly trapNs: number;
  /** handle_mm_fault before the pte: find_vma, pgd/pud/pmd walk (under mmap_sem). */
  readonly handlerNs: number;
  /**
   * Work under page_table_lock in handle_mm_fault's first section: the pgd/pud/pmd walk and
   * the look at the pte (the lock's own cacheline is priced apart, lineBounceNs/lineRemoteNs).
   */
  readonly ptlCheckNs: number;
  /**
   * Work under page_table_lock in do_anonymous_page's second section, per pte installed: the
   * pte_none check, set_pte, lru_cache_add_active, mark_page_accessed, page_add_anon_rmap
   * (the mm counters' line and the LRU drain are priced apart).
   */
  readonly ptlSetNs: number;
  /**
   * A lock or counter cacheline last written by another CPU must be fetched from it first
   * (mmap_sem and page_table_lock share mm_struct's first line; rss its second; zone->lock,
   * zone->lru_lock): one such cache-to-cache transfer between two CPUs of one node.
   */
  readonly lineBounceNs: number;
  /** The same transfer from a CPU of another node (a directory intervention over the interconnect). */
  readonly lineRemoteNs: number;
  /** Cachelines of struct page the fault path writes (count, flags, LRU, rmap) — misses. */
  readonly structPageLines: number;
  /** Taking one page off a per-cpu list (irq off, no zone lock). */
  readonly pcpAllocNs: number;
  /** zone->lock held per page moved between the buddy lists and a per-cpu list. */
  readonly buddyPerPageNs: number;
  /** zone->lru_lock held per page when a CPU's LRU pagevec (16 pages) drains onto the active list. */
  readonly lruPerPageNs: number;
  /** clear_page() bandwidth to local memory, bytes per ns (= GB/s), clearing one page. */
  readonly zeroBytesPerNs: number;
  /**
   * clear_pages() of a 2 MiB extent, and of an extent larger than the cache (measured at
   * 1 GiB): a string store that sees the whole extent runs faster on some CPUs (Zen elides
   * line allocation past the L3). Between a page and 2 MiB the rate follows log2(extent);
   * from 2 MiB up to cacheBytes it stays at the 2 MiB rate. Equal to zeroBytesPerNs where the
   * CPU has no such mode.
   */
  readonly zeroHugeBytesPerNs: number;
  readonly zeroGiantBytesPerNs: number;
  /**
   * clear_page() called page after page in ascending address order over one physically
   * contiguous huge page (clear_gigantic_page's loop: 4 KiB string stores one after another,
   * a cond_resched() between): one store stream, which the CPU runs faster than pages cleared
   * one at a time apart (zeroBytesPerNs) or in process_huge_page's converging order.
   */
  readonly zeroRunBytesPerNs: number;
  /**
   * Core clocks, GHz: the one the cache-allocating clearing rates (zeroBytesPerNs,
   * zeroHugeBytesPerNs, zeroRunBytesPerNs; zeroGiantBytesPerNs where it equals the 2 MiB rate)
   * were measured at, the one a core runs at when every core of its node is busy, and the one
   * it runs at when it is the only one (its boost). Those rates are the core's own (cycles per
   * line, set by how many lines it allocates at once), so they scale with its clock; a clear
   * that elides line allocation (zeroGiantBytesPerNs above cacheBytes on Zen) is bound by
   * memory and does not. Equal where the CPU has no boost or the rates were measured at it.
   */
  readonly zeroRateGHz: number;
  readonly allCoreGHz: number;
  readonly boostGHz: number;
  /**
   * Last-level cache and the bandwidth for writing dirty lines back to memory. Zeroing one
   * page in the fault path leaves its lines dirty in cache (the program uses them next); a
   * bulk clear_pages() of a block bigger than the cache must also push the excess out to
   * memory, so kscrubd zeroes at a lower rate than the fault path's clear_page(). 0: the
   * zeroing rates were measured over buffers far larger than the cache, so they already
   * include the write-back (no extra term).
   */
  readonly cacheBytes: number;
  readonly writebackBytesPerNs: number;
  /** Zeroing or touching another node's memory is this much slower (NUMAlink round trips). */
  readonly remoteFactor: number;
  /**
   * Sustained bandwidth of the bus a node's CPUs share to reach memory (bytes per ns). Zeroing
   * moves every line twice over it (read for ownership, later the writeback), so CPUs of one
   * node that zero at once share it: what one CPU cannot saturate, two can.
   */
  readonly fsbBytesPerNs: number;
  /** A store to a line that is not in cache: read-for-ownership from local memory. */
  readonly lineMissNs: number;
  /**
   * Cache misses one CPU keeps in flight at once (fill buffers, miss address buffers, its bus
   * queue): touching n cold lines of a page costs one latency and then overlaps the rest
   * (src/model/llc.ts coldLinesNs), no faster than the node's bus moves them.
   */
  readonly missesInFlight: number;
  /**
   * Clearing with non-temporal stores (movnti, the clear_page_nocache / clear_pages_movnt
   * proposals) and with CLZERO (AMD), bytes per ns over an extent of kscrubd's blocks: neither
   * allocates lines, so neither pollutes a cache. 0: the CPU has no such instruction, or no
   * measurement of it exists, and the driver is not offered.
   */
  readonly ntBytesPerNs: number;
  readonly clzeroBytesPerNs: number;
  /** A store to a line that is in cache (hot zeroing just wrote it; L2/L3 plus the TLB walk). */
  readonly lineHitNs: number;
  /** The benchmark's own loop per page (address arithmetic, branch), user time. */
  readonly userPageNs: number;
  /**
   * Unmapping and freeing one page at munmap/exit: zap_pte_range, page_remove_rmap (a miss on
   * the page's struct page), release_pages, free_hot_cold_page; the per-cpu drains under
   * zone->lock are priced apart (buddyPerPageNs).
   */
  readonly freePageNs: number;
  /**
   * Block-transfer engine: bandwidth, per-transfer setup, and its limits (V6 bte_start_bzero
   * refuses len < 60000 and len >= BTE_MAX_XFER). The transfer is synchronous: the calling
   * CPU busy-polls until it completes, so it saves cache pollution, not CPU time.
   */
  readonly bteBytesPerNs: number;
  readonly bteSetupNs: number;
  readonly bteMinBytes: number;
  readonly bteMaxBytes: number;
  /** From wake_up_interruptible to kscrubd running on its CPU. */
  readonly wakeupNs: number;
}


/** Cost figures by name, for overrides from the command line (`--cost zeroBytesPerNs=2`). */
export const COST_NAMES = [
  'trapNs', 'handlerNs', 'lineBounceNs', 'lineRemoteNs', 'structPageLines', 'ptlCheckNs', 'ptlSetNs', 'pcpAllocNs',
  'buddyPerPageNs', 'lruPerPageNs', 'zeroBytesPerNs', 'zeroHugeBytesPerNs', 'zeroGiantBytesPerNs', 'zeroRunBytesPerNs',
  'zeroRateGHz', 'allCoreGHz', 'boostGHz', 'cacheBytes', 'writebackBytesPerNs',
  'remoteFactor', 'fsbBytesPerNs', 'lineMissNs', 'missesInFlight', 'ntBytesPerNs', 'clzeroBytesPerNs',
  'lineHitNs', 'userPageNs', 'freePageNs', 'bteBytesPerNs', 'bteSetupNs', 'bteMinBytes', 'bteMaxBytes', 'wakeupNs',
] as const satisfies readonly (keyof CostModel)[];

// Every figure is overridable: a name missing from COST_NAMES fails to compile here.
const everyName: Record<Exclude<keyof CostModel, (typeof COST_NAMES)[number]>, never> = {};
void everyName;
// Every figure has a physical range for overrides from outside (src/uapi/bounds.ts), and nothing else has one.
const everyBound: Record<Exclude<keyof CostModel, CostName> | Exclude<CostName, keyof CostModel>, never> = {};
void everyBound;
