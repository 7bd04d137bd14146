import type { Cacheline, LineCosts } from './cacheline';

/**
 * A read-write semaphore as 2.6.11's ia64 rwsem: the count is one word, and down_read and
 * up_read are each a fetchadd on its cacheline — the line moves to the reader's CPU, dearer
 * from another node. mm->mmap_sem is one, sharing mm_struct's first line with
 * page_table_lock. The model's writers (mmap, munmap, exit) never overlap a fault — commands
 * are serialized — so only the read side is priced.
 */
export class RwSem {
  constructor(
    /** The count's cacheline (mmap_sem's is mm_struct's first, page_table_lock's too). */
    readonly line: Cacheline,
  ) {}

  /** down_read by `cpu` (the fault's entry, ia64_do_page_fault): the fetchadd's price. */
  downRead(costs: LineCosts, cpu: number): number {
    return costs.take(this.line, cpu);
  }

  /** up_read by `cpu` (the fault's end): the fetchadd's price. */
  upRead(costs: LineCosts, cpu: number): number {
    return costs.take(this.line, cpu);
  }
}
