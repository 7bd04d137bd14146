import { ModelError } from '../uapi';
import type { FaultPricing } from './fault-price';
import type { Mm, ProcessTable, Vma } from './mm-types';
import type { Parts } from './parts';
import { PTE_NONE, mkPte, ptePfn, pteCacheHot } from './pte';
import { KIND_ALLOC, NOT_ZEROED, orderPages, pageFlags } from './page';
import type { PtLocks } from './ptlock';
import { type HugeFault, PH_PAGE, PH_THP, type Runner } from './runner';

/** What thp uses of the machine (parts.ts). */
export type ThpMachine = Pick<Parts, 'allocPages' | 'config' | 'cost' | 'freePages' | 'maxOrder' | 'vm' | 'zoneOf'> & { readonly procs: ProcessTable };

/**
 * Transparent huge pages for anonymous memory, as a modern kernel does them (the 2.6.11
 * kernel had none; the model adds them to ask whether prezeroing pays with them):
 *
 *   do_huge_pmd_anonymous_page  a write fault on an empty PMD whose whole aligned range lies
 *        in a VM_HUGEPAGE VMA allocates one block of HPAGE_PMD_ORDER (9 with 4 KiB pages) as
 *        __GFP_ZERO — prezeroed when kscrubd zeroed one, else cleared in the fault as one
 *        extent (clear_pages() at the extent's rate) — plus the pte page the kernel deposits
 *        for a later split, and maps the whole PMD at once. No free block of that order
 *        (thp_fault_fallback): the fault falls back to 4 KiB pages.
 *   zap / split_huge_pmd  unmapping the whole PMD frees the block; unmapping part of it
 *        splits the block into order-0 pages mapped by the deposited pte page first.
 *
 * Huge PMDs live in Mm.hugePtes (PMD index → a pte-format entry of the head pfn, whose
 * cache-hot bit says the fault cleared it here) and Mm.hugeDeposits (PMD index → the
 * deposited pte page's pfn). Read faults still map the 4 KiB ZERO_PAGE (no huge zero page).
 */

/** HPAGE_PMD_ORDER: the order of the block one PMD maps. */
export function hpageOrder(procs: ProcessTable): number {
  return Math.log2(procs.ptrsPerPte);
}

/** Why this machine cannot have THP, or null when it can. */
export function thpUnsupported(m: ThpMachine, procs: ProcessTable): string | null {
  if (m.config.pteBytes !== 8) return 'thp: this machine has 4-byte ptes (i386 without PAE), so no PMD can map a huge page';
  const order = hpageOrder(procs);
  if (order >= m.maxOrder) {
    return `thp: a PMD maps ${procs.pmdBytes} bytes (order ${order}), more than the buddy allocator's largest block (order ${m.maxOrder - 1})`;
  }
  return null;
}

/** Refuse THP (for `what`, the command asking) on a machine that cannot have it. */
export function assertThpSupported(m: ThpMachine, procs: ProcessTable, what: string): void {
  const why = thpUnsupported(m, procs);
  if (why) throw new ModelError('KSCRUB_BAD_OPTION', `${what}: ${why}`);
}

/** madvise(MADV_HUGEPAGE) on the whole VMA: its aligned ranges may fault huge from now on. */
export function madviseHugepage(m: ThpMachine, procs: ProcessTable, vma: Vma, what: string): void {
  assertThpSupported(m, procs, what);
  vma.thp = true;
}

/** One touch's huge faults (its mm has a VM_HUGEPAGE VMA). */
export class ThpFaults {
  readonly order: number;
  private readonly pmdBytes: number;
  /** prep_compound_page: the tail pages' struct pages, written in one sequential sweep. */
  private readonly compoundNs: number;
  /** A huge page cleared in the fault stays in the last-level cache only if it fits. */
  private readonly clearedStaysCached: boolean;

  constructor(
    private readonly m: ThpMachine,
    procs: ProcessTable,
    private readonly mm: Mm,
    private readonly p: FaultPricing,
    private readonly locks: PtLocks,
  ) {
    this.order = hpageOrder(procs);
    this.pmdBytes = procs.pmdBytes;
    this.compoundNs = ((orderPages(this.order) - 1) * m.config.structPageBytes) / m.cost.zeroBytesPerNs;
    this.clearedStaysCached = this.pmdBytes <= m.cost.cacheBytes;
  }

  /** The huge pte mapping addr's PMD, or PTE_NONE. */
  hugePte(addr: number): number {
    return this.mm.hugePtes.get(Math.floor(addr / this.pmdBytes)) ?? PTE_NONE;
  }

  /** The program touches a page inside a huge PMD (no fault): hits if the fault cleared it here. */
  touchMapped(r: Runner, pte: number): void {
    const hot = pteCacheHot(pte);
    this.p.touchLines(r, hot, hot ? -1 : this.m.zoneOf(ptePfn(pte)).node);
  }

