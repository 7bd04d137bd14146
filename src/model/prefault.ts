import { orderPages } from './page';
import { PAGEVEC_ORDER, PAGEVEC_SIZE } from './pagevec';
import type { Runner } from './runner';

/**
 * Anticipatory prefault as Lameter's V2 patch has it: how many pages a fault at r.faultAddr
 * maps (a write fault allocates them, a read fault maps ZERO_PAGE over them; both update the
 * prediction). A fault where the task was predicted to fault next raises the order by one, up
 * to vm.max_prealloc_order, and maps 2^order pages, at most a pagevec (PAGEVEC_SIZE, 14 in the
 * modelled kernels): with 4, V2 as published, 1, 2, 4, 8, 14, 14 … (the patch's text says 16:
 * its pagevec was 16 pages when it was written; after a full run V2 resets the order to 3, so
 * the next hit climbs back to the cap, the same sequence). The sysctl is what its name says:
 * at most 2^n pages a fault, n = 0 turns prefault off. A miss or MADV_RANDOM resets the order.
 * The run is clipped to the VMA end and the PMD (one pte page, r.tableEnd) boundary.
 */
export function prefaultPages(r: Runner, maxPreallocOrder: number, pageSize: number): number {
  const task = r.task;
  const max = Math.min(maxPreallocOrder, PAGEVEC_ORDER);
  if (max === 0 || r.vma.random || r.faultAddr !== task.nextAddr) task.order = 0;
  else task.order = Math.min(task.order + 1, max);
  // The runner's pte page is faultAddr's (faultBegin made sure): its end is the PMD's.
  const limit = Math.min(r.vma.end, r.tableEnd);
  const n = Math.max(1, Math.min(orderPages(task.order), PAGEVEC_SIZE, (limit - r.faultAddr) / pageSize));
  task.nextAddr = r.faultAddr + n * pageSize;
  return n;
}
