import type { CostModel } from './cost';
import { NO_BTE } from './cost-no-bte';

/** A 2005 dual-core Opteron-class box: faster traps, 4 KiB pages, 64-byte lines, no BTE. */
export const X86_64_COST: CostModel = {
  trapNs: 250,
  handlerNs: 100,
  lineBounceNs: 120,
  // One node: a remote transfer never happens; a HyperTransport hop if nodes are configured.
  lineRemoteNs: 200,
  structPageLines: 3,
  ptlCheckNs: 40,
  ptlSetNs: 60,
  pcpAllocNs: 50,
  buddyPerPageNs: 30,
  lruPerPageNs: 20,
  zeroBytesPerNs: 3.2,
  // No extent-dependent mode: clear_pages() of any size runs at the one rate.
  zeroHugeBytesPerNs: 3.2,
  zeroGiantBytesPerNs: 3.2,
  cacheBytes: 1 * 2 ** 20,
  writebackBytesPerNs: 3.0,
  remoteFactor: 1.4,
  // Dual-channel DDR400 behind the on-die controller, 6.4 GB/s: what one CPU's 3.2 GB/s of
  // clear_page moves (each line read for ownership, then written back); a second CPU zeroing
  // at once halves both.
  fsbBytesPerNs: 6.4,
  lineMissNs: 70,
  lineHitNs: 3,
  userPageNs: 20,
  freePageNs: 120,
  ...NO_BTE,
  wakeupNs: 10_000,
};
