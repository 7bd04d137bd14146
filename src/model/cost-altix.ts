import type { CostModel } from './cost';

/**
 * The `altix` preset's costs: the 1.5 GHz Itanium 2 SGI Altix (SN2) of Lameter's
 * measurements — 16 KiB pages, 128-byte lines, NUMAlink between nodes. Fitted once to the
 * single-thread rows of docs/calibration.md (run `npm run calibrate`); everything else the
 * preset does (threads, NUMA, kscrubd) follows from the same figures.
 */
export const ALTIX_COST: CostModel = {
  trapNs: 850,
  handlerNs: 200,
  lineBounceNs: 250,
  structPageLines: 3,
  ptlCheckNs: 120,
  ptlSetNs: 150,
  pcpAllocNs: 130,
  buddyPerPageNs: 60,
  // 16 KiB in ~10.5 µs: Itanium 2 store bandwidth to local SN2 memory, ≈ 1.56 GB/s.
  zeroBytesPerNs: 1.56,
  // No extent-dependent mode: clear_pages() of any size runs at the one rate.
  zeroHugeBytesPerNs: 1.56,
  zeroGiantBytesPerNs: 1.56,
  // Itanium 2 (Madison 9M) has a 6 MiB L3; SN2 sustains ~4 GB/s of writeback per node.
  cacheBytes: 6 * 2 ** 20,
  writebackBytesPerNs: 4.0,
  remoteFactor: 1.3,
  // Streaming RFO of a 128-byte line: 128 B / ~2 GB/s.
  lineMissNs: 62,
  lineHitNs: 26,
  userPageNs: 160,
  freePageNs: 250,
  // The SN2 BTE: ~500 MB/s, synchronous, refuses transfers under 60,000 bytes.
  bteBytesPerNs: 0.5,
  bteSetupNs: 2_000,
  bteMinBytes: 60_000,
  bteMaxBytes: 2 ** 30,
  wakeupNs: 20_000,
};
