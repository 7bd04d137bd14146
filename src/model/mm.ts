import { ModelError } from './errors';
import type { Machine, PageOwner } from './machine';

/**
 * Processes and their anonymous memory: mm_struct, VMAs, page tables, and the tasks (threads)
 * that fault. The fault path itself (timing, locks, prefault) is in fault.ts.
 *
 * Page tables are sparse: one Float64Array of PTRS_PER_PTE entries per PMD that has ever been
 * touched (a "pte page", counted in meminfo's PageTables). A pte is
 *   0              none
 *   PTE_ZERO_PAGE  the shared ZERO_PAGE, read-only (a read fault mapped it)
 *   2·pfn + 2 + h  an anonymous page, writable; h = 1 while its lines are still in the cache
 *                  of the CPU that hot-zeroed it (the program's first touch then hits)
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

/** Where mmap places the first mapping; later ones follow, a PMD apart. */
const MMAP_BASE = 0x10000000000; // 1 TiB: well inside 2^53, far from 0
/** At most this much of exited processes' pte-page arrays is kept for reuse. */
const TABLE_POOL_BYTES = 4 * 2 ** 20;
/** The largest single mapping (and address) the model accepts. */
export const MAX_MAP_BYTES = 2 ** 46;

export interface Vma {
  start: number;
  end: number;
  /** MADV_RANDOM: no anticipatory prefault. */
  readonly random: boolean;
}

/** Per-task prefault state (Lameter's anticipatory prefault kept it in task_struct). */
export interface Task {
  /** Address the task is predicted to fault at next, or -1. */
  nextAddr: number;
  /** Current prefault order: the next predicted fault maps 2^order pages. */
  order: number;
}

/**
 * A class, not a literal: nextAddr starts at -1 and becomes an address (a double), and a
 * literal's objects would each be made with the outdated shape and fail optimized code's
 * map checks.
 */
class TaskState implements Task {
  nextAddr = -1;
  order = 0;
}

export class Mm implements PageOwner {
  readonly id: number;
  readonly label: string;
  readonly vmas: Vma[] = [];
  /** PMD index → pte page (its entries), and the physical page that holds it. */
  readonly ptes = new Map<number, Float64Array>();
  readonly ptePfns = new Map<number, number>();
  readonly tasks: Task[] = [];
  /** Virtual time at which mm->page_table_lock is next free. */
  ptlFreeAt = 0;
  /** CPU that holds (or last held) page_table_lock (-1: none yet). */
  ptlCpu = -1;
  /**
   * CPU that last wrote mm_struct's first cacheline — mmap_sem's count and page_table_lock
   * share it (2.6.11 layout, 128-byte lines) — and the one that last wrote its counters' line
   * (rss, hiwater_rss); -1: none yet. The fault model prices their transfers (fault.ts).
   */
  semCpu = -1;
  rssCpu = -1;
  /** Anonymous pages mapped (rss). */
  rss = 0;
  private nextMap = MMAP_BASE;

  constructor(id: number) {
    this.id = id;
    this.label = `mm ${id}`;
  }

  task(i: number): Task {
    while (this.tasks.length <= i) this.tasks.push(new TaskState());
    return this.tasks[i]!;
  }

  findVma(addr: number): Vma | undefined {
    for (const v of this.vmas) if (addr >= v.start && addr < v.end) return v;
    return undefined;
  }

  /** Reserve address space: page-rounded, PMD-aligned, a PMD of guard gap after. */
  placeMapping(bytes: number, pmdBytes: number, random: boolean): Vma {
    const start = this.nextMap;
    const vma = { start, end: start + bytes, random };
    this.nextMap = Math.ceil((start + bytes) / pmdBytes) * pmdBytes + pmdBytes;
    if (this.nextMap + MAX_MAP_BYTES > Number.MAX_SAFE_INTEGER) {
      throw new ModelError('KSCRUB_NOMEM', `mmap: ${this.label} has run out of address space`);
    }
    this.vmas.push(vma);
    this.vmas.sort((a, b) => a.start - b.start);
    return vma;
  }

  forEachPage(fn: (pfn: number) => void): void {
    this.ptePfns.forEach((pfn) => fn(pfn));
    for (const table of this.ptes.values()) {
      for (let i = 0; i < table.length; i++) {
        const pte = table[i]!;
        if (pte >= 2) fn(ptePfn(pte));
      }
    }
  }
}

/** The process table: what the control file's mm/mmap/munmap commands act on. */
export class Processes {
  readonly mms = new Map<number, Mm>();
  private nextId = 1;
  readonly ptrsPerPte: number;
  readonly pmdBytes: number;
  /**
   * Entry arrays of exited processes' pte pages, cleared, for the next pte pages: a new
   * Float64Array is an off-heap allocation (and later a finalization) per pte page. At most
   * tablePoolMax of them (TABLE_POOL_BYTES).
   */
  private readonly tablePool: Float64Array[] = [];
  private readonly tablePoolMax: number = 0;

  constructor(private readonly m: Machine) {
    this.ptrsPerPte = m.pageSize / 8;
    this.tablePoolMax = TABLE_POOL_BYTES / m.pageSize;
    this.pmdBytes = this.ptrsPerPte * m.pageSize;
  }

  get(id: number): Mm {
    const mm = this.mms.get(id);
    if (!mm) throw new ModelError('KSCRUB_BAD_MM', `no process has mm=${id}`);
    return mm;
  }

