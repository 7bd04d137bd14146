import { type FaultAllocMachine, allocRun, countMapped } from './fault-alloc';
import type { FaultPricing } from './fault-price';
import type { Mm, ProcessTable } from './mm-types';
import { orderPages } from './page';
import type { Parts } from './parts';
import { prefaultPages } from './prefault';
import { PTE_NONE, PTE_ZERO_PAGE, mkPte, ptePfn, pteCacheHot } from './pte';
import { PteWalk } from './pte-walk';
import type { PtLocks } from './ptlock';
import {
  PH_CS1, PH_CS2, PH_INSTALL, PH_PAGE, PH_THP, PH_UNLOCK1, PH_UNLOCK2, type FaultScope, type Runner, type TouchCounts,
} from './runner';
import { type ThpMachine, ThpFaults } from './thp';

/** What anon-fault uses of the machine (parts.ts). */
export type AnonFaultMachine = Pick<Parts, 'config' | 'cost' | 'pageSize' | 'slowestFaultNs' | 'sysctl' | 'vm' | 'zoneOf'> & FaultAllocMachine & ThpMachine;

/**
 * The anonymous fault of 2.6.11, one event of a runner at a time:
 *
 *   faultBegin  trap, down_read(mmap_sem), find_vma, spin_lock(page_table_lock)
 *   section1    handle_mm_fault's walk to the pte under the lock; drop it; allocate
 *               (per-cpu list; zone->lock on a refill of `batch` pages) and hot-zero if no
 *               prezeroed page came (clear_page shares the node's bus with other zeroing CPUs)
 *   section2    do_anonymous_page: page_table_lock again: recheck, rss, lru_cache_add_active
 *               (a full pagevec drains under zone->lru_lock), rmap, set_pte; unlock; up_read;
 *               back to user, where the program writes its lines: a prezeroed page is cold
 *               (every line a miss), a page the CPU just zeroed is in cache (hits).
 *
 * What it costs is FaultPricing's; page_table_lock is PtLocks'; how many pages a fault maps
 * is prefault.ts's; a huge PMD is thp.ts's.
 */
export class AnonFault {
  private readonly ps: number;
  private readonly mm: Mm;
  /** The runners' pte pages and next addresses. */
  private readonly walk: PteWalk;
  /** Huge-page faults, when the VMA is MADV_HUGEPAGE (thp.ts). */
  private readonly thp: ThpFaults | null = null;
  /**
   * A page went back to the allocator in the last event (a free may wake kscrubd): the event
   * loop asks the machine again when its next background event is due.
   */
  woke = false;

  constructor(
    private readonly m: AnonFaultMachine,
    private readonly procs: ProcessTable,
    private readonly scope: FaultScope,
    private readonly p: FaultPricing,
    private readonly locks: PtLocks,
    private readonly counts: TouchCounts,
    /** Distance between a range runner's addresses. */
    stride: number,
  ) {
    this.ps = m.pageSize;
    this.mm = scope.mm;
    this.walk = new PteWalk(procs, this.mm, stride, m.pageSize);
    if (this.mm.vmas.some((v) => v.thp)) this.thp = new ThpFaults(m, procs, this.mm, p, locks);
  }

  /** Run runner r's next event (its phase says which) at r.t. */
  event(r: Runner): void {
    switch (r.phase) {
      case PH_PAGE: this.nextPage(r); break;
      case PH_CS1: this.section1(r); break;
      case PH_INSTALL: if (this.locks.spinLock(r, PH_CS2)) this.section2(r); break;
      case PH_THP: this.thpInstall(r); break;
      case PH_CS2: this.section2(r); break;
      default: this.release(r, r.phase); // PH_UNLOCK1, PH_UNLOCK2
    }
  }

  /** Touch pages until one faults (its first piece runs) or the runner's share is done. */
  private nextPage(r: Runner): void {
    while (r.addr < r.end) {
      const table = this.walk.peek(r, r.addr);
      if (!table && this.thp !== null) {
        // Inside a huge PMD: no fault, the program writes its lines.
        const huge = this.thp.hugePte(r.addr);
        if (huge !== PTE_NONE) {
          this.thp.touchMapped(r, huge);
          this.counts.pages++;
          this.walk.advance(r);
          continue;
        }
      }
      const idx = table ? this.walk.index(r, r.addr) : 0;
      const pte = table ? table[idx]! : PTE_NONE;
      const present = r.write ? pte >= 2 : pte !== PTE_NONE;
      if (!present || !table) return this.faultBegin(r);
      // No fault: the program just writes its lines.
      this.p.userTouch(r, pte >= 2 && pteCacheHot(pte), pte >= 2 ? ptePfn(pte) : -1);
      if (pte >= 2) {
        table[idx] = mkPte(ptePfn(pte), false);
        if (r.write) this.written(ptePfn(pte));
      }
      this.counts.pages++;
      this.walk.advance(r);
    }
    r.done = true;
  }

