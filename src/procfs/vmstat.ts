import type { Machine, Zone } from '../model';
import { COUNTERS } from '../uapi/counters';
import { nodeAnonPages, nodePageTablePages, zoneAnonPages } from './common';
import { counterValues } from './counters';

// /proc/vmstat: `name value` lines, a 6.18 kernel's items in its order (mm/vmstat.c
// vmstat_text[]), then the patch's own counters (the table in src/uapi/counters.ts, with what
// each counts). Items the model has no meaning for read 0.
// zoneinfo prints the zone, NUMA and node groups per zone/node from the same tables.

/** enum zone_stat_item. */
export const ZONE_STAT_ITEMS = [
  'nr_free_pages', 'nr_free_pages_blocks', 'nr_zone_inactive_anon', 'nr_zone_active_anon',
  'nr_zone_inactive_file', 'nr_zone_active_file', 'nr_zone_unevictable', 'nr_zone_write_pending',
  'nr_mlock', 'nr_zspages', 'nr_free_cma',
] as const;

/** enum numa_stat_item (CONFIG_NUMA). */
export const NUMA_EVENT_ITEMS = ['numa_hit', 'numa_miss', 'numa_foreign', 'numa_interleave', 'numa_local', 'numa_other'] as const;

/** enum node_stat_item. */
export const NODE_STAT_ITEMS = [
  'nr_inactive_anon', 'nr_active_anon', 'nr_inactive_file', 'nr_active_file', 'nr_unevictable',
  'nr_slab_reclaimable', 'nr_slab_unreclaimable', 'nr_isolated_anon', 'nr_isolated_file',
  'workingset_nodes', 'workingset_refault_anon', 'workingset_refault_file', 'workingset_activate_anon',
  'workingset_activate_file', 'workingset_restore_anon', 'workingset_restore_file', 'workingset_nodereclaim',
  'nr_anon_pages', 'nr_mapped', 'nr_file_pages', 'nr_dirty', 'nr_writeback', 'nr_shmem',
  'nr_shmem_hugepages', 'nr_shmem_pmdmapped', 'nr_file_hugepages', 'nr_file_pmdmapped',
  'nr_anon_transparent_hugepages', 'nr_vmscan_write', 'nr_vmscan_immediate_reclaim', 'nr_dirtied',
  'nr_written', 'nr_throttled_written', 'nr_kernel_misc_reclaimable', 'nr_foll_pin_acquired',
  'nr_foll_pin_released', 'nr_kernel_stack', 'nr_page_table_pages', 'nr_sec_page_table_pages',
  'nr_iommu_pages', 'nr_swapcached', 'pgpromote_success', 'pgpromote_candidate', 'pgpromote_candidate_nrl',
  'pgdemote_kswapd', 'pgdemote_direct', 'pgdemote_khugepaged', 'pgdemote_proactive', 'nr_hugetlb',
  'nr_balloon_pages', 'nr_kernel_file_pages',
] as const;

/** enum writeback_stat_item, then enum vm_stat_item. */
const GLOBAL_ITEMS = ['nr_dirty_threshold', 'nr_dirty_background_threshold', 'nr_memmap_pages', 'nr_memmap_boot_pages'] as const;

/** enum vm_event_item (x86_64, CONFIG_NUMA, THP, compaction, balloon, swap, zswap). */
const VM_EVENT_ITEMS = [
  'pgpgin', 'pgpgout', 'pswpin', 'pswpout',
  'pgalloc_dma', 'pgalloc_dma32', 'pgalloc_normal', 'pgalloc_movable', 'pgalloc_device',
  'allocstall_dma', 'allocstall_dma32', 'allocstall_normal', 'allocstall_movable', 'allocstall_device',
  'pgskip_dma', 'pgskip_dma32', 'pgskip_normal', 'pgskip_movable', 'pgskip_device',
  'pgfree', 'pgactivate', 'pgdeactivate', 'pglazyfree', 'pgfault', 'pgmajfault', 'pglazyfreed',
  'pgrefill', 'pgreuse', 'pgsteal_kswapd', 'pgsteal_direct', 'pgsteal_khugepaged', 'pgsteal_proactive',
  'pgscan_kswapd', 'pgscan_direct', 'pgscan_khugepaged', 'pgscan_proactive', 'pgscan_direct_throttle',
  'pgscan_anon', 'pgscan_file', 'pgsteal_anon', 'pgsteal_file', 'zone_reclaim_success',
  'zone_reclaim_failed', 'pginodesteal', 'slabs_scanned', 'kswapd_inodesteal',
  'kswapd_low_wmark_hit_quickly', 'kswapd_high_wmark_hit_quickly', 'pageoutrun', 'pgrotated',
  'drop_pagecache', 'drop_slab', 'oom_kill', 'numa_pte_updates', 'numa_huge_pte_updates',
  'numa_hint_faults', 'numa_hint_faults_local', 'numa_pages_migrated', 'pgmigrate_success',
  'pgmigrate_fail', 'thp_migration_success', 'thp_migration_fail', 'thp_migration_split',
  'compact_migrate_scanned', 'compact_free_scanned', 'compact_isolated', 'compact_stall', 'compact_fail',
  'compact_success', 'compact_daemon_wake', 'compact_daemon_migrate_scanned', 'compact_daemon_free_scanned',
  'htlb_buddy_alloc_success', 'htlb_buddy_alloc_fail', 'unevictable_pgs_culled', 'unevictable_pgs_scanned',
  'unevictable_pgs_rescued', 'unevictable_pgs_mlocked', 'unevictable_pgs_munlocked',
  'unevictable_pgs_cleared', 'unevictable_pgs_stranded', 'thp_fault_alloc', 'thp_fault_fallback',
  'thp_fault_fallback_charge', 'thp_collapse_alloc', 'thp_collapse_alloc_failed', 'thp_file_alloc',
  'thp_file_fallback', 'thp_file_fallback_charge', 'thp_file_mapped', 'thp_split_page',
  'thp_split_page_failed', 'thp_deferred_split_page', 'thp_underused_split_page', 'thp_split_pmd',
  'thp_scan_exceed_none_pte', 'thp_scan_exceed_swap_pte', 'thp_scan_exceed_share_pte', 'thp_split_pud',
  'thp_zero_page_alloc', 'thp_zero_page_alloc_failed', 'thp_swpout', 'thp_swpout_fallback',
  'balloon_inflate', 'balloon_deflate', 'balloon_migrate', 'swap_ra', 'swap_ra_hit', 'swpin_zero',
  'swpout_zero', 'ksm_swpin_copy', 'cow_ksm', 'zswpin', 'zswpout', 'zswpwb',
  'direct_map_level2_splits', 'direct_map_level3_splits', 'direct_map_level2_collapses',
  'direct_map_level3_collapses',
] as const;

