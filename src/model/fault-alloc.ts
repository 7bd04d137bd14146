import type { FaultPricing } from './fault-price';
import type { Parts } from './parts';
import type { VmEvents } from './counters';
import type { Runner, TouchCounts } from './runner';

/** What fault-alloc uses of the machine (parts.ts). */
export type FaultAllocMachine = Pick<Parts, 'allocPages' | 'pageSize'>;

/**
 * Allocate (and price) the fault's n pages into r.pfns, stopping at the first failure. The
 * faulting page is do_anonymous_page's __GFP_ZERO allocation (prezeroed if a zeroed page is
 * there, else cleared now); V2's prefaulted pages are alloc_page_vma(GFP_HIGHUSER), each
 * cleared in the fault by clear_user_highpage whatever list it came from: prefault never
 * takes the zeroed lists' work, as the two patches never combined. A page is counted
 * prezeroed or hot-zeroed when section 2 maps it (anon-fault.ts), not here: one whose pte was
 * filled meanwhile goes back unmapped.
 */
export function allocRun(m: FaultAllocMachine, p: FaultPricing, r: Runner, n: number): void {
  const served = p.served;
  if (n > r.pfns.length) {
    r.pfns = new Float64Array(n);
    r.hot = new Uint8Array(n);
  }
  for (let i = 0; i < n; i++) {
    const gfpZero = i === 0;
    const pfn = m.allocPages(0, gfpZero, r.node, r.cpu, served);
    if (pfn < 0) break;
    const hot = p.priceAlloc(r, m.pageSize, !gfpZero);
    // clear_user_highpage of a GFP_HIGHUSER page (allocPages marked a __GFP_ZERO one already).
    if (!gfpZero) served.zone!.setZero(pfn, 1, true);
    if (i === 0) r.firstNode = served.zone!.node;
    r.pfns[i] = pfn;
    r.hot[i] = hot ? 1 : 0;
    r.nPages++;
  }
}

/**
 * A page section 2 of do_anonymous_page mapped: pgfault_prezeroed/hot_zeroed count pages
 * faults mapped (a huge fault's too, thp.ts). A page released because its pte was already
 * set was cleared, but is no fault page (its time is in sys_ns and zero_ns).
 */
export function countMapped(vm: VmEvents, counts: TouchCounts, hot: boolean, prefaulted: boolean): void {
  if (hot) {
    counts.hotZeroed++;
    vm.faultHotZeroed++;
  } else {
    counts.prezeroed++;
    vm.faultPrezeroed++;
  }
  if (prefaulted) {
    counts.prefaulted++;
    vm.prefaultPages++;
  }
}
