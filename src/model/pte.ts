/**
 * How the model encodes a pte (one double per entry of a pte page's Float64Array):
 *   0              none
 *   PTE_ZERO_PAGE  the shared ZERO_PAGE, read-only (a read fault mapped it)
 *   2·pfn + 2 + h  an anonymous page, writable; h = 1 while its lines are still in the cache
 *                  of the CPU that hot-zeroed it (the program's first touch then hits)
 * A leaf of its own: mm (page tables), the fault path and THP all read ptes.
 */
export const PTE_NONE = 0;
export const PTE_ZERO_PAGE = 1;
export function mkPte(pfn: number, cacheHot: boolean): number {
  return 2 * pfn + 2 + (cacheHot ? 1 : 0);
}
export function ptePfn(pte: number): number {
  return Math.floor((pte - 2) / 2);
}
export function pteCacheHot(pte: number): boolean {
  // Not `pte % 2`: ptes are doubles, and V8's double `%` is a libm fmod call.
  return pte >= 2 && pte - 2 * Math.floor(pte / 2) === 1;
}

