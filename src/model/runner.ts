import type { Mm, Task, Vma } from './mm-types';
import type { SpinLock } from './spinlock';

/**
 * A runner's phases: what its next event does. One list, so that every path that parks a
 * runner between events (the anonymous fault, page_table_lock, THP) names its phase here.
 */
/** User code up to the next fault; then the fault's pieces around page_table_lock. */
export const PH_PAGE = 0;
/** Page in hand: take page_table_lock again to install it. */
export const PH_INSTALL = 1;
/** A huge fault's block in hand: map the PMD (thp.ts). */
export const PH_THP = 2;
/** Holding page_table_lock for handle_mm_fault's walk (section 1); then allocate and zero. */
export const PH_CS1 = 3;
/** Holding page_table_lock for do_anonymous_page's second section; then back to user. */
export const PH_CS2 = 4;
/**
 * Section 1's or 2's work is done at the event's time: release page_table_lock now. A release
 * of its own event, so that what other threads did to mm_struct's line while the lock was
 * held (mmap_sem, spinning) has happened before the releasing store pays for the line.
 */
export const PH_UNLOCK1 = 5;
export const PH_UNLOCK2 = 6;

/** A huge fault's block and its deposited pte page, held between its phases (thp.ts). */
export interface HugeFault {
  readonly pfn: number;
  readonly deposit: number;
  readonly hot: boolean;
  readonly node: number;
}

/**
 * One thread of a touch: an actor on the virtual clock. A class, so every runner has one
 * shape; every number field has a number initializer (an ES2022 field declared without one
 * starts undefined, and V8 then keeps it tagged: each double stored would be a new heap box).
 */
export class Runner {
  readonly task: Task;
  readonly cpu: number = 0;
  readonly node: number = 0;
  addr = 0;
  /** Where its share ends; TouchJob.stop() brings it in to stop at the next page. */
  end = 0;
  /** The access at addr writes; and the VMA addr is in. */
  write = true;
  vma: Vma;
  /** A fault list's runner: its addresses and writes, and the entry at addr (else null: a range). */
  list: Float64Array | null = null;
  writes: Uint8Array | null = null;
  li = 0;
  /** Time of this runner's next event. */
  t = 0;
  /** What the next event does: one of the PH_* above. */
  phase = PH_PAGE;
  /** Spinning on `lock` since spinFrom (not scheduled; the lock's release grants it). */
  parked = false;
  /** The page-table lock this runner's fault takes (PtLocks.spinLock sets it), and the PMD it covers. */
  lock: SpinLock<Runner> | null = null;
  lockPmd = -1;
  spinFrom = 0;
  /** While spinning: the count of spins begun on the touch's locks when it began (its lock's list is in this order). */
  spinSeq = 0;
  done = false;
  /**
   * Waiting for its CPU while another thread of that CPU holds it through a page_table_lock
   * spin or section (not scheduled; FaultLoop wakes it when that thread lets the CPU go).
   */
  cpuWait = false;
  /** Its index in the touch's runner list (the event loop's key array). */
  slot = 0;
  userNs = 0;
  sysNs = 0;
  /** When the fault in flight began (the trap), for the slowest fault of a touch. */
  faultStart = 0;
  /** The fault in flight between phases A and B: its pages are pfns[0 … nPages-1]. */
  faultAddr = 0;
  nPages = 0;
  pfns: Float64Array;
  /** 1: pfns[i] was hot-zeroed (its lines are in this CPU's cache). */
  hot: Uint8Array;
  /** Node of the zone pfns[0] came from (the program's first touch misses there). */
  firstNode = 0;
  zeroPage = false;
  /** The write fault in section 1 found ZERO_PAGE mapped (do_wp_page's copy, one page). */
  cow = false;
  /** A huge fault between its phases (thp.ts; phase PH_THP). */
  huge: HugeFault | null = null;
  /**
   * The pte page this runner walks, covering addresses [tableStart, tableEnd): a runner goes
   * through its share in address order, a PMD at a time, and pte pages live as long as the mm.
   */
  table: Float64Array | null = null;
  tableStart = -1;
  tableEnd = -1;

  constructor(task: Task, cpu: number, node: number, addr: number, end: number, t: number, maxPages: number, vma: Vma, write: boolean) {
    this.task = task;
    this.vma = vma;
    this.write = write;
    this.cpu = cpu;
    this.node = node;
    this.addr = addr;
    this.end = end;
    this.t = t;
    this.pfns = new Float64Array(maxPages);
    this.hot = new Uint8Array(maxPages);
  }
}

/** A touch's counts (TouchResult's), added to by the fault path and its pricing. */
export class TouchCounts {
  pages = 0;
  faults = 0;
  prezeroed = 0;
  hotZeroed = 0;
  prefaulted = 0;
  oom = 0;
  /** Hot zeroing's share of the system time. */
  zeroedNs = 0;
  /** The slowest fault, trap to return (a zeroing policy's worst case, not its average). */
  maxFaultNs = 0;

  constructor() {
    // The times are doubles from the start: a field that holds small integers until its first
    // fraction (a patched run's first hot zeroing may come in its second touch) changes the
    // class's shape then, and code optimized for the old one is thrown away and compiled again.
    this.zeroedNs = this.maxFaultNs = 0.5;
    this.zeroedNs = this.maxFaultNs = 0;
  }
}

/** What every part of one touch's fault path works on: the mm and how its runners share it. */
export interface FaultScope {
  readonly mm: Mm;
  /**
   * More than one runner: a lock section ends in an event of its own (PH_UNLOCK1/2). One
   * runner alone has nobody to interleave with, and releases within the section's event.
   */
  readonly shared: boolean;
  /**
   * Every runner has a CPU of its own. Either way a spinning runner keeps its CPU until the
   * lock comes, as a holder keeps it until its release (preemption is off in both); with more
   * threads than CPUs the other threads of that CPU wait meanwhile (FaultLoop), so no CPU's
   * time is counted twice. Only with one CPU each can a release look for its nearest spinner
   * CPU by CPU (PtLocks.nearOf).
   */
  readonly spinOwnsCpu: boolean;
}
