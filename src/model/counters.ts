import type { KscrubdField, VmEventField } from '../uapi/counters';

/**
 * Event counters, the storage of the counter table's 'vm' rows (src/uapi/counters.ts: the name
 * each is printed by, its unit, what it counts). procfs prints them; the model only counts.
 */
export class VmEvents implements Record<VmEventField, number> {
  pgfree = 0;
  pgfault = 0;
  /** Allocations that failed on every allowed zone (the model never overcommits). */
  allocFail = 0;
  /** Pages of __GFP_ZERO allocations served from a ZEROED list: the zeroing was done ahead. */
  allocPrezeroed = 0;
  /** Pages of __GFP_ZERO allocations that had to be zeroed in the fault path (hot zeroing). */
  allocHotZeroed = 0;
  /** Pages of ordinary allocations that had to take zeroed pages: kscrubd's work thrown away. */
  allocZeroWasted = 0;
  /** Pages moved buddy → per-cpu lists and back. */
  pcpRefillPages = 0;
  pcpDrainPages = 0;
  /** Fault outcomes (the fault model adds to these); prezeroed/hot-zeroed count the pages faults mapped, prefaulted ones too (not one released unmapped). */
  faultPrezeroed = 0;
  faultHotZeroed = 0;
  faultZeroPage = 0;
  faultCow = 0;
  faultOom = 0;
  prefaultPages = 0;
  prefaultReleased = 0;
  /** Huge-page faults (thp.ts): mapped, fallen back to 4 KiB, and how mapped ones were zeroed. */
  thpFaultAlloc = 0;
  thpFaultFallback = 0;
  thpFaultPrezeroed = 0;
  thpFaultHotZeroed = 0;
  /** Huge PMDs zapped whole (their block freed as one folio; not printed). */
  thpZapFreed = 0;
  /** init_on_free: pages cleared as they were freed, and the freeing CPUs' time for it (ns). */
  initOnFreePages = 0;
  initOnFreeNs = 0;
  /** init_on_alloc: pages cleared at allocation for requests without __GFP_ZERO. */
  initOnAllocPages = 0;
}

/** Every node's kscrubd counters summed: the one place vmstat and the control file's `stats` read them. */
export interface KscrubdTotals extends Record<KscrubdField, number> {
  awake: number;
  wakes: number;
  bursts: number;
  blocks: number;
  pages: number;
  cpuNs: number;
  bteBlocks: number;
  bteFallbacks: number;
}

/** A kscrubd's counters as its class shows them (kscrubd.ts), read here without importing it. */
export type KscrubdCounts = { readonly [K in Exclude<keyof KscrubdTotals, 'awake'>]: number } & { readonly awake: boolean };

export function kscrubdTotals(all: readonly KscrubdCounts[]): KscrubdTotals {
  const t = { awake: 0, wakes: 0, bursts: 0, blocks: 0, pages: 0, cpuNs: 0, bteBlocks: 0, bteFallbacks: 0 };
  for (const k of all) {
    if (k.awake) t.awake++;
    t.wakes += k.wakes;
    t.bursts += k.bursts;
    t.blocks += k.blocks;
    t.pages += k.pages;
    t.cpuNs += k.cpuNs;
    t.bteBlocks += k.bteBlocks;
    t.bteFallbacks += k.bteFallbacks;
  }
  return t;
}
