import { ModelError } from './errors';
import type { Machine } from './machine';
import { orderPages } from './page';
import { Mm, PTE_NONE, PTE_ZERO_PAGE, Processes, Task, Vma, mkPte, ptePfn, pteCacheHot } from './mm';

/**
 * The anonymous fault path as a discrete-event simulation. Each thread of a `touch` is an
 * actor on the machine's virtual clock; events run in time order across threads and kscrubd,
 * so locks and CPUs are contended the way they would be:
 *
 *   phase A  trap, handle_mm_fault, page_table_lock to look at the pte; drop it; allocate
 *            (per-cpu list, zone->lock on refills) and hot-zero if no prezeroed page came.
 *   phase B  page_table_lock again to install the pte(s); return to user; the program
 *            touches its cachelines: a prezeroed page is cold (every line a miss), a page
 *            the CPU just zeroed is in cache (hits).
 *
 * Threads of one mm serialize on page_table_lock; a thread waiting for it spins, which is
 * system time — that is why flt/cpu/s falls as threads rise while fault/wsec still grows.
 * Remote memory (another node's) costs remoteFactor more to zero and to miss on.
 */

export interface TouchOptions {
  addr: number;
  size: number;
  threads: number;
  /** Cachelines written per page, from the page's start. */
  lines: number;
  write: boolean;
  /** Distance between touched addresses (a multiple of the page size). */
  stride: number;
}

export interface TouchResult {
  pages: number;
  faults: number;
  prezeroed: number;
  hotZeroed: number;
  prefaulted: number;
  oom: number;
  userNs: number;
  sysNs: number;
  wallNs: number;
}

interface Runner {
  task: Task;
  cpu: number;
  node: number;
  addr: number;
  end: number;
  /** Time of this runner's next event. */
  t: number;
  /** 0: next page; 1: a fault waiting to install its ptes. */
  phase: 0 | 1;
  done: boolean;
  userNs: number;
  sysNs: number;
  /** The fault in flight between phases A and B: its pages are pfns[0 … nPages-1]. */
  faultAddr: number;
  nPages: number;
  pfns: number[];
  hot: boolean[];
  zeroPage: boolean;
}

export const MAX_THREADS = 1024;

/** `what` names the command in error messages: touch, or fault (one page). */
export function touch(m: Machine, procs: Processes, mm: Mm, o: TouchOptions, what: 'touch' | 'fault' = 'touch'): TouchResult {
  const ps = m.pageSize;
  const { vma, size } = procs.range(mm, o.addr, o.size, what);
  if (!Number.isInteger(o.threads) || o.threads < 1 || o.threads > MAX_THREADS) {
    throw new ModelError('KSCRUB_BAD_OPTION', `touch: threads=${o.threads} must be 1..${MAX_THREADS}`);
  }
  const maxLines = ps / m.config.lineSize;
  if (!Number.isInteger(o.lines) || o.lines < 1 || o.lines > maxLines) {
    throw new ModelError('KSCRUB_BAD_OPTION', `touch: lines=${o.lines} must be 1..${maxLines} (${m.config.lineSize}-byte lines in a ${ps}-byte page)`);
  }
  if (!Number.isSafeInteger(o.stride) || o.stride < ps || o.stride % ps !== 0) {
    throw new ModelError('KSCRUB_BAD_OPTION', `touch: stride=${o.stride} must be a multiple of the page size (${ps})`);
  }
  const res: TouchResult = { pages: 0, faults: 0, prezeroed: 0, hotZeroed: 0, prefaulted: 0, oom: 0, userNs: 0, sysNs: 0, wallNs: 0 };
  // The range is split evenly among the threads (in whole strides), each in address order.
  const strides = Math.ceil(size / o.stride);
  const start = m.now;
  const runners: Runner[] = [];
  for (let i = 0; i < o.threads; i++) {
    const first = Math.floor((strides * i) / o.threads);
    const last = Math.floor((strides * (i + 1)) / o.threads);
    if (last <= first) continue;
    const cpu = i % m.config.cpus;
    runners.push({
      task: mm.task(i), cpu, node: m.cpus.nodeOf[cpu]!, addr: o.addr + first * o.stride,
      end: Math.min(o.addr + size, o.addr + last * o.stride), t: start, phase: 0, done: false,
      userNs: 0, sysNs: 0, faultAddr: 0, nPages: 0, pfns: [], hot: [], zeroPage: false,
    });
  }
  for (const r of runners) m.cpuInUse[r.cpu] = 1;
  m.runningTasks += runners.length;
  try {
    const sim = new FaultSim(m, procs, mm, vma, o, res);
    let live = runners.length;
    while (live > 0) {
      // The runner whose event comes first (few threads: a scan beats a heap).
      let r = runners[0]!;
      for (const x of runners) if (!x.done && (r.done || x.t < r.t)) r = x;
      sim.step(r);
      if (r.done) {
        live--;
        m.cpuInUse[r.cpu] = 0;
      }
    }
    let end = start;
    for (const r of runners) {
      end = Math.max(end, r.t);
      res.userNs += r.userNs;
      res.sysNs += r.sysNs;
    }
    res.wallNs = end - start;
    m.advanceTo(end);
  } finally {
    for (const r of runners) m.cpuInUse[r.cpu] = 0;
    m.runningTasks -= runners.length;
  }
  return res;
}

