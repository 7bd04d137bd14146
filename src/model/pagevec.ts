import { MAX_PREALLOC_ORDER } from '../uapi';

/**
 * lru_cache_add_active's per-CPU pagevec holds PAGEVEC_SIZE pages before it drains: 14 in
 * include/linux/pagevec.h from 2.6.10-rc1 on ("14 pointers + two long's align the pagevec
 * structure to a power of two"; 16 before Oct 2004), so in every kernel of the published rows
 * (2.6.10-rc2, 2.6.10-rc3) and in 2.6.11. The prefault patch's own text says 16.
 */
export const PAGEVEC_SIZE = 14;
/** The smallest order whose run fills a pagevec (2^4 = 16 ≥ 14): V2 maps at most a pagevec a fault. */
export const PAGEVEC_ORDER = MAX_PREALLOC_ORDER;

/**
 * A modern kernel's LRU batch: folio_batch_add() in lru_add (mm/swap.c, the per-CPU
 * cpu_fbatches.lru_add) drains when the batch has no space left, and a folio_batch holds
 * PAGEVEC_SIZE folios: 31 in 6.18's include/linux/pagevec.h ("31 pointers + header align the
 * folio_batch structure to a power of two"; 15 before the batch was doubled).
 */
export const FOLIO_BATCH_SIZE = 31;

/**
 * Each CPU's LRU batch: 2.6.11's lru_add_active_pvecs (PAGEVEC_SIZE pages) or a modern
 * kernel's lru_add folio batch (FOLIO_BATCH_SIZE); only how many pages each holds.
 */
export class Pagevecs {
  private readonly count: Uint8Array;

  constructor(
    cpus: number,
    /** Pages a CPU's batch holds when it drains. */
    readonly size: number = PAGEVEC_SIZE,
  ) {
    this.count = new Uint8Array(cpus);
  }

  /** A page joins cpu's pagevec: true when that filled it, and it is drained (now empty). */
  add(cpu: number): boolean {
    const k = this.count[cpu]! + 1;
    if (k < this.size) {
      this.count[cpu] = k;
      return false;
    }
    this.count[cpu] = 0;
    return true;
  }
}
