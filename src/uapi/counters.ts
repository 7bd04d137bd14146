// The counters kscrubfs prints, one row each, as mm/vmstat.c keeps vmstat_text[] beside the
// enum the kernel increments: the name every file and client uses (the kernel's where it has
// one), the model's field that holds it, its unit and what it counts. vmstat, zoneinfo, the
// control file's `stats`, `watch` and its node_exporter textfile all render from this table,
// and the model's storage (src/model/counters.ts) is keyed by its fields. A row of a zeroing
// policy is printed only by a machine booted with that policy, as a kernel prints only the
// items of what it was built with.

import type { ZeroingPolicyName } from './policies';

/** Where the model keeps a counter: VmEvents, every node's kscrubd summed, or a count of the machine's state. */
export type CounterSource = 'vm' | 'kscrubd' | 'machine';

export interface CounterSpec {
  /** The name vmstat prints, and `stats` and the exporter (kscrubfs_<name>) use. */
  readonly name: string;
  readonly source: CounterSource;
  /** The field of the source that holds it (model/counters.ts). */
  readonly field: string;
  /** What one unit of the value is. */
  readonly unit: 'pages' | 'huge pages' | 'blocks' | 'events' | 'us';
  /** counter: only grows; gauge: a level that goes up and down. */
  readonly kind: 'counter' | 'gauge';
  /** A 6.18 kernel's own item, printed at its place in vmstat_text[]; else printed after them, as the patch's. */
  readonly kernel: boolean;
  /** Printed per zone in zoneinfo too (with the zone's value). */
  readonly zoneinfo: boolean;
  /** Printed only when the machine runs this zeroing policy; null: always. */
  readonly policy: ZeroingPolicyName | null;
  readonly help: string;
}

const row = <N extends string, S extends CounterSource, F extends string>(
  name: N, source: S, field: F, unit: CounterSpec['unit'], kind: CounterSpec['kind'], help: string,
  where: { kernel?: true; zoneinfo?: true; policy?: ZeroingPolicyName } = {},
) => ({ name, source, field, unit, kind, kernel: where.kernel === true, zoneinfo: where.zoneinfo === true, policy: where.policy ?? null, help }) as const;

