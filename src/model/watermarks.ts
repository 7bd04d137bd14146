import { ModelError } from '../uapi';
import { NOT_ZEROED, ZEROED, orderPages } from './page';
import type { Zone, ZoneName } from './zone';

/**
 * A modern kernel's zone watermarks (mm/page_alloc.c of 5.7 – 6.18; the model's 6.18 presets):
 *
 *   calculate_min_free_kbytes  int_sqrt(lowmem kB × 16), clamped to 128 kB .. 256 MiB (5.7
 *        raised the upper clamp from 64 MiB), unless a user's write asked for more
 *   set_recommended_min_free_kbytes (khugepaged, THP built in)  at least 11 pageblocks per
 *        populated zone up to Normal — 2 free for fragmentation avoidance, 3 × 3 for the
 *        migrate types' fallbacks — at most 5 % of nr_free_buffer_pages(). A 6.18 kernel with
 *        4.8 GiB in DMA, DMA32 and Normal: 512 × 3 × 11 = 16896 pages, min_free_kbytes 67584
 *        (../shared/fixtures/proc-6.18/sys/vm/min_free_kbytes).
 *   __setup_per_zone_wmarks  min = the zone's share of min_free_kbytes by managed pages (a
 *        HighMem zone: managed / 1024 clamped to 32 .. 128); the distance
 *        max(share / 4, managed × watermark_scale_factor / 10000) above it gives low, twice it
 *        high, three times promo; any boost is reset
 *   setup_per_zone_lowmem_reserve  lowmem_reserve[j] of a zone = managed pages of its node's
 *        zones above it up to j / sysctl_lowmem_reserve_ratio[zone] (DMA 256, DMA32 256,
 *        Normal 32, HighMem 0: no reserve). An allocation that may use zones up to j must
 *        leave the watermark plus that much free in a lower one.
 *
 * watermark_boost_factor is kept and range-checked, but boosting never happens: the kernel
 * boosts a zone when an allocation steals a pageblock of another migrate type, and the model
 * has no migrate types, so zoneinfo's `boost` stays 0.
 */
export const WMARK_SYSCTL_NAMES = ['min_free_kbytes', 'watermark_boost_factor', 'watermark_scale_factor'] as const;
export type WmarkSysctlName = (typeof WMARK_SYSCTL_NAMES)[number];

const INT_MAX = 2 ** 31 - 1;

/** proc_dointvec_minmax's bounds in vm_table (6.18: SYSCTL_ZERO, SYSCTL_ONE, SYSCTL_THREE_THOUSAND). */
export const WMARK_SYSCTL_RANGES: Readonly<Record<WmarkSysctlName, { readonly min: number; readonly max: number }>> = {
  min_free_kbytes: { min: 0, max: INT_MAX },
  watermark_boost_factor: { min: 0, max: INT_MAX },
  watermark_scale_factor: { min: 1, max: 3000 },
};

/** The defaults of watermark_boost_factor and watermark_scale_factor (mm/page_alloc.c). */
const WATERMARK_BOOST_FACTOR = 15000;
const WATERMARK_SCALE_FACTOR = 10;
/** calculate_min_free_kbytes()'s clamp (5.7 on). */
const MIN_FREE_KBYTES_FLOOR = 128;
const MIN_FREE_KBYTES_CEIL = 262144;
/** MIGRATE_PCPTYPES: unmovable, movable, reclaimable. */
const MIGRATE_PCPTYPES = 3;
/** SWAP_CLUSTER_MAX: a HighMem or Movable zone's min watermark is at least this. */
const SWAP_CLUSTER_MAX = 32;
/** sysctl_lowmem_reserve_ratio[]'s defaults by zone type. */
const LOWMEM_RESERVE_RATIO: Readonly<Record<ZoneName, number>> = { DMA: 256, DMA32: 256, Normal: 32, HighMem: 0 };

/** int_sqrt(): the integer square root, exact for any safe integer. */
function intSqrt(x: number): number {
  let r = Math.floor(Math.sqrt(x));
  while (r * r > x) r--;
  while ((r + 1) * (r + 1) <= x) r++;
  return r;
}

/** mult_frac(x, n, d) as the kernel computes it, so that no product overflows. */
function multFrac(x: number, n: number, d: number): number {
  return Math.floor(x / d) * n + Math.floor(((x % d) * n) / d);
}

/** The kernel's u64 (pages_min × managed) / lowmem_pages, exact past 2^53. */
function share(pagesMin: number, managed: number, lowmem: number): number {
  return lowmem === 0 ? 0 : Number((BigInt(pagesMin) * BigInt(managed)) / BigInt(lowmem));
}

/** What the watermarks are computed from. */
export interface WatermarkZones {
  readonly zones: readonly Zone[];
  /** Zones per node, lowest type first (setup_per_zone_lowmem_reserve walks a node's). */
  readonly nodeZones: readonly (readonly Zone[])[];
  /** The layout's zone types in kernel order (the length of each lowmem_reserve[]). */
  readonly zoneTypes: readonly ZoneName[];
  readonly pageSize: number;
  /** pageblock_order when khugepaged runs (THP possible), else null. */
  readonly thpPageblockOrder: number | null;
}

/**
 * The watermark sysctls of a modern kernel and what they set: one owner for min_free_kbytes,
 * user_min_free_kbytes, the two factors and every zone's min/low/high and lowmem_reserve[].
 */
export class Watermarks {
  private _minFreeKbytes = 0;
  /** -1 until a write to min_free_kbytes: calculate_min_free_kbytes() then never lowers it. */
  private userMinFreeKbytes = -1;
  private readonly values: Record<WmarkSysctlName, number> = {
    min_free_kbytes: 0, watermark_boost_factor: WATERMARK_BOOST_FACTOR, watermark_scale_factor: WATERMARK_SCALE_FACTOR,
  };

