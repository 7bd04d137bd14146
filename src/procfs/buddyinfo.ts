import { NOT_ZEROED, ZEROED, type Machine, type Zone } from '../model';
import { flatString } from './common';

/**
 * /proc/buddyinfo, as mm/vmstat.c frag_show_print() prints it:
 *
 *   seq_printf(m, "Node %d, zone %8s ", pgdat->node_id, zone->name);
 *   for (order = 0; order < NR_PAGE_ORDERS; ++order)
 *       seq_printf(m, "%6lu ", zone->free_area[order].nr_free);
 *   seq_putc(m, '\n');
 *
 * `v6` (the prezeroing patch, Feb 2005): the zone's line counts NOT_ZEROED blocks only and is
 * followed by a line of ZEROED blocks, padded so the columns line up:
 *
 *   Node 0, zone      DMA     12      3 …
 *           Zeroed Pages       0      1 …
 *
 * `stock`: one line per zone with both classes summed, as a kernel without the patch prints it
 * (what node_exporter and collectd parse; they refuse the v6 second line).
 *
 * Blocks kscrubd holds off-list while zeroing them are on neither line, as in the patch (they
 * are still in the zone's free pages: meminfo's MemFree counts them).
 */
export type BuddyinfoFormat = 'v6' | 'stock';
export const BUDDYINFO_FORMATS: readonly BuddyinfoFormat[] = ['v6', 'stock'];

const ZEROED_LABEL = '        Zeroed Pages  ';

export function render(m: Machine, format: BuddyinfoFormat = 'v6'): string {
  let out = '';
  for (const z of m.zones) {
    out += `Node ${z.node}, zone ${z.name.padStart(8)} `;
    if (format === 'stock') {
      out += counts(z, (order) => z.blocks(NOT_ZEROED, order) + z.blocks(ZEROED, order));
    } else {
      out += counts(z, (order) => z.blocks(NOT_ZEROED, order));
      out += ZEROED_LABEL + counts(z, (order) => z.blocks(ZEROED, order));
    }
  }
  return out;
}

/** `"%6lu "` per order, then the newline. */
function counts(z: Zone, nrFree: (order: number) => number): string {
  let line = '';
  for (let order = 0; order < z.maxOrder; order++) line += count6(nrFree(order));
  return `${line}\n`;
}

/**
 * `"%6lu "` of one count. Counts under 1000 — most of a buddyinfo — come made (and flat), so a
 * render joins one piece per column instead of three (see flatString in common.ts).
 */
function count6(n: number): string {
  return Number.isInteger(n) && n >= 0 && n < SMALL_COUNTS.length ? SMALL_COUNTS[n]! : `${String(n).padStart(6)} `;
}
const SMALL_COUNTS = Array.from({ length: 1000 }, (_, n) => flatString(`${String(n).padStart(6)} `));
