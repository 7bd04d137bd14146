import { Cacheline } from './cacheline';
import { assert } from './errors';
import {
  FreeClass, KIND_ALLOC, KIND_FREE, KIND_PCP, KIND_RESERVED, KIND_SCRUB, KIND_SEEN, NOT_ZEROED, ZEROED,
  buddyOffset, classOf, combinedOffset, kindOf, orderOf, orderPages, pageFlags,
} from './page';
import { SpinLock } from './spinlock';

export type ZoneName = 'DMA' | 'DMA32' | 'Normal' | 'HighMem';

/**
 * Section states. A section is the span of one top-order block (2^(MAX_ORDER-1) pages),
 * counted from the zone's start: 2.6.11 finds a buddy by the page's index in the zone
 * (`page_idx = page - zone->zone_mem_map` in __free_pages_bulk), so blocks are aligned
 * within their zone. Memory nobody has split stays a section state byte — "pristine" — and
 * costs no per-page record, as SPARSEMEM with deferred struct-page init would have it. A
 * section is materialized (a Uint16Array of page flags) only while something inside it is
 * smaller than the whole block. A zone's last section may be partial (ia64's MAX_ORDER 18
 * makes a top-order block 2 GiB, more than an altix node has): it holds no top-order block,
 * so it is materialized from boot and its pages past the zone's end stay 0 — no block's
 * buddy there is ever free, as `bad_range()` stops the kernel's merge at the zone's end.
 */
export const SEC_FREE = 0; // pristine free top-order block, NOT_ZEROED (value = its class)
export const SEC_FREE_ZEROED = 1; // pristine free top-order block, ZEROED
export const SEC_MAPPED = 2; // materialized: see `sections`
export const SEC_RESERVED = 3; // wholly reserved at boot
/** Part of a gigantic hugetlb page (hugetlb.ts): taken whole, as alloc_contig_range takes it. */
export const SEC_GIGANTIC = 4;

/**
 * An empty list of pfns whose elements are doubles from the start. V8 keeps an array of small
 * integers apart from one of doubles, and a pfn computed in optimized code may arrive as either:
 * lists that started as the one kind and turned into the other make every access to them
 * polymorphic (the buddy and per-cpu lists are the allocator's hottest loads and stores).
 * Pfns are integers below 2^53, exact as doubles; the values are the same either way.
 */
export function pfnList(): number[] {
  const list = [0.5];
  list.pop();
  return list;
}

/**
 * Who hears of each block free_pages_bulk frees (the machine: a big dirty one wakes kscrubd).
 * One object for every zone, not a closure per zone: the drain's call then has one target.
 */
export interface FreeListener {
  blockFreed(z: Zone, order: number, cls: FreeClass): void;
  /**
   * Must blockFreed hear of every page as it is freed, the zone as it is then (idlezero's
   * hysteresis reads it)? When false, a run of consecutive pages freed together is reported
   * once, with the order its last page's free ended in (the highest of the run's): kscrubd's
   * wake asks only whether some free reached scrub_start.
   */
  readonly everyFree: boolean;
}

/**
 * One per-cpu page list (struct per_cpu_pages). 2.6.11's has fixed low, high and batch; a
 * modern kernel's (`modern`) refills only when empty, scales its refills and drains with how
 * the CPU has been using it (alloc_factor, free_count) and tunes `high` between high_min and
 * high_max (mm/page_alloc.c: nr_pcp_alloc, nr_pcp_high, nr_pcp_free).
 */
export interface PerCpuPages {
  /** Pfns; the end of the array is the list head (LIFO, cache-hot first). */
  readonly list: number[];
  /** Refilled when it holds this many or fewer (a modern list: 0, when empty). */
  readonly low: number;
  /** Drained when it holds this many (zoneinfo's `high:`); a modern list moves it. */
  high: number;
  /** batch, high_min and high_max change when the watermarks do (zone_pcp_update). */
  batch: number;
  readonly modern: boolean;
  highMin: number;
  highMax: number;
  /** Refills since the last free: each doubles the next, up to PCP_BATCH_SCALE_MAX. */
  allocFactor: number;
  /** Consecutive frees (halved by each allocation): a drain frees that many. */
  freeCount: number;
  /**
   * A modern kernel's lists of blocks of orders 1 … 3 and the THP order (5.13 on), sharing
   * this list's count and high (pcp-orders.ts); null on 2.6.11 and on the cold and zeroed lists.
   */
  orders: PcpOrderLists | null;
}

/**
 * One CPU's high-order lists in one zone (struct per_cpu_pages' lists past order 0; made and
 * worked by pcp-orders.ts).
 */
export interface PcpOrderLists {
  /** The orders with a list, ascending (1, 2, 3 and the THP order). */
  readonly orders: readonly number[];
  /** By order: block head pfns, the list head at the array's end (orders without a list stay empty). */
  readonly lists: readonly number[][];
  /** Pages on these lists (their part of pcp->count). */
  pages: number;
  /** PCPF_PREV_FREE_HIGH_ORDER: the last free to this CPU's lists was of order 1…3. */
  prevFreeHighOrder: boolean;
  /** PCPF_FREE_HIGH_BATCH: the CPU's share of its LLC holds more than 3 batches of pages. */
  readonly freeHighBatch: boolean;
}

/** pcp->count: pages on the list and on its high-order lists. */
export function pcpCount(pcp: PerCpuPages): number {
  return pcp.orders === null ? pcp.list.length : pcp.list.length + pcp.orders.pages;
}

/** CONFIG_PCP_BATCH_SCALE_MAX's default (mm/Kconfig): refills grow to batch << 5 at most. */
export const PCP_BATCH_SCALE_MAX = 5;
/** MIN_PERCPU_PAGELIST_HIGH_FRACTION: pcp->high may grow to an eighth of the zone, split over its node's CPUs. */
const MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8;
export const PCP_HOT = 0;
export const PCP_COLD = 1;
/** The prezeroing patch's third list: cold pages known to be zero. */
export const PCP_ZEROED = 2;
export const PCP_NAMES = ['hot', 'cold', 'zeroed'] as const;

export interface ZoneInit {
  readonly id: number;
  readonly node: number;
  readonly name: ZoneName;
  readonly startPfn: number;
  readonly endPfn: number;
  readonly maxOrder: number;
  /**
   * One free_area with the zero flag on the block (PG_zero, PageZeroed): a freed block merges
   * with its free buddy whatever either's flag, and the merged block is zeroed only when both
   * were — the flag is lost on merge. False: Lameter's V4+ split, a dirty block never merges
   * with a zeroed buddy.
   */
  readonly mergeLosesZero?: boolean;
}

/**
 * A zone: its buddy allocator with two classes of free blocks (struct zone, free_area[2][MAX_ORDER]).
 * Callers hold "the zone lock" simply by being the one JS thread; what taking zone->lock
 * costs in virtual time is priced separately (`lock`, a SpinLock).
 */
