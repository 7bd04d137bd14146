import { assert } from './errors';
import { type FreeClass, KIND_ALLOC, KIND_PCP, NOT_ZEROED, classOf, orderPages, pageFlags } from './page';
import { type FreeListener, type PerCpuPages, type Zone, pcpCount, pfnList } from './zone';

/**
 * A modern kernel's high-order per-cpu lists (5.13: "mm/page_alloc: allow high-order pages to
 * be stored on the per-cpu lists"; 6.18's mm/page_alloc.c). struct per_cpu_pages has
 * NR_PCP_LISTS lists: one per migrate type for each order up to PAGE_ALLOC_COSTLY_ORDER, and
 * the THP order's; they share one count (in pages), one high and one batch with order 0. The
 * model has one migrate type (user memory is movable), so a CPU's hot list carries lists for
 * orders 1, 2, 3 and HPAGE_PMD_ORDER beside its order-0 list:
 *
 *   rmqueue_pcplist  an empty list is refilled by rmqueue_bulk with nr_pcp_alloc(order)
 *        blocks: batch >> order, at least 2 (and pcp->high grows by a batch); the allocation
 *        takes the list's head
 *   free_frozen_page_commit  a freed block goes to the head of its list; nr_pcp_high and
 *        nr_pcp_free decide a drain as for order 0, counting 2^order pages; a run of
 *        order-1…3 frees with no allocation between (free_count ≥ batch + high_min / 2, the
 *        previous free high-order too) is `free_high`: drain up to batch << 5 pages now,
 *        unless the CPU's slice of its LLC holds 3 batches (PCPF_FREE_HIGH_BATCH) and the
 *        lists hold less than a batch
 *   free_pcppages_bulk  a drain empties the freed block's list first, oldest block first,
 *        then the next non-empty list in order (0, 1, 2, 3, THP, 0, …) until enough pages
 *        went back to the buddy lists
 *
 * What stays as the prezeroing patch has it: a __GFP_ZERO request that kscrubd's zeroed
 * blocks can serve takes one from the zeroed buddy lists (Machine.bufferedRmqueue), as the
 * patch has no zeroed high-order per-cpu list; refills take not-zeroed blocks only.
 */

/** PAGE_ALLOC_COSTLY_ORDER: the highest order kept on per-cpu lists besides the THP order. */
export const PAGE_ALLOC_COSTLY_ORDER = 3;

/** pcp_allowed_order(): 1 … PAGE_ALLOC_COSTLY_ORDER, and the THP order where THP is possible (0 goes to the order-0 list). */
export function pcpOrders(thpOrder: number | null, maxOrder: number): number[] {
  const orders: number[] = [];
  for (let o = 1; o <= PAGE_ALLOC_COSTLY_ORDER && o < maxOrder; o++) orders.push(o);
  if (thpOrder !== null && thpOrder > PAGE_ALLOC_COSTLY_ORDER) orders.push(thpOrder);
  return orders;
}

/**
 * Give each CPU's hot list in `z` its high-order lists. `sliceBytes`: the CPU's share of its
 * last-level cache (setup_pcp_cacheinfo's per_cpu_data_slice_size).
 */
export function attachPcpOrders(z: Zone, orders: readonly number[], sliceBytes: number, pageSize: number): void {
  for (const sets of z.pageset) {
    const hot = sets[0]!;
    const lists: number[][] = [];
    for (let o = 0; o <= (orders[orders.length - 1] ?? 0); o++) lists.push(pfnList());
    hot.orders = { orders, lists, pages: 0, prevFreeHighOrder: false, freeHighBatch: Math.floor(sliceBytes / pageSize) > 3 * hot.batch };
  }
}

/** Does `pcp` keep blocks of `order` (order > 0)? */
export function pcpKeeps(pcp: PerCpuPages, order: number): boolean {
  const o = pcp.orders;
  return o !== null && order < o.lists.length && o.orders.includes(order);
}

/**
 * nr_pcp_alloc() for order > 0: pcp->high grows by a batch towards high_max unless the zone
 * is below its high watermark; the refill is batch >> order blocks, at least 2.
 */
function nrPcpAlloc(z: Zone, pcp: PerCpuPages, order: number): number {
  const batch = pcp.batch;
  pcp.high = Math.min(Math.max(pcp.high, pcp.highMin), pcp.highMax);
  if (pcp.highMin !== pcp.highMax && z.freePages >= z.watermarkHigh) pcp.high = Math.min(pcp.high + batch, pcp.highMax);
  return batch > 1 ? Math.max(Math.floor(batch / orderPages(order)), 2) : batch;
}

