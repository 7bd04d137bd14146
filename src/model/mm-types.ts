import { MAX_MAP_BYTES, ModelError } from '../uapi';
import type { AllocResult } from './alloc-result';
import { Cacheline } from './cacheline';
import type { PageOwner } from './parts';
import { ptePfn } from './pte';
import { RwSem } from './rwsem';

/**
 * A process's memory as the kernel's headers describe it (mm_struct, vm_area_struct, the
 * task's prefault state), and what the fault path asks of the process table. A leaf: the fault
 * path (touch.ts and what it uses) reads these, and mm.ts, which runs it, builds them.
 */

/** Where mmap places the first mapping; later ones follow, a PMD apart. */
const MMAP_BASE = 0x10000000000; // 1 TiB: well inside 2^53, far from 0

export interface Vma {
  start: number;
  end: number;
  /** MADV_RANDOM: no anticipatory prefault. */
  readonly random: boolean;
  /** VM_HUGEPAGE (madvise MADV_HUGEPAGE): aligned ranges fault in huge pages (thp.ts). */
  thp: boolean;
}

/** Per-task prefault state (Lameter's anticipatory prefault kept it in task_struct). */
export interface Task {
  /** Address the task is predicted to fault at next, or -1. */
  nextAddr: number;
  /** Current prefault order: the next predicted fault maps 2^order pages. */
  order: number;
  /** The CPU the task runs on, once it has run (a new thread may first wait for the balancer to pull it); -1 before. */
  cpu: number;
}

/**
 * A class, not a literal: nextAddr starts at -1 and becomes an address (a double), and a
 * literal's objects would each be made with the outdated shape and fail optimized code's
 * map checks.
 */
class TaskState implements Task {
  nextAddr = -1;
  order = 0;
  cpu = -1;
}

export class Mm implements PageOwner {
  readonly id: number;
  readonly label: string;
  readonly vmas: Vma[] = [];
  /** PMD index → pte page (its entries), and the physical page that holds it. */
  readonly ptes = new Map<number, Float64Array>();
  readonly ptePfns = new Map<number, number>();
  /** PMD index → a huge page's pte-format entry, and the pte page deposited with it (thp.ts). */
  readonly hugePtes = new Map<number, number>();
  readonly hugeDeposits = new Map<number, number>();
  readonly tasks: Task[] = [];
  /**
   * mm_struct's first cacheline — mmap_sem's count and page_table_lock share it (2.6.11
   * layout, 128-byte lines) — and its counters' line (rss, hiwater_rss). The fault path
   * prices their transfers (fault-price.ts).
   */
  readonly semLine = new Cacheline();
  readonly rssLine = new Cacheline();
  /** hiwater_rss and hiwater_vm, mm_struct's last fields: update_mem_hiwater() stores here. */
  readonly hiwaterLine = new Cacheline();
  /** mm->mmap_sem, whose count is on semLine (the fault path takes it for reading). */
  readonly mmapSem = new RwSem(this.semLine);
  /** Anonymous pages mapped (rss): only Processes' anonMapped/unmapped change it. */
  private pagesMapped = 0;
  private nextMap = MMAP_BASE;

  constructor(id: number) {
    this.id = id;
    this.label = `mm ${id}`;
  }

  get rss(): number {
    return this.pagesMapped;
  }
  /** mm->rss grows (Processes.anonMapped) or shrinks (unmapped) by `pages`, the machine's AnonPages with it. */
  addRss(pages: number): void {
    this.pagesMapped += pages;
  }
  /**
   * Not addRss(-pages): a zap's last step frees none, and -0 is not a small integer, so the
   * field would turn into a double at the first exit and every mm made after it would fail the
   * map checks of the fault path compiled for the first (a recompile of it per process).
   */
  subRss(pages: number): void {
    this.pagesMapped -= pages;
  }

  task(i: number): Task {
    while (this.tasks.length <= i) this.tasks.push(new TaskState());
    return this.tasks[i]!;
  }

  findVma(addr: number): Vma | undefined {
    const v = this.vmas[this.indexAfter(addr)];
    return v !== undefined && v.start <= addr ? v : undefined;
  }