export class Zone {
  readonly id: number;
  readonly node: number;
  readonly name: ZoneName;
  readonly startPfn: number;
  readonly endPfn: number;
  readonly maxOrder: number;
  /** ZoneInit.mergeLosesZero. */
  readonly mergeLosesZero: boolean;
  /** Zeroed pages whose zero flag a merge with a dirty buddy dropped (their bytes stay zero; nobody knows it). */
  private _zeroLostOnMerge = 0;
  get zeroLostOnMerge(): number { return this._zeroLostOnMerge; }
  /** Pages per section = pages in a top-order block. */
  readonly secPages: number;
  readonly topOrder: number;
  readonly firstSec: number;
  readonly nrSecs: number;
  /** One byte per section of this zone: SEC_*. */
  readonly secState: Uint8Array;
  /** Materialized sections, by global section number: one flag byte per page (page.ts). */
  readonly sections = new Map<number, Uint16Array>();
  /**
   * The content oracle check() trusts: per materialized section, one bit per page, set while
   * the page's bytes are zero (a clear sets it, a write clears it). A pristine section's pages
   * are zero exactly when it is SEC_FREE_ZEROED. Kept apart from the flags: the class says
   * which list a page is on, this says what is in it, and check() compares the two.
   */
  readonly zeroBits = new Map<number, Uint8Array>();
  /**
   * free_area[class][order] for order < topOrder: block head pfns, list head at the array's end.
   * Removal of a block from the middle (a buddy merging) is lazy: the entry stays until it is
   * popped or compacted, and a popped entry counts only if the page still says it is that free
   * block. The newest entry for a pfn is the live one, so stale ones are never mistaken for it.
   * Top-order blocks are pristine sections, found by `pristineCursor`.
   */
  readonly freeList: number[][][];
  /** nr_free: blocks per [class][order], including top order (= pristine sections of that class). */
  readonly nrFree: Float64Array[];
  /** Lowest section index (zone-relative) that may be pristine of each class. */
  private readonly pristineCursor = [0, 0];
  /**
   * flagsOf()'s one-entry cache: the pfns [lastStart, lastEnd) of the section last looked up
   * and its flags (undefined: pristine). A range, so a hit costs two compares, not a division.
   */
  private lastStart = -1;
  private lastEnd = -1;
  private lastFlags: Uint16Array | undefined = undefined;
  /**
   * zeroBitsOf()'s one-entry cache: the section last looked up, its pfns [lastZeroStart,
   * lastZeroEnd) and its zero bits. The range lets isZero() and setZero() skip secOf()'s
   * division on a hit (every fault writes a page, every prezeroed page handed out is checked).
   */
  private lastZeroSec = -1;
  private lastZeroStart = -1;
  private lastZeroEnd = -1;
  private lastZeroBits: Uint8Array | undefined = undefined;
  /** Order of the block rmqueueSmallest() last took its block from (before splitting it). */
  private splitOrder = 0;
  /** rmqueueBulk()'s pages in the order taken (reused: refills happen every batch). */
  private readonly bulkScratch: number[] = pfnList();

  private _spannedPages: number = 0;
  get spannedPages(): number { return this._spannedPages; }
  private set spannedPages(v: number) { this._spannedPages = v; }
  private _presentPages: number = 0;
  get presentPages(): number { return this._presentPages; }
  private set presentPages(v: number) { this._presentPages = v; }
  private _managedPages: number = 0;
  get managedPages(): number { return this._managedPages; }
  private set managedPages(v: number) { this._managedPages = v; }
  private _reservedPages: number = 0;
  get reservedPages(): number { return this._reservedPages; }
  private set reservedPages(v: number) { this._reservedPages = v; }
  /** Pages in free blocks, on the lists or held off-list by kscrubd (zone->free_pages). */
  private _freePages: number = 0;
  get freePages(): number { return this._freePages; }
  private set freePages(v: number) { this._freePages = v; }
  /** Pages on ZEROED lists (zone->zero_pages). Blocks kscrubd holds are not zeroed yet. */
  private _zeroPages: number = 0;
  get zeroPages(): number { return this._zeroPages; }
  private set zeroPages(v: number) { this._zeroPages = v; }
  /** Pages kscrubd holds off-list while it zeroes them (part of freePages). */
  private _scrubPages: number = 0;
  get scrubPages(): number { return this._scrubPages; }
  private set scrubPages(v: number) { this._scrubPages = v; }
  /** Pages on this zone's per-cpu lists (not in freePages, not in buddyinfo). */
  private _pcpPages: number = 0;
  get pcpPages(): number { return this._pcpPages; }
  private set pcpPages(v: number) { this._pcpPages = v; }
  /** Pages in SEC_GIGANTIC sections: gigantic hugetlb pages taken out of the buddy lists. */
  giganticPages = 0;
  private _watermarkMin: number = 0;
  get watermarkMin(): number { return this._watermarkMin; }
  private set watermarkMin(v: number) { this._watermarkMin = v; }
  private _watermarkLow: number = 0;
  get watermarkLow(): number { return this._watermarkLow; }
  private set watermarkLow(v: number) { this._watermarkLow = v; }
  private _watermarkHigh: number = 0;
  get watermarkHigh(): number { return this._watermarkHigh; }
  private set watermarkHigh(v: number) { this._watermarkHigh = v; }
  /** Per-cpu lists: pageset[cpu][PCP_HOT|PCP_COLD|PCP_ZEROED]. */
  private _pageset: PerCpuPages[][] = [];
  get pageset(): PerCpuPages[][] { return this._pageset; }
  private set pageset(v: PerCpuPages[][]) { this._pageset = v; }
  /** zone->lock: when it is next free and its line's last writer (spinlock.ts prices takers). */
  readonly lock = new SpinLock(new Cacheline());
  /** zone->lru_lock, the same type (the fault path takes it when a pagevec drains). */
  readonly lruLock = new SpinLock(new Cacheline());
  /** Allocations served from this zone (vmstat pgalloc_<zone>). */
  private _pgalloc: number = 0;
  get pgalloc(): number { return this._pgalloc; }
  private set pgalloc(v: number) { this._pgalloc = v; }
  /** Blocks free_pcppages_bulk has moved from per-cpu lists back to this zone's buddy lists, a page each at order 0 (munmap and exit price their zone->lock sections by it). */
  private _pcpDrained: number = 0;
  get pcpDrained(): number { return this._pcpDrained; }
  private set pcpDrained(v: number) { this._pcpDrained = v; }
  /**
   * NUMA allocation events, as zone_statistics() counts them (one per allocation): hit/miss,
   * the zone is / is not on the node the zonelist prefers; foreign, counted on the preferred
   * zone, an allocation it wanted that another node served; local/other, the zone is / is not
   * on the allocating CPU's node. (numa_interleave stays 0: the model has no mempolicy.)
   */
  private _numaHit: number = 0;
  get numaHit(): number { return this._numaHit; }
  private set numaHit(v: number) { this._numaHit = v; }
  private _numaMiss: number = 0;
  get numaMiss(): number { return this._numaMiss; }
  private set numaMiss(v: number) { this._numaMiss = v; }
  private _numaForeign: number = 0;
  get numaForeign(): number { return this._numaForeign; }
  private set numaForeign(v: number) { this._numaForeign = v; }
  private _numaLocal: number = 0;
  get numaLocal(): number { return this._numaLocal; }
  private set numaLocal(v: number) { this._numaLocal = v; }
  private _numaOther: number = 0;
  get numaOther(): number { return this._numaOther; }
  private set numaOther(v: number) { this._numaOther = v; }

  constructor(init: ZoneInit) {
    this.id = init.id;
    this.node = init.node;
    this.name = init.name;
    this.startPfn = init.startPfn;
    this.endPfn = init.endPfn;
    this.maxOrder = init.maxOrder;
    this.mergeLosesZero = init.mergeLosesZero === true;
    this.topOrder = init.maxOrder - 1;
    this.secPages = 2 ** this.topOrder;
    // Section numbers (the keys of `sections`) count from the zone's first section; a zone
    // that starts on a section boundary numbers them by pfn, as before partial sections.
    this.firstSec = Math.floor(init.startPfn / this.secPages);
    this.spannedPages = init.endPfn - init.startPfn;
    this.nrSecs = Math.ceil(this.spannedPages / this.secPages);
    const full = Math.floor(this.spannedPages / this.secPages);
    this.presentPages = this.spannedPages;
    this.secState = new Uint8Array(this.nrSecs); // all SEC_FREE: boot memory is dirty
    this.freeList = [[], []];
    this.nrFree = [new Float64Array(init.maxOrder), new Float64Array(init.maxOrder)];
    for (let o = 0; o < this.topOrder; o++) {
      this.freeList[0]!.push(pfnList());
      this.freeList[1]!.push(pfnList());
    }
    this.nrFree[NOT_ZEROED]![this.topOrder] = full;
    this.freePages = full * this.secPages;
    this.managedPages = this.spannedPages;
    if (full < this.nrSecs) {
      // The partial last section: its free pages as the biggest aligned blocks that fit, as
      // freeing them page by page at boot (free_all_bootmem) would leave them.
      const sec = this.firstSec + full;
      this.materialize(sec, false);
      this.layoutFree(sec, 0, this.secLen(full));
    }
  }