class FaultSim {
  private readonly ps: number;
  private readonly c: Machine['cost'];
  /** ptePeek()'s last pte page and its PMD: runners walk addresses in order, a PMD at a time. */
  private lastPmd = -1;
  private lastTable: Float64Array | undefined;

  constructor(
    private readonly m: Machine,
    private readonly procs: Processes,
    private readonly mm: Mm,
    private readonly vma: Vma,
    private readonly o: TouchOptions,
    private readonly res: TouchResult,
  ) {
    this.ps = m.pageSize;
    this.c = m.cost;
  }

  /**
   * The pte page covering `addr`, if there is one yet. A page found is remembered: pte pages
   * live as long as the mm, and nothing unmaps during a touch.
   */
  private ptePeek(addr: number): Float64Array | undefined {
    const pmd = Math.floor(addr / this.procs.pmdBytes);
    if (pmd === this.lastPmd) return this.lastTable;
    const table = this.procs.ptePeek(this.mm, addr);
    if (table) {
      this.lastPmd = pmd;
      this.lastTable = table;
    }
    return table;
  }

  /** Index of `addr`'s pte in its pte page. Not `%`: addresses pass 2^31, and V8's double `%` is a libm fmod call. */
  private pteIndex(addr: number): number {
    const pmdBytes = this.procs.pmdBytes;
    return (addr - Math.floor(addr / pmdBytes) * pmdBytes) / this.ps;
  }

  /** Run one event of runner r at r.t. */
  step(r: Runner): void {
    const m = this.m;
    // Catch the world up, then wait for the CPU if kscrubd (or another thread) took it
    // meanwhile; catching up again may hand it to kscrubd once more, so repeat.
    for (;;) {
      if (r.t > m.now) m.advanceTo(r.t);
      const free = m.cpus.freeAt[r.cpu]!;
      if (free <= r.t) break;
      r.t = free;
    }
    if (r.phase === 1) this.install(r);
    else this.nextPage(r);
    m.cpus.freeAt[r.cpu] = r.t;
  }

  /** Touch pages until one faults (phase A runs) or the runner's share is done. */
  private nextPage(r: Runner): void {
    const o = this.o;
    while (r.addr < r.end) {
      const table = this.ptePeek(r.addr);
      const idx = this.pteIndex(r.addr);
      const pte = table ? table[idx]! : PTE_NONE;
      const present = o.write ? pte >= 2 : pte !== PTE_NONE;
      if (!present || !table) return this.faultBegin(r, pte);
      // No fault: the program just writes its lines.
      this.userTouch(r, pte >= 2 && pteCacheHot(pte), pte >= 2 ? ptePfn(pte) : -1);
      if (pte >= 2) table[idx] = mkPte(ptePfn(pte), false);
      this.res.pages++;
      r.addr += o.stride;
    }
    r.done = true;
  }