  /**
   * ia64_do_page_fault up to page_table_lock: the trap, down_read(mmap_sem) — an atomic on
   * mm_struct's first cacheline, which page_table_lock shares — find_vma, and a pte page for
   * the PMD if it has none (__pte_alloc allocates with the lock dropped).
   */
  private faultBegin(r: Runner): void {
    const c = this.m.cost;
    r.faultStart = r.t;
    this.counts.faults++;
    this.m.vm.pgfault++;
    this.p.sys(r, c.trapNs + c.handlerNs);
    this.p.sys(r, this.mm.mmapSem.downRead(this.p.lines, r.cpu));
    // An empty PMD of a MADV_HUGEPAGE range takes a huge page if it can (thp.ts).
    if (this.thp !== null && r.write && !this.walk.peek(r, r.addr) && this.thp.begin(r)) return;
    if (!this.walk.peek(r, r.addr) && !this.pteAlloc(r)) return this.outOfMemory(r);
    r.faultAddr = r.addr;
    if (this.locks.spinLock(r, PH_CS1)) this.section1(r);
  }

  /**
   * handle_mm_fault under page_table_lock: walk to the pte and look at it; do_anonymous_page
   * (or do_wp_page for the ZERO_PAGE) drops the lock to allocate and zero. A read fault maps
   * ZERO_PAGE without dropping it.
   */
  private section1(r: Runner): void {
    const m = this.m;
    this.p.sys(r, m.cost.ptlCheckNs);
    const table = this.walk.peek(r, r.faultAddr)!;
    const idx = this.walk.index(r, r.faultAddr);
    const pte = table[idx]!;
    r.nPages = 0;
    r.zeroPage = false;
    r.cow = false;
    if (!r.write) {
      // do_anonymous_page's read path with V2: ZERO_PAGE over the whole predicted run (each
      // empty pte of it), and the prediction moves on as for a write.
      const n = prefaultPages(r, m.sysctl.max_prealloc_order, this.ps);
      let mapped = 0;
      for (let i = 0; i < n; i++) {
        if (table[idx + i] !== PTE_NONE) continue;
        table[idx + i] = PTE_ZERO_PAGE;
        mapped++;
      }
      m.vm.faultZeroPage++;
      this.p.sys(r, m.cost.ptlSetNs * Math.max(1, mapped));
    } else r.cow = pte === PTE_ZERO_PAGE;
    this.endSection(r, PH_UNLOCK1);
  }

  /**
   * A lock section's work is done: release page_table_lock in an event of its own when other
   * runners share the mm (PH_UNLOCK1/2), else at once; then go on after the section.
   */
  private endSection(r: Runner, unlock: typeof PH_UNLOCK1 | typeof PH_UNLOCK2): void {
    if (this.scope.shared) r.phase = unlock;
    else this.release(r, unlock);
  }

  private release(r: Runner, unlock: number): void {
    this.locks.unlock(r);
    if (unlock === PH_UNLOCK1) this.afterSection1(r);
    else this.afterSection2(r);
  }

  /** page_table_lock dropped after section 1: a read fault is done; a write allocates and zeroes. */
  private afterSection1(r: Runner): void {
    if (!r.write) return this.backToUser(r, false, -1);
    const cow = r.cow;
    if (cow) this.m.vm.faultCow++;
    allocRun(this.m, this.p, r, cow ? 1 : prefaultPages(r, this.m.sysctl.max_prealloc_order, this.ps));
    if (r.nPages === 0) {
      this.faultEnd(r);
      return this.outOfMemory(r);
    }
    // The page is in hand: a new event, so that other threads' events between now and then run first.
    r.phase = PH_INSTALL;
  }

