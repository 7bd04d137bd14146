import type { CostModel } from './cost';
import { NO_BTE } from './cost-no-bte';

/**
 * The `epyc` preset's costs: a machine of today, a 2-socket AMD EPYC "Milan" (Zen 3, e.g. the
 * 64-core 7763: 8 CCDs of 8 cores sharing a 32 MiB L3, 512 KiB L2 a core, 8 channels of
 * DDR4-3200 a socket, Infinity Fabric between CCDs and between sockets), running a modern
 * kernel's anonymous fault path (per-VMA locks, split pte locks, memcg, folios). 4 KiB pages,
 * 64-byte lines. Core work is stated in cycles at 3.0 GHz, the all-core clock under load
 * (2.45 GHz base, 3.5 GHz boost); memory figures are in nanoseconds.
 *
 *   zeroing  the 2025 multi-page clear_pages() series (Ankur Arora, "x86/mm: Add multi-page
 *            clearing", LKML; commit "x86/clear_page: introduce clear_pages()") measured
 *            `rep stos` on Milan at 13.7 GB/s clearing 4 KiB at a time, 15.1 GB/s at 2 MiB
 *            and 38.1 GB/s at 1 GiB: the string instruction sees the extent, and Zen elides
 *            allocating cachelines for extents larger than the L3 (the series' cover letter).
 *            The rates were measured over regions far larger than the caches, so they
 *            already include the write-back to DRAM (writebackBytesPerNs 0: no extra term).
 *   memory   load-to-use latency from local DRAM ≈ 100 ns on Milan with DDR4-3200 (AnandTech
 *            and Chips and Cheese latency sweeps of the 7763), ≈ 1.5× that from the other
 *            socket; a line Modified in a core of another CCD comes over the Infinity Fabric
 *            in ≈ 90 ns, within one CCX in ≈ 25 ns (core-to-core "bounce" measurements).
 *   trap     a #PF and iretq on Zen 3: no KPTI (Zen is not Meltdown-affected), but entry code
 *            with the retbleed/SRSO return mitigations: ≈ 450 cycles round trip.
 */
const GHZ = 3.0;
const cyc = 1 / GHZ; // ns per core cycle
const lineMissNs = 100;

export const EPYC_COST: CostModel = {
  trapNs: 450 * cyc,
  // lock_vma_under_rcu (no mmap_lock in the common case), the 4-level walk
  // (pgd → p4d → pud → pmd), pte_offset_map_lock, do_anonymous_page's checks: ≈ 600 cycles.
  handlerNs: 600 * cyc,
  // Split pte lock: an uncontended spin_lock/unlock pair (a locked cmpxchg ≈ 20 cycles) and
  // the pte_none check.
  ptlCheckNs: 45 * cyc,
  // set_pte_at, folio_add_new_anon_rmap, folio_add_lru_vma (a folio_batch slot), the rss
  // counter (per-cpu), update_mmu_cache: ≈ 180 cycles.
  ptlSetNs: 180 * cyc,
  // A lock line last written by a core of another CCD (threads spread over CCDs).
  lineBounceNs: 90,
  // A line last written by a core of the other socket (xGMI): ≈ 200 ns.
  lineRemoteNs: 200,
  // struct page is 64 bytes: one line; the folio's LRU neighbour and memcg stats: one more.
  structPageLines: 2,
  // vma_alloc_folio → the pcp fast path (pcp_spin_trylock, list_del) plus
  // mem_cgroup_charge (≈ 250 cycles on its own): ≈ 450 cycles.
  pcpAllocNs: 450 * cyc,
  // rmqueue_bulk per page under zone->lock: ≈ 60 cycles.
  buddyPerPageNs: 60 * cyc,
  // folio_batch drain onto the LRU per folio under the lruvec lock: ≈ 40 cycles.
  lruPerPageNs: 40 * cyc,
  zeroBytesPerNs: 13.7,
  zeroHugeBytesPerNs: 15.1,
  zeroGiantBytesPerNs: 38.1,
  // One CCD's L3: above it Zen's rep stos stops allocating lines (the 1 GiB rate applies).
  cacheBytes: 32 * 2 ** 20,
  writebackBytesPerNs: 0,
  // The other socket's memory: ≈ 150 ns against 100.
  remoteFactor: 1.5,
  // The bus the model's node shares is the whole socket's memory: 8 channels of DDR4-3200,
  // 204.8 GB/s peak, ≈ 165 GB/s sustained (STREAM on a Milan socket). Zeroing moves each byte
  // twice (read for ownership, write-back), so about six cores clearing at 13.7 GB/s fill it;
  // 64 cores clearing at once get a sixty-fourth each. (One CCD's GMI link, ≈ 50 GB/s, is the
  // tighter limit for a few cores of one CCD; the model has no CCD level.)
  fsbBytesPerNs: 165,
  lineMissNs,
  // The line after hot zeroing is in L2 (12 cycles) and the new pte's walk hits the
  // page-walk caches: ≈ 15 cycles.
  lineHitNs: 15 * cyc,
  userPageNs: 8 * cyc,
  // zap_pte_range, folio_remove_rmap, memcg uncharge and the batched free per page, with
  // the page's struct page line a miss: ≈ 150 cycles + a miss.
  freePageNs: 150 * cyc + lineMissNs,
  // No block-transfer engine (figures unused).
  ...NO_BTE,
  // try_to_wake_up → IPI → an idle core leaving C1/C6 (≈ 1–20 µs): ≈ 5 µs.
  wakeupNs: 5_000,
};
