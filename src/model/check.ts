import type { Machine } from './machine';
import {
  CLASS_NAMES, KIND_ALLOC, KIND_FREE, KIND_NAMES, KIND_PCP, KIND_RESERVED, KIND_SCRUB, KIND_TAIL,
  NOT_ZEROED, ZEROED, buddyOffset, classOf, kindOf, orderOf, FreeClass,
} from './page';
import { SEC_FREE, SEC_FREE_ZEROED, SEC_MAPPED, SEC_RESERVED, Zone } from './zone';

/**
 * Verify every invariant of the allocator; return the first broken one in words, or null.
 *   - every page is in exactly one place: a free block, a per-cpu list, a mapping or raw
 *     block, kernel-reserved, or off-list with kscrubd;
 *   - list contents equal nr_free; free_pages and zero_pages agree with the lists;
 *   - no two free buddies of one order and one class (they would have merged).
 * Cost is proportional to materialized memory, not machine size.
 */
export function check(m: Machine): string | null {
  // Who holds allocated blocks: the page owners (processes, raw blocks, boot slab).
  const held = new Map<number, string>();
  let dup: string | null = null;
  for (const o of m.owners) {
    o.forEachPage((pfn) => {
      if (held.has(pfn) && dup === null) dup = `pfn ${pfn} is held by both ${held.get(pfn)} and ${o.label}`;
      held.set(pfn, o.label);
    });
  }
  if (dup) return dup;
  const scrubbing = new Map<number, number>();
  for (const k of m.kscrubd) {
    const b = k.inFlight();
    if (b) scrubbing.set(b.pfn, b.order);
  }
  const onPcp = new Map<number, string>();
  for (const z of m.zones) {
    for (let cpu = 0; cpu < z.pageset.length; cpu++) {
      for (const p of z.pageset[cpu]!) {
        for (const pfn of p.list) {
          if (onPcp.has(pfn)) return `pfn ${pfn} is on two per-cpu lists`;
          onPcp.set(pfn, `${z.name} cpu${cpu}`);
        }
      }
    }
  }
  const seenHeld = new Set<number>();
  const seenPcp = new Set<number>();
  for (const z of m.zones) {
    const err = checkZone(m, z, held, seenHeld, onPcp, seenPcp, scrubbing);
    if (err) return `zone ${z.name} (node ${z.node}): ${err}`;
  }
  for (const [pfn, who] of held) if (!seenHeld.has(pfn)) return `${who} holds pfn ${pfn}, which is not an allocated block head`;
  for (const pfn of onPcp.keys()) if (!seenPcp.has(pfn)) return `pfn ${pfn} is on a per-cpu list but its page says otherwise`;
  return null;
}

function checkZone(
  m: Machine, z: Zone, held: Map<number, string>, seenHeld: Set<number>,
  onPcp: Map<number, string>, seenPcp: Set<number>, scrubbing: Map<number, number>,
): string | null {
  const blocks = [new Float64Array(z.maxOrder), new Float64Array(z.maxOrder)];
  let free = 0;
  let zero = 0;
  let pcp = 0;
  let reserved = 0;
  let scrub = 0;
  for (let rel = 0; rel < z.nrSecs; rel++) {
    const sec = z.firstSec + rel;
    const st = z.secState[rel]!;
    if (st === SEC_FREE || st === SEC_FREE_ZEROED) {
      if (z.sections.has(sec)) return `section ${sec} is pristine but has page records`;
      blocks[st]![z.topOrder]!++;
      free += z.secPages;
      if (st === SEC_FREE_ZEROED) zero += z.secPages;
      continue;
    }
    if (st === SEC_RESERVED) { reserved += z.secPages; continue; }
    if (st !== SEC_MAPPED) return `section ${sec} has unknown state ${st}`;
    const flags = z.sections.get(sec);
    if (!flags) return `section ${sec} is materialized but has no page records`;
    const base = sec * z.secPages;
    if (kindOf(flags[0]!) === KIND_FREE && orderOf(flags[0]!) === z.topOrder) {
      return `section ${sec} is one free top-order block but is still materialized`;
    }
    for (let off = 0; off < z.secPages;) {
      const f = flags[off]!;
      const kind = kindOf(f);
      const order = orderOf(f);
      const pfn = base + off;
      if (kind === KIND_TAIL) return `pfn ${pfn} belongs to no block (a tail page with no head)`;
      if (kind > KIND_SCRUB) return `pfn ${pfn} has an unknown kind ${kind}`;
      const size = 2 ** order;
      if (order >= z.maxOrder || off % size !== 0) return `pfn ${pfn}: a ${KIND_NAMES[kind]} block of order ${order} is misaligned`;
      for (let i = 1; i < size; i++) {
        if (flags[off + i] !== 0) return `pfn ${pfn + i} is inside the order-${order} block at ${pfn} but is marked as a head`;
      }
      const cls: FreeClass = classOf(f);
      switch (kind) {
        case KIND_FREE: {
          blocks[cls]![order]!++;
          free += size;
          if (cls === ZEROED) zero += size;
          if (order < z.topOrder && z.isFreeHead(base + buddyOffset(off, order), order, cls)) {
            return `free buddies at pfn ${pfn} and ${base + buddyOffset(off, order)} (order ${order}, ${CLASS_NAMES[cls]}) were not merged`;
          }
          break;
        }
        case KIND_PCP:
          if (order !== 0) return `pfn ${pfn} is on a per-cpu list with order ${order}`;
          if (!onPcp.has(pfn)) return `pfn ${pfn} says per-cpu but is on no per-cpu list`;
          seenPcp.add(pfn);
          pcp++;
          break;
        case KIND_ALLOC:
          if (!held.has(pfn)) return `pfn ${pfn} is an allocated order-${order} block that nobody holds (leaked)`;
          if (cls !== NOT_ZEROED) return `pfn ${pfn} is allocated but still tagged zeroed`;
          seenHeld.add(pfn);
          break;
        case KIND_RESERVED:
          reserved += size;
          break;
        case KIND_SCRUB:
          if (scrubbing.get(pfn) !== order) return `pfn ${pfn} says kscrubd holds it, but no kscrubd does`;
          free += size;
          scrub += size;
          break;
      }
      off += size;
    }
  }
  for (const cls of [NOT_ZEROED, ZEROED] as const) {
    for (let o = 0; o < z.maxOrder; o++) {
      if (blocks[cls]![o] !== z.nrFree[cls]![o]) {
        return `nr_free[${CLASS_NAMES[cls]}][${o}] is ${z.nrFree[cls]![o]} but ${blocks[cls]![o]} blocks are free`;
      }
      if (o < z.topOrder) {
        const listed = z.listEntries(o, cls).length;
        if (listed !== blocks[cls]![o]) return `the ${CLASS_NAMES[cls]} order-${o} list has ${listed} blocks, nr_free ${blocks[cls]![o]}`;
      }
    }
  }
  if (free !== z.freePages) return `free_pages is ${z.freePages} but the free blocks hold ${free}`;
  if (zero !== z.zeroPages) return `zero_pages is ${z.zeroPages} but the zeroed lists hold ${zero}`;
  if (scrub !== z.scrubPages) return `kscrubd holds ${scrub} pages but the zone counts ${z.scrubPages}`;
  if (pcp !== z.pcpPages) return `per-cpu lists hold ${pcp} pages but the zone counts ${z.pcpPages}`;
  if (reserved !== z.reservedPages) return `reserved pages are ${reserved} but the zone counts ${z.reservedPages}`;
  void m;
  return null;
}
