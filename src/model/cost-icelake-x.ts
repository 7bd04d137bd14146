import type { CostModel } from './cost';
import { MODERN_SHARED, MODERN_SHARED_FIGURES, WRITEBACK_IN_RATES, cyclesFigure, missesInFlight, modernCore, modernCoreFigures, socketBandwidth, intelCoreClear } from './cost-modern';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { type Figures, fitted, measured } from './figures';

/**
 * The `icelake-x` preset's costs: a 2-socket Intel Xeon "Ice Lake-SP" (3rd generation Xeon
 * Scalable, e.g. the 40-core Platinum 8380: one monolithic die on a mesh, 1.25 MiB L2 a core,
 * 60 MiB of L3 shared by all 40 cores, 8 channels of DDR4-3200 a socket), running today's
 * fault path (src/model/cost-modern.ts). Core work is stated in cycles at 3.0 GHz (2.3 GHz
 * base, 3.4 GHz boost).
 *
 *   zeroing  an Intel server core clears at what Little's law allows one core: the stores
 *            it keeps in flight over the mesh's latency (John McCalpin, Intel forums: "single-
 *            thread bandwidth is governed by Little's Law ... Bandwidth = Concurrency /
 *            Latency"), 4–13 GB/s on these parts. `rep stos` has no extent mode on Intel: the
 *            multi-page series measured no change on Icelakex from clearing a folio in order
 *            ("clear pages sequentially") and ≈ 35 % at 1 GiB from handing whole extents to
 *            one instruction ("clear page ranges": the per-page loop amortised), so the giant
 *            rate is the page rate × 1.35, inside the same bounds.
 *   trap     Ice Lake is not Meltdown-affected (no KPTI): ≈ 600 cycles with its mitigations.
 */
const GHZ = 3.0;
const lineMissNs = 110;
const MEM = socketBandwidth(8, 3200);
const PAGE_RATE = 9.5;
const IN_FLIGHT = missesInFlight(PAGE_RATE, lineMissNs);

export const ICELAKE_X_COST: CostModel = {
  trapNs: 600 / GHZ,
  ...modernCore(GHZ, lineMissNs),
  // Core to core over the mesh: ≈ 50 ns within the die (AnandTech's core-to-core test of the 8380).
  lineBounceNs: 50,
  // Over UPI from the other socket.
  lineRemoteNs: 180,
  ...MODERN_SHARED,
  zeroBytesPerNs: PAGE_RATE,
  zeroHugeBytesPerNs: PAGE_RATE,
  zeroGiantBytesPerNs: PAGE_RATE * 1.35,
  cacheBytes: 60 * 2 ** 20,
  writebackBytesPerNs: 0,
  remoteFactor: 1.6,
  fsbBytesPerNs: MEM.value,
  lineMissNs,
  missesInFlight: IN_FLIGHT.value,
  // movnti at 2 MB, the measured extent nearest kscrubd's blocks (at most 4 MiB); no CLZERO on Intel.
  ntBytesPerNs: 12.59,
  clzeroBytesPerNs: 0,
  ...NO_BTE,
};

export const ICELAKE_X_FIGURES: Figures = {
  trapNs: cyclesFigure(GHZ, 300, 1500, '#PF and iretq without KPTI, with the speculation mitigations'),
  ...modernCoreFigures(GHZ),
  lineBounceNs: fitted(20, 150, 'a line from another core of the mesh', 'none'),
  lineRemoteNs: fitted(100, 400, 'a line from the other socket over UPI', 'none'),
  ...MODERN_SHARED_FIGURES,
  zeroBytesPerNs: intelCoreClear(),
  zeroHugeBytesPerNs: intelCoreClear(`no gain from clearing a folio in order on Icelakex ("mm: folio_zero_user: clear pages sequentially")`),
  zeroGiantBytesPerNs: intelCoreClear(`≈ 35 % over page at a time at 1 GiB on Icelake ("mm: folio_zero_user: clear page ranges")`),
  cacheBytes: measured('datasheet: Intel Xeon Platinum 8380 (Ice Lake-SP), 60 MB Intel Smart Cache shared by its 40 cores'),
  writebackBytesPerNs: WRITEBACK_IN_RATES,
  remoteFactor: fitted(1.2, 2.5, "the other socket's DRAM over UPI against the local socket's", 'none'),
  fsbBytesPerNs: MEM.figure,
  lineMissNs: fitted(80, 160, 'load-to-use latency from local DDR4-3200 across the mesh', 'none'),
  missesInFlight: IN_FLIGHT.figure,
  ntBytesPerNs: measured('published measurement: movnti memset of 2 MB on a Xeon Platinum 8358 (Icelakex), 12.59 GB/s (23.98 at 4 GB), `perf bench mem memset -f x86-64-movnt` (Ankur Arora, "x86/asm: add clear_pages_movnt()", v3 of the multi-page and uncached clearing series, LKML, June 2022)'),
  clzeroBytesPerNs: measured('unavailable: CLZERO is an AMD instruction'),
  ...NO_BTE_FIGURES,
};