  /** First pfn of section `sec` (a key of `sections`). */
  secBase(sec: number): number {
    return this.startPfn + (sec - this.firstSec) * this.secPages;
  }

  /** The section (a key of `sections`) holding pfn. */
  secOf(pfn: number): number {
    return this.firstSec + Math.floor((pfn - this.startPfn) / this.secPages);
  }

  /** Pages of the zone in zone-relative section `rel`: secPages, less in a partial last one. */
  secLen(rel: number): number {
    return Math.min(this.secPages, this.spannedPages - rel * this.secPages);
  }

  /**
   * List pages [from, to) of materialized section `sec` (offsets; their flags 0) as free
   * NOT_ZEROED blocks: at each offset the biggest block aligned there that ends by `to`.
   * The result freeing them one by one would leave (buddies outside the range are not free),
   * in the same list order (each block listed once its last page is in, lowest first).
   */
  private layoutFree(sec: number, from: number, to: number): void {
    const base = this.secBase(sec);
    for (let off = from; off < to;) {
      let o = off === 0 ? this.topOrder - 1 : Math.min(Math.clz32(off & -off) ^ 31, this.topOrder - 1);
      while (off + orderPages(o) > to) o--;
      this.freePages += orderPages(o);
      this.listAdd(base + off, o, NOT_ZEROED);
      off += orderPages(o);
    }
  }

  /** 2.6.11 setup_per_zone_pages_min(): the zone's share of min_free_kbytes, low and high above it. */
  setWatermarks(min: number): void {
    this.setWatermarkLevels(min, min + Math.floor(min / 4), min + Math.floor(min / 2));
  }

  /** The watermarks a modern kernel's __setup_per_zone_wmarks() worked out (watermarks.ts). */
  setWatermarkLevels(min: number, low: number, high: number): void {
    this.watermarkMin = min;
    this.watermarkLow = low;
    this.watermarkHigh = high;
  }

  /** lowmem_reserve[]: per zone type, what an allocation that may use zones up to it leaves here (zoneinfo's protection). */
  private _lowmemReserve: readonly number[] = [];
  get lowmemReserve(): readonly number[] { return this._lowmemReserve; }
  /** lowmem_reserve[] of the highest type: what every allocation of the model leaves here above the watermark. */
  private _allocReserve = 0;
  get allocReserve(): number { return this._allocReserve; }
  setLowmemReserve(reserve: readonly number[]): void {
    this._lowmemReserve = reserve;
    this._allocReserve = reserve[reserve.length - 1] ?? 0;
  }

  /** An allocation of `pages` served here (pgalloc_<zone>). */
  countAlloc(pages: number): void {
    this.pgalloc += pages;
  }

  /**
   * zone_statistics() for an allocation served here: `preferred`, this zone is on the node its
   * zonelist prefers (hit, else miss); `local`, on the allocating CPU's node. The preferred
   * zone of a miss counts it as foreign (foreign()).
   */
  countNuma(preferred: boolean, local: boolean): void {
    if (preferred) this.numaHit++;
    else this.numaMiss++;
    if (local) this.numaLocal++;
    else this.numaOther++;
  }

  /** This zone was preferred, and another node served the allocation (numa_foreign). */
  foreign(): void {
    this.numaForeign++;
  }

  /** Forget the allocation events so far (boot's allocations are not a workload's). */
  resetEvents(): void {
    this.pgalloc = this.numaHit = this.numaMiss = this.numaForeign = this.numaLocal = this.numaOther = 0;
  }

  // ---- page flags ---------------------------------------------------------------------------

  /** Flag array of a materialized section, or undefined for a pristine/reserved one. */
  flagsOf(pfn: number): Uint16Array | undefined {
    // Faults, refills and frees walk one section at a time: remember the last one looked up.
    if (pfn >= this.lastStart && pfn < this.lastEnd) return this.lastFlags;
    const sec = this.secOf(pfn);
    const flags = this.sections.get(sec);
    this.lastStart = this.secBase(sec);
    this.lastEnd = this.lastStart + this.secPages;
    this.lastFlags = flags;
    return flags;
  }

  /**
   * pfn mod secPages: the page's index in its section, right after flagsOf(pfn) (which left
   * the section's first pfn in lastStart). Not `%`: pfns are doubles (they pass 2^31 on big
   * machines) and V8 computes a double `%` with a libm fmod call.
   */
  private offsetOf(pfn: number): number {
    return pfn - this.lastStart;
  }

  /** The flag byte of `pfn`, or -1 when its section is not materialized. */
  pageFlagsAt(pfn: number): number {
    const f = this.flagsOf(pfn);
    return f ? f[this.offsetOf(pfn)]! : -1;
  }

  /** Do the n pages from pfn (one materialized section) all have these flags? */
  allFlagged(pfn: number, n: number, flags: number): boolean {
    const f = this.flagsOf(pfn);
    if (!f) return false;
    for (let i = this.offsetOf(pfn), end = i + n; i < end; i++) if (f[i] !== flags) return false;
    return true;
  }

  setHead(pfn: number, flags: number): void {
    const f = this.flagsOf(pfn);
    if (!f) assert(false, `pfn ${pfn} is in a materialized section`);
    f[this.offsetOf(pfn)] = flags;
  }

  /** setHead(pfn, flags) of a page in a materialized section; returns the flags it had. */
  swapHead(pfn: number, flags: number): number {
    const f = this.flagsOf(pfn);
    if (!f) assert(false, `pfn ${pfn} is in a materialized section`);
    const i = this.offsetOf(pfn);
    const old = f[i]!;
    f[i] = flags;
    return old;
  }

  private materialize(sec: number, zero: boolean): Uint16Array {
    const flags = new Uint16Array(this.secPages);
    this.sections.set(sec, flags);
    this.zeroBits.set(sec, new Uint8Array((this.secPages + 7) >> 3).fill(zero ? 0xff : 0));
    this.forgetLastSection();
    this.secState[sec - this.firstSec] = SEC_MAPPED;
    return flags;
  }

  /** The section holds one free top-order block again: forget its pages. */
  private makePristine(sec: number, cls: FreeClass): void {
    this.sections.delete(sec);
    this.zeroBits.delete(sec);
    this.forgetLastSection();
    const rel = sec - this.firstSec;
    this.secState[rel] = cls;
    if (rel < this.pristineCursor[cls]!) this.pristineCursor[cls] = rel;
  }

  /**
   * The zero bits of pfn's section (undefined: not materialized), remembered for the section
   * looked up last as flagsOf() remembers its flags: a fault writes, and a refill or a free
   * clears, one page after another of one section.
   */
  private zeroBitsOf(sec: number): Uint8Array | undefined {
    if (sec === this.lastZeroSec) return this.lastZeroBits;
    const bits = this.zeroBits.get(sec);
    this.lastZeroSec = sec;
    this.lastZeroStart = this.secBase(sec);
    this.lastZeroEnd = this.lastZeroStart + this.secPages;
    this.lastZeroBits = bits;
    return bits;
  }

