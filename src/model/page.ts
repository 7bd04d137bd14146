/**
 * Per-page state, one 16-bit word a page (a Uint16Array), kept only for materialized sections
 * (see zone.ts):
 *
 *   bit 8..6  kind   what the page is (only a block's head page says; the rest are TAIL)
 *   bit 5     zeroed the block's free class: 0 NOT_ZEROED, 1 ZEROED (buddy and pcp lists)
 *   bit 4..0  order  the block's order (ia64's CONFIG_FORCE_MAX_ZONEORDER 18 needs order 17:
 *                    five bits, so kind, class and order no longer fit in a byte)
 *
 * A block of order o starting at head pfn h owns pages h … h + 2^o - 1; its tail pages are 0.
 * This is the model's `struct page`: the kernel keeps PG_buddy + page_private(order) in the
 * head, and the prezeroing patch kept the zeroed bit beside them.
 */
export const NOT_ZEROED = 0;
export const ZEROED = 1;
export type FreeClass = typeof NOT_ZEROED | typeof ZEROED;
export const CLASS_NAMES = ['not zeroed', 'zeroed'] as const;

export const KIND_TAIL = 0;
/** Head of a free block on a buddy free list. */
export const KIND_FREE = 1;
/** An order-0 page on a per-cpu list. */
export const KIND_PCP = 2;
/** Head of an allocated block (mapped by a process, or held by a raw `alloc`). */
export const KIND_ALLOC = 3;
/** Reserved at boot (kernel image, mem_map). */
export const KIND_RESERVED = 4;
/** Head of a block kscrubd took off its list to zero. */
export const KIND_SCRUB = 5;
/** A free head Zone.compact() has kept, for the length of one compaction only (never seen outside it). */
export const KIND_SEEN = 7;
export const KIND_NAMES = ['tail', 'free', 'pcp', 'allocated', 'reserved', 'scrubbing'] as const;

export const PG_ORDER = 0x1f;
export const PG_ZEROED = 0x20;
const KIND_SHIFT = 6;

/**
 * 2^order: the pages in a block of that order. A shift, not `2 ** order`, which V8 turns into
 * a pow() call (~35 ns, measured): the allocator does this several times a page. Orders are
 * below MAX_ORDER ≤ 18, far inside the 32-bit range of `<<`.
 */
export function orderPages(order: number): number {
  return 1 << order;
}

export function pageFlags(kind: number, order: number, cls: FreeClass): number {
  return (kind << KIND_SHIFT) | (cls === ZEROED ? PG_ZEROED : 0) | order;
}
export function kindOf(flags: number): number {
  return flags >>> KIND_SHIFT;
}
export function orderOf(flags: number): number {
  return flags & PG_ORDER;
}
export function classOf(flags: number): FreeClass {
  return flags & PG_ZEROED ? ZEROED : NOT_ZEROED;
}

/**
 * Buddy arithmetic, on offsets within one section (a section is one top-order block, so a
 * block and its buddy always share a section and offsets stay small enough for JS's 32-bit
 * bitwise operators even when pfns pass 2^31).
 *
 *   order 2, block at offset 12 (0b1100): buddy = 12 ^ (1 << 2) = 8 (0b1000);
 *   merged order-3 block starts at 12 & 8 = 8.
 */
export function buddyOffset(offset: number, order: number): number {
  return offset ^ (1 << order);
}
export function combinedOffset(offset: number, order: number): number {
  return offset & ~(1 << order);
}
