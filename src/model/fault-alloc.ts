import type { FaultPricing } from './fault-price';
import type { Parts } from './parts';
import type { Runner } from './runner';

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