  /**
   * Phase A of a write fault at r.addr on an empty PMD: if the PMD's range is eligible,
   * allocate (and price) the huge block and its deposit and return true (phase B follows);
   * false sends the fault down the 4 KiB path (not eligible, or no block: a fallback).
   */
  begin(r: Runner): boolean {
    const vma = r.vma;
    const start = Math.floor(r.addr / this.pmdBytes) * this.pmdBytes;
    if (!vma.thp || start < vma.start || start + this.pmdBytes > vma.end) return false;
    const m = this.m;
    const pfn = m.allocPages(this.order, true, r.node, r.cpu, this.p.served);
    if (pfn < 0) {
      m.vm.thpFaultFallback++;
      return false;
    }
    const node = this.p.served.zone!.node;
    // Cleared as one 2 MiB extent, sharing the node's bus with other CPUs zeroing at once.
    const hot = this.p.priceAlloc(r, this.pmdBytes);
    this.p.sys(r, node === r.node ? this.compoundNs : this.compoundNs * m.cost.remoteFactor);
    // pte_alloc_one: the page table deposited for a later split (GFP_PGTABLE_USER is __GFP_ZERO).
    const deposit = m.allocPages(0, true, r.node, r.cpu, this.p.served);
    if (deposit < 0) {
      this.p.release(r, pfn, this.order);
      m.vm.thpFaultFallback++;
      return false;
    }
    this.p.priceAlloc(r);
    r.huge = { pfn, deposit, hot, node };
    r.phase = PH_THP;
    return true;
  }

  /**
   * Phase B: under the page table lock, map the PMD if it is still empty and touch the page;
   * returns the huge page mapped. Another thread that mapped it meanwhile wins: ours goes
   * back, null (the access is retried and finds the mapping).
   */
  install(r: Runner): HugeFault | null {
    const m = this.m;
    const h = r.huge!;
    r.huge = null;
    r.phase = PH_PAGE;
    this.locks.lockFor(r, m.cost.ptlSetNs);
    const pmd = Math.floor(r.addr / this.pmdBytes);
    const mm = this.mm;
    if (mm.ptes.has(pmd) || mm.hugePtes.has(pmd)) {
      this.p.release(r, h.pfn, this.order);
      this.p.release(r, h.deposit, 0);
      return null;
    }
    const pages = orderPages(this.order);
    // The faulting subpage is cleared last (process_huge_page), so the first touch hits; the
    // other subpages' lines are still cached afterwards only if 2 MiB fits the cache.
    mm.hugePtes.set(pmd, mkPte(h.pfn, h.hot && this.clearedStaysCached));
    mm.hugeDeposits.set(pmd, h.deposit);
    m.procs.anonMapped(mm, pages, true);
    const vm = m.vm;
    vm.thpFaultAlloc++;
    if (h.hot) {
      vm.thpFaultHotZeroed++;
      vm.faultHotZeroed += pages;
    } else {
      vm.thpFaultPrezeroed++;
      vm.faultPrezeroed += pages;
    }
    this.p.touchLines(r, h.hot, h.node);
    return h;
  }
}

/**
 * zap of [start, end) inside huge PMD `pmd`: the whole PMD frees the block and its deposit
 * (returns the pages freed); part of it splits the block into order-0 pages mapped by the
 * deposited pte page (returns 0; the caller then zaps that pte page's range as usual).
 */
export function zapHugePmd(m: ThpMachine, procs: ProcessTable, mm: Mm, pmd: number, start: number, end: number, cpu: number): number {
  const pte = mm.hugePtes.get(pmd)!;
  const deposit = mm.hugeDeposits.get(pmd)!;
  const pfn = ptePfn(pte);
  const order = hpageOrder(procs);
  const pages = orderPages(order);
  mm.hugePtes.delete(pmd);
  mm.hugeDeposits.delete(pmd);
  const whole = end - start === procs.pmdBytes;
  procs.hugeUnmapped(whole);
  if (whole) {
    m.vm.thpZapFreed++;
    m.freePages(pfn, order, cpu);
    m.freePages(deposit, 0, cpu);
    return pages;
  }
  // split_huge_pmd + split_page: each page becomes an order-0 allocation with its own pte.
  const zone = m.zoneOf(pfn);
  const table = procs.takeTable();
  const hot = pteCacheHot(pte);
  for (let i = 0; i < pages; i++) {
    zone.setHead(pfn + i, pageFlags(KIND_ALLOC, 0, NOT_ZEROED));
    table[i] = mkPte(pfn + i, hot);
  }
  mm.ptes.set(pmd, table);
  mm.ptePfns.set(pmd, deposit);
  return 0;
}