  create(): Mm {
    const mm = new Mm(this.nextId++);
    this.mms.set(mm.id, mm);
    this.m.owners.add(mm);
    this.m.nrMms++;
    this.m.lastPid++;
    return mm;
  }

  mmap(id: number, bytes: number, random: boolean): Vma {
    const mm = this.get(id);
    const size = this.pageRound(bytes, 'mmap');
    return mm.placeMapping(size, this.pmdBytes, random);
  }

  /** Validate a page-aligned [addr, addr+bytes) inside one VMA; returns the VMA and rounded size. */
  range(mm: Mm, addr: number, bytes: number, what: string): { vma: Vma; size: number } {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr % this.m.pageSize !== 0) {
      throw new ModelError('KSCRUB_BAD_ADDRESS', `${what}: addr=0x${addr.toString(16)} is not page aligned (page size ${this.m.pageSize})`);
    }
    const size = this.pageRound(bytes, what);
    const vma = mm.findVma(addr);
    if (!vma) throw new ModelError('KSCRUB_BAD_ADDRESS', `${what}: addr=0x${addr.toString(16)} is not mapped in ${mm.label}`);
    if (addr + size > vma.end) {
      throw new ModelError('KSCRUB_BAD_ADDRESS', `${what}: 0x${addr.toString(16)}+${size} runs past the end of its mapping (0x${vma.end.toString(16)})`);
    }
    return { vma, size };
  }

  pageRound(bytes: number, what: string): number {
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_MAP_BYTES) {
      throw new ModelError('KSCRUB_BAD_ADDRESS', `${what}: size=${bytes} must be 1..${MAX_MAP_BYTES} bytes`);
    }
    return Math.ceil(bytes / this.m.pageSize) * this.m.pageSize;
  }

  /** zap_page_range + unmap: free every page in the range; split or shrink the VMA. */
  munmap(id: number, addr: number, bytes: number, cpu: number): number {
    const mm = this.get(id);
    const { vma, size } = this.range(mm, addr, bytes, 'munmap');
    const freed = this.zap(mm, addr, addr + size, cpu);
    const end = addr + size;
    const i = mm.vmas.indexOf(vma);
    if (addr === vma.start && end === vma.end) mm.vmas.splice(i, 1);
    else if (addr === vma.start) vma.start = end;
    else if (end === vma.end) vma.end = addr;
    else {
      mm.vmas.splice(i + 1, 0, { start: end, end: vma.end, random: vma.random });
      vma.end = addr;
    }
    return freed;
  }

  /** exit_mmap: free everything the process maps. */
  exit(id: number, cpu: number): number {
    const mm = this.get(id);
    let freed = 0;
    for (const v of [...mm.vmas]) freed += this.zap(mm, v.start, v.end, cpu);
    mm.vmas.length = 0;
    // free_pgtables: the pte pages go back too (counted apart from the anonymous pages).
    for (const pfn of mm.ptePfns.values()) this.m.freePages(pfn, 0, cpu);
    this.m.nrPageTablePages -= mm.ptes.size;
    for (const table of mm.ptes.values()) {
      if (this.tablePool.length >= this.tablePoolMax) break;
      this.tablePool.push(table.fill(PTE_NONE));
    }
    mm.ptes.clear();
    mm.ptePfns.clear();
    this.mms.delete(id);
    this.m.owners.delete(mm);
    this.m.nrMms--;
    return freed;
  }

  /** Free the pages mapped in [start, end), in address order (so buddies coalesce as they go). */
  private zap(mm: Mm, start: number, end: number, cpu: number): number {
    const ps = this.m.pageSize;
    let freed = 0;
    for (let a = start; a < end;) {
      const pmd = Math.floor(a / this.pmdBytes);
      const table = mm.ptes.get(pmd);
      const pmdEnd = Math.min(end, (pmd + 1) * this.pmdBytes);
      if (table) {
        for (let i = (a % this.pmdBytes) / ps, stop = i + (pmdEnd - a) / ps; i < stop; i++) {
          const pte = table[i]!;
          if (pte === PTE_NONE) continue;
          table[i] = PTE_NONE;
          if (pte === PTE_ZERO_PAGE) continue;
          this.m.freePages(ptePfn(pte), 0, cpu);
          freed++;
        }
      }
      a = pmdEnd;
    }
    mm.rss -= freed;
    this.m.nrAnonPages -= freed;
    return freed;
  }

  /** The pte page covering addr, if there is one yet. */
  ptePeek(mm: Mm, addr: number): Float64Array | undefined {
    return mm.ptes.get(Math.floor(addr / this.pmdBytes));
  }

  /**
   * __pte_alloc: a pte page for addr, allocated as a __GFP_ZERO page on the faulting CPU's
   * node when the PMD has none. Returns null when memory is exhausted (the fault is an OOM);
   * `m.lastAlloc` says how a new page was served, for the caller's pricing.
   */
  pteAlloc(mm: Mm, addr: number, node: number, cpu: number): { table: Float64Array; fresh: boolean } | null {
    const pmd = Math.floor(addr / this.pmdBytes);
    const have = mm.ptes.get(pmd);
    if (have) return { table: have, fresh: false };
    const pfn = this.m.allocPages(0, true, node, cpu);
    if (pfn < 0) return null;
    const table = this.tablePool.pop() ?? new Float64Array(this.ptrsPerPte);
    mm.ptes.set(pmd, table);
    mm.ptePfns.set(pmd, pfn);
    this.m.nrPageTablePages++;
    return { table, fresh: true };
  }
}