  /** Are pfn's bytes zero? (The content oracle; a pristine section answers by its class.) */
  isZero(pfn: number): boolean {
    const last = this.lastZeroBits;
    if (last !== undefined && pfn >= this.lastZeroStart && pfn < this.lastZeroEnd) {
      const i = pfn - this.lastZeroStart;
      return (last[i >> 3]! & (1 << (i & 7))) !== 0;
    }
    const sec = this.secOf(pfn);
    const bits = this.zeroBitsOf(sec);
    if (!bits) return this.secState[sec - this.firstSec] === SEC_FREE_ZEROED;
    const i = pfn - this.secBase(sec);
    return (bits[i >> 3]! & (1 << (i & 7))) !== 0;
  }

  /** `pages` pages from pfn (one section) were cleared (zero) or written (not zero). */
  setZero(pfn: number, pages: number, zero: boolean): void {
    let bits = this.lastZeroBits;
    if (bits === undefined || pfn < this.lastZeroStart || pfn >= this.lastZeroEnd) {
      bits = this.zeroBitsOf(this.secOf(pfn));
      if (!bits) assert(false, `pfn ${pfn} is in a materialized section`);
    }
    let i = pfn - this.lastZeroStart;
    const end = i + pages;
    // A block (kscrubd's, a huge page's) sets its whole bytes at once, its ragged ends bit by bit.
    for (; i < end && (i & 7) !== 0; i++) this.setBit(bits, i, zero);
    if (end - i >= 8) {
      bits.fill(zero ? 0xff : 0, i >> 3, end >> 3);
      i = (end >> 3) << 3;
    }
    for (; i < end; i++) this.setBit(bits, i, zero);
  }

  private setBit(bits: Uint8Array, i: number, zero: boolean): void {
    if (zero) bits[i >> 3]! |= 1 << (i & 7);
    else bits[i >> 3]! &= ~(1 << (i & 7));
  }

  private forgetLastSection(): void {
    this.lastStart = -1;
    this.lastEnd = -1;
    this.lastFlags = undefined;
    this.lastZeroSec = -1;
    this.lastZeroStart = -1;
    this.lastZeroEnd = -1;
    this.lastZeroBits = undefined;
  }

  /** Lowest pristine section of `cls`, or -1. */
  private findPristine(cls: FreeClass): number {
    if (this.nrFree[cls]![this.topOrder] === 0) return -1;
    const st = this.secState;
    for (let rel = this.pristineCursor[cls]!; rel < this.nrSecs; rel++) {
      if (st[rel] === cls) {
        this.pristineCursor[cls] = rel;
        return rel;
      }
    }
    assert(false, `nr_free[${cls}][top] says a pristine section exists`);
  }

  // ---- free lists -----------------------------------------------------------------------------

  /** Is `pfn` the head of a listed free block of this order and class? */
  isFreeHead(pfn: number, order: number, cls: FreeClass): boolean {
    const f = this.flagsOf(pfn);
    return f !== undefined && f[this.offsetOf(pfn)] === pageFlags(KIND_FREE, order, cls);
  }

  private listAdd(pfn: number, order: number, cls: FreeClass): void {
    this.setHead(pfn, pageFlags(KIND_FREE, order, cls));
    const list = this.freeList[cls]![order]!;
    list.push(pfn);
    this.nrFree[cls]![order]!++;
    // Lazy deletion leaves stale entries; compact when they outnumber the live ones.
    if (list.length > 64 && list.length > 4 * this.nrFree[cls]![order]!) this.compact(cls, order);
  }

  /** Unlink a block that is known to be listed (a buddy about to merge). */
  private listDel(pfn: number, order: number, cls: FreeClass): void {
    this.setHead(pfn, 0);
    this.nrFree[cls]![order]!--;
  }

  /** Pop the list head, skipping stale entries. */
  private listPop(order: number, cls: FreeClass): number {
    const list = this.freeList[cls]![order]!;
    const head = pageFlags(KIND_FREE, order, cls);
    while (list.length > 0) {
      const pfn = list.pop()!;
      // The newest entry of a pfn is its live one, and popping meets the newest first: an
      // older duplicate is only reached after the live one was taken, when it reads stale.
      // (isFreeHead and listDel in one look at the flags.)
      const f = this.flagsOf(pfn);
      if (f === undefined) continue;
      const i = this.offsetOf(pfn);
      if (f[i] !== head) continue;
      f[i] = 0;
      this.nrFree[cls]![order]!--;
      return pfn;
    }
    return -1;
  }

  /** Live entries of a list, list head first, without duplicates. */
  listEntries(order: number, cls: FreeClass): number[] {
    const list = this.freeList[cls]![order]!;
    const seen = new Set<number>();
    const out: number[] = [];
    for (let i = list.length - 1; i >= 0; i--) {
      const pfn = list[i]!;
      if (!seen.has(pfn) && this.isFreeHead(pfn, order, cls)) out.push(pfn);
      seen.add(pfn);
    }
    return out;
  }

  /**
   * Drop stale entries, keeping the newest entry of each live block in list order. The scan
   * stops once all nr_free are found: compaction runs often while frees coalesce, when few
   * blocks are live. A live block's head is marked (KIND_SEEN) when its newest entry is kept,
   * so that its older duplicates read stale; the marks go once the scan is done. (A Set of the
   * seen pfns did the same, and was most of the allocator's garbage.)
   */
  private compact(cls: FreeClass, order: number): void {
    const list = this.freeList[cls]![order]!;
    const live = this.nrFree[cls]![order]!;
    const seen = pageFlags(KIND_SEEN, order, cls);
    let kept = 0;
    let w = list.length;
    for (let i = list.length - 1; i >= 0 && kept < live; i--) {
      const pfn = list[i]!;
      if (!this.isFreeHead(pfn, order, cls)) continue;
      this.setHead(pfn, seen);
      kept++;
      list[--w] = pfn;
    }
    const head = pageFlags(KIND_FREE, order, cls);
    for (let i = w; i < list.length; i++) this.setHead(list[i]!, head);
    for (let i = w; i < list.length; i++) list[i - w] = list[i]!;
    list.length -= w;
  }

  // ---- the buddy allocator --------------------------------------------------------------------

  /**
   * __rmqueue for one class: the smallest block of `cls` with order ≥ `order`, split down by
   * expand(). Returns the head pfn (marked with `headFlags`) or -1. Not accounted in
   * freePages/zeroPages yet: the caller says where the block goes (takeBlock).
   */
  private rmqueueSmallest(order: number, cls: FreeClass, headFlags: number, split = true): number {
    const nr = this.nrFree[cls]!;
    for (let current = order; current < this.maxOrder; current++) {
      let pfn: number;
      // An empty order by its count, not by popping its list: a refill climbs the orders
      // every batch. (Stale entries left in an empty list are never read as live.)
      if (current < this.topOrder && nr[current] === 0) continue;
      if (current === this.topOrder) {
        const rel = this.findPristine(cls);
        if (rel < 0) continue;
        this.nrFree[cls]![current]!--;
        const sec = this.firstSec + rel;
        this.materialize(sec, cls === ZEROED);
        pfn = this.secBase(sec);
      } else {
        pfn = this.listPop(current, cls);
        if (pfn < 0) continue;
      }
      this.splitOrder = current;
      if (split) this.expand(pfn, order, current, cls);
      this.setHead(pfn, headFlags);
      return pfn;
    }
    return -1;
  }

