import type { CostModel } from './cost';
import { MODERN_SHARED, MODERN_SHARED_FIGURES, WRITEBACK_IN_RATES, cyclesFigure, missesInFlight, modernCore, modernCoreFigures, socketBandwidth, intelCoreClear } from './cost-modern';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { type Figures, fitted, measured } from './figures';
import { fixedClock } from './cost-clock';

/**
 * The `skylake-sp` preset's costs: a 2-socket Intel Xeon "Skylake-SP" (1st generation Xeon
 * Scalable, e.g. the 28-core Platinum 8180: a mesh, 1 MiB L2 a core, 1.375 MiB of L3 a core,
 * 38.5 MiB shared, 6 channels of DDR4-2666 a socket), running today's fault path
 * (src/model/cost-modern.ts). Core work is stated in cycles at 3.0 GHz (2.5 GHz base,
 * 3.8 GHz boost).
 *
 *   zeroing  measured for one string instruction over an extent past the L3: the uncached-
 *            clearing series timed `perf bench mem memset -l 1 -f x86-64-stosb` (one `rep
 *            stosb` over the whole region) on a Xeon Platinum 8270CL with turbo off, the
 *            kernel's SKYLAKE_X (6:85:7, Cascade Lake: Skylake-SP's core, mesh and L3 on a
 *            newer stepping), at 6.52 GB/s over 128 MB, 6.48 over 1 GB and 6.51 over 4 GB
 *            (Message-Id 20201014083300.19077-5-ankur.a.arora@oracle.com): 6.5 GB/s, at 2 MiB
 *            and 1 GiB alike (Intel allocates lines at every extent). SKX's single-core
 *            bandwidth is the lowest of these machines: the mesh raised L3 and memory latency
 *            over Broadwell's ring while a core's line-fill buffers stayed few, and one core's
 *            bandwidth is concurrency over latency (Little's law). No page-at-a-time clear of
 *            a Skylake-SP core has been published: that rate is fitted to no rows, the
 *            measured extent rate over Ice Lake's measured extent gain (10.90 ÷ 7.95 ≈ 1.37).
 *   trap     Skylake is Meltdown-affected: KPTI switches CR3 on every entry and exit, ≈ 1100
 *            cycles round trip with the other mitigations.
 */
const GHZ = 3.0;
const lineMissNs = 95;
const MEM = socketBandwidth(6, 2666);
// One rep stosb over 128 MB, 1 GB and 4 GB: 6.52, 6.48, 6.51 GB/s.
const EXTENT_RATE = 6.5;
// Ice Lake's measured gain of one clear_pages() over a 2 MiB extent against page at a time.
const EXTENT_GAIN = 10.9 / 7.95;
const PAGE_RATE = EXTENT_RATE / EXTENT_GAIN;
const CLOCK = fixedClock(GHZ, "one Skylake core's clearing is bound by the stores it keeps in flight over the mesh and DRAM latency (uncore, not core clock): no clock scaling");
// Little's law on the measured rate: a long string keeps the core's fill buffers busy, where a
// page at a time also pays rep stos's start-up on every page (a cost, not concurrency).
const IN_FLIGHT = missesInFlight(EXTENT_RATE, lineMissNs);

export const SKYLAKE_SP_COST: CostModel = {
  trapNs: 1100 / GHZ,
  ...modernCore(GHZ, lineMissNs),
  lineBounceNs: 50,
  lineRemoteNs: 170,
  ...MODERN_SHARED,
  zeroBytesPerNs: PAGE_RATE,
  zeroHugeBytesPerNs: EXTENT_RATE,
  zeroGiantBytesPerNs: EXTENT_RATE,
  zeroRunBytesPerNs: PAGE_RATE,
  ...CLOCK.value,
  cacheBytes: 38.5 * 2 ** 20,
  writebackBytesPerNs: 0,
  remoteFactor: 1.6,
  fsbBytesPerNs: MEM.value,
  lineMissNs,
  missesInFlight: IN_FLIGHT.value,
  // movnti on SKX is slow (the uncached-clearing series marked it X86_FEATURE_MOVNT_SLOW); no CLZERO on Intel.
  ntBytesPerNs: 6.36,
  clzeroBytesPerNs: 0,
  ...NO_BTE,
};

const EXTENT_SOURCE = 'published measurement: one `rep stosb` over a region past the L3 on a Xeon Platinum 8270CL (the kernel\'s SKYLAKE_X, 6:85:7; intel_pstate/no_turbo 1), `perf bench mem memset -l 1 -f x86-64-stosb`: 6.52 GB/s over 128 MB, 6.48 over 1 GB, 6.51 over 4 GB ("[PATCH 4/8] x86/asm: add clear_page_nt()", Ankur Arora, LKML, 14 October 2020, Message-Id 20201014083300.19077-5-ankur.a.arora@oracle.com); 6.5';

export const SKYLAKE_SP_FIGURES: Figures = {
  trapNs: cyclesFigure(GHZ, 500, 3000, '#PF and iretq with KPTI\'s CR3 switches and the speculation mitigations'),
  ...modernCoreFigures(GHZ),
  lineBounceNs: fitted(20, 150, 'a line from another core of the mesh', 'none'),
  lineRemoteNs: fitted(100, 400, 'a line from the other socket over UPI', 'none'),
  ...MODERN_SHARED_FIGURES,
  zeroBytesPerNs: intelCoreClear("no page-at-a-time clear of a Skylake-SP core is published: the measured extent rate (6.5) over Ice Lake's measured extent gain (10.90 ÷ 7.95)"),
  zeroHugeBytesPerNs: measured(EXTENT_SOURCE),
  zeroGiantBytesPerNs: measured(`${EXTENT_SOURCE}; one rate at every extent, as Intel allocates lines at every extent (Ice Lake measured 11.26 at 1 GiB against 10.90 at 2 MiB)`),
  zeroRunBytesPerNs: intelCoreClear('page after page up a 1 GiB page: as a page (Ice Lake measured 8.01 against 7.95)'),
  ...CLOCK.figures,
  cacheBytes: measured('datasheet: Intel Xeon Platinum 8180 (Skylake-SP), 38.5 MB L3 (1.375 MB a core, 28 cores)'),
  writebackBytesPerNs: WRITEBACK_IN_RATES,
  remoteFactor: fitted(1.2, 2.5, "the other socket's DRAM over UPI against the local socket's", 'none'),
  fsbBytesPerNs: MEM.figure,
  lineMissNs: fitted(70, 150, 'load-to-use latency from local DDR4-2666 across the mesh', 'none'),
  missesInFlight: IN_FLIGHT.figure,
  ntBytesPerNs: measured('published measurement: movnti memset of 2 MB on a Xeon Platinum 8270CL (Skylakex), 6.36 GB/s (6.3 up to 512 MB), `perf bench mem memset -f x86-64-movnt` (Ankur Arora, "[PATCH v3 21/21] x86/cpu/intel: set X86_FEATURE_MOVNT_SLOW for Skylake", LKML, 6 June 2022, Message-Id 20220606203725.1313715-17-ankur.a.arora@oracle.com)'),
  clzeroBytesPerNs: measured('unavailable: CLZERO is an AMD instruction'),
  ...NO_BTE_FIGURES,
};
