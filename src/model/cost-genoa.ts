import type { CostModel } from './cost';
import { MODERN_SHARED, MODERN_SHARED_FIGURES, WRITEBACK_IN_RATES, cyclesFigure, missesInFlight, modernCore, modernCoreFigures, socketBandwidth } from './cost-modern';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { type Figures, fitted, measured } from './figures';
import { fixedClock } from './cost-clock';

/**
 * The `genoa` preset's costs: a 2-socket AMD EPYC "Genoa" (Zen 4, e.g. the 96-core 9654:
 * 12 CCDs of 8 cores, each CCD sharing a 32 MiB L3, 1 MiB L2 a core, 12 channels of DDR5-4800
 * a socket), running today's fault path (src/model/cost-modern.ts). Core work is stated in
 * cycles at 3.5 GHz (the 9654's all-core boost is 3.55 GHz).
 *
 *   zeroing  "mm: folio_zero_user: clear pages sequentially" (the 2025–26 multi-page clearing
 *            series, Ankur Arora; tested on Genoa by Raghavendra K T) measured demand faults
 *            of 2 MiB pages on Genoa clearing at 23.58 GB/s once the pages of a folio are
 *            cleared in address order, page by page (11.76 GB/s in the old butterfly order):
 *            a page at a time in a stream, so both the 4 KiB and the 2 MiB rate. Past the L3
 *            Zen 4 elides line allocation as Zen 3 does; "mm: folio_zero_user: clear page
 *            ranges" reports 1 GiB faults 56–110 % faster on EPYC once whole extents go to
 *            one string instruction, so the giant rate is fitted inside that.
 *   memory   DDR5 adds latency over Milan's DDR4: ≈ 115 ns load-to-use from local DRAM.
 */
const GHZ = 3.5;
const lineMissNs = 115;
const MEM = socketBandwidth(12, 4800);
const SEQUENTIAL = 23.58;
const IN_FLIGHT = missesInFlight(SEQUENTIAL, lineMissNs);
// The Genoa measurement states no clock: its rates are taken at the preset's, unscaled.
const CLOCK = fixedClock(GHZ, "the Genoa clearing measurement states no clock (boost on or off): its rates are taken at the preset's 3.5 GHz, unscaled");

export const GENOA_COST: CostModel = {
  // Zen 4: no KPTI; entry code with the SRSO return mitigation, as on Zen 3.
  trapNs: 450 / GHZ,
  ...modernCore(GHZ, lineMissNs),
  // A lock line from a core of another CCD over the Infinity Fabric.
  lineBounceNs: 100,
  lineRemoteNs: 200,
  ...MODERN_SHARED,
  zeroBytesPerNs: SEQUENTIAL,
  zeroHugeBytesPerNs: SEQUENTIAL,
  // The 2 MiB rate × 2.1, the largest 1 GiB gain the clear-page-ranges commit reports on EPYC.
  zeroGiantBytesPerNs: SEQUENTIAL * 2.1,
  // A 1 GiB page cleared page at a time runs the same ascending stream.
  zeroRunBytesPerNs: SEQUENTIAL,
  ...CLOCK.value,
  cacheBytes: 32 * 2 ** 20,
  writebackBytesPerNs: 0,
  remoteFactor: 1.5,
  fsbBytesPerNs: MEM.value,
  lineMissNs,
  missesInFlight: IN_FLIGHT.value,
  // Zen 4 has CLZERO and movnti, but nobody has published their clearing rates on Genoa.
  ntBytesPerNs: 0,
  clzeroBytesPerNs: 0,
  ...NO_BTE,
};

const SEQ_SOURCE = 'published measurement: 2 MiB demand faults on AMD Genoa clear at 23.58 GB/s with the pages cleared sequentially (11.76 in butterfly order), commit "mm: folio_zero_user: clear pages sequentially" (multi-page clearing series, Ankur Arora, merged Jan 2026)';
export const GENOA_FIGURES: Figures = {
  trapNs: cyclesFigure(GHZ, 250, 1200, '#PF and iretq with the SRSO return mitigation'),
  ...modernCoreFigures(GHZ),
  lineBounceNs: fitted(20, 250, 'a line from another core: ≈ 25 ns within a CCD to ≈ 250 ns across the fabric', 'none'),
  lineRemoteNs: fitted(100, 400, 'a line from the other socket over xGMI', 'none'),
  ...MODERN_SHARED_FIGURES,
  zeroBytesPerNs: measured(`${SEQ_SOURCE}: a page at a time, in a stream`),
  zeroHugeBytesPerNs: measured(`${SEQ_SOURCE}: a 2 MiB folio`),
  zeroGiantBytesPerNs: fitted(SEQUENTIAL * 1.56, SEQUENTIAL * 2.1, 'past the L3 Zen 4 elides line allocation; commit "mm: folio_zero_user: clear page ranges" reports 1 GiB faults 56–110 % faster on EPYC than page at a time', 'none'),
  zeroRunBytesPerNs: measured(`${SEQ_SOURCE}: page after page in address order, as clear_gigantic_page clears a 1 GiB page`),
  ...CLOCK.figures,
  cacheBytes: measured('datasheet: AMD EPYC 9004 ("Genoa"): 32 MB of L3 shared by the 8 cores of each CCD, 1 MB of L2 a core'),
  writebackBytesPerNs: WRITEBACK_IN_RATES,
  remoteFactor: fitted(1.2, 2.5, "the other socket's DRAM over xGMI against the local socket's", 'none'),
  fsbBytesPerNs: MEM.figure,
  lineMissNs: fitted(80, 160, 'load-to-use latency from local DDR5-4800 on Zen 4', 'none'),
  missesInFlight: IN_FLIGHT.figure,
  ntBytesPerNs: measured('unavailable: no published movnti clearing rate on Genoa; the driver is not offered'),
  clzeroBytesPerNs: measured('unavailable: no published CLZERO clearing rate on Genoa; the driver is not offered'),
  ...NO_BTE_FIGURES,
};