  /**
   * expand(): a block of order `high` at `pfn` is being cut down to order `low`; the upper
   * halves go back on the same class's lists (a zeroed block splits into zeroed halves).
   */
  private expand(pfn: number, low: number, high: number, cls: FreeClass): void {
    while (high > low) {
      high--;
      this.listAdd(pfn + orderPages(high), high, cls);
    }
  }

  /**
   * Take a block of `order` from class `cls` for an allocation, a per-cpu list, or kscrubd.
   * Returns the pfn or -1; free/zero page counts drop as the block leaves the lists.
   */
  takeBlock(order: number, cls: FreeClass, headFlags: number, split = true): number {
    const pfn = this.rmqueueSmallest(order, cls, headFlags, split);
    if (pfn >= 0) {
      const n = orderPages(order);
      this.freePages -= n;
      if (cls === ZEROED) this.zeroPages -= n;
    }
    return pfn;
  }

  /**
   * __free_one_page: put a block back on `cls`'s lists, merging with free buddies of the same
   * class only — a dirty block never merges with a zeroed buddy (V4+). Where the zero flag
   * lives on the block instead (mergeLosesZero), it merges with a free buddy of either class,
   * and a zeroed half merged with a dirty one loses its flag: order 1 zeroed at pfn 2 freed
   * beside a dirty order-1 buddy at pfn 0 makes one dirty order-2 block at 0, and zero_pages
   * drops by 2. Returns the final order (the caller wakes kscrubd on big enough not-zeroed
   * blocks; kscrubd never runs where the flag is lost on merge).
   * Precondition: the block is off every list and its head says so (any kind but FREE).
   */
  freeBlock(pfn: number, order: number, cls: FreeClass): number {
    const size = orderPages(order);
    this.freePages += size;
    if (cls === ZEROED) this.zeroPages += size;
    const sec = this.secOf(pfn);
    const base = this.secBase(sec);
    let off = pfn - base;
    while (order < this.topOrder) {
      const buddy = buddyOffset(off, order);
      let buddyCls = cls;
      if (!this.isFreeHead(base + buddy, order, cls)) {
        buddyCls = cls === ZEROED ? NOT_ZEROED : ZEROED;
        if (!this.mergeLosesZero || !this.isFreeHead(base + buddy, order, buddyCls)) break;
        // One of the two halves was zeroed: the merged block is not, and its half is no longer counted.
        const lost = orderPages(order);
        this.zeroPages -= lost;
        this._zeroLostOnMerge += lost;
      }
      this.listDel(base + buddy, order, buddyCls);
      if (buddyCls !== cls) cls = NOT_ZEROED;
      this.setHead(base + off, 0);
      off = combinedOffset(off, order);
      order++;
    }
    if (order === this.topOrder) {
      this.nrFree[cls]![order]!++;
      this.makePristine(sec, cls);
    } else {
      this.listAdd(base + off, order, cls);
    }
    return order;
  }

  /**
   * kscrubd's pick: the highest-order NOT_ZEROED block of order ≥ minOrder, from the head of
   * its list, taken off-list (it stays in freePages while it is zeroed). Null if none.
   */
  takeForScrub(minOrder: number): { pfn: number; order: number } | null {
    for (let order = this.topOrder; order >= minOrder; order--) {
      const pfn = this.takeForScrubAt(order);
      if (pfn >= 0) return { pfn, order };
    }
    return null;
  }

  /** A NOT_ZEROED block of exactly `order` taken off-list for zeroing (__isolate_free_page), or -1. */
  takeForScrubAt(order: number): number {
    if (this.nrFree[NOT_ZEROED]![order] === 0) return -1;
    const pfn = this.rmqueueSmallest(order, NOT_ZEROED, pageFlags(KIND_SCRUB, order, NOT_ZEROED));
    assert(pfn >= 0, 'nr_free promised a block');
    this.scrubPages += orderPages(order);
    return pfn;
  }

  /** end_zero_page: the zeroed block returns to the ZEROED lists, coalescing there. */
  endScrub(pfn: number, order: number): number {
    const size = orderPages(order);
    this.setZero(pfn, size, true); // the zero driver's clear of the block is done
    this.scrubPages -= size;
    this.freePages -= size; // freeBlock adds it back
    return this.freeBlock(pfn, order, ZEROED);
  }

  /**
   * init_on_free's boot wipe: every free block (listed or a pristine section) is cleared and
   * becomes ZEROED, merging with zeroed buddies. Returns pages cleared.
   * Precondition: booting: no per-cpu list holds a page and kscrubd holds no block.
   */
  wipeFree(): number {
    assert(this.pcpPages === 0 && this.scrubPages === 0, 'the boot wipe runs before anything else holds free pages');
    let pages = 0;
    for (let o = 0; o < this.topOrder; o++) {
      for (let pfn = this.listPop(o, NOT_ZEROED); pfn >= 0; pfn = this.listPop(o, NOT_ZEROED)) {
        const n = orderPages(o);
        this.setZero(pfn, n, true);
        this.freePages -= n; // freeBlock adds it back, now zeroed
        this.freeBlock(pfn, o, ZEROED);
        pages += n;
      }
    }
    let secs = 0;
    for (let rel = 0; rel < this.nrSecs; rel++) {
      if (this.secState[rel] !== SEC_FREE) continue;
      this.secState[rel] = SEC_FREE_ZEROED;
      secs++;
    }
    this.nrFree[NOT_ZEROED]![this.topOrder]! -= secs;
    this.nrFree[ZEROED]![this.topOrder]! += secs;
    this.zeroPages += secs * this.secPages;
    this.pristineCursor[ZEROED] = 0;
    return pages + secs * this.secPages;
  }

  /** Reserve `count` pages from `pfn` at boot (kernel image, mem_map): off the free lists for good. */
  reserveRange(pfn: number, count: number): void {
    let p = pfn;
    const end = pfn + count;
    while (p < end) {
      const sec = this.secOf(p);
      const rel = sec - this.firstSec;
      const base = this.secBase(sec);
      const len = this.secLen(rel);
      const secEnd = base + len;
      let flags: Uint16Array;
      if (this.secState[rel] === SEC_FREE) {
        this.nrFree[NOT_ZEROED]![this.topOrder]!--;
        this.freePages -= this.secPages;
        if (end >= secEnd && p === base) {
          this.secState[rel] = SEC_RESERVED;
          p = secEnd;
          continue;
        }
        flags = this.materialize(sec, false);
      } else {
        // A partial section, or one an earlier range reserved part of: at boot it holds only
        // free and reserved blocks; take the free ones off their lists to lay them out again.
        assert(this.secState[rel] === SEC_MAPPED, 'boot reserves only untouched memory');
        flags = this.sections.get(sec)!;
        for (let off = 0; off < len;) {
          const f = flags[off]!;
          assert(kindOf(f) === KIND_FREE || kindOf(f) === KIND_RESERVED, 'boot reserves only untouched memory');
          const n = orderPages(orderOf(f));
          if (kindOf(f) === KIND_FREE) {
            this.listDel(base + off, orderOf(f), NOT_ZEROED);
            this.freePages -= n;
          }
          off += n;
        }
      }
      // Reserved pages one by one, the rest freed as buddy blocks.
      const stop = Math.min(end, secEnd);
      for (let q = p; q < stop; q++) flags[q - base] = pageFlags(KIND_RESERVED, 0, NOT_ZEROED);
      for (let off = 0; off < len;) {
        if (flags[off] !== 0) { off++; continue; }
        let to = off;
        while (to < len && flags[to] === 0) to++;
        this.layoutFree(sec, off, to);
        off = to;
      }
      p = stop;
    }
    this.reservedPages += count;
    this.managedPages -= count;
  }

  // ---- contiguous ranges (alloc_contig_range) -------------------------------------------------

