// The published anticipatory prefault patches by name, as a run asks for one. A leaf, as
// the rest of uapi.

/**
 * What each published version of Lameter's anticipatory prefault sets vm.max_prealloc_order
 * to when it boots. The postings that can still be read differ in that default only: each
 * raises the order by one per fault where the task was predicted to fault next, maps
 * 2^order pages, and resets the order on a miss (prefault.ts models that once). No version
 * between V2 and V5 is known to have changed the default.
 * - v1: "The max order is 3 by default": 1, 2, 4, 8, 8 … pages a fault
 *   (https://www.kernel.org/pub/linux/kernel/people/christoph/prefault/posts/1).
 * - v2: the patch measured in docs/calibration.md, 2.6.10-rc3-bk7: "1, 2, 4, 8, 16, 16 …"
 *   pages, order 4 (a pagevec caps it at 14 on the modelled kernels).
 * - v5: "Set default for /proc/sys/vm/max_prealloc_order to 1 to avoid overallocating
 *   pages" (Lameter, linux-ia64, 2005-02-17,
 *   http://www.gelato.unsw.edu.au/archives/linux-ia64/0502/13064.html): 1, 2, 2 … pages,
 *   reading its 1 as vm.max_prealloc_order means here (at most 2^n pages a fault); the
 *   posting does not say how many pages its 1 maps.
 * - off: no prefault (every mainline kernel).
 */
export const PREFAULT_VARIANTS = { off: 0, v1: 3, v2: 4, v5: 1 } as const;
export type PrefaultVariant = keyof typeof PREFAULT_VARIANTS;
export const PREFAULT_VARIANT_NAMES = Object.keys(PREFAULT_VARIANTS) as readonly PrefaultVariant[];

/** A variant's name → its vm.max_prealloc_order, or null: not one of them. */
export function prefaultVariantOrder(name: string): number | null {
  return Object.hasOwn(PREFAULT_VARIANTS, name) ? PREFAULT_VARIANTS[name as PrefaultVariant] : null;
}
