import type { Machine } from './machine';
import {
  CLASS_NAMES, KIND_ALLOC, KIND_FREE, KIND_NAMES, KIND_PCP, KIND_RESERVED, KIND_SCRUB, KIND_TAIL,
  NOT_ZEROED, ZEROED, buddyOffset, classOf, kindOf, orderOf, FreeClass,
} from './page';
import { PCP_NAMES, PCP_ZEROED, type PerCpuPages, SEC_FREE, SEC_FREE_ZEROED, SEC_GIGANTIC, SEC_MAPPED, SEC_RESERVED, Zone } from './zone';

/**
 * Verify every invariant of the allocator; return the first broken one in words, or null.
 *   - every page is in exactly one place: a free block on its list, a per-cpu list, an
 *     owner's block (a process, a raw block, boot slab), kernel-reserved, or off-list with
 *     kscrubd;
 *   - list contents equal nr_free; free_pages, zero_pages, pcp and reserved counts agree with
 *     the pages; pages on a zeroed per-cpu list are zeroed;
 *   - content: every page of a free zeroed block, and every per-cpu page tagged zeroed, is
 *     zero by the zone's content oracle (a bit per page that clears set and writes clear);
 *   - no two free buddies of one order and one class (they would have merged).
 * Linear in materialized memory plus held blocks, not in machine size, and with no per-page
 * Map or Set: whoever refers to a page (an owner, a per-cpu list, a free list) marks it in a
 * byte array per materialized section, and the walk over the pages then asks each page that
 * needs a referrer whether it was marked.
 */