  /**
   * Zone-relative index of the first of `count` sections, aligned to `count`, at or after
   * `fromRel`, that are all pristine free blocks (what alloc_contig_range can take without
   * migrating anything), or -1.
   */
  findFreeSections(count: number, fromRel = 0): number {
    const align = count - (this.firstSec % count === 0 ? 0 : this.firstSec % count);
    let rel = align === count ? 0 : align;
    while (rel < fromRel) rel += count;
    for (; rel + count <= this.nrSecs; rel += count) {
      let ok = true;
      for (let i = 0; i < count && ok; i++) {
        const st = this.secState[rel + i]!;
        ok = st === SEC_FREE || st === SEC_FREE_ZEROED;
      }
      if (ok) return rel;
    }
    return -1;
  }

  /**
   * alloc_contig_range for a gigantic page: `count` pristine free sections from `rel` leave the
   * buddy lists whole. Returns the head pfn.
   * Precondition: findFreeSections() just returned `rel` for `count`.
   */
  takeSections(rel: number, count: number): number {
    for (let i = 0; i < count; i++) {
      const cls = this.secState[rel + i]! as FreeClass;
      assert(cls === SEC_FREE || cls === SEC_FREE_ZEROED, 'takeSections takes pristine free sections');
      this.nrFree[cls]![this.topOrder]!--;
      if (cls === ZEROED) this.zeroPages -= this.secPages;
      this.secState[rel + i] = SEC_GIGANTIC;
    }
    const pages = count * this.secPages;
    this.freePages -= pages;
    this.giganticPages += pages;
    return (this.firstSec + rel) * this.secPages;
  }

  /**
   * free_contig_range: a gigantic page's sections go back as free top-order blocks, dirty
   * (whatever the page held is not known to be zero by the buddy allocator).
   */
  returnSections(pfn: number, count: number): void {
    const rel = pfn / this.secPages - this.firstSec;
    for (let i = 0; i < count; i++) {
      assert(this.secState[rel + i] === SEC_GIGANTIC, 'returnSections returns gigantic sections');
      this.secState[rel + i] = SEC_FREE;
      this.nrFree[NOT_ZEROED]![this.topOrder]!++;
    }
    if (rel < this.pristineCursor[NOT_ZEROED]!) this.pristineCursor[NOT_ZEROED] = rel;
    const pages = count * this.secPages;
    this.freePages += pages;
    this.giganticPages -= pages;
  }

  // ---- per-cpu lists --------------------------------------------------------------------------

  /**
   * 2.6.11 free_area_init_core(): batch = present pages / 1024, capped at 256 KiB worth of
   * pages ("no point in going beyond the size of L2 cache"), / 4 ("we effectively *= 4
   * below"), at least 1. (The 2^n - 1 clamp came in a later kernel.) altix: 16 KiB pages, a
   * 1.5 GiB zone → min(96, 16) / 4 = 4; x86_64's big zones: min(…, 64) / 4 = 16.
   */
  static batchSize(presentPages: number, pageSize: number): number {
    let batch = Math.floor(presentPages / 1024);
    if (batch * pageSize > 256 * 1024) batch = Math.floor((256 * 1024) / pageSize);
    batch = Math.floor(batch / 4);
    return Math.max(1, batch);
  }

  /**
   * A modern kernel's zone_batchsize() (mm/page_alloc.c, 5.x–6.x): the smaller of a
   * thousandth of the zone and 1 MiB worth of pages, / 4, then clamped to 2^n - 1 ("a power of
   * 2 value was found to be more likely to have suboptimal cache aliasing properties"):
   * 4 KiB pages, a big zone → min(…, 256) / 4 = 64 → rounddown_pow_of_two(96) - 1 = 63.
   */
  static modernBatchSize(managedPages: number, pageSize: number): number {
    let batch = Math.min(Math.floor(managedPages / 1024), Math.floor(2 ** 20 / pageSize));
    batch = Math.max(1, Math.floor(batch / 4));
    return 2 ** Math.floor(Math.log2(batch + Math.floor(batch / 2))) - 1;
  }

  /**
   * zone_set_pageset_high_and_batch(): batch = max(1, zone_batchsize()) (a small zone's
   * clamp gives 0: DMA's 1 - 1), and zone_highsize(zone, batch, cpu_online = 0, fraction) for
   * high_min (fraction 0: the zone's low watermark) and high_max (an eighth of its pages),
   * each split over the CPUs of the zone's node and at least 4 × batch ("the historical
   * relationship between high and batch"). A 6.18 kernel on 2 CPUs prints, for a DMA32 zone of
   * 772918 managed pages and low watermark 12870: batch 63, high_min 6435, high_max 48307.
   */
  static modernPcpSizes(managedPages: number, lowWatermark: number, nodeCpus: number, pageSize: number): { batch: number; highMin: number; highMax: number } {
    const batch = Math.max(1, Zone.modernBatchSize(managedPages, pageSize));
    const split = (total: number): number => Math.max(Math.floor(total / nodeCpus), batch * 4);
    return { batch, highMin: split(lowWatermark), highMax: split(Math.floor(managedPages / MIN_PERCPU_PAGELIST_HIGH_FRACTION)) };
  }

  /**
   * The per-cpu lists. 2.6.11 (free_area_init_core): hot low 2·batch, high 6·batch; cold
   * low 0, high 2·batch; both move `batch` pages at a time. A modern kernel
   * (zone_set_pageset_high_and_batch): one batch from zone_batchsize(), high between
   * high_min and high_max, starting at high_min; it has no hot and cold lists (gone in 4.15),
   * so each of the model's three lists behaves alike. The prezeroing patch's zeroed list is a
   * cold one in 2.6.11's.
   */
  setupPagesets(pageSize: number, cpus: number, nodeCpus: number, modern: boolean): void {
    this.pageset = [];
    if (modern) {
      const { batch, highMin, highMax } = Zone.modernPcpSizes(this.managedPages, this.watermarkLow, nodeCpus, pageSize);
      this.sizeBulkScratch(batch * 2 ** PCP_BATCH_SCALE_MAX);
      // pcp->high starts at 0 (per_cpu_pages_init) and is clamped into [high_min, high_max] at first use.
      const pcp = (): PerCpuPages => ({ list: pfnList(), low: 0, high: 0, batch, modern, highMin, highMax, allocFactor: 0, freeCount: 0, orders: null });
      for (let cpu = 0; cpu < cpus; cpu++) this.pageset.push([pcp(), pcp(), pcp()]);
      return;
    }
    const batch = Zone.batchSize(this.presentPages, pageSize);
    this.sizeBulkScratch(batch);
    const pcp = (low: number, high: number): PerCpuPages => ({ list: pfnList(), low, high, batch, modern, highMin: high, highMax: high, allocFactor: 0, freeCount: 0, orders: null });
    for (let cpu = 0; cpu < cpus; cpu++) this.pageset.push([pcp(2 * batch, 6 * batch), pcp(0, 2 * batch), pcp(0, 2 * batch)]);
  }

  /** rmqueueBulk()'s scratch list holds a refill of `pages` (the most pcpAllocBatch() asks). */
  private sizeBulkScratch(pages: number): void {
    while (this.bulkScratch.length < pages) this.bulkScratch.push(0);
  }

  /**
   * zone_pcp_update() after the watermarks moved (a watermark sysctl write): a modern kernel's
   * lists take the new batch, high_min and high_max; their pages and pcp->high stay (high is
   * clamped into the new range at its next use). 2.6.11's lists do not depend on watermarks.
   */
  updatePagesetLimits(pageSize: number, nodeCpus: number): void {
    const { batch, highMin, highMax } = Zone.modernPcpSizes(this.managedPages, this.watermarkLow, nodeCpus, pageSize);
    for (const lists of this.pageset) {
      for (const p of lists) {
        if (!p.modern) return;
        p.batch = batch;
        p.highMin = highMin;
        p.highMax = highMax;
      }
    }
  }

