import { CostModel } from './cost';
import { ZeroDriverName } from './presets';

/**
 * Zero drivers (V6's struct zero_driver): kscrubd offers each block to the registered
 * drivers, newest first; the first that accepts zeroes it. The CPU's clear_pages() takes
 * anything and is always there as the last resort.
 */
export interface ZeroResult {
  /** Virtual time the block is busy being zeroed. */
  readonly wallNs: number;
  /** CPU time kscrubd spends on it (system time of its CPU). */
  readonly cpuNs: number;
}

export interface ZeroDriver {
  readonly name: ZeroDriverName;
  /** Will the driver take a block of this many bytes? */
  accepts(bytes: number): boolean;
  /** Zero it; null when the transfer failed and the caller must fall back to the CPU. */
  zero(bytes: number, remote: boolean): ZeroResult | null;
}

const HUGE_EXTENT = 2 ** 21;

/**
 * The rate of one clear_pages() call over `bytes` (bytes per ns). A page clears at
 * zeroBytesPerNs and a 2 MiB extent at zeroHugeBytesPerNs, in between following log2 of the
 * extent; up to the cache's size the 2 MiB rate holds, past it zeroGiantBytesPerNs (the CPU
 * stops allocating lines for a store stream it knows outgrows the cache).
 */
export function clearBytesPerNs(c: CostModel, pageSize: number, bytes: number): number {
  if (bytes <= pageSize) return c.zeroBytesPerNs;
  if (bytes > c.cacheBytes && bytes > HUGE_EXTENT) return c.zeroGiantBytesPerNs;
  if (bytes >= HUGE_EXTENT) return c.zeroHugeBytesPerNs;
  const f = Math.log2(bytes / pageSize) / Math.log2(HUGE_EXTENT / pageSize);
  return c.zeroBytesPerNs + f * (c.zeroHugeBytesPerNs - c.zeroBytesPerNs);
}

/** clear_pages(page, order): the CPU writes every line, at the extent's zeroing bandwidth. */
export class CpuZeroDriver implements ZeroDriver {
  readonly name = 'cpu' as const;
  constructor(private readonly cost: CostModel, private readonly pageSize: number) {}
  accepts(): boolean {
    return true;
  }
  zero(bytes: number, remote: boolean): ZeroResult {
    const c = this.cost;
    // Stores at the zeroing bandwidth, plus writeback of whatever the cache cannot hold
    // (none to add when the bandwidth was measured with the write-back in it).
    const writeback = c.writebackBytesPerNs > 0 ? Math.max(0, bytes - c.cacheBytes) / c.writebackBytesPerNs : 0;
    const store = bytes / clearBytesPerNs(c, this.pageSize, bytes) + writeback;
    const ns = store * (remote ? c.remoteFactor : 1);
    return { wallNs: ns, cpuNs: ns };
  }
}

/**
 * The SGI SN2 block-transfer engine: zeroes memory without the CPU's caches, synchronously
 * (kscrubd waits for it) at ~500 MB/s. Small transfers are not worth its setup, so it refuses
 * blocks under 60,000 bytes. `failNext` injects transfer failures (timeouts in V6's driver).
 */
export class BteZeroDriver implements ZeroDriver {
  readonly name = 'bte' as const;
  failNext = 0;
  failures = 0;
  constructor(private readonly cost: CostModel) {}
  accepts(bytes: number): boolean {
    return bytes >= this.cost.bteMinBytes && bytes < this.cost.bteMaxBytes;
  }
  zero(bytes: number): ZeroResult | null {
    if (this.failNext > 0) {
      this.failNext--;
      this.failures++;
      return null;
    }
    return { wallNs: this.cost.bteSetupNs + bytes / this.cost.bteBytesPerNs, cpuNs: this.cost.bteSetupNs };
  }
}

/** Drivers in the order kscrubd tries them: the configured list, newest (first named) first. */
export function makeZeroDrivers(names: readonly ZeroDriverName[], cost: CostModel, pageSize: number): ZeroDriver[] {
  return names.map((n) => (n === 'bte' ? new BteZeroDriver(cost) : new CpuZeroDriver(cost, pageSize)));
}