export function check(m: Machine): string | null {
  const steps = checkSteps(m);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Sections of a zone walked between two yields of checkSteps(). */
export const CHECK_SECTIONS_PER_STEP = 256;

/**
 * check() in steps, for a caller that must not hold its thread for the whole walk (DESIGN §5):
 * it yields after each owner, each zone's per-cpu and free lists, and every
 * CHECK_SECTIONS_PER_STEP sections; it returns what check() returns. The machine must not
 * change between steps (the caller runs nothing else on it until the generator is done).
 */
export function* checkSteps(m: Machine): Generator<void, string | null, void> {
  const marks = new Marks(m.zones[0]!.secPages);
  const zoneOf = zoneFinder(m);
  for (const o of m.owners) {
    let err: string | null = null;
    o.forEachPage((pfn) => {
      if (err === null) err = markHeld(m, marks, zoneOf(pfn), pfn, o.label);
    });
    if (err !== null) return err;
    yield;
  }
  const huge = m.hugetlb.check();
  if (huge !== null) return huge;
  for (const k of m.kscrubd) {
    const b = k.inFlight();
    if (b && b.zone.pageFlagsAt(b.pfn) !== scrubFlags(b.zone, b.pfn, b.order)) {
      return `kscrubd${k.node} holds the order-${b.order} block at pfn ${b.pfn}, but the page says ${b.zone.describe(b.pfn)}`;
    }
  }
  for (const z of m.zones) {
    const err = markPcpLists(z, marks) ?? markFreeLists(z, marks);
    if (err) return `zone ${z.name} (node ${z.node}): ${err}`;
    yield;
    const walk = new ZoneWalk(m, z, marks);
    for (let rel = 0; rel < z.nrSecs; rel += CHECK_SECTIONS_PER_STEP) {
      const broken = walk.sections(rel, Math.min(z.nrSecs, rel + CHECK_SECTIONS_PER_STEP));
      if (broken) return `zone ${z.name} (node ${z.node}): ${broken}`;
      yield;
    }
    const broken = walk.totals();
    if (broken) return `zone ${z.name} (node ${z.node}): ${broken}`;
  }
  return null;
}

/** One mark byte per page of each materialized section that something refers to. */
class Marks {
  private readonly secs = new Map<number, Uint8Array>();
  constructor(private readonly secPages: number) {}

  /** Mark pfn; false if it was marked already. */
  mark(pfn: number): boolean {
    const sec = Math.floor(pfn / this.secPages);
    let a = this.secs.get(sec);
    if (!a) this.secs.set(sec, (a = new Uint8Array(this.secPages)));
    const i = pfn - sec * this.secPages;
    if (a[i]) return false;
    a[i] = 1;
    return true;
  }

  has(pfn: number): boolean {
    const sec = Math.floor(pfn / this.secPages);
    return this.secs.get(sec)?.[pfn - sec * this.secPages] === 1;
  }
}

/** The zone holding pfn, or null; remembers the last answer (owners list pages in runs). */
function zoneFinder(m: Machine): (pfn: number) => Zone | null {
  let last: Zone | null = null;
  return (pfn) => {
    if (last?.contains(pfn)) return last;
    last = m.zones.find((z) => z.contains(pfn)) ?? null;
    return last;
  };
}

function scrubFlags(z: Zone, pfn: number, order: number): number {
  const f = z.pageFlagsAt(pfn);
  return kindOf(f) === KIND_SCRUB && orderOf(f) === order ? f : -2;
}

/** An owner's block: its head must say allocated, and nobody else may hold it. */
function markHeld(m: Machine, marks: Marks, z: Zone | null, pfn: number, label: string): string | null {
  const f = z ? z.pageFlagsAt(pfn) : -1;
  if (f < 0 || kindOf(f) !== KIND_ALLOC) {
    return `${label} holds pfn ${pfn}, which is not an allocated block head (${z ? z.describe(pfn) : 'outside memory'})`;
  }
  if (!marks.mark(pfn)) return `pfn ${pfn} is held by both ${firstHolder(m, pfn)} and ${label}`;
  return null;
}

/** Error path only: the first owner that lists pfn. */
function firstHolder(m: Machine, pfn: number): string {
  for (const o of m.owners) {
    let found = false;
    o.forEachPage((p) => { found ||= p === pfn; });
    if (found) return o.label;
  }
  return 'nobody';
}

/** Each per-cpu list entry is an order-0 per-cpu page of this zone, on one list only. */
function markPcpLists(z: Zone, marks: Marks): string | null {
  for (let cpu = 0; cpu < z.pageset.length; cpu++) {
    const sets = z.pageset[cpu]!;
    for (let li = 0; li < sets.length; li++) {
      const where = `cpu${cpu}'s ${PCP_NAMES[li]} list`;
      for (const pfn of sets[li]!.list) {
        if (!z.contains(pfn)) return `pfn ${pfn} is on ${where} but outside the zone`;
        const f = z.pageFlagsAt(pfn);
        if (f < 0 || kindOf(f) !== KIND_PCP || orderOf(f) !== 0) return `pfn ${pfn} is on ${where} but its page says otherwise (${z.describe(pfn)})`;
        if (li === PCP_ZEROED && classOf(f) !== ZEROED) return `pfn ${pfn} is on ${where} but is not zeroed`;
        if (classOf(f) === ZEROED && !z.isZero(pfn)) return `pfn ${pfn} is on ${where} tagged zeroed, but its bytes are not zero`;
        if (!marks.mark(pfn)) return `pfn ${pfn} is on two per-cpu lists`;
      }
      const err = markPcpOrders(z, sets[li]!, where, marks);
      if (err) return err;
    }
  }
  return null;
}

/** A modern kernel's high-order per-cpu lists: each entry heads a per-cpu block of its list's order; their pages add up. */
function markPcpOrders(z: Zone, pcp: PerCpuPages, where: string, marks: Marks): string | null {
  const o = pcp.orders;
  if (o === null) return null;
  let pages = 0;
  for (let order = 1; order < o.lists.length; order++) {
    for (const pfn of o.lists[order]!) {
      if (!o.orders.includes(order)) return `${where} has an order-${order} list, which no per-cpu list has`;
      if (!z.contains(pfn)) return `pfn ${pfn} is on ${where} (order ${order}) but outside the zone`;
      const f = z.pageFlagsAt(pfn);
      if (f < 0 || kindOf(f) !== KIND_PCP || orderOf(f) !== order) return `pfn ${pfn} is on ${where} (order ${order}) but its page says otherwise (${z.describe(pfn)})`;
      if (!marks.mark(pfn)) return `pfn ${pfn} is on two per-cpu lists`;
      pages += 2 ** order;
    }
  }
  if (pages !== o.pages) return `${where}'s high-order lists hold ${pages} pages but count ${o.pages}`;
  return null;
}

/**
 * Each listed free block (order below the top; top-order blocks are pristine sections) is
 * counted once: lists delete lazily, so an entry whose page no longer says "free, this order,
 * this class" is stale, and an older entry of a live block is a duplicate.
 */
function markFreeLists(z: Zone, marks: Marks): string | null {
  for (const cls of [NOT_ZEROED, ZEROED] as const) {
    for (let o = 0; o < z.topOrder; o++) {
      let listed = 0;
      for (const pfn of z.freeList[cls]![o]!) if (z.isFreeHead(pfn, o, cls) && marks.mark(pfn)) listed++;
      if (listed !== z.nrFree[cls]![o]) return `the ${CLASS_NAMES[cls]} order-${o} list has ${listed} blocks, nr_free ${z.nrFree[cls]![o]}`;
    }
  }
  return null;
}

/** The walk over one zone's pages, section by section, and its totals at the end. */
class ZoneWalk {
  private readonly blocks: Float64Array[];
  private free = 0;
  private zero = 0;
  private pcp = 0;
  private reserved = 0;
  private scrub = 0;
  private gigantic = 0;

  constructor(private readonly m: Machine, private readonly z: Zone, private readonly marks: Marks) {
    this.blocks = [new Float64Array(z.maxOrder), new Float64Array(z.maxOrder)];
  }

  /** Zone-relative sections [from, to). */
  sections(from: number, to: number): string | null {
    const z = this.z;
    for (let rel = from; rel < to; rel++) {
      const sec = z.firstSec + rel;
      const st = z.secState[rel]!;
      if (st === SEC_FREE || st === SEC_FREE_ZEROED) {
        if (z.sections.has(sec)) return `section ${sec} is pristine but has page records`;
        this.blocks[st]![z.topOrder]!++;
        this.free += z.secPages;
        if (st === SEC_FREE_ZEROED) this.zero += z.secPages;
        continue;
      }
      if (st === SEC_RESERVED) { this.reserved += z.secPages; continue; }
      if (st === SEC_GIGANTIC) { this.gigantic += z.secPages; continue; }
      if (st !== SEC_MAPPED) return `section ${sec} has unknown state ${st}`;
      const err = this.section(sec, z.secLen(rel));
      if (err) return err;
    }
    return null;
  }

  /** A materialized section of `len` pages (less than secPages in a zone's partial last one). */
  private section(sec: number, len: number): string | null {
    const z = this.z;
    const flags = z.sections.get(sec);
    if (!flags) return `section ${sec} is materialized but has no page records`;
    const base = z.secBase(sec);
    for (let off = len; off < z.secPages; off++) {
      if (flags[off] !== 0) return `pfn ${base + off} is past the zone's end but is marked as a head`;
    }
    if (kindOf(flags[0]!) === KIND_FREE && orderOf(flags[0]!) === z.topOrder) {
      return `section ${sec} is one free top-order block but is still materialized`;
    }
    for (let off = 0; off < len;) {
      const f = flags[off]!;
      const kind = kindOf(f);
      const order = orderOf(f);
      const pfn = base + off;
      if (kind === KIND_TAIL) return `pfn ${pfn} belongs to no block (a tail page with no head)`;
      if (kind > KIND_SCRUB) return `pfn ${pfn} has an unknown kind ${kind}`;
      const size = 2 ** order;
      if (order >= z.maxOrder || off % size !== 0 || off + size > len) return `pfn ${pfn}: a ${KIND_NAMES[kind]} block of order ${order} is misaligned`;
      for (let i = 1; i < size; i++) {
        if (flags[off + i] !== 0) return `pfn ${pfn + i} is inside the order-${order} block at ${pfn} but is marked as a head`;
      }
      const err = this.block(pfn, off, base, kind, order, classOf(f));
      if (err) return err;
      off += size;
    }
    return null;
  }

  private block(pfn: number, off: number, base: number, kind: number, order: number, cls: FreeClass): string | null {
    const z = this.z;
    const size = 2 ** order;
    switch (kind) {
      case KIND_FREE:
        this.blocks[cls]![order]!++;
        this.free += size;
        if (cls === ZEROED) this.zero += size;
        if (!this.marks.has(pfn)) return `the free ${CLASS_NAMES[cls]} order-${order} block at pfn ${pfn} is on no free list`;
        if (cls === ZEROED) {
          for (let i = 0; i < size; i++) {
            if (!z.isZero(pfn + i)) return `the free zeroed order-${order} block at pfn ${pfn} holds pfn ${pfn + i}, whose bytes are not zero`;
          }
        }
        if (order < z.topOrder && z.isFreeHead(base + buddyOffset(off, order), order, cls)) {
          return `free buddies at pfn ${pfn} and ${base + buddyOffset(off, order)} (order ${order}, ${CLASS_NAMES[cls]}) were not merged`;
        }
        // Where the zero flag is on the block, free buddies merge whatever their flags.
        if (z.mergeLosesZero && order < z.topOrder && z.isFreeHead(base + buddyOffset(off, order), order, cls === ZEROED ? NOT_ZEROED : ZEROED)) {
          return `free buddies at pfn ${pfn} and ${base + buddyOffset(off, order)} (order ${order}, zeroed and not) were not merged`;
        }
        return null;
      case KIND_PCP:
        // Only a modern kernel's lists keep blocks above order 0, and only of their orders.
        if (order !== 0 && z.pageset[0]?.[0]?.orders?.orders.includes(order) !== true) return `pfn ${pfn} is on a per-cpu list with order ${order}`;
        if (!this.marks.has(pfn)) return `pfn ${pfn} says per-cpu but is on no per-cpu list`;
        this.pcp += size;
        return null;
      case KIND_ALLOC:
        if (!this.marks.has(pfn)) return `pfn ${pfn} is an allocated order-${order} block that nobody holds (leaked)`;
        if (cls !== NOT_ZEROED) return `pfn ${pfn} is allocated but still tagged zeroed`;
        return null;
      case KIND_RESERVED:
        this.reserved += size;
        return null;
      default: // KIND_SCRUB
        if (!this.m.kscrubd.some((k) => k.inFlight()?.pfn === pfn)) return `pfn ${pfn} says kscrubd holds it, but no kscrubd does`;
        this.free += size;
        this.scrub += size;
        return null;
    }
  }

  totals(): string | null {
    const z = this.z;
    for (const cls of [NOT_ZEROED, ZEROED] as const) {
      for (let o = 0; o < z.maxOrder; o++) {
        if (this.blocks[cls]![o] !== z.nrFree[cls]![o]) {
          return `nr_free[${CLASS_NAMES[cls]}][${o}] is ${z.nrFree[cls]![o]} but ${this.blocks[cls]![o]} blocks are free`;
        }
      }
    }
    if (this.free !== z.freePages) return `free_pages is ${z.freePages} but the free blocks hold ${this.free}`;
    if (this.zero !== z.zeroPages) return `zero_pages is ${z.zeroPages} but the zeroed lists hold ${this.zero}`;
    if (this.scrub !== z.scrubPages) return `kscrubd holds ${this.scrub} pages but the zone counts ${z.scrubPages}`;
    if (this.pcp !== z.pcpPages) return `per-cpu lists hold ${this.pcp} pages but the zone counts ${z.pcpPages}`;
    if (this.reserved !== z.reservedPages) return `reserved pages are ${this.reserved} but the zone counts ${z.reservedPages}`;
    if (this.gigantic !== z.giganticPages) return `gigantic hugetlb sections hold ${this.gigantic} pages but the zone counts ${z.giganticPages}`;
    return null;
  }
}