/**
 * __rmqueue_pcplist() for order > 0: a block of `order` off `pcp`'s list, refilled first if
 * empty. Returns the pfn (its head still says per-cpu: the caller marks it allocated) or -1,
 * and the blocks a refill moved under zone->lock in `moved[0]`.
 * Precondition: pcpKeeps(pcp, order).
 */
export function rmqueuePcpOrder(z: Zone, pcp: PerCpuPages, order: number, moved: number[]): number {
  const o = pcp.orders!;
  const list = o.lists[order]!;
  const size = orderPages(order);
  moved[0] = 0;
  // rmqueue_pcplist halves free_count before it looks at the list.
  z.pcpAllocated(pcp);
  if (list.length === 0) {
    const n = nrPcpAlloc(z, pcp, order);
    const flags = pageFlags(KIND_PCP, order, NOT_ZEROED);
    // rmqueue_bulk's list_add_tail: refilled blocks go behind what the list holds.
    for (let i = 0; i < n; i++) {
      const pfn = z.takeBlock(order, NOT_ZEROED, flags);
      if (pfn < 0) break;
      list.unshift(pfn);
      moved[0]++;
    }
    o.pages += moved[0] * size;
    z.pcpMoved(moved[0] * size);
  }
  const pfn = list.pop();
  if (pfn === undefined) return -1;
  o.pages -= size;
  z.pcpMoved(-size);
  return pfn;
}

/**
 * free_frozen_page_commit() for order > 0: put the block (its class `cls`) at the head of its
 * list and drain what nr_pcp_high / nr_pcp_free say. Returns the pages drained.
 * Precondition: pcpKeeps(pcp, order); the block is off every list.
 */
export function freePcpOrder(z: Zone, pcp: PerCpuPages, pfn: number, order: number, cls: FreeClass, onFreed: FreeListener, keepZeroed: boolean): number {
  const o = pcp.orders!;
  const size = orderPages(order);
  z.setHead(pfn, pageFlags(KIND_PCP, order, cls));
  o.lists[order]!.push(pfn);
  o.pages += size;
  z.pcpMoved(size);
  let freeHigh = false;
  if (order <= PAGE_ALLOC_COSTLY_ORDER) {
    const count = pcpCount(pcp);
    freeHigh = pcp.freeCount >= pcp.batch + Math.floor(pcp.highMin / 2) && o.prevFreeHighOrder && (!o.freeHighBatch || count >= pcp.batch);
    o.prevFreeHighOrder = true;
  } else o.prevFreeHighOrder = false;
  const drain = z.pcpFreeCount(pcp, size, freeHigh);
  return drain > 0 ? drainPcp(z, pcp, drain, order, onFreed, keepZeroed) : 0;
}

/**
 * free_pcppages_bulk(): return at least `count` pages (whole blocks) of `pcp` to the buddy
 * lists, the list of `order` first, then round-robin over the others. Returns the pages
 * freed. Order 0 drains through Zone.freePagesBulk (the patch files those NOT_ZEROED unless
 * `keepZeroed`); a high-order block goes back with its class under the same rule.
 */
export function drainPcp(z: Zone, pcp: PerCpuPages, count: number, order: number, onFreed: FreeListener, keepZeroed: boolean): number {
  const o = pcp.orders;
  if (o === null) return z.freePagesBulk(pcp, count, onFreed, keepZeroed);
  const cycle = [0, ...o.orders];
  let at = cycle.indexOf(order);
  assert(at >= 0, `order ${order} has a per-cpu list`);
  let freed = 0;
  while (freed < count && pcpCount(pcp) > 0) {
    const ord = cycle[at]!;
    at = (at + 1) % cycle.length;
    if (ord === 0) {
      if (pcp.list.length > 0) freed += z.freePagesBulk(pcp, count - freed, onFreed, keepZeroed);
      continue;
    }
    const list = o.lists[ord]!;
    const size = orderPages(ord);
    while (freed < count && list.length > 0) {
      // The list's tail: the block that has sat there longest.
      const pfn = list.shift()!;
      const cls = keepZeroed ? classOf(z.pageFlagsAt(pfn)) : NOT_ZEROED;
      z.setHead(pfn, pageFlags(KIND_ALLOC, ord, cls));
      o.pages -= size;
      z.pcpMoved(-size, true);
      onFreed.blockFreed(z, z.freeBlock(pfn, ord, cls), cls);
      freed += size;
    }
  }
  return freed;
}

/** Drain every list of `pcp`, order 0 and the high orders (drain_pages_zone). */
export function drainAll(z: Zone, pcp: PerCpuPages, onFreed: FreeListener, keepZeroed: boolean): number {
  return drainPcp(z, pcp, pcpCount(pcp), 0, onFreed, keepZeroed);
}
