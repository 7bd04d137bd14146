import { orderPages } from './page';
import { PAGEVEC_ORDER } from './pagevec';
import type { Runner } from './runner';

/**
 * Anticipatory prefault as Lameter's V2 patch has it: how many pages a write fault at
 * r.faultAddr maps. A fault where the task was predicted to fault next raises the order by one
 * and maps 2^order pages, up to PAGEVEC_SIZE (16); after a 16-page fault the order goes back to
 * vm.max_prealloc_order (V2's constant 3), so the next hit maps 2^(3+1) = 16 again: 1, 2, 4,
 * 8, 16, 16 … A miss or MADV_RANDOM resets the order; max_prealloc_order 0 turns prefault off.
 * The run is clipped to the VMA end and the PMD (one pte page, r.tableEnd) boundary.
 */
export function prefaultPages(r: Runner, maxPreallocOrder: number, pageSize: number): number {
  const task = r.task;
  const max = maxPreallocOrder;
  if (max === 0 || r.vma.random || r.faultAddr !== task.nextAddr) task.order = 0;
  else task.order = Math.min((task.order >= PAGEVEC_ORDER ? max : task.order) + 1, PAGEVEC_ORDER);
  // The runner's pte page is faultAddr's (faultBegin made sure): its end is the PMD's.
  const limit = Math.min(r.vma.end, r.tableEnd);
  const n = Math.max(1, Math.min(orderPages(task.order), (limit - r.faultAddr) / pageSize));
  task.nextAddr = r.faultAddr + n * pageSize;
  return n;
}