  /** Phase A: trap, first page_table_lock section, allocation (+ hot zeroing). */
  private faultBegin(r: Runner, pte: number): void {
    const m = this.m;
    const c = this.c;
    this.res.faults++;
    m.vm.pgfault++;
    this.sys(r, c.trapNs + c.handlerNs);
    // down_read(mmap_sem) writes the semaphore's count: its line moves to this CPU.
    this.sys(r, this.bounce(r, this.mm.semCpu));
    this.mm.semCpu = r.cpu;
    // A PMD with no pte page yet gets one first: a __GFP_ZERO allocation like any other.
    if (!this.ptePeek(r.addr)) {
      const pt = this.procs.pteAlloc(this.mm, r.addr, r.node, r.cpu);
      if (!pt) return this.oom(r);
      if (pt.fresh) this.priceAlloc(r);
    }
    this.lockPtl(r, c.ptlCheckNs);
    r.faultAddr = r.addr;
    r.nPages = 0;
    r.zeroPage = false;
    if (!this.o.write) {
      // Read of an empty pte: map the shared ZERO_PAGE, allocate nothing.
      r.zeroPage = true;
      m.vm.faultZeroPage++;
    } else {
      const cow = pte === PTE_ZERO_PAGE;
      if (cow) m.vm.faultCow++;
      const n = cow ? 1 : this.prefaultPages(r);
      for (let i = 0; i < n; i++) {
        const pfn = m.allocPages(0, true, r.node, r.cpu);
        if (pfn < 0) break;
        const hot = this.priceAlloc(r);
        if (hot) {
          this.res.hotZeroed++;
          m.vm.faultHotZeroed++;
        } else {
          this.res.prezeroed++;
          m.vm.faultPrezeroed++;
        }
        r.pfns[r.nPages] = pfn;
        r.hot[r.nPages] = hot;
        r.nPages++;
      }
      if (r.nPages === 0) return this.oom(r);
    }
    r.phase = 1;
  }

  /** Out of memory: the thread stops here, as the OOM killer would stop it. */
  private oom(r: Runner): void {
    this.res.oom++;
    this.m.vm.faultOom++;
    r.done = true;
  }

  /**
   * Anticipatory prefault: a fault where the task was predicted to fault next maps 2^k
   * pages (k grows 1, 2, 3 … up to vm.max_prealloc_order); a miss or MADV_RANDOM resets k.
   * The run is clipped to the VMA end and the PMD (one pte page) boundary.
   */
  private prefaultPages(r: Runner): number {
    const task = r.task;
    const max = this.m.sysctl.max_prealloc_order;
    if (max === 0 || this.vma.random || r.addr !== task.nextAddr) task.order = 0;
    else task.order = Math.min(task.order + 1, max);
    const pmdEnd = (Math.floor(r.addr / this.procs.pmdBytes) + 1) * this.procs.pmdBytes;
    const limit = Math.min(this.vma.end, pmdEnd);
    const n = Math.max(1, Math.min(orderPages(task.order), (limit - r.addr) / this.ps));
    task.nextAddr = r.addr + n * this.ps;
    return n;
  }

