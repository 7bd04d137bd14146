import { MAX_MAP_BYTES, ModelError } from '../uapi';
import type { AllocResult } from './alloc-result';
import { Mm, type ProcessTable, type Vma } from './mm-types';
import type { Parts } from './parts';
import { PTE_NONE, PTE_ZERO_PAGE, ptePfn } from './pte';
import { type ThpMachine, assertThpSupported, madviseHugepage, zapHugePmd } from './thp';
import { type FaultList, TouchJob, type TouchMachine, type TouchOptions, type TouchResult, touch } from './touch';

/** What mm uses of the machine (parts.ts). */
export type MmMachine = Pick<Parts, 'advanceTo' | 'allocPages' | 'config' | 'cost' | 'cpus' | 'firstCpuOf' | 'freePageRun' | 'freePages' | 'lines' | 'now' | 'owners' | 'pageSize' | 'vm' | 'zones'> & { readonly hugetlb: { readonly maps: HugetlbMaps } } & TouchMachine & ThpMachine;

/**
 * What munmap and touch ask of the hugetlb mappings (HugetlbMappings, hugetlb-map.ts). Those
 * sit above mm (a hugetlb mmap is an mmap), so mm sees them only through this.
 */
interface HugetlbMaps {
  refuseBase(mm: Mm, addr: number, size: number, what: string): void;
  zap(mm: Mm, start: number, end: number, what: string): number;
}

/**
 * Processes and their anonymous memory: the process table, mmap, munmap and exit, and the page
 * tables (mm_struct, VMAs and tasks are in mm-types.ts). The fault path itself (timing, locks,
 * prefault) is in touch.ts and what it uses.
 *
 * Page tables are sparse: one Float64Array of PTRS_PER_PTE entries per PMD that has ever been
 * touched (a "pte page", counted in meminfo's PageTables); pte.ts says how a pte is encoded.
 */

/** What a munmap or an exit did: pages freed, the system time it took, the time that passed. */
export interface ZapResult {
  readonly freed: number;
  readonly sysNs: number;
  readonly wallNs: number;
}

/** At most this much of exited processes' pte-page arrays is kept for reuse. */
const TABLE_POOL_BYTES = 4 * 2 ** 20;
/** A fixed mapping ends below this: far past x86_64's 47-bit user space, inside 2^53. */
export const MAX_ADDRESS = 2 ** 52;

/**
 * The process table: what the control file's mm/mmap/munmap/touch/fault commands act on, and
 * the counters that are the processes' own (the kernel keeps them in mm_struct, task_struct
 * and the run queues, not in the allocator).
 */
export class Processes implements ProcessTable {
  readonly mms = new Map<number, Mm>();
  private nextId = 1;
  /** Anonymous pages mapped by processes (meminfo AnonPages): the sum of every mm's rss. */
  private anonPages = 0;
  /** Of those, huge pages mapped by a PMD (meminfo AnonHugePages, in huge pages; thp.ts). */
  private anonThps = 0;
  /** Page-table pages processes use (meminfo PageTables). */
  private pageTablePages = 0;
  /** Processes (mm) alive, and pids handed out (init and one per process): loadavg's nr_threads/last_pid. */
  nrMms = 0;
  lastPid = 1;
  readonly ptrsPerPte: number;
  readonly pmdBytes: number;
  /**
   * Entry arrays of exited processes' pte pages, cleared, for the next pte pages: a new
   * Float64Array is an off-heap allocation (and later a finalization) per pte page. At most
   * tablePoolMax of them (TABLE_POOL_BYTES).
   */
  private readonly tablePool: Float64Array[] = [];
  private readonly tablePoolMax: number = 0;

  constructor(private readonly m: MmMachine) {
    this.ptrsPerPte = m.pageSize / m.config.pteBytes;
    this.tablePoolMax = TABLE_POOL_BYTES / m.pageSize;
    this.pmdBytes = this.ptrsPerPte * m.pageSize;
  }

  get nrAnonPages(): number {
    return this.anonPages;
  }
  get nrAnonThps(): number {
    return this.anonThps;
  }
  get nrPageTablePages(): number {
    return this.pageTablePages;
  }

  /** `pages` anonymous pages mapped into mm (a fault's, or a huge PMD's: `huge`, with its deposited pte page). */
  anonMapped(mm: Mm, pages: number, huge = false): void {
    mm.addRss(pages);
    this.anonPages += pages;
    if (!huge) return;
    this.anonThps++;
    this.pageTablePages++;
  }

  /** A huge PMD is zapped: whole (its deposited pte page freed with it), or split into ptes (the deposit becomes its pte page). */
  hugeUnmapped(whole: boolean): void {
    this.anonThps--;
    if (whole) this.pageTablePages--;
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
    this.nrMms++;
    this.lastPid++;
    return mm;
  }