  constructor(private readonly m: WatermarkZones) {}

  get minFreeKbytes(): number {
    return this._minFreeKbytes;
  }

  value(name: WmarkSysctlName): number {
    return name === 'min_free_kbytes' ? this._minFreeKbytes : this.values[name];
  }

  /** init_per_zone_wmark_min(), then khugepaged's start (set_recommended_min_free_kbytes). */
  boot(): void {
    this.calculateMinFreeKbytes();
    this.setupPerZoneWmarks();
    this.setupPerZoneLowmemReserve();
    if (this.m.thpPageblockOrder !== null) this.setRecommendedMinFreeKbytes(this.m.thpPageblockOrder);
  }

  /**
   * A write after its range check: min_free_kbytes becomes the user's floor and, like
   * watermark_scale_factor, recomputes every zone's watermarks; the boost factor only is kept.
   * Returns whether the watermarks moved (the per-cpu lists' limits follow them).
   */
  set(name: WmarkSysctlName, value: number): boolean {
    const r = WMARK_SYSCTL_RANGES[name];
    if (!Number.isSafeInteger(value) || value < r.min || value > r.max) {
      throw new ModelError('KSCRUB_BAD_SYSCTL', `write vm.${name}: "${value}" is out of range ${r.min}..${r.max}`);
    }
    if (name === 'watermark_boost_factor') {
      this.values[name] = value;
      return false;
    }
    if (name === 'min_free_kbytes') {
      this._minFreeKbytes = value;
      this.userMinFreeKbytes = value;
    } else this.values[name] = value;
    this.setupPerZoneWmarks();
    return true;
  }

  /** nr_free_buffer_pages(): managed pages above the high watermark in zones up to Normal. */
  private nrFreeBufferPages(): number {
    let n = 0;
    for (const z of this.m.zones) if (z.name !== 'HighMem') n += Math.max(0, z.managedPages - z.watermarkHigh);
    return n;
  }

  private calculateMinFreeKbytes(): void {
    const kb = this.nrFreeBufferPages() * (this.m.pageSize / 1024);
    const fresh = intSqrt(kb * 16);
    if (fresh > this.userMinFreeKbytes) this._minFreeKbytes = Math.min(Math.max(fresh, MIN_FREE_KBYTES_FLOOR), MIN_FREE_KBYTES_CEIL);
  }

  private setRecommendedMinFreeKbytes(pageblockOrder: number): void {
    const nrZones = this.m.zones.filter((z) => z.name !== 'HighMem' && z.presentPages > 0).length;
    const pageblock = orderPages(pageblockOrder);
    let pages = pageblock * nrZones * 2 + pageblock * nrZones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
    pages = Math.min(pages, Math.floor(this.nrFreeBufferPages() / 20));
    const kb = pages * (this.m.pageSize / 1024);
    if (kb > this._minFreeKbytes) this._minFreeKbytes = kb;
    this.setupPerZoneWmarks();
  }

  /** __setup_per_zone_wmarks() (see the module comment). */
  private setupPerZoneWmarks(): void {
    const pagesMin = Math.floor((this._minFreeKbytes * 1024) / this.m.pageSize);
    let lowmem = 0;
    for (const z of this.m.zones) if (z.name !== 'HighMem') lowmem += z.managedPages;
    const wsf = this.values.watermark_scale_factor;
    for (const z of this.m.zones) {
      const part = share(pagesMin, z.managedPages, lowmem);
      const min = z.name === 'HighMem' ? Math.min(Math.max(Math.floor(z.managedPages / 1024), SWAP_CLUSTER_MAX), 128) : part;
      const gap = Math.max(Math.floor(part / 4), multFrac(z.managedPages, wsf, 10000));
      z.setWatermarkLevels(min, min + gap, min + 2 * gap);
    }
  }

  /** setup_per_zone_lowmem_reserve() (see the module comment). */
  private setupPerZoneLowmemReserve(): void {
    const types = this.m.zoneTypes;
    for (const zones of this.m.nodeZones) {
      for (const z of zones) {
        const i = types.indexOf(z.name);
        const ratio = LOWMEM_RESERVE_RATIO[z.name];
        const reserve = types.map(() => 0);
        let above = 0;
        for (let j = i + 1; j < types.length; j++) {
          above += zones.find((u) => u.name === types[j])?.managedPages ?? 0;
          if (ratio !== 0 && z.managedPages !== 0) reserve[j] = Math.floor(above / ratio);
        }
        z.setLowmemReserve(reserve);
      }
    }
  }

  /**
   * calculate_totalreserve_pages(): per zone its largest lowmem_reserve plus its high
   * watermark, at most its managed pages (what MemAvailable keeps back).
   */
  totalReservePages(): number {
    let n = 0;
    for (const z of this.m.zones) n += Math.min(z.managedPages, Math.max(0, ...z.lowmemReserve) + z.watermarkHigh);
    return n;
  }
}

/**
 * A modern kernel's __zone_watermark_ok() for an allocation that may use every zone type
 * (GFP_HIGHUSER_MOVABLE: lowmem_reserve[] of the highest): more free than `mark` plus the
 * reserve after taking the block, and for order > 0 one free block of at least that order
 * (4.x on; 2.6.11's check halved the mark per order instead — Zone.watermarkOk()).
 */
export function zoneWatermarkOk(z: Zone, order: number, mark: number): boolean {
  if (z.freePages - z.scrubPages - orderPages(order) + 1 <= mark + z.allocReserve) return false;
  if (order === 0) return true;
  for (let o = order; o < z.maxOrder; o++) if (z.blocks(NOT_ZEROED, o) + z.blocks(ZEROED, o) > 0) return true;
  return false;
}
