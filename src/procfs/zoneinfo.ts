import type { Machine, Zone } from '../model';
import { zoneTypes } from './common';
import { NODE_STAT_ITEMS, NUMA_EVENT_ITEMS, ZONE_STAT_ITEMS, nodeStats, zoneStats } from './vmstat';

/**
 * /proc/zoneinfo as a 6.18 kernel's zoneinfo_show_print() prints it, one block per zone of the
 * model, the node's per-node stats under its first zone. Where the model differs:
 *
 *   promo       high + (high − low), the kernel's step on the model's watermarks
 *   protection  lowmem_reserve[] is all 0: the model keeps no reserve between zones; one entry
 *               per zone type of the layout (x86_64: DMA, DMA32, Normal; ia64: DMA)
 *   pagesets    count = pages on all three per-cpu lists (hot, cold, cold-zeroed); high and
 *               batch are the hot list's; high_min = high_max = high (2.6.11 did not tune it)
 *   vm stats threshold  0: the model's counters are exact, with no per-cpu deltas to fold
 */
export function render(m: Machine): string {
  const protection = `(${zoneTypes(m).map(() => '0').join(', ')})`;
  let out = '';
  for (const z of m.zones) {
    out += `Node ${z.node}, zone ${z.name.padStart(8)}`;
    if (m.nodeZones[z.node]![0] === z) out += perNodeStats(m, z.node);
    out += watermarks(z, protection);
    out += stats(ZONE_STAT_ITEMS, zoneStats(m, z));
    out += stats(NUMA_EVENT_ITEMS, {});
    out += pagesets(m, z);
    out += `\n  node_unreclaimable:  0\n  start_pfn:           ${z.startPfn}\n`;
  }
  return out;
}

function perNodeStats(m: Machine, node: number): string {
  return `\n  per-node stats${stats(NODE_STAT_ITEMS, nodeStats(m, node))}`;
}

function watermarks(z: Zone, protection: string): string {
  const promo = z.watermarkHigh + (z.watermarkHigh - z.watermarkLow);
  return (
    `\n  pages free     ${z.freePages}` +
    '\n        boost    0' +
    `\n        min      ${z.watermarkMin}` +
    `\n        low      ${z.watermarkLow}` +
    `\n        high     ${z.watermarkHigh}` +
    `\n        promo    ${promo}` +
    `\n        spanned  ${z.spannedPages}` +
    `\n        present  ${z.presentPages}` +
    `\n        managed  ${z.managedPages}` +
    '\n        cma      0' +
    `\n        protection: ${protection}`
  );
}

/** `"\n      %-12s %lu"` per item. */
function stats(names: readonly string[], values: Partial<Record<string, number>>): string {
  let out = '';
  for (const name of names) out += `\n      ${name.padEnd(12)} ${values[name] ?? 0}`;
  return out;
}

function pagesets(m: Machine, z: Zone): string {
  let out = '\n  pagesets';
  for (let cpu = 0; cpu < m.config.cpus; cpu++) {
    const lists = z.pageset[cpu]!;
    let count = 0;
    for (const p of lists) count += p.list.length;
    const hot = lists[0]!;
    out +=
      `\n    cpu: ${cpu}` +
      `\n              count:    ${count}` +
      `\n              high:     ${hot.high}` +
      `\n              batch:    ${hot.batch}` +
      `\n              high_min: ${hot.high}` +
      `\n              high_max: ${hot.high}` +
      '\n  vm stats threshold: 0';
  }
  return out;
}