  /**
   * Anonymous mmap of `bytes` (page-rounded), at `addr` when given. `random` is MADV_RANDOM
   * (no prefault); `thp` is MADV_HUGEPAGE (aligned ranges fault in huge pages; refused where
   * THP cannot work).
   */
  mmap(id: number, bytes: number, random = false, addr?: number, thp = false): { addr: number; size: number } {
    const mm = this.get(id);
    const size = this.pageRound(bytes, 'mmap');
    if (thp) assertThpSupported(this.m, this, 'mmap');
    if (addr !== undefined) {
      if (!Number.isSafeInteger(addr) || addr % this.m.pageSize !== 0 || addr + size > MAX_ADDRESS) {
        throw new ModelError('KSCRUB_BAD_ADDRESS', `mmap: addr=0x${addr.toString(16)} must be page aligned (page size ${this.m.pageSize}) with addr+size below 0x${MAX_ADDRESS.toString(16)}`);
      }
      mm.placeFixed(addr, addr + size, random, thp);
      return { addr, size };
    }
    const v = mm.placeMapping(size, this.pmdBytes, random, thp);
    return { addr: v.start, size: v.end - v.start };
  }

  /** Touch a range with `threads` threads; faults are simulated in time order. */
  touch(id: number, opts: Partial<TouchOptions> & { addr: number; size: number; thp?: boolean }): TouchResult {
    const job = this.touchJob(id, opts);
    job.run();
    return job.result;
  }

  /**
   * touch() to run a few events at a time (job.run(budget)), with the same outcome. `thp`
   * first marks the range's VMA MADV_HUGEPAGE (kept only if the touch is accepted).
   */
  touchJob(id: number, opts: Partial<TouchOptions> & { addr: number; size: number; thp?: boolean }): TouchJob {
    const mm = this.get(id);
    this.m.hugetlb.maps.refuseBase(mm, opts.addr, opts.size, 'touch');
    const { thp, ...rest } = opts;
    const o = { threads: 1, lines: 1, write: true, stride: this.m.pageSize, ...rest };
    if (!thp) return new TouchJob(this.m, mm, o);
    const { vma } = this.range(mm, o.addr, o.size, 'touch');
    const was = vma.thp;
    madviseHugepage(this.m, this, vma, 'touch');
    try {
      return new TouchJob(this.m, mm, o);
    } catch (err) {
      vma.thp = was;
      throw err;
    }
  }

  /** Single-page accesses by the process's tasks (a replayed trace): see FaultList. */
  faults(id: number, list: FaultList): TouchResult {
    const job = new TouchJob(this.m, this.get(id), list);
    job.run();
    return job.result;
  }