  /**
   * How many pages a refill of `pcp` asks rmqueue_bulk for. 2.6.11: batch. Modern
   * (nr_pcp_alloc, 6.7 on): batch << alloc_factor; pcp->high first grows by that towards
   * high_max unless the zone is below its high watermark; the refill is at most what keeps
   * the list (with its high-order blocks) under high with a batch to spare, and each refill
   * since the last free doubles the next.
   */
  pcpAllocBatch(pcp: PerCpuPages): number {
    if (!pcp.modern) return pcp.batch;
    const base = pcp.batch;
    const batch = base * 2 ** pcp.allocFactor;
    pcp.high = Math.min(Math.max(pcp.high, pcp.highMin), pcp.highMax);
    if (pcp.highMin !== pcp.highMax && !this.belowHigh()) pcp.high = Math.min(pcp.high + batch, pcp.highMax);
    const maxNrAlloc = Math.max(pcp.high - pcpCount(pcp) - base, base);
    if (batch <= maxNrAlloc && pcp.allocFactor < PCP_BATCH_SCALE_MAX) pcp.allocFactor++;
    return Math.min(batch, maxNrAlloc);
  }

  /** rmqueue_pcplist: an allocation from `pcp` halves the run of frees it has seen (free_count >>= 1). */
  pcpAllocated(pcp: PerCpuPages): void {
    if (pcp.modern) pcp.freeCount >>= 1;
  }

  /**
   * A block of `pages` was just pushed on `pcp` (free_frozen_page_commit): how many pages to
   * drain now, 0 for none. 2.6.11: `batch` once the list reaches high. Modern: the free
   * halves alloc_factor and counts in free_count; nr_pcp_high() moves high (down towards
   * high_min while the zone is below its high watermark, up to hold a run of frees
   * otherwise); at high nr_pcp_free() drains the run of frees, at least a batch, leaving at
   * least a batch. `freeHigh` (a run of order-1…3 frees, pcp-orders.ts) drops high by 32
   * batches and drains up to that many pages at once.
   */
  pcpFreeCount(pcp: PerCpuPages, pages = 1, freeHigh = false): number {
    const count = pcpCount(pcp);
    if (!pcp.modern) return count >= pcp.high ? pcp.batch : 0;
    const batch = pcp.batch;
    pcp.allocFactor >>= 1;
    if (pcp.orders !== null && pages === 1) pcp.orders.prevFreeHighOrder = false;
    if (pcp.freeCount < batch * 2 ** PCP_BATCH_SCALE_MAX) pcp.freeCount += pages;
    let high = (pcp.high = Math.min(Math.max(pcp.high, pcp.highMin), pcp.highMax));
    if (freeHigh) {
      pcp.high = Math.max(high - batch * 2 ** PCP_BATCH_SCALE_MAX, pcp.highMin);
      return Math.min(count, batch * 2 ** PCP_BATCH_SCALE_MAX);
    }
    if (pcp.highMin !== pcp.highMax) {
      if (this.belowHigh()) {
        pcp.high = Math.max(high - Math.max(pcp.freeCount, batch), pcp.highMin);
        high = Math.max(count, pcp.highMin);
      } else if (count >= high) {
        const need = pcp.freeCount + batch;
        if (pcp.high < need) pcp.high = Math.min(Math.max(need, pcp.highMin), pcp.highMax);
      }
    }
    if (count < high) return 0;
    return Math.min(Math.max(pcp.freeCount, batch), high - batch);
  }

  /**
   * Pages moved onto (+) or off (−) a high-order per-cpu list (pcp-orders.ts); `drained`: off,
   * back to the buddy lists as one block — one __free_one_page, as munmap and exit price it.
   */
  pcpMoved(pages: number, drained = false): void {
    this.pcpPages += pages;
    if (drained) this.pcpDrained++;
  }

  /** ZONE_BELOW_HIGH: the zone's free pages are under its high watermark. */
  private belowHigh(): boolean {
    return this.freePages < this.watermarkHigh;
  }

  /**
   * rmqueue_bulk: move up to `count` order-0 pages of `cls` onto a per-cpu list. The patch's
   * rmqueue_bulk(zone, 0, batch, list, zero) takes one class only and stops when it runs out:
   * the other class is taken page by page under zone->lock (Machine.bufferedRmqueue).
   * Returns pages moved.
   */
  rmqueueBulk(pcp: PerCpuPages, count: number, cls: FreeClass): number {
    const got = this.bulkScratch;
    // (Sized by setupPagesets() for the biggest refill: a store past its end would make the
    // optimized refill, inlined in the allocator's hottest code, deoptimize.)
    while (got.length < count) got.push(0);
    let n = 0;
    while (n < count) {
      // When more pages are wanted after this one, takeSplitRest() lays out the rest of a split
      // block itself: expand() would list the halves that it then unlists (split = false).
      const pfn = this.takeBlock(0, cls, pageFlags(KIND_PCP, 0, cls), n + 1 === count);
      if (pfn < 0) break;
      got[n++] = pfn;
      // A page split off a bigger block: the next ones come from the rest of that block.
      if (this.splitOrder > 0 && n < count) n = this.takeSplitRest(pfn, this.splitOrder, cls, got, n, count);
    }
    // list_add_tail: refilled pages go to the cold end, so a page just freed to the hot end
    // is the next one handed out (it is still in cache). The cold end is index 0, so the
    // list becomes [got[n-1] … got[0], …old list] (shifted by hand: this runs every batch).
    const list = pcp.list;
    const old = list.length;
    // Grow at the end first: writing past the end would leave holes, and a holey list makes
    // V8 stop inlining pop() where lists of both kinds meet (each pop then boxes its pfn:
    // 16 bytes of garbage per page faulted, measured).
    for (let i = 0; i < n; i++) list.push(0);
    for (let i = old - 1; i >= 0; i--) list[i + n] = list[i]!;
    for (let i = 0; i < n; i++) list[i] = got[n - 1 - i]!;
    this.pcpPages += n;
    return n;
  }

  /**
   * rmqueueBulk() just took `head`, the first page of a block of `order` > 0, without the
   * split: expand() would have left the rest on this class's lists as one block of each order
   * below, head + 2^o for order o, and those lists hold no live block (the search for the
   * smallest block found none there). Single-page takes from there would take head + 1, head + 2, …
   * in address order — each the smallest block left, split as it goes — touching these lists
   * only. This takes up to count - n of them at once and leaves the lists, counts and page
   * flags exactly as those takes would: taken pages marked for the per-cpu list, and the free
   * rest of the block as its buddy blocks (at offset `off`, one of order ctz(off)).
   * Returns the new n.
   */
  private takeSplitRest(head: number, order: number, cls: FreeClass, got: number[], n: number, count: number): number {
    const size = orderPages(order);
    const k = Math.min(size - 1, count - n);
    const f = this.flagsOf(head)!;
    const base = this.offsetOf(head);
    const taken = pageFlags(KIND_PCP, 0, cls);
    for (let i = 1; i <= k; i++) {
      f[base + i] = taken;
      got[n++] = head + i;
    }
    this.freePages -= k;
    if (cls === ZEROED) this.zeroPages -= k;
    const lists = this.freeList[cls]!;
    const nr = this.nrFree[cls]!;
    for (let o = 0; o < order; o++) {
      const list = lists[o]!;
      while (list.length > 0) list.pop(); // (pop, not `length = 0`: that is a runtime call)
      nr[o] = 0;
    }
    for (let off = k + 1; off < size;) {
      const o = Math.clz32(off & -off) ^ 31; // ctz: the biggest aligned block at off
      f[base + off] = pageFlags(KIND_FREE, o, cls);
      lists[o]!.push(head + off);
      nr[o] = 1;
      off += orderPages(o);
    }
    return n;
  }