/** vmstat_show() prints this one after the table, for old tools (always 0). */
const LEGACY_ITEMS = ['nr_unstable'] as const;

/** Every item a 6.18 kernel prints, in order: the field set of the fixture. */
export const KERNEL_ITEMS: readonly string[] = [
  ...ZONE_STAT_ITEMS, ...NUMA_EVENT_ITEMS, ...NODE_STAT_ITEMS, ...GLOBAL_ITEMS, ...VM_EVENT_ITEMS, ...LEGACY_ITEMS,
];

export type ZoneStatItem = (typeof ZONE_STAT_ITEMS)[number];
export type NodeStatItem = (typeof NODE_STAT_ITEMS)[number];

/** Zone items the model has values for, given the zone's (or the machine's) counts. */
function zoneItems(free: number, anon: number): Partial<Record<ZoneStatItem, number>> {
  return { nr_free_pages: free, nr_zone_active_anon: anon };
}

/** Node items the model has values for. */
function nodeItems(anon: number, pageTables: number): Partial<Record<NodeStatItem, number>> {
  return { nr_active_anon: anon, nr_anon_pages: anon, nr_page_table_pages: pageTables };
}

/** One zone's items (zoneinfo). */
export function zoneStats(m: Machine, z: Zone): Partial<Record<ZoneStatItem, number>> {
  return zoneItems(z.freePages, zoneAnonPages(m, z));
}

/** One zone's NUMA events (zoneinfo), or the machine's (vmstat) as their sums. */
export function numaStats(zones: readonly Zone[]): Record<(typeof NUMA_EVENT_ITEMS)[number], number> {
  const s = { numa_hit: 0, numa_miss: 0, numa_foreign: 0, numa_interleave: 0, numa_local: 0, numa_other: 0 };
  for (const z of zones) {
    s.numa_hit += z.numaHit;
    s.numa_miss += z.numaMiss;
    s.numa_foreign += z.numaForeign;
    s.numa_local += z.numaLocal;
    s.numa_other += z.numaOther;
  }
  return s;
}

/** One node's items (zoneinfo's per-node stats). */
export function nodeStats(m: Machine, node: number): Partial<Record<NodeStatItem, number>> {
  return nodeItems(nodeAnonPages(m, node), nodePageTablePages(m, node));
}

export function render(m: Machine): string {
  // Machine-wide sums, as global_zone_page_state()/global_node_page_state() give them (the
  // anon and page-table totals even where zoneinfo cannot place them on a node).
  const counters = counterValues(m);
  const values = new Map<string, number>([
    ...Object.entries(zoneItems(m.freePagesTotal(), m.procs.nrAnonPages)),
    ...Object.entries(nodeItems(m.procs.nrAnonPages, m.procs.nrPageTablePages)),
    ...Object.entries(numaStats(m.zones)),
  ]);
  // The table's kernel items (pgfree, pgfault, the THP ones …) at their kernel place.
  for (const c of COUNTERS) if (c.kernel) values.set(c.name, counters.get(c.name)!);
  for (const z of m.zones) {
    const name = `pgalloc_${z.name.toLowerCase()}`;
    values.set(name, (values.get(name) ?? 0) + z.pgalloc);
  }
  let out = '';
  for (const name of KERNEL_ITEMS) out += `${name} ${values.get(name) ?? 0}\n`;
  // Then the patch's own, in table order.
  for (const c of COUNTERS) {
    const v = counters.get(c.name);
    if (!c.kernel && v !== undefined) out += `${c.name} ${v}\n`;
  }
  return out;
}