  /** One access at `addr` by the process's first thread (faults if the pte says so). */
  fault(id: number, addr: number, write = true): TouchResult {
    const ps = this.m.pageSize;
    this.m.hugetlb.maps.refuseBase(this.get(id), addr, ps, 'fault');
    return touch(this.m, this.get(id), { addr, size: ps, write, threads: 1, lines: 1, stride: ps }, 'fault');
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

  /**
   * zap_page_range + unmap: free every page in the range; split or shrink the VMA. Returns
   * pages freed. The pages go to `cpu`'s lists (by default node 0's first CPU).
   */
  munmap(id: number, addr: number, bytes: number, cpu = this.m.firstCpuOf(0)): number {
    return finish(this.munmapSteps(id, addr, bytes, cpu));
  }

  /**
   * munmap() a few page tables at a time (DESIGN §5: the daemon answers readers between
   * steps): the same frees in the same order, so the same outcome however it is stepped.
   * Validates before it frees anything. Nothing else may change this mm meanwhile.
   */
  *munmapSteps(id: number, addr: number, bytes: number, cpu = this.m.firstCpuOf(0)): Generator<void, number, void> {
    const mm = this.get(id);
    const { vma, size } = this.range(mm, addr, bytes, 'munmap');
    const freed = yield* this.zapSteps(mm, addr, addr + size, cpu);
    const end = addr + size;
    const i = mm.vmas.indexOf(vma);
    if (addr === vma.start && end === vma.end) mm.vmas.splice(i, 1);
    else if (addr === vma.start) vma.start = end;
    else if (end === vma.end) vma.end = addr;
    else {
      mm.vmas.splice(i + 1, 0, { start: end, end: vma.end, random: vma.random, thp: vma.thp });
      vma.end = addr;
    }
    return freed;
  }

  /** munmap(), saying also what it cost (zapTimedSteps). */
  munmapTimed(id: number, addr: number, bytes: number, cpu = this.m.firstCpuOf(0)): ZapResult {
    return finish(this.munmapTimedSteps(id, addr, bytes, cpu));
  }

  /** munmapTimed() a few page tables at a time, as munmapSteps. */
  munmapTimedSteps(id: number, addr: number, bytes: number, cpu = this.m.firstCpuOf(0)): Generator<void, ZapResult, void> {
    return this.zapTimedSteps(cpu, this.munmapSteps(id, addr, bytes, cpu));
  }

  /**
   * exit(), saying also what it cost: the exiting CPU spends the zap's work (and its zone->lock sections) as system time
   * and the clock moves on by as much (kscrubd, woken by the frees, runs meanwhile). pft times
   * a process from fork to wait, so its exit counts.
   */
  exitTimed(id: number, cpu = this.m.firstCpuOf(0)): ZapResult {
    return finish(this.exitTimedSteps(id, cpu));
  }

  /** exitTimed() a few page tables at a time, as exitSteps. */
  exitTimedSteps(id: number, cpu = this.m.firstCpuOf(0)): Generator<void, ZapResult, void> {
    return this.zapTimedSteps(cpu, this.exitSteps(id, cpu));
  }

  /**
   * Run a zap's steps, then charge what it freed to `cpu`: system time there, and the clock
   * moves on by it. The frees happen at the zap's start time (the clock moves only at the
   * end), so how the steps are sliced never changes the outcome.
   */
  private *zapTimedSteps(cpu: number, zap: Generator<void, number, void>): Generator<void, ZapResult, void> {
    const m = this.m;
    const start = m.now;
    const pgfree = m.vm.pgfree;
    const drained = m.zones.map((z) => z.pcpDrained);
    const hugeFreed = m.vm.thpZapFreed;
    const cleared = m.vm.initOnFreeNs;
    const freed = yield* zap;
    // Per page freed, zap_pte_range through free_hot_cold_page; a huge PMD is zapped and
    // freed as one folio: it costs one page's free, not 512.
    const folioTails = (m.vm.thpZapFreed - hugeFreed) * (this.ptrsPerPte - 1);
    const begin = Math.max(m.now, m.cpus.freeAt(cpu));
    // init_on_free cleared what the zap freed, on this CPU (policies/init-on.ts).
    let ns = (m.vm.pgfree - pgfree - folioTails) * m.cost.freePageNs + (m.vm.initOnFreeNs - cleared);
    // Every per-cpu list that passed `high` drained under its zone's lock (free_pages_bulk),
    // after the zap's per-page work: taken as any taker takes it, after kscrubd's sections
    // before then (the background runs up to it first), pulling the line from its last holder.
    for (let i = 0; i < m.zones.length; i++) {
      const z = m.zones[i]!;
      const pages = z.pcpDrained - drained[i]!;
      if (pages === 0) continue;
      m.advanceTo(begin + ns);
      ns += z.lock.hold(m.lines, cpu, begin + ns, 1, pages * m.cost.buddyPerPageNs);
    }
    m.cpus.addSystem(cpu, ns);
    m.cpus.busyUntil(cpu, begin + ns);
    m.advanceTo(begin + ns);
    return { freed, sysNs: ns, wallNs: m.now - start };
  }

  /** exit_mmap: free everything the process maps. Returns pages freed. */
  exit(id: number, cpu = this.m.firstCpuOf(0)): number {
    return finish(this.exitSteps(id, cpu));
  }

  /** exit() a few page tables at a time, as munmapSteps. */
  *exitSteps(id: number, cpu = this.m.firstCpuOf(0)): Generator<void, number, void> {
    const mm = this.get(id);
    let freed = 0;
    for (const v of [...mm.vmas]) freed += yield* this.zapSteps(mm, v.start, v.end, cpu);
    mm.vmas.length = 0;
    // free_pgtables: the pte pages go back too (counted apart from the anonymous pages).
    let n = 0;
    for (const pfn of mm.ptePfns.values()) {
      this.m.freePages(pfn, 0, cpu);
      if (++n % ZAP_STEP_PTES === 0) yield;
    }
    this.pageTablePages -= mm.ptes.size;
    for (const table of mm.ptes.values()) {
      if (this.tablePool.length >= this.tablePoolMax) break;
      this.tablePool.push(table.fill(PTE_NONE));
    }
    mm.ptes.clear();
    mm.ptePfns.clear();
    this.mms.delete(id);
    this.m.owners.delete(mm);
    this.nrMms--;
    return freed;
  }

  /**
   * Free the pages mapped in [start, end), in address order (so buddies coalesce as they go),
   * yielding after every ZAP_STEP_PTES ptes looked at. Only the PMDs that have a pte page or
   * a huge pmd are visited: the cost follows the memory mapped, not the size of the range.
   */
  private *zapSteps(mm: Mm, start: number, end: number, cpu: number): Generator<void, number, void> {
    // hugetlb pages in the range go back to their pool (refused first if it splits one).
    this.m.hugetlb.maps.zap(mm, start, end, 'munmap');
    const ps = this.m.pageSize;
    const pmdBytes = this.pmdBytes;
    let freed = 0;
    let step = 0;
    let work = 0;
    for (const pmd of presentPmds(mm, Math.floor(start / pmdBytes), Math.floor((end - 1) / pmdBytes))) {
      const a = Math.max(start, pmd * pmdBytes);
      const pmdEnd = Math.min(end, (pmd + 1) * pmdBytes);
      if (mm.hugePtes.size > 0 && mm.hugePtes.has(pmd)) step += zapHugePmd(this.m, this, mm, pmd, a, pmdEnd, cpu);
      const table = mm.ptes.get(pmd);
      if (table) step += this.zapTable(table, (a - pmd * pmdBytes) / ps, (pmdEnd - a) / ps, cpu);
      work += (pmdEnd - a) / ps;
      if (work >= ZAP_STEP_PTES) {
        freed += this.unmapped(mm, step);
        step = 0;
        work = 0;
        yield;
      }
    }
    return freed + this.unmapped(mm, step);
  }

  /**
   * zap_pte_range over `count` entries of one pte page from `first`: frees the anonymous
   * pages, returns how many. Faults map consecutive pfns to consecutive pages (refills split
   * blocks in address order): they are freed a run at a time, in the same order. (Not in the
   * generator: a double held across its yields is boxed, a heap number per run.)
   */
  private zapTable(table: Float64Array, first: number, count: number, cpu: number): number {
    let freed = 0;
    let run = -1;
    let len = 0;
    // One call site for both a run that breaks and the last one (i = stop): a site first
    // reached after the loop was optimized deoptimizes it.
    for (let i = first, stop = first + count; ; i++) {
      let pfn = -1;
      if (i < stop) {
        const pte = table[i]!;
        if (pte === PTE_NONE) continue;
        table[i] = PTE_NONE;
        if (pte === PTE_ZERO_PAGE) continue;
        pfn = ptePfn(pte);
        freed++;
        if (pfn === run + len) {
          len++;
          continue;
        }
      }
      if (len > 0) this.m.freePageRun(run, len, cpu);
      if (i >= stop) return freed;
      run = pfn;
      len = 1;
    }
  }

  /** `pages` anonymous pages left mm: its rss and the machine's AnonPages go down. */
  private unmapped(mm: Mm, pages: number): number {
    mm.subRss(pages);
    this.anonPages -= pages;
    return pages;
  }

  /** A cleared entry array for a new pte page (from the pool when it has one). */
  takeTable(): Float64Array {
    return this.tablePool.pop() ?? new Float64Array(this.ptrsPerPte);
  }

  /** The pte page covering addr, if there is one yet. */
  ptePeek(mm: Mm, addr: number): Float64Array | undefined {
    return mm.ptes.get(Math.floor(addr / this.pmdBytes));
  }

  /**
   * __pte_alloc: a pte page for addr, allocated as a __GFP_ZERO page on the faulting CPU's
   * node when the PMD has none. Returns null when memory is exhausted (the fault is an OOM);
   * a new page's `served` says how it was served, for the caller's pricing.
   */
  pteAlloc(mm: Mm, addr: number, node: number, cpu: number, served: AllocResult): { table: Float64Array; fresh: boolean } | null {
    const pmd = Math.floor(addr / this.pmdBytes);
    const have = mm.ptes.get(pmd);
    if (have) return { table: have, fresh: false };
    const pfn = this.m.allocPages(0, true, node, cpu, served);
    if (pfn < 0) return null;
    const table = this.takeTable();
    mm.ptes.set(pmd, table);
    mm.ptePfns.set(pmd, pfn);
    this.pageTablePages++;
    return { table, fresh: true };
  }
}

/** Ptes a zap looks at between two steps (well under a millisecond of work). */
const ZAP_STEP_PTES = 4096;

/** Run a stepped operation to its end. */
function finish<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The PMD indices in [first, last] that hold a pte page or a huge pmd, ascending: a walk
 * of the range when it is no longer than the mm's page tables, else their keys, sorted.
 */
function presentPmds(mm: Mm, first: number, last: number): number[] {
  const out: number[] = [];
  if (last - first + 1 <= mm.ptes.size + mm.hugePtes.size) {
    for (let p = first; p <= last; p++) if (mm.ptes.has(p) || mm.hugePtes.has(p)) out.push(p);
    return out;
  }
  for (const p of mm.ptes.keys()) if (p >= first && p <= last) out.push(p);
  for (const p of mm.hugePtes.keys()) if (p >= first && p <= last && !mm.ptes.has(p)) out.push(p);
  return out.sort((x, y) => x - y);
}