/** Every counter, the patch's own in the order vmstat prints them after the kernel's. */
export const COUNTERS = [
  row('nr_zero_pages', 'machine', 'zeroPages', 'pages', 'gauge', 'free pages on the zeroed lists (MemZero)', { zoneinfo: true }),
  row('nr_scrub_pages', 'machine', 'scrubPages', 'pages', 'gauge', 'free pages kscrubd holds off the lists while zeroing them'),
  row('nr_pcp_pages', 'machine', 'pcpPages', 'pages', 'gauge', 'pages on per-cpu lists (hot, cold and cold-zeroed)'),
  row('pgalloc_prezeroed', 'vm', 'allocPrezeroed', 'pages', 'counter', 'pages of __GFP_ZERO allocations served from the zeroed lists'),
  row('pgalloc_hot_zeroed', 'vm', 'allocHotZeroed', 'pages', 'counter', 'pages of __GFP_ZERO allocations zeroed on the spot (hot zeroing)'),
  row('pgalloc_zero_wasted', 'vm', 'allocZeroWasted', 'pages', 'counter', 'zeroed pages handed to allocations that did not ask for zero'),
  row('pgalloc_fail', 'vm', 'allocFail', 'events', 'counter', 'allocations that failed on every allowed zone'),
  row('kscrubd_wakes', 'kscrubd', 'wakes', 'events', 'counter', 'kscrubd wake-ups, all nodes'),
  row('kscrubd_bursts', 'kscrubd', 'bursts', 'events', 'counter', 'kscrubd bursts (a wake that zeroed until nothing was left), all nodes'),
  row('kscrubd_blocks', 'kscrubd', 'blocks', 'blocks', 'counter', 'free blocks kscrubd zeroed'),
  row('kscrubd_pages', 'kscrubd', 'pages', 'pages', 'counter', 'pages kscrubd zeroed'),
  row('kscrubd_cpu_us', 'kscrubd', 'cpuNs', 'us', 'counter', 'CPU time kscrubd spent zeroing (system time in stat)'),
  row('kscrubd_bte_blocks', 'kscrubd', 'bteBlocks', 'blocks', 'counter', 'blocks zeroed by the block-transfer engine'),
  row('kscrubd_bte_fallbacks', 'kscrubd', 'bteFallbacks', 'events', 'counter', 'BTE transfers that failed and fell back to the CPU'),
  row('pgfault_prezeroed', 'vm', 'faultPrezeroed', 'pages', 'counter', 'pages write faults mapped that were prezeroed (prefaulted pages included)'),
  row('pgfault_hot_zeroed', 'vm', 'faultHotZeroed', 'pages', 'counter', 'pages write faults mapped that they had to zero in the fault path (prefaulted pages included; one released unmapped is in neither)'),
  row('pgfault_zero_page', 'vm', 'faultZeroPage', 'events', 'counter', 'read faults that mapped the shared ZERO_PAGE'),
  row('pgfault_cow', 'vm', 'faultCow', 'events', 'counter', 'write faults on the ZERO_PAGE (copy-on-write without a copy)'),
  row('pgfault_oom', 'vm', 'faultOom', 'events', 'counter', 'faults that found no memory'),
  row('prefault_pages', 'vm', 'prefaultPages', 'pages', 'counter', 'pages mapped ahead of the faulting address (anticipatory prefault)'),
  row('prefault_released', 'vm', 'prefaultReleased', 'pages', 'counter', 'prefaulted pages freed again because their pte was filled meanwhile (cleared in the fault, never mapped)'),
  row('thp_fault_prezeroed', 'vm', 'thpFaultPrezeroed', 'events', 'counter', 'huge-page faults (thp_fault_alloc) served by a block kscrubd had zeroed'),
  row('thp_fault_hot_zeroed', 'vm', 'thpFaultHotZeroed', 'events', 'counter', 'huge-page faults that cleared their huge page in the fault'),
  row('pcp_refill_pages', 'vm', 'pcpRefillPages', 'pages', 'counter', 'pages moved from the buddy lists to per-cpu lists'),
  row('pcp_drain_pages', 'vm', 'pcpDrainPages', 'pages', 'counter', 'pages moved from per-cpu lists back to the buddy lists'),
  row('init_on_free_pages', 'vm', 'initOnFreePages', 'pages', 'counter', 'pages init_on_free cleared as they were freed', { policy: 'init_on_free' }),
  row('init_on_free_us', 'vm', 'initOnFreeNs', 'us', 'counter', 'CPU time init_on_free spent clearing freed pages, charged to whoever freed them (munmap, exit)', { policy: 'init_on_free' }),
  row('init_on_alloc_pages', 'vm', 'initOnAllocPages', 'pages', 'counter', 'pages init_on_alloc cleared for allocations that did not ask for __GFP_ZERO', { policy: 'init_on_alloc' }),
  // The kernel's own items that the model moves (vmstat prints them in vmstat_text[] order).
  row('nr_free_pages', 'machine', 'freePages', 'pages', 'gauge', 'free pages, on the buddy lists and held by kscrubd', { kernel: true, zoneinfo: true }),
  row('nr_anon_pages', 'machine', 'anonPages', 'pages', 'gauge', 'anonymous pages mapped by processes', { kernel: true }),
  row('nr_anon_transparent_hugepages', 'machine', 'anonThps', 'huge pages', 'gauge', 'transparent huge pages mapped', { kernel: true }),
  row('pgfree', 'vm', 'pgfree', 'pages', 'counter', 'pages freed', { kernel: true }),
  row('pgfault', 'vm', 'pgfault', 'events', 'counter', 'page faults', { kernel: true }),
  row('thp_fault_alloc', 'vm', 'thpFaultAlloc', 'events', 'counter', 'faults that mapped a transparent huge page', { kernel: true }),
  row('thp_fault_fallback', 'vm', 'thpFaultFallback', 'events', 'counter', 'huge-page faults that fell back to small pages', { kernel: true }),
] as const satisfies readonly CounterSpec[];

type Row = (typeof COUNTERS)[number];
export type CounterName = Row['name'];
/** The fields of VmEvents, of kscrubd's totals and of the machine's counts that the table names. */
export type VmEventField = Extract<Row, { source: 'vm' }>['field'];
export type KscrubdField = Extract<Row, { source: 'kscrubd' }>['field'];
export type MachineCountField = Extract<Row, { source: 'machine' }>['field'];

/** The value a file prints for a counter of `spec` kept as `raw` (kscrubd's CPU time is kept in ns). */
export function counterValue(spec: CounterSpec, raw: number): number {
  return spec.unit === 'us' ? Math.floor(raw / 1e3) : raw;
}

/**
 * The node_exporter textfile metric of a counter: kscrubfs_<name>, counters with _total, and
 * a time in seconds as Prometheus wants base units (kscrubd_cpu_us → kscrubd_cpu_seconds_total):
 * the value printed is vmstat's ÷ divisor.
 */
export function exportedMetric(spec: CounterSpec): { readonly name: string; readonly divisor: number } {
  const base = spec.unit === 'us' ? `${spec.name.replace(/_us$/, '')}_seconds` : spec.name;
  return { name: `kscrubfs_${base}${spec.kind === 'counter' ? '_total' : ''}`, divisor: spec.unit === 'us' ? 1e6 : 1 };
}

/** Does a machine running `policies` print counter `spec`? */
export function counterShown(spec: CounterSpec, policies: readonly ZeroingPolicyName[]): boolean {
  return spec.policy === null || policies.includes(spec.policy);
}