  /**
   * do_anonymous_page's second section: recheck the pte, mm->rss++ and hiwater (the mm's
   * counter line), lru_cache_add_active (a full pagevec drains under zone->lru_lock, with
   * page_table_lock still held), page_add_anon_rmap, set_pte; then up_read and back to user.
   */
  private section2(r: Runner): void {
    const m = this.m;
    const mm = this.mm;
    const n = r.nPages;
    const split = this.locks.split;
    // mm->rss++ on mm_struct's counter line; today's kernels count rss per CPU (no transfer).
    // Then 2.6.11's update_mem_hiwater(): rss just grew past hiwater_rss, so it is stored —
    // on every fault of a growing mm, on a line of its own, still under page_table_lock.
    const lines = this.p.lines;
    const hiwater = m.config.hiwaterInFault ? lines.take(mm.hiwaterLine, r.cpu) : 0;
    this.p.sys(r, m.cost.ptlSetNs * n + (split ? 0 : lines.take(mm.rssLine, r.cpu)) + hiwater);
    const table = this.walk.peek(r, r.faultAddr)!;
    const idx0 = this.walk.index(r, r.faultAddr);
    let mapped = 0;
    let freed = false;
    for (let i = 0; i < n; i++) {
      const idx = idx0 + i;
      const old = table[idx]!;
      // A pte another thread filled meanwhile keeps its page; ours goes back.
      const cow = i === 0 && old === PTE_ZERO_PAGE;
      if (old !== PTE_NONE && !cow) {
        this.p.release(r, r.pfns[i]!, 0);
        // The faulting page losing its pte is 2.6.11's own recheck, not a prefaulted page.
        if (i > 0) m.vm.prefaultReleased++;
        freed = true;
        continue;
      }
      table[idx] = mkPte(r.pfns[i]!, r.hot[i] === 1 && i > 0);
      mapped++;
      countMapped(m.vm, this.counts, r.hot[i] === 1, i > 0);
      this.p.lruAdd(r, r.pfns[i]!);
    }
    // A free may have woken kscrubd.
    if (freed) this.woke = true;
    this.procs.anonMapped(mm, mapped);
    this.endSection(r, PH_UNLOCK2);
  }

  /** page_table_lock dropped after section 2: the page is mapped, and the program writes it. */
  private afterSection2(r: Runner): void {
    // The page the pte maps: ours, or another thread's that filled it meanwhile (ours went
    // back to the allocator in section 2 and must not be written).
    const pte = this.walk.peek(r, r.faultAddr)![this.walk.index(r, r.faultAddr)]!;
    if (pte >= 2) this.written(ptePfn(pte));
    this.backToUser(r, r.hot[0] === 1, r.firstNode);
  }

  /** The content oracle (check()): the program wrote pfn, its bytes are no longer zero. */
  private written(pfn: number): void {
    this.m.zoneOf(pfn).setZero(pfn, 1, false);
  }

  /**
   * The fault is done: up_read(mmap_sem), back to user, where the program writes its lines
   * (of a page on `node`, hot in cache or not: touchLines), and on to its next address.
   */
  private backToUser(r: Runner, cacheHot: boolean, node: number): void {
    this.faultEnd(r);
    this.p.touchLines(r, cacheHot, node);
    this.counts.pages++;
    this.walk.advance(r);
    r.phase = PH_PAGE;
  }

  /** up_read(mmap_sem) (an atomic on mm_struct's first line) and the return to user mode (the trap's exit is in trapNs). */
  private faultEnd(r: Runner): void {
    this.p.sys(r, this.mm.mmapSem.upRead(this.p.lines, r.cpu));
    this.faultDone(r);
  }

  /** The fault in flight is over: the slowest yet? */
  private faultDone(r: Runner): void {
    const ns = r.t - r.faultStart;
    if (ns > this.counts.maxFaultNs) this.counts.maxFaultNs = ns;
    if (ns > this.m.slowestFaultNs) this.m.slowestFaultNs = ns;
  }

  /** __pte_alloc for r.addr's PMD (it has no pte page): false when memory is exhausted. */
  private pteAlloc(r: Runner): boolean {
    const pt = this.procs.pteAlloc(this.mm, r.addr, r.node, r.cpu, this.p.served);
    if (!pt) return false;
    this.walk.remember(r, r.addr, pt.table);
    if (pt.fresh) this.p.priceAlloc(r);
    return true;
  }

  /** Out of memory: the thread stops here, as the OOM killer would stop it. */
  private outOfMemory(r: Runner): void {
    this.counts.oom++;
    this.m.vm.faultOom++;
    r.done = true;
  }

  /** Phase B of a huge fault: the PMD mapped (its pages counted), or ours released and retried. */
  private thpInstall(r: Runner): void {
    const h = this.thp!.install(r);
    if (h === null) {
      this.woke = true; // the release may have woken kscrubd
      return;
    }
    const pages = orderPages(this.thp!.order);
    if (h.hot) this.counts.hotZeroed += pages;
    else this.counts.prezeroed += pages;
    this.faultDone(r);
    this.counts.pages++;
    this.walk.advance(r);
  }
}