  /**
   * The index of the first VMA that ends after `addr` (vmas.length if none): VMAs are sorted
   * and never overlap, so a binary search finds it, and mmap, munmap and touch cost log n in
   * the mappings instead of n (6842 mmaps took minutes with a scan and a sort per mmap).
   */
  private indexAfter(addr: number): number {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.vmas[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Put a VMA that overlaps none in its place in the sorted list. */
  private insert(vma: Vma): void {
    const i = this.indexAfter(vma.start);
    if (i === this.vmas.length) this.vmas.push(vma);
    else this.vmas.splice(i, 0, vma);
  }

  /** Reserve address space: page-rounded, PMD-aligned, a PMD of guard gap after. */
  placeMapping(bytes: number, pmdBytes: number, random: boolean, thp = false): Vma {
    let start = this.nextMap;
    // Past any fixed mapping (a replayed trace's) in the way.
    for (let v = this.overlap(start, start + bytes); v; v = this.overlap(start, start + bytes)) {
      start = Math.ceil(v.end / pmdBytes) * pmdBytes + pmdBytes;
    }
    const vma = { start, end: start + bytes, random, thp };
    this.nextMap = Math.ceil((start + bytes) / pmdBytes) * pmdBytes + pmdBytes;
    if (this.nextMap + MAX_MAP_BYTES > Number.MAX_SAFE_INTEGER) {
      throw new ModelError('KSCRUB_NOMEM', `mmap: ${this.label} has run out of address space`);
    }
    this.insert(vma);
    return vma;
  }
  /**
   * mmap at a caller's address (a replayed trace's): [start, end) must be free. Like the
   * kernel's vma_merge, it joins a neighbour it touches with the same flags, so a heap grown
   * by brk stays one VMA.
   */
  placeFixed(start: number, end: number, random: boolean, thp = false): void {
    const v = this.overlap(start, end);
    if (v) {
      throw new ModelError('KSCRUB_BAD_ADDRESS', `mmap: 0x${start.toString(16)}-0x${end.toString(16)} overlaps the mapping 0x${v.start.toString(16)}-0x${v.end.toString(16)} of ${this.label}`);
    }
    const i = this.indexAfter(start);
    const left = this.vmas[i - 1];
    const right = this.vmas[i];
    const before = left !== undefined && left.end === start && left.random === random && left.thp === thp ? left : undefined;
    const after = right !== undefined && right.start === end && right.random === random && right.thp === thp ? right : undefined;
    if (before && after) {
      before.end = after.end;
      this.vmas.splice(this.vmas.indexOf(after), 1);
    } else if (before) before.end = end;
    else if (after) after.start = start;
    else {
      this.insert({ start, end, random, thp });
    }
  }

  /** The first VMA that intersects [start, end), if any. */
  private overlap(start: number, end: number): Vma | undefined {
    const v = this.vmas[this.indexAfter(start)];
    return v !== undefined && v.start < end ? v : undefined;
  }


  forEachPage(fn: (pfn: number) => void): void {
    this.ptePfns.forEach((pfn) => fn(pfn));
    this.hugeDeposits.forEach((pfn) => fn(pfn));
    this.hugePtes.forEach((pte) => fn(ptePfn(pte)));
    for (const table of this.ptes.values()) {
      for (let i = 0; i < table.length; i++) {
        const pte = table[i]!;
        if (pte >= 2) fn(ptePfn(pte));
      }
    }
  }
}

/**
 * What the fault path asks of the process table (Processes, mm.ts): the page tables, the VMA
 * check, and the anonymous-page counts. mm.ts runs the fault path, so the fault path sees the
 * table only through this.
 */
export interface ProcessTable {
  readonly ptrsPerPte: number;
  readonly pmdBytes: number;
  anonMapped(mm: Mm, pages: number, huge?: boolean): void;
  hugeUnmapped(whole: boolean): void;
  range(mm: Mm, addr: number, bytes: number, what: string): { vma: Vma; size: number };
  takeTable(): Float64Array;
  ptePeek(mm: Mm, addr: number): Float64Array | undefined;
  pteAlloc(mm: Mm, addr: number, node: number, cpu: number, served: AllocResult): { table: Float64Array; fresh: boolean } | null;
}
