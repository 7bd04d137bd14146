/** lru_cache_add_active's per-CPU pagevec holds PAGEVEC_SIZE pages before it drains. */
export const PAGEVEC_SIZE = 16;
/** log2(PAGEVEC_SIZE): the largest prefault order (V2 maps at most a pagevec a fault). */
export const PAGEVEC_ORDER = 4;

/** Each CPU's LRU pagevec (mm/swap.c's lru_add_active_pvecs): only how many pages it holds. */
export class Pagevecs {
  private readonly count: Uint8Array;

  constructor(cpus: number) {
    this.count = new Uint8Array(cpus);
  }

  /** A page joins cpu's pagevec: true when that filled it, and it is drained (now empty). */
  add(cpu: number): boolean {
    const k = this.count[cpu]! + 1;
    if (k < PAGEVEC_SIZE) {
      this.count[cpu] = k;
      return false;
    }
    this.count[cpu] = 0;
    return true;
  }
}
