import type { CostModel } from './cost';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { MODERN_SHARED, MODERN_SHARED_FIGURES, cyclesFigure, missesInFlight, modernCore, modernCoreFigures } from './cost-modern';
import { type Figures, fitted, measured } from './figures';

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
// The clearing series measured Milan with boost off: its perf stat shows the core at 2.42 GHz.
// A core alone busy runs at the 7763's boost (docs/calibration.md, the van der Linden row).
const RATE_GHZ = 2.42;
const BOOST_GHZ = 3.5;
const lineMissNs = 100;
const zeroBytesPerNs = 13.7;
const IN_FLIGHT = missesInFlight(zeroBytesPerNs, lineMissNs);

export const EPYC_COST: CostModel = {
  trapNs: 450 * cyc,
  // The fault path's core work in cycles (src/model/cost-modern.ts) and the free per page.
  ...modernCore(GHZ, lineMissNs),
  // A lock line last written by a core of another CCD (threads spread over CCDs).
  lineBounceNs: 90,
  // A line last written by a core of the other socket (xGMI): ≈ 200 ns.
  lineRemoteNs: 200,
  ...MODERN_SHARED,
  zeroBytesPerNs,
  zeroHugeBytesPerNs: 15.1,
  zeroGiantBytesPerNs: 38.1,
  // clear_gigantic_page's loop, page after page up a 1 GiB page: the series' demand faults of
  // 1 GiB pages page at a time, 16.51–17.51 GB/s in four of its postings (mean 17.1).
  zeroRunBytesPerNs: 17.1,
  zeroRateGHz: RATE_GHZ,
  allCoreGHz: GHZ,
  boostGHz: BOOST_GHZ,
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
  // Little's law on two figures above: one core clearing 4 KiB pages at 13.7 GB/s with a
  // 100 ns memory latency keeps 13.7 × 100 / 64 ≈ 21 lines in flight.
  missesInFlight: IN_FLIGHT.value,
  // No published movnti clearing rate for Milan (the uncached-clearing series measured Rome,
  // Icelake and Skylake); CLZERO clear_pages() on Milan: 41.98 bytes/ns.
  ntBytesPerNs: 0,
  clzeroBytesPerNs: 41.98,
  // No block-transfer engine (figures unused).
  ...NO_BTE,
};

/**
 * Where each epyc figure comes from. No pft rows are published for this machine, so fitted
 * figures are fitted to none: they stay where they are, and their bounds (core work in
 * cycles at 3.0 GHz) are what sensitivity runs move them across.
 */
const CLEAR_PAGES = 'published measurement: `rep stos` on AMD Milan (EPYC 7J13), commit "x86/clear_page: introduce clear_pages()" (2025 multi-page clearing series, Ankur Arora)';
export const EPYC_FIGURES: Figures = {
  trapNs: cyclesFigure(GHZ, 250, 1200, '#PF and iretq with the return-stack mitigations'),
  ...modernCoreFigures(GHZ),
  lineBounceNs: fitted(20, 200, 'a line from another core: ≈ 25 ns within a CCX to ≈ 200 ns across the fabric', 'none'),
  lineRemoteNs: fitted(100, 400, 'a line from the other socket over xGMI', 'none'),
  ...MODERN_SHARED_FIGURES,
  zeroBytesPerNs: measured(`${CLEAR_PAGES}: 13.7 GB/s clearing 4 KiB at a time`),
  zeroHugeBytesPerNs: measured(`${CLEAR_PAGES}: 15.1 GB/s at 2 MiB`),
  zeroGiantBytesPerNs: measured(`${CLEAR_PAGES}: 38.1 GB/s at 1 GiB (Zen elides line allocation past the L3)`),
  zeroRunBytesPerNs: measured('published measurement: demand faults of 1 GiB hugetlb pages on AMD Milan (EPYC 7J13, boost=0), the kernel clearing each page at a time (mm/folio_zero_user: clear_gigantic_page), `perf bench mem map -p 1GB -f demand -s 64GB`: 17.14 and 17.51 GB/s ("[PATCH v5 14/14] x86/clear_pages: Support clearing of page-extents", 9 July 2025), 17.26 and 16.51 GB/s in later cover letters of the multi-page clearing series (Ankur Arora, LKML, 2025); their mean, 17.1'),
  zeroRateGHz: measured('published measurement: the multi-page clearing series ran Milan with boost=0, its perf stat of the 1 GiB demand-fault run reading "2.420 GHz" ("[PATCH v5 14/14] x86/clear_pages: Support clearing of page-extents", Ankur Arora, LKML, 9 July 2025); the clear_pages() chunk rates are taken to be of the same machine and setting'),
  allCoreGHz: fitted(2.45, 3.5, "a Milan core with every core of its socket busy: between the 7763's 2.45 GHz base and its 3.5 GHz boost; no measurement of the 7763's clock with all its cores loaded is published that we could cite (AMD's datasheet gives the base and the max boost only, and the clearing series ran its Milan with boost off), so it stays fitted", 'none'),
  boostGHz: measured('datasheet: AMD EPYC 7763, "Max. Boost Clock up to 3.5 GHz" (one core busy); the clock of the van der Linden machine is not published'),
  cacheBytes: measured('published: "LLC-size: 32MB for each CCX" of the EPYC 7J13 (Milan) in the test system of the clear_pages() series (Ankur Arora, LKML, "[PATCH v3 06/21] x86/clear_page: add clear_pages()", June 2022)'),
  writebackBytesPerNs: measured('no separate term: the clear_pages() rates above were measured over regions far larger than the caches, so they include the write-back'),
  remoteFactor: fitted(1.2, 2.5, "the other socket's DRAM over xGMI against the local socket's", 'none'),
  fsbBytesPerNs: fitted(100, 204.8, 'eight channels of DDR4-3200 a socket: 204.8 GB/s peak, at least half of it sustained', 'none'),
  lineMissNs: fitted(70, 150, 'load-to-use latency from local DDR4-3200 on Zen 3', 'none'),
  missesInFlight: IN_FLIGHT.figure,
  ntBytesPerNs: measured('unavailable: no published movnti clearing rate on Milan; the driver is not offered'),
  clzeroBytesPerNs: measured('published measurement: clear_pages_clzero() on AMD Milan, 41.98 bytes/ns creating a 192 GB VM backed by 2 MB pages (Ankur Arora, cover letter of v3 of the multi-page and uncached clearing series, LKML, 6 June 2022; and its patch "x86/asm: add clear_pages_clzero()")'),
  ...NO_BTE_FIGURES,
};