  /**
   * free_pages_bulk: return up to `count` pages from the list's cold end to the buddy lists.
   * The prezeroing patch's free_pages_bulk files every page it drains as NOT_ZEROED, whatever
   * list it sat on: a zeroed per-cpu page drained is zeroing thrown away, not a zeroed block.
   */
  freePagesBulk(pcp: PerCpuPages, count: number, onFreed: FreeListener, keepZeroed = false): number {
    const list = pcp.list;
    const n = Math.min(count, list.length);
    const runs = !onFreed.everyFree;
    for (let i = 0; i < n;) {
      const pfn = list[i]!;
      // init_on_free (keepZeroed): every free page is zero, so a zeroed page stays zeroed.
      const cls = keepZeroed ? classOf(this.pageFlagsAt(pfn)) : NOT_ZEROED;
      // The cold end is mostly runs of consecutive pfns (an exit frees in address order what
      // refills handed out in address order): a run of one class in one section is freed at once.
      let j = i + 1;
      if (runs) {
        const secEnd = this.flagsOf(pfn) === undefined ? pfn : this.lastEnd;
        while (j < n && list[j] === pfn + (j - i) && pfn + (j - i) < secEnd && (!keepZeroed || classOf(this.pageFlagsAt(list[j]!)) === cls)) j++;
      }
      if (j - i > 1) this.freeRun(pfn, j - i, cls, onFreed);
      else {
        this.setHead(pfn, pageFlags(KIND_ALLOC, 0, cls));
        onFreed.blockFreed(this, this.freeBlock(pfn, 0, cls), cls);
      }
      i = j;
    }
    // Drop the n taken from the cold end (by hand, as above: no spliced copy).
    for (let i = n; i < list.length; i++) list[i - n] = list[i]!;
    for (let i = 0; i < n; i++) list.pop(); // (not `length -= n`: a runtime call, every drain)
    this.pcpPages -= n;
    this.pcpDrained += n;
    return n;
  }

  /**
   * Free `n` pages pfn, pfn + 1, … of one section and class, none on a buddy list, leaving the
   * zone exactly as freeing them one by one in that order does, with one buddy walk per
   * aligned block of the run (the largest that fits at each offset, left to right) instead of
   * one per page. Why it is the same: a page of such a block that is not its last only merges
   * inside the block (the buddy above it holds the next page, not free yet), and the blocks
   * those merges leave listed are merged away by the block's last page, whose walk then goes
   * on from the whole block, as freeBlock() of the block does. Only the final blocks are
   * listed, in the order the one-by-one frees last listed them (address order); the older
   * entries they would have left are stale, which no list reader sees.
   */
  private freeRun(pfn: number, n: number, cls: FreeClass, onFreed: FreeListener): void {
    const base = this.secBase(this.secOf(pfn));
    const alloc = pageFlags(KIND_ALLOC, 0, cls);
    let off = pfn - base;
    const end = off + n;
    while (off < end) {
      let o = off === 0 ? this.topOrder : Math.min(Math.clz32(off & -off) ^ 31, this.topOrder);
      while (off + orderPages(o) > end) o--;
      const size = orderPages(o);
      // The block's pages as its walk finds them: tail pages merged (0), the head not listed.
      const f = this.flagsOf(base + off)!;
      for (let k = off + 1; k < off + size; k++) f[k] = 0;
      f[off] = alloc;
      onFreed.blockFreed(this, this.freeBlock(base + off, o, cls), cls);
      off += size;
    }
  }

  /**
   * pcpPush(pcp, pfn + i, NOT_ZEROED) for i = 0 … n − 1, each followed by the drain
   * pcpFreeCount() asks for, on a 2.6.11 list (fixed high and batch): a zap's run of
   * consecutive pfns, one section, every page allocated. The drains take the list's old
   * entries first (freePagesBulk, in order), then the run's first pages, freed as one run
   * (freeRun); only the pages no drain takes are pushed. Pushing a page never changes what
   * a drain's buddy walk finds (an allocated page and a per-cpu one are both not free), so
   * draining after the pushes frees the same pages in the same order. Returns pages drained.
   */
  pcpFreeRun(pcp: PerCpuPages, pfn: number, n: number, onFreed: FreeListener): number {
    assert(!pcp.modern && !onFreed.everyFree, 'a run is pushed on 2.6.11 per-cpu lists, freed in runs');
    const old = pcp.list.length;
    let len = old;
    let drained = 0;
    for (let i = 0; i < n; i++) {
      len++;
      if (len >= pcp.high) {
        const d = Math.min(pcp.batch, len);
        len -= d;
        drained += d;
      }
    }
    const fromOld = Math.min(drained, old);
    if (fromOld > 0) this.freePagesBulk(pcp, fromOld, onFreed);
    const fromRun = drained - fromOld;
    if (fromRun > 0) {
      this.freeRun(pfn, fromRun, NOT_ZEROED, onFreed);
      this.pcpDrained += fromRun;
    }
    const f = this.flagsOf(pfn)!;
    const pcpFlags = pageFlags(KIND_PCP, 0, NOT_ZEROED);
    for (let i = fromRun; i < n; i++) {
      f[this.offsetOf(pfn + i)] = pcpFlags;
      pcp.list.push(pfn + i);
    }
    this.pcpPages += n - fromRun;
    return drained;
  }

  /** Pop a page from a per-cpu list; its flags keep the class it came with. */
  pcpPop(pcp: PerCpuPages): number {
    const pfn = pcp.list.pop();
    if (pfn === undefined) return -1;
    this.pcpPages--;
    return pfn;
  }

  /** Push a (dirty or clean) page onto a per-cpu list. */
  pcpPush(pcp: PerCpuPages, pfn: number, cls: FreeClass): void {
    this.setHead(pfn, pageFlags(KIND_PCP, 0, cls));
    pcp.list.push(pfn);
    this.pcpPages++;
  }

  // ---- watermarks -----------------------------------------------------------------------------

  /** zone_watermark_ok(): enough free pages above `mark`, also counting only blocks ≥ order. */
  watermarkOk(order: number, mark: number): boolean {
    let free = this.freePages - this.scrubPages - orderPages(order) + 1;
    let min = mark;
    if (free <= min) return false;
    for (let o = 0; o < order; o++) {
      free -= (this.nrFree[0]![o]! + this.nrFree[1]![o]!) * orderPages(o);
      min = Math.floor(min / 2);
      if (free <= min) return false;
    }
    return true;
  }

  /** Free blocks of `order` in `cls` (buddyinfo). */
  blocks(cls: FreeClass, order: number): number {
    return this.nrFree[cls]![order]!;
  }

  contains(pfn: number): boolean {
    return pfn >= this.startPfn && pfn < this.endPfn;
  }

  /** Kind/order/class of the block that owns pfn's head, for diagnostics and check(). */
  describe(pfn: number): string {
    const f = this.pageFlagsAt(pfn);
    if (f < 0) return `pfn ${pfn} (section ${SEC_NAMES[this.secState[this.secOf(pfn) - this.firstSec]!]})`;
    return `pfn ${pfn} (kind ${kindOf(f)}, order ${orderOf(f)}, ${classOf(f) ? 'zeroed' : 'not zeroed'})`;
  }
}

export const SEC_NAMES = ['pristine not-zeroed', 'pristine zeroed', 'materialized', 'reserved', 'gigantic hugetlb'] as const;
