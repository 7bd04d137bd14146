import type { Zone } from './zone';

/**
 * How allocPages() served one request, written into a record the caller owns and passes in
 * (the kernel returns the page and leaves the rest to flags; a JS return of an object per
 * page would cost an allocation on every fault). A class, so every record has one shape.
 */
export class AllocResult {
  /** The zone the block came from (null until an allocation succeeds). */
  zone: Zone | null = null;
  /** __GFP_ZERO satisfied by a page that was already zero. */
  prezeroed = false;
  /** __GFP_ZERO satisfied by zeroing a dirty page now (the caller prices it). */
  hotZeroed = false;
  /** An ordinary request that had to take zeroed pages: kscrubd's work thrown away. */
  wasted = false;
  /** Pages moved under zone->lock (a per-cpu refill, or the block itself). */
  lockedPages = 0;
}
