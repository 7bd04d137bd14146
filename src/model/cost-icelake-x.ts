import type { CostModel } from './cost';
import { MODERN_SHARED, MODERN_SHARED_FIGURES, WRITEBACK_IN_RATES, cyclesFigure, missesInFlight, modernCore, modernCoreFigures, socketBandwidth } from './cost-modern';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { type Figures, fitted, measured } from './figures';
import { fixedClock } from './cost-clock';

/**
 * The `icelake-x` preset's costs: a 2-socket Intel Xeon "Ice Lake-SP" (3rd generation Xeon
 * Scalable, e.g. the 40-core Platinum 8380: one monolithic die on a mesh, 1.25 MiB L2 a core,
 * 60 MiB of L3 shared by all 40 cores, 8 channels of DDR4-3200 a socket), running today's
 * fault path (src/model/cost-modern.ts). Core work is stated in cycles at 3.0 GHz (2.3 GHz
 * base, 3.4 GHz boost).
 *
 *   zeroing  measured on an Ice Lake-SP (Platinum 8358, turbo off) by the multi-page clearing
 *            series: demand faults clearing 2 MiB pages a page at a time at 7.95 GB/s, 1 GiB
 *            pages a page at a time at 8.01, and with clear_pages() over the whole extent at
 *            10.90 (2 MiB) and 11.26 (1 GiB): `rep stos` is microcoded, and a longer string
 *            amortises its start-up and lets the prefetcher run ahead, but Intel allocates
 *            every line at every extent (no elision), so one extent rate serves both. One
 *            core's clearing is what Little's law allows it — the stores it keeps in flight
 *            over the mesh's latency (John McCalpin, Intel forums: "single-thread bandwidth
 *            is governed by Little's Law ... Bandwidth = Concurrency / Latency") — set by the
 *            uncore and DRAM, so the rates measured with turbo off hold at any core clock.
 *   trap     Ice Lake is not Meltdown-affected (no KPTI): ≈ 600 cycles with its mitigations.
 */
const GHZ = 3.0;
const lineMissNs = 110;
const MEM = socketBandwidth(8, 3200);
const PAGE_RATE = 7.95;
const EXTENT_RATE = 10.9;
const CLOCK = fixedClock(GHZ, "one Ice Lake core's clearing is bound by the stores it keeps in flight over the mesh and DRAM latency (uncore, not core clock): the rates measured with turbo off are taken unscaled at any core clock");
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
  zeroHugeBytesPerNs: EXTENT_RATE,
  zeroGiantBytesPerNs: EXTENT_RATE,
  zeroRunBytesPerNs: 8.01,
  ...CLOCK.value,
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
  zeroBytesPerNs: measured('published measurement: 2 MiB pages cleared a page at a time (mm/folio_zero_user, process_huge_page), 7.95 GB/s; cover letter of "x86/folio_zero_user: multi-page clearing" (Ankur Arora, LKML, 14 April 2025): demand faults on Icelakex (Xeon Platinum 8358, no_turbo=1, preempt=full), `perf bench mem map`'),
  zeroHugeBytesPerNs: measured('published measurement: 2 MiB pages cleared as one extent (x86 folio_zero_user, clear_pages()), 10.90 GB/s; cover letter of "x86/folio_zero_user: multi-page clearing" (Ankur Arora, LKML, 14 April 2025): demand faults on Icelakex (Xeon Platinum 8358, no_turbo=1, preempt=full), `perf bench mem map`'),
  zeroGiantBytesPerNs: measured('published measurement: 1 GiB pages cleared in whole extents, 11.26 GB/s, within 3 % of the 2 MiB extent rate taken here (Intel allocates lines at every extent: one rate); cover letter of "x86/folio_zero_user: multi-page clearing" (Ankur Arora, LKML, 14 April 2025): demand faults on Icelakex (Xeon Platinum 8358, no_turbo=1, preempt=full), `perf bench mem map`'),
  zeroRunBytesPerNs: measured('published measurement: 1 GiB pages cleared a page at a time (clear_gigantic_page), 8.01 GB/s; cover letter of "x86/folio_zero_user: multi-page clearing" (Ankur Arora, LKML, 14 April 2025): demand faults on Icelakex (Xeon Platinum 8358, no_turbo=1, preempt=full), `perf bench mem map`'),
  ...CLOCK.figures,
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
