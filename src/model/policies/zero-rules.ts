import { NOT_ZEROED, ZEROED, orderPages } from '../page';
import type { Parts } from '../parts';
import type { Zone } from '../zone';

/** What zero-rules uses of the machine (parts.ts). */
export type ZeroRuleMachine = Pick<Parts, 'knobs' | 'nodeZones'>;

/**
 * What a background zeroing thread other than kscrubd zeroes, and when: the rule of Anolis's
 * kprezerod (a zeroed-page pool for high orders) or of FreeBSD's idle zeroer (vm_zeroidle).
 * Kscrubd (kscrubd.ts) runs the rule on the shared clock, CPUs, bus and zone locks, as it runs
 * Lameter's own.
 */
export interface ZeroRule {
  readonly name: 'kprezerod' | 'idlezero';
  /** Clears page by page (clear_highpage in a loop), not with one clear_pages() of the block. */
  readonly pageAtATime: true;
  /** Runs only on an idle CPU: an idle-priority thread never takes a CPU from a workload. */
  readonly idleOnly: boolean;
  /** A burst starts. */
  begin(m: ZeroRuleMachine): void;
  /** The next block to take off-list and zero, or null: the burst is over. */
  next(m: ZeroRuleMachine): { zone: Zone; pfn: number; order: number } | null;
  /** Pages cleared before the thread looks for runnable work (a block may take several runs). */
  runPages(m: ZeroRuleMachine): number;
  /** A block is zeroed and back on the lists. */
  zeroed(m: ZeroRuleMachine): void;
  /** When the sleeping thread wakes by itself (a timer; +∞ for none). */
  wakeAt(m: ZeroRuleMachine, now: number): number;
}

/**
 * Anolis's kprezerod (mm/prezero.c), one per node, waking every `sleep_msecs`: for each order
 * from `min_order` up, if fewer than `max_percent` % of that order's free blocks are zeroed, it
 * zeroes free blocks of exactly that order, page by page, up to `batch_pages` pages, and puts
 * them back flagged zeroed. The flag lives on the block: a zeroed block freed beside a dirty
 * buddy merges with it and loses the flag (Zone.mergeLosesZero). Anolis works ZONE_NORMAL of
 * the node; the model works the node's highest zone (Normal where the node has one; ia64 has
 * only DMA).
 */
export class PrezeroRule implements ZeroRule {
  readonly name = 'kprezerod' as const;
  readonly pageAtATime = true as const;
  readonly idleOnly = false;
  private order = 0;
  /** Pages zeroed at `order` this burst, and whether the order passed the max_percent test. */
  private done = 0;
  private entered = false;

  constructor(private readonly node: number) {}

  begin(m: ZeroRuleMachine): void {
    this.order = m.knobs.prezero_min_order;
    this.done = 0;
    this.entered = false;
  }

  next(m: ZeroRuleMachine): { zone: Zone; pfn: number; order: number } | null {
    const zones = m.nodeZones[this.node]!;
    const zone = zones[zones.length - 1]!;
    for (; this.order <= zone.topOrder; this.order++, this.done = 0, this.entered = false) {
      const o = this.order;
      if (!this.entered) {
        // nr_zeroed >= nr_free * prezero_max_percent / 100 → skip the order (unsigned long arithmetic).
        const nrZeroed = zone.nrFree[ZEROED]![o]!;
        const nrFree = nrZeroed + zone.nrFree[NOT_ZEROED]![o]!;
        if (nrZeroed >= Math.floor((nrFree * m.knobs.prezero_max_percent) / 100)) continue;
        this.entered = true;
      }
      if (this.done >= m.knobs.prezero_batch_pages) continue;
      const pfn = zone.takeForScrubAt(o);
      if (pfn < 0) continue;
      this.done += orderPages(o);
      return { zone, pfn, order: o };
    }
    return null;
  }

  runPages(): number {
    return Number.POSITIVE_INFINITY;
  }

  zeroed(): void {}

  wakeAt(m: ZeroRuleMachine, now: number): number {
    return m.knobs.prezero_enabled === 0 ? Number.POSITIVE_INFINITY : now + m.knobs.prezero_sleep_msecs * 1e6;
  }
}

/**
 * FreeBSD's idle zeroer (sys/vm/vm_zeroidle.c), one per node here: an idle-priority thread that
 * keeps about half the free pages zeroed, with hysteresis so that it does not flutter near
 * steady state — it zeroes while fewer than 4/5 of the free pages are zeroed (ZIDLE_HI), and
 * once it has reached that, not again until fewer than 2/3 are (ZIDLE_LO). A free wakes it
 * (vm_page_zero_idle_wakeup) when that test passes and `idlezero_enable` is set. It takes the
 * largest dirty free block first — whole, as Liang Li's PG_zero takes blocks that free page
 * reporting hands it, so that zeroing never splits free memory — from the zone user pages
 * come from first (the highest), and clears it a page at a time, looking for runnable work every `idlezero_maxrun` pages (then it waits for an idle CPU
 * again).
 */
export class IdleZeroRule implements ZeroRule {
  readonly name = 'idlezero' as const;
  readonly pageAtATime = true as const;
  readonly idleOnly = true;
  /** zero_state: set once the zeroed share reached ZIDLE_HI, cleared when a run starts. */
  zeroState = false;

  constructor(private readonly node: number) {}

  /** vm_page_zero_check() over the node's zones: should the idle thread zero now? */
  check(m: ZeroRuleMachine): boolean {
    if (m.knobs.idlezero_enable === 0) return false;
    const { zero, free } = this.counts(m);
    if (this.zeroState && zero >= Math.floor((free * 2) / 3)) return false;
    return zero < Math.floor((free * 4) / 5);
  }

  private counts(m: ZeroRuleMachine): { zero: number; free: number } {
    let zero = 0;
    let free = 0;
    for (const z of m.nodeZones[this.node]!) {
      zero += z.zeroPages;
      free += z.freePages;
    }
    return { zero, free };
  }

  begin(): void {}

  next(m: ZeroRuleMachine): { zone: Zone; pfn: number; order: number } | null {
    if (!this.check(m)) return null;
    this.zeroState = false;
    // Highest zone first: user pages (GFP_HIGHUSER) come from there and fall back downwards,
    // so zeroing DMA and Normal first would reach the 4/5 target on an i386 past 896 MiB
    // without one zeroed page in HighMem, where its faults take their pages.
    const zones = m.nodeZones[this.node]!;
    for (let i = zones.length - 1; i >= 0; i--) {
      const got = zones[i]!.takeForScrub(0);
      if (got) return { zone: zones[i]!, ...got };
    }
    return null;
  }

  runPages(m: ZeroRuleMachine): number {
    return m.knobs.idlezero_maxrun;
  }

  zeroed(m: ZeroRuleMachine): void {
    const { zero, free } = this.counts(m);
    if (zero >= Math.floor((free * 4) / 5)) this.zeroState = true;
  }

  wakeAt(): number {
    return Number.POSITIVE_INFINITY;
  }
}