  /**
   * Price the page allocPages() just handed out (m.lastAlloc): the per-cpu list, struct page,
   * zone->lock on a refill, and hot zeroing when no prezeroed page came. Returns hot-zeroed.
   */
  private priceAlloc(r: Runner): boolean {
    const c = this.c;
    const info = this.m.lastAlloc;
    const zone = info.zone!;
    const remote = zone.node !== r.node ? c.remoteFactor : 1;
    // struct page of the new page: count, flags, LRU links — misses, dearer on another node.
    this.sys(r, c.pcpAllocNs + c.structPageLines * c.lineMissNs * remote);
    if (info.lockedPages > 0) {
      const begin = Math.max(r.t, zone.lockFreeAt);
      this.sys(r, begin - r.t + this.bounce(r, zone.lockCpu) + info.lockedPages * c.buddyPerPageNs);
      zone.lockFreeAt = r.t;
      zone.lockCpu = r.cpu;
    }
    if (info.hotZeroed) this.sys(r, (this.ps / c.zeroBytesPerNs) * remote);
    return info.hotZeroed;
  }

  /** Phase B: second page_table_lock section; install ptes; back to user; touch the page. */
  private install(r: Runner): void {
    const m = this.m;
    r.phase = 0;
    if (r.zeroPage) {
      this.lockPtl(r, this.c.ptlSetNs);
      const table = this.ptePeek(r.faultAddr)!;
      const idx = this.pteIndex(r.faultAddr);
      if (table[idx] === PTE_NONE) table[idx] = PTE_ZERO_PAGE;
      this.userTouch(r, false, -1);
    } else {
      this.lockPtl(r, this.c.ptlSetNs * r.nPages);
      let mapped = 0;
      for (let i = 0; i < r.nPages; i++) {
        const addr = r.faultAddr + i * this.ps;
        const table = this.ptePeek(addr)!;
        const idx = this.pteIndex(addr);
        const old = table[idx]!;
        // A pte another thread filled meanwhile keeps its page; ours goes back.
        const cow = i === 0 && old === PTE_ZERO_PAGE;
        if (old !== PTE_NONE && !cow) {
          m.freePages(r.pfns[i]!, 0, r.cpu);
          m.vm.prefaultReleased++;
          continue;
        }
        table[idx] = mkPte(r.pfns[i]!, r.hot[i]! && i > 0);
        mapped++;
        if (i > 0) this.res.prefaulted++;
      }
      this.mm.rss += mapped;
      m.nrAnonPages += mapped;
      m.vm.prefaultPages += Math.max(0, mapped - 1);
      this.userTouch(r, r.hot[0]!, r.pfns[0]!);
    }
    this.res.pages++;
    r.addr += this.o.stride;
  }

  /** The program writes `lines` cachelines: hits if the CPU just zeroed the page, else misses. */
  private userTouch(r: Runner, cacheHot: boolean, pfn: number): void {
    const c = this.c;
    let line = c.lineHitNs;
    if (!cacheHot && pfn >= 0) {
      const remote = this.m.zoneOf(pfn).node !== r.node ? c.remoteFactor : 1;
      line = c.lineMissNs * remote;
    }
    const ns = c.userPageNs + this.o.lines * line;
    r.userNs += ns;
    this.m.cpus.userNs[r.cpu]! += ns;
    r.t += ns;
  }

  private sys(r: Runner, ns: number): void {
    r.sysNs += ns;
    this.m.cpus.systemNs[r.cpu]! += ns;
    r.t += ns;
  }

  /** Take mm->page_table_lock for `hold` ns, spinning (system time) while another holds it. */
  private lockPtl(r: Runner, hold: number): void {
    const mm = this.mm;
    if (mm.ptlFreeAt > r.t) this.sys(r, mm.ptlFreeAt - r.t);
    this.sys(r, this.bounce(r, mm.ptlCpu) + hold);
    mm.ptlFreeAt = r.t;
    mm.ptlCpu = r.cpu;
  }

  /** Cost of pulling a cacheline last written by CPU `last` (-1: nobody) over to r's CPU. */
  private bounce(r: Runner, last: number): number {
    if (last < 0 || last === r.cpu) return 0;
    const c = this.c;
    return this.m.cpus.nodeOf[last] === r.node ? c.lineBounceNs : c.lineBounceNs * c.remoteFactor;
  }
}
