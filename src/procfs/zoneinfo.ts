import { type Machine, type Zone, pcpCount } from '../model';
import { COUNTERS } from '../uapi/counters';
import { flatString, zoneTypes } from './common';
import { zoneCounterValue } from './counters';
import { NODE_STAT_ITEMS, NUMA_EVENT_ITEMS, ZONE_STAT_ITEMS, nodeStats, numaStats, zoneStats } from './vmstat';

/** The patch's counters zoneinfo prints per zone (the table's zoneinfo rows that are not the kernel's). */
const PATCH_ZONE_COUNTERS = COUNTERS.filter((c) => c.zoneinfo && !c.kernel);

/**
 * The zone's items as zoneinfo prints them: the kernel's, with the prezeroing patch's
 * nr_zero_pages (free pages on the zone's ZEROED lists) right after nr_free_pages, so that a
 * per-zone tool need not parse buddyinfo for it.
 */
const ZONE_ITEMS: readonly string[] = [ZONE_STAT_ITEMS[0], ...PATCH_ZONE_COUNTERS.map((c) => c.name), ...ZONE_STAT_ITEMS.slice(1)];

/**
 * /proc/zoneinfo as a 6.18 kernel's zoneinfo_show_print() prints it, one block per zone of the
 * model, the node's per-node stats under its first zone. Where the model differs:
 *
 *   promo       high + (high − low), the kernel's step on the model's watermarks
 *   protection  lowmem_reserve[], one entry per zone type of the layout (x86_64: DMA, DMA32,
 *               Normal; ia64: DMA) — a 6.18 kernel prints Movable's and Device's too; all 0
 *               on 2.6.11 presets, whose model keeps no reserve between zones
 *   pagesets    count = pages on all three per-cpu lists (hot — with its high-order lists on
 *               6.18 — cold, cold-zeroed); high and batch are the hot list's; high_min =
 *               high_max = high on 2.6.11, which did not tune it
 *   nr_zero_pages  the patch's counter, after nr_free_pages (zero_pages of the zone)
 *   vm stats threshold  0: the model's counters are exact, with no per-cpu deltas to fold
 */
export function render(m: Machine): string {
  const none = `(${zoneTypes(m).map(() => '0').join(', ')})`;
  let out = '';
  for (const z of m.zones) {
    out += `Node ${z.node}, zone ${z.name.padStart(8)}`;
    if (m.nodeZones[z.node]![0] === z) out += perNodeStats(m, z.node);
    out += watermarks(z, z.lowmemReserve.length === 0 ? none : `(${z.lowmemReserve.join(', ')})`);
    out += stats(ZONE_ITEMS, { ...zoneStats(m, z), ...Object.fromEntries(PATCH_ZONE_COUNTERS.map((c) => [c.name, zoneCounterValue(z, c)])) });
    out += stats(NUMA_EVENT_ITEMS, numaStats([z]));
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

/**
 * `"\n      %-12s %lu"` per item. Most items read 0, so a block is a few slices of a
 * precomputed all-zero block with the model's values spliced in: a render then joins a handful
 * of pieces instead of two per line, and those hundreds of tiny pieces — not the formatting —
 * were most of what an open cost (test/bench: render + Buffer per file).
 */
function stats(names: readonly string[], values: Partial<Record<string, number>>): string {
  const block = zeroBlock(names);
  let out = '';
  let from = 0;
  for (let i = 0; i < names.length; i++) {
    const v = values[names[i]!];
    if (v === undefined || v === 0) continue;
    out += block.text.slice(block.at[from], block.at[i]) + block.labels[i]! + v;
    from = i + 1;
  }
  return out + block.text.slice(block.at[from]);
}

interface ZeroBlock {
  /** Every item's line with the value 0, as one flat string. */
  readonly text: string;
  /** Where item i's line starts in `text` (at[names.length] = text.length). */
  readonly at: readonly number[];
  /** Item i's line up to its value: `"\n      %-12s "`. */
  readonly labels: readonly string[];
}

/** The all-zero block of a list of items, made once per list (the lists are constants). */
const ZERO_BLOCKS = new WeakMap<readonly string[], ZeroBlock>();
function zeroBlock(names: readonly string[]): ZeroBlock {
  let block = ZERO_BLOCKS.get(names);
  if (!block) {
    const labels = names.map((name) => flatString(`\n      ${name.padEnd(12)} `));
    const at = [0];
    for (const label of labels) at.push(at[at.length - 1]! + label.length + 1);
    // Flat, so that each slice of it is one piece, not a rope of the labels.
    block = { text: flatString(...labels.map((label) => `${label}0`)), at, labels };
    ZERO_BLOCKS.set(names, block);
  }
  return block;
}

/** Per CPU: `cpu`, the count of its three lists, then the hot list's high, batch, high_min and high_max. */
function pagesets(m: Machine, z: Zone): string {
  let out = '\n  pagesets';
  for (let cpu = 0; cpu < m.config.cpus; cpu++) {
    const lists = z.pageset[cpu]!;
    let count = 0;
    for (const p of lists) count += pcpCount(p);
    // The count changes, and a modern kernel's high; the text of each tail is made once.
    const p = lists[0]!;
    out += pagesetHead(cpu) + count + pagesetTail(p.high, p.batch, p.highMin, p.highMax);
  }
  return out;
}

const PAGESET_HEADS: string[] = [];
function pagesetHead(cpu: number): string {
  return (PAGESET_HEADS[cpu] ??= flatString(`\n    cpu: ${cpu}`, '\n              count:    '));
}

const PAGESET_TAILS = new Map<string, string>();
function pagesetTail(high: number, batch: number, highMin: number, highMax: number): string {
  const key = `${high}/${batch}/${highMin}/${highMax}`;
  let tail = PAGESET_TAILS.get(key);
  if (tail === undefined) {
    tail = flatString(
      `\n              high:     ${high}`,
      `\n              batch:    ${batch}`,
      `\n              high_min: ${highMin}`,
      `\n              high_max: ${highMax}`,
      '\n  vm stats threshold: 0',
    );
    PAGESET_TAILS.set(key, tail);
  }
  return tail;
}
