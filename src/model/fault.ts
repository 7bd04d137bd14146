import { MAX_THREADS, ModelError } from '../uapi';
import { assert } from './errors';
import { AllocResult } from './alloc-result';
import type { Machine } from './machine';
import { orderPages } from './page';
import type { Mm, Processes, Task, Vma } from './mm';
import { PTE_NONE, PTE_ZERO_PAGE, mkPte, ptePfn, pteCacheHot } from './pte';
import { HugeFault, PHASE_THP, ThpFaults, ThpPricing } from './thp';

/**
 * The anonymous fault path of 2.6.11 as a discrete-event simulation. Each thread of a `touch`
 * is an actor on the machine's virtual clock; events run in time order across threads and
 * kscrubd, so what the kernel's threads share is contended the way it would be:
 *
 *   faultBegin  trap, down_read(mmap_sem), find_vma, spin_lock(page_table_lock)
 *   section1    handle_mm_fault's walk to the pte under the lock; drop it; allocate
 *               (per-cpu list; zone->lock on a refill of `batch` pages) and hot-zero if no
 *               prezeroed page came (clear_page shares the node's bus with other zeroing CPUs)
 *   section2    page_table_lock again: recheck, rss, lru_cache_add_active (a full pagevec
 *               drains under zone->lru_lock), rmap, set_pte; unlock; up_read; back to user,
 *               where the program writes its lines: a prezeroed page is cold (every line a
 *               miss), a page the CPU just zeroed is in cache (hits).
 *
 * What threads of one mm do to each other follows from that code: they spin on
 * page_table_lock (system time); mmap_sem and the lock share mm_struct's first cacheline and
 * rss is on its second, so every fault pulls those lines from whichever CPU wrote them last
 * (dearer from another node); spinners keep stealing the lock's line, so a handoff costs more
 * the more CPUs spin; and CPUs of one node zeroing at once share its bus. That is why
 * flt/cpu/s falls as threads rise while fault/wsec grows far less than the thread count.
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

/**
 * A list of single-page accesses, each by one task of the mm (a replayed trace's faults):
 * entry i is addrs[i], by task tasks[i], a write when writes[i] is 1. Each task's entries run
 * in list order on its own runner; the tasks overlap in time as touch's threads do.
 */
export interface FaultList {
  readonly addrs: readonly number[];
  readonly tasks: readonly number[];
  readonly writes: readonly (0 | 1)[];
  /** CPU of each task (index = task), else task mod the machine's CPUs. */
  readonly cpus?: readonly number[];
  /** Cachelines written after each access. */
  readonly lines: number;
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
  /** Of sysNs, the time spent hot-zeroing pages in the fault path. */
  zeroNs: number;
}

/**
 * A page-table spinlock: 2.6.11's one mm->page_table_lock, or on a kernel with split ptlocks
 * (MachineConfig.splitPtlocks) the lock in one pte page's struct page, covering its PMD.
 */
class PtLock {
  /** Virtual time at which it is next free (+∞ while held). */
  freeAt = 0;
  /**
   * CPU that last wrote a split lock's cacheline (-1: nobody yet). The mm-wide lock shares
   * mm_struct's first line with mmap_sem: its writer is the mm's semCpu instead.
   */
  lineCpu = -1;
  /** Runners spinning on it, in the order they began (granted at its release). */
  readonly spinners: Runner[] = [];
}

/**
 * One thread of a touch: an actor on the virtual clock. A class, so every runner has one
 * shape; every number field has a number initializer (an ES2022 field declared without one
 * starts undefined, and V8 then keeps it tagged: each double stored would be a new heap box).
 */
class Runner {
  readonly task: Task;
  readonly cpu: number = 0;
  readonly node: number = 0;
  addr = 0;
  readonly end: number = 0;
  /** The access at addr writes; and the VMA addr is in. */
  write = true;
  vma: Vma;
  /** A fault list's runner: its addresses and writes, and the entry at addr (else null: a range). */
  list: Float64Array | null = null;
  writes: Uint8Array | null = null;
  li = 0;
  /** Time of this runner's next event. */
  t = 0;
  /** What the next event does: PH_PAGE, PH_INSTALL, PHASE_THP, PH_CS1 or PH_CS2. */
  phase = 0;
  /** Spinning on `lock` since spinFrom (not scheduled; the lock's release grants it). */
  parked = false;
  /** The page-table lock this runner's fault takes (spinLock sets it), and the PMD it covers. */
  lock: PtLock | null = null;
  lockPmd = -1;
  spinFrom = 0;
  done = false;
  userNs = 0;
  sysNs = 0;
  /**
   * The system time of this runner's CPU (cpus.systemNs) during one of its events: step()
   * loads it before the event and stores it after; nothing else adds to it meanwhile.
   */
  cpuSys = 0;
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
  /** A huge fault between its phases (thp.ts; phase PHASE_THP). */
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


/**
 * A touch that can run a few events at a time (DESIGN §5: the daemon slices long commands so
 * it can answer readers in between). `run(budget)` runs at most `budget` events and says
 * whether the touch is complete; the events run are the same, in the same order, however the
 * budget splits them, so the result and the machine's state are the same to the last bit.
 * While a touch is in progress its runners' CPUs are marked in use; nothing else may run
 * events on this machine meanwhile (the caller serializes commands).
 * `what` names the command in error messages: touch, or fault (one page).
 */
export class TouchJob {
  private readonly sim: FaultSim;
  private readonly runners: Runner[] = [];
  private readonly start: number;
  private outcome: TouchResult | null = null;
  private failed = false;

  /** A range (touch, fault) or a list of accesses (faults). */
  constructor(private readonly m: Machine, mm: Mm, o: TouchOptions | FaultList, what: 'touch' | 'fault' = 'touch') {
    const procs = m.procs;
    this.start = m.now;
    const opts = 'addrs' in o ? this.listRunners(mm, o) : this.rangeRunners(mm, o, what);
    this.sim = new FaultSim(m, procs, mm, opts, this.runners.map((r) => r.cpu));
    for (const r of this.runners) procs.cpuInUse[r.cpu] = 1;
    procs.runningTasks += this.runners.length;
    procs.contextSwitches += this.runners.length; // each thread is switched in …
  }

  private rangeRunners(mm: Mm, o: TouchOptions, what: 'touch' | 'fault'): TouchOptions {
    const m = this.m;
    const ps = m.pageSize;
    const { vma, size } = m.procs.range(mm, o.addr, o.size, what);
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
    // The range is split evenly among the threads (in whole strides), each in address order.
    const strides = Math.ceil(size / o.stride);
    // A fault maps at most 2^vm.max_prealloc_order pages (a COW or read fault, one); allocRun()
    // grows the arrays should the sysctl rise while the touch is in progress.
    const maxPages = m.sysctl.max_prealloc_order === 0 ? 1 : PAGEVEC_SIZE;
    for (let i = 0; i < o.threads; i++) {
      const first = Math.floor((strides * i) / o.threads);
      const last = Math.floor((strides * (i + 1)) / o.threads);
      if (last <= first) continue;
      const cpu = i % m.config.cpus;
      this.runners.push(new Runner(
        mm.task(i), cpu, m.cpus.nodeOf[cpu]!, o.addr + first * o.stride,
        Math.min(o.addr + size, o.addr + last * o.stride), this.start, maxPages, vma, o.write,
      ));
    }
    return o;
  }

  /**
   * A fault list: one runner per task, walking its entries in list order, all starting now.
   * Every entry is checked (page aligned, mapped) before anything runs.
   */
  private listRunners(mm: Mm, l: FaultList): TouchOptions {
    const m = this.m;
    const ps = m.pageSize;
    const maxLines = ps / m.config.lineSize;
    if (!Number.isInteger(l.lines) || l.lines < 1 || l.lines > maxLines) {
      throw new ModelError('KSCRUB_BAD_OPTION', `faults: lines=${l.lines} must be 1..${maxLines} (${m.config.lineSize}-byte lines in a ${ps}-byte page)`);
    }
    const byTask = new Map<number, number[]>();
    l.addrs.forEach((addr, i) => {
      m.procs.range(mm, addr, ps, 'faults');
      const task = l.tasks[i]!;
      if (!Number.isInteger(task) || task < 0 || task >= MAX_THREADS) {
        throw new ModelError('KSCRUB_BAD_OPTION', `faults: task ${task} must be 0..${MAX_THREADS - 1}`);
      }
      const mine = byTask.get(task) ?? [];
      mine.push(i);
      byTask.set(task, mine);
    });
    const maxPages = m.sysctl.max_prealloc_order === 0 ? 1 : PAGEVEC_SIZE;
    for (const [task, entries] of byTask) {
      const cpu = l.cpus?.[task] ?? task % m.config.cpus;
      if (!Number.isInteger(cpu) || cpu < 0 || cpu >= m.config.cpus) {
        throw new ModelError('KSCRUB_BAD_OPTION', `faults: cpu ${cpu} of task ${task} must be 0..${m.config.cpus - 1}`);
      }
      const first = l.addrs[entries[0]!]!;
      const r = new Runner(mm.task(task), cpu, m.cpus.nodeOf[cpu]!, first, Number.POSITIVE_INFINITY, this.start, maxPages,
        mm.findVma(first)!, l.writes[entries[0]!] === 1);
      r.list = Float64Array.from(entries, (i) => l.addrs[i]!);
      r.writes = Uint8Array.from(entries, (i) => l.writes[i]!);
      this.runners.push(r);
    }
    // Two tasks on one CPU take turns on it (step() waits for the CPU), as tasks would.
    return { addr: 0, size: ps, threads: this.runners.length, lines: l.lines, write: true, stride: ps };
  }

  /** Run at most `budget` events (≥ 1); true once the touch is complete (see result). */
  run(budget = Number.POSITIVE_INFINITY): boolean {
    if (this.outcome) return true;
    if (this.failed) throw new Error('touch: run() after the touch failed');
    let done: boolean;
    try {
      done = this.sim.run(this.runners, Math.max(1, budget));
    } catch (err) {
      this.failed = true;
      this.release();
      throw err;
    }
    if (done) this.finish();
    return done;
  }

  /** The touch's result; only once run() has returned true. */
  get result(): TouchResult {
    if (!this.outcome) throw new Error('touch: result read before the touch completed');
    return this.outcome;
  }

  private finish(): void {
    let end = this.start;
    let userNs = 0;
    let sysNs = 0;
    for (const r of this.runners) {
      end = Math.max(end, r.t);
      userNs += r.userNs;
      sysNs += r.sysNs;
    }
    this.release();
    this.m.advanceTo(end);
    const sim = this.sim;
    // Made here, whole: a literal whose fields change type after it is made (0, then a
    // double) costs optimized code a map check failure per touch.
    this.outcome = {
      pages: sim.pages, faults: sim.faults, prezeroed: sim.prezeroed, hotZeroed: sim.hotZeroed,
      prefaulted: sim.prefaulted, oom: sim.oom, userNs, sysNs, wallNs: end - this.start, zeroNs: sim.zeroedNs,
    };
  }

  private release(): void {
    for (const r of this.runners) this.m.procs.cpuInUse[r.cpu] = 0;
    this.m.procs.runningTasks -= this.runners.length;
    this.m.procs.contextSwitches += this.runners.length; // … and out when it is done
  }
}

/** A whole touch at once (what the model's callers and tests use). */
export function touch(m: Machine, mm: Mm, o: TouchOptions, what: 'touch' | 'fault' = 'touch'): TouchResult {
  const job = new TouchJob(m, mm, o, what);
  job.run();
  return job.result;
}

/** A runner's next event: user code up to the next fault; then the fault's pieces around page_table_lock. */
const PH_PAGE = 0;
/** Page in hand: take page_table_lock again to install it. (PHASE_THP, 2, is a huge fault's.) */
const PH_INSTALL = 1;
/** Holding page_table_lock for handle_mm_fault's walk (section 1); then allocate and zero. */
const PH_CS1 = 3;
/** Holding page_table_lock for do_anonymous_page's second section; then back to user. */
const PH_CS2 = 4;
/**
 * Section 1's or 2's work is done at the event's time: release page_table_lock now. A release
 * of its own event, so that what other threads did to mm_struct's line while the lock was
 * held (mmap_sem, spinning) has happened before the releasing store pays for the line.
 */
const PH_UNLOCK1 = 5;
const PH_UNLOCK2 = 6;
/** lru_cache_add_active's per-CPU pagevec holds PAGEVEC_SIZE pages before it drains. */
export const PAGEVEC_SIZE = 16;
/** log2(PAGEVEC_SIZE): the largest prefault order (V2 maps at most a pagevec a fault). */
const PAGEVEC_ORDER = 4;

class FaultSim implements ThpPricing<Runner> {
  private readonly ps: number = 0;
  private readonly pmdBytes: number = 0;
  private readonly c: Machine['cost'];
  /** priceAlloc()'s figures for a page from the runner's node and from another, worked out once. */
  private readonly allocNs: number = 0;
  private readonly allocRemoteNs: number = 0;
  /** Hot zeroing of one page by a CPU alone on its bus, local and remote (clear_page). */
  private readonly zeroNs: number = 0;
  private readonly zeroRemoteNs: number = 0;
  /**
   * When the machine's next background event (kscrubd, load sample) is due: until then,
   * catching the world up to a runner's time only moves the clock. Only advanceTo(), a free
   * (which may wake kscrubd) and handing kscrubd a CPU change it. It starts unknown (-∞), so
   * that every touch's first catch-up goes through advanceTo(): optimized code then never
   * meets that call for the first time when a background event comes due mid-run.
   */
  private bgAt = Number.NEGATIVE_INFINITY;
  /** Huge-page faults, when the VMA is MADV_HUGEPAGE (thp.ts). */
  private readonly thp: ThpFaults<Runner> | null = null;
  /** How allocPages() served the page just allocated (priceAlloc() reads it). */
  readonly served = new AllocResult();
  /**
   * The page-table locks: the mm's one (2.6.11), or one per pte page by its PMD's start
   * address (split ptlocks); and those with spinners, whose releases grant them.
   */
  private readonly mmLock = new PtLock();
  private readonly tableLocks = new Map<number, PtLock>();
  private readonly contended: PtLock[] = [];
  /**
   * Today's fault path (MachineConfig.splitPtlocks): a ptlock per pte page, with a line of
   * its own, and rss in per-CPU counters; else 2.6.11's page_table_lock beside mmap_sem in
   * mm_struct's first line, and rss on its second.
   */
  private readonly split: boolean;
  /**
   * Every runner has a CPU of its own, so a spinning one keeps it (nothing else runs there
   * until the lock comes). With more threads than CPUs the model lets another thread of that
   * CPU run meanwhile, as if the spinner had been switched out.
   */
  readonly spinOwnsCpu: boolean;
  /**
   * More than one runner: a lock section ends in an event of its own (PH_UNLOCK1/2). One
   * runner alone has nobody to interleave with, and releases within the section's event.
   */
  private readonly shared: boolean;
  /** The touch's counts (TouchResult). */
  pages = 0;
  faults = 0;
  prezeroed = 0;
  hotZeroed = 0;
  prefaulted = 0;
  oom = 0;
  /** Hot zeroing's share of the system time. */
  zeroedNs = 0;

  constructor(
    private readonly m: Machine,
    private readonly procs: Processes,
    private readonly mm: Mm,
    private readonly o: TouchOptions,
    runnerCpus: readonly number[],
  ) {
    this.spinOwnsCpu = new Set(runnerCpus).size === runnerCpus.length;
    this.shared = runnerCpus.length > 1;
    this.split = m.config.splitPtlocks;
    this.ps = m.pageSize;
    this.pmdBytes = procs.pmdBytes;
    this.c = m.cost;
    const c = this.c;
    // The same operations in the same order as pricing each page would do (× 1 for a local
    // page changes no bit), so the sums are the same to the last bit.
    this.allocNs = c.pcpAllocNs + c.structPageLines * c.lineMissNs;
    this.allocRemoteNs = c.pcpAllocNs + c.structPageLines * c.lineMissNs * c.remoteFactor;
    // Hot zeroing is clear_page() on the faulting CPU: the CPU zero driver's price for a page.
    this.zeroNs = m.cpuZero.zero(this.ps, false).cpuNs;
    this.zeroRemoteNs = m.cpuZero.zero(this.ps, true).cpuNs;
    if (mm.vmas.some((v) => v.thp)) this.thp = new ThpFaults(m, procs, mm, this);
  }

  /** The pte page covering `addr`, if there is one yet; one found is remembered by the runner. */
  private ptePeek(r: Runner, addr: number): Float64Array | null {
    if (addr >= r.tableStart && addr < r.tableEnd) return r.table;
    const table = this.procs.ptePeek(this.mm, addr);
    if (!table) return null;
    this.remember(r, addr, table);
    return table;
  }

  private remember(r: Runner, addr: number, table: Float64Array): void {
    const pmdBytes = this.pmdBytes;
    r.table = table;
    r.tableStart = Math.floor(addr / pmdBytes) * pmdBytes;
    r.tableEnd = r.tableStart + pmdBytes;
  }

  /**
   * Index of `addr`'s pte in the runner's pte page (ptePeek found it). Not `%`: addresses
   * pass 2^31, and V8's double `%` is a libm fmod call.
   */
  private pteIndex(r: Runner, addr: number): number {
    return (addr - r.tableStart) / this.ps;
  }

  /**
   * Run the events in time order until every runner is done or `budget` events have run;
   * true when every runner is done. An event is a runner's next step, or the release of
   * page_table_lock while runners spin on it (the release hands it to one of them). The hot
   * loop lives here, apart from touch()'s once-a-call code: optimized code for it then
   * survives from one touch to the next (touch() meets new values once a call).
   */
  run(runners: Runner[], budget: number): boolean {
    if (runners.length === 1) {
      // One thread: its events are the only ones (besides the background, which step() runs);
      // it never finds the lock taken.
      const r = runners[0]!;
      for (let n = 0; !r.done && n < budget; n++) this.step(r);
      if (r.done) this.leave(r);
      return r.done;
    }
    let live = 0;
    for (const x of runners) if (!x.done) live++;
    const contended = this.contended;
    for (let n = 0; live > 0 && n < budget; n++) {
      // The runner whose event comes first (few threads: a scan beats a heap).
      let r: Runner | null = null;
      for (let i = 0; i < runners.length; i++) {
        const x = runners[i]!;
        if (!x.done && !x.parked && (r === null || x.t < r.t)) r = x;
      }
      // A release with spinners that comes first grants its lock (the earliest release first).
      let g: PtLock | null = null;
      for (let i = 0; i < contended.length; i++) {
        const l = contended[i]!;
        if (l.freeAt !== Number.POSITIVE_INFINITY && (r === null || l.freeAt <= r.t) && (g === null || l.freeAt < g.freeAt)) g = l;
      }
      if (g !== null) {
        this.grant(g);
        continue;
      }
      if (r === null) assert(false, 'a runner is runnable or spinning while the touch is live');
      this.step(r);
      if (r.done) {
        live--;
        this.leave(r);
      }
    }
    return live === 0;
  }

  /** A runner is done: its CPU is idle from r.t (a kscrubd waiting for one takes it). */
  private leave(r: Runner): void {
    this.procs.cpuInUse[r.cpu] = 0;
    this.m.cpusReleased(r.t);
    this.bgAt = this.m.nextBackgroundAt();
  }

  /** Run one event of runner r at r.t. */
  step(r: Runner): void {
    const m = this.m;
    const freeAt = m.cpus.freeAt;
    // Catch the world up, then wait for the CPU if kscrubd took it meanwhile; catching up
    // again may hand it to kscrubd once more, so repeat. Between faults (back in user mode,
    // where a woken kernel thread preempts) a kscrubd that found no idle CPU on its node
    // takes this one, when it is its turn (kscrubd.ts, SCHED_TIMESLICE_NS).
    for (;;) {
      if (r.t > m.clock.now) {
        if (r.t < this.bgAt) m.clock.now = r.t; // nothing runs before r.t: advanceTo would only move the clock
        else {
          m.advanceTo(r.t);
          this.bgAt = m.nextBackgroundAt();
        }
      }
      if (r.phase === PH_PAGE && m.kscrubdWaiting > 0 && m.kscrubd[r.node]!.runOn(m, r.cpu, r.t)) {
        this.bgAt = m.nextBackgroundAt();
      }
      const free = freeAt[r.cpu]!;
      if (free <= r.t) break;
      r.t = free;
      // The CPU comes back later: other threads' events before then run first (its event,
      // run now, would take zone locks "in the future" that they then wait for).
      if (this.shared) return;
    }
    const systemNs = m.cpus.systemNs;
    r.cpuSys = systemNs[r.cpu]!;
    switch (r.phase) {
      case PH_PAGE: this.nextPage(r); break;
      case PH_CS1: this.section1(r); break;
      case PH_INSTALL: if (this.spinLock(r, PH_CS2)) this.section2(r); break;
      case PHASE_THP: this.thpInstall(r); break;
      case PH_CS2: this.section2(r); break;
      default: this.release(r, r.phase); // PH_UNLOCK1, PH_UNLOCK2
    }
    systemNs[r.cpu] = r.cpuSys;
    // A runner left spinning keeps its CPU busy until the lock is granted (grant() frees it).
    if (!r.parked || !this.spinOwnsCpu) freeAt[r.cpu] = r.t;
  }

  /** Touch pages until one faults (its first piece runs) or the runner's share is done. */
  private nextPage(r: Runner): void {
    while (r.addr < r.end) {
      const table = this.ptePeek(r, r.addr);
      if (!table && this.thp !== null) {
        // Inside a huge PMD: no fault, the program writes its lines.
        const huge = this.thp.hugePte(r.addr);
        if (huge !== PTE_NONE) {
          this.thp.touchMapped(r, huge);
          this.pages++;
          this.advance(r);
          continue;
        }
      }
      const idx = table ? this.pteIndex(r, r.addr) : 0;
      const pte = table ? table[idx]! : PTE_NONE;
      const present = r.write ? pte >= 2 : pte !== PTE_NONE;
      if (!present || !table) return this.faultBegin(r);
      // No fault: the program just writes its lines.
      this.userTouch(r, pte >= 2 && pteCacheHot(pte), pte >= 2 ? ptePfn(pte) : -1);
      if (pte >= 2) table[idx] = mkPte(ptePfn(pte), false);
      this.pages++;
      this.advance(r);
    }
    r.done = true;
  }

  /** On to the runner's next address: a stride on in a range, the next entry in a list. */
  private advance(r: Runner): void {
    const list = r.list;
    if (list === null) {
      r.addr += this.o.stride;
      return;
    }
    const i = ++r.li;
    if (i >= list.length) {
      r.addr = r.end;
      return;
    }
    r.addr = list[i]!;
    r.write = r.writes![i] === 1;
    if (r.addr < r.vma.start || r.addr >= r.vma.end) r.vma = this.mm.findVma(r.addr)!;
  }

  /**
   * ia64_do_page_fault up to page_table_lock: the trap, down_read(mmap_sem) — an atomic on
   * mm_struct's first cacheline, which page_table_lock shares — find_vma, and a pte page for
   * the PMD if it has none (__pte_alloc allocates with the lock dropped).
   */
  private faultBegin(r: Runner): void {
    const m = this.m;
    const c = this.c;
    this.faults++;
    m.vm.pgfault++;
    this.sys(r, c.trapNs + c.handlerNs);
    this.writeMmLine(r);
    // An empty PMD of a MADV_HUGEPAGE range takes a huge page if it can (thp.ts).
    if (this.thp !== null && r.write && !this.ptePeek(r, r.addr) && this.thp.begin(r)) return;
    if (!this.ptePeek(r, r.addr) && !this.pteAlloc(r)) return this.outOfMemory(r);
    r.faultAddr = r.addr;
    if (this.spinLock(r, PH_CS1)) this.section1(r);
  }

  /**
   * handle_mm_fault under page_table_lock: walk to the pte and look at it; do_anonymous_page
   * (or do_wp_page for the ZERO_PAGE) drops the lock to allocate and zero. A read fault maps
   * ZERO_PAGE without dropping it.
   */
  private section1(r: Runner): void {
    const m = this.m;
    this.sys(r, this.c.ptlCheckNs);
    const table = this.ptePeek(r, r.faultAddr)!;
    const idx = this.pteIndex(r, r.faultAddr);
    const pte = table[idx]!;
    r.nPages = 0;
    r.zeroPage = false;
    r.cow = false;
    if (!r.write) {
      m.vm.faultZeroPage++;
      this.sys(r, this.c.ptlSetNs);
      if (pte === PTE_NONE) table[idx] = PTE_ZERO_PAGE;
    } else r.cow = pte === PTE_ZERO_PAGE;
    this.endSection(r, PH_UNLOCK1);
  }

  /**
   * A lock section's work is done: release page_table_lock in an event of its own when other
   * runners share the mm (PH_UNLOCK1/2), else at once; then go on after the section.
   */
  private endSection(r: Runner, unlock: typeof PH_UNLOCK1 | typeof PH_UNLOCK2): void {
    if (this.shared) r.phase = unlock;
    else this.release(r, unlock);
  }

  private release(r: Runner, unlock: number): void {
    this.unlockPtl(r);
    if (unlock === PH_UNLOCK1) this.afterSection1(r);
    else this.afterSection2(r);
  }

  /** page_table_lock dropped after section 1: a read fault is done; a write allocates and zeroes. */
  private afterSection1(r: Runner): void {
    if (!r.write) return this.backToUser(r, false, -1);
    const cow = r.cow;
    if (cow) this.m.vm.faultCow++;
    this.allocRun(r, cow ? 1 : this.prefaultPages(r));
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
    // mm->rss++ on mm_struct's counter line; today's kernels count rss per CPU (no transfer).
    this.sys(r, this.c.ptlSetNs * n + (this.split ? 0 : this.bounce(r, mm.rssCpu)));
    if (!this.split) mm.rssCpu = r.cpu;
    const table = this.ptePeek(r, r.faultAddr)!;
    const idx0 = this.pteIndex(r, r.faultAddr);
    let mapped = 0;
    let freed = false;
    for (let i = 0; i < n; i++) {
      const idx = idx0 + i;
      const old = table[idx]!;
      // A pte another thread filled meanwhile keeps its page; ours goes back.
      const cow = i === 0 && old === PTE_ZERO_PAGE;
      if (old !== PTE_NONE && !cow) {
        m.freePages(r.pfns[i]!, 0, r.cpu);
        m.vm.prefaultReleased++;
        freed = true;
        continue;
      }
      table[idx] = mkPte(r.pfns[i]!, r.hot[i] === 1 && i > 0);
      mapped++;
      if (i > 0) this.prefaulted++;
      this.lruAdd(r, r.pfns[i]!);
    }
    // A free may have woken kscrubd.
    if (freed) this.bgAt = m.nextBackgroundAt();
    mm.rss += mapped;
    this.procs.nrAnonPages += mapped;
    m.vm.prefaultPages += Math.max(0, mapped - 1);
    this.endSection(r, PH_UNLOCK2);
  }

  /** page_table_lock dropped after section 2: the page is mapped. */
  private afterSection2(r: Runner): void {
    this.backToUser(r, r.hot[0] === 1, r.firstNode);
  }

  /**
   * The fault is done: up_read(mmap_sem), back to user, where the program writes its lines
   * (of a page on `node`, hot in cache or not: touchLines), and on to its next address.
   */
  private backToUser(r: Runner, cacheHot: boolean, node: number): void {
    this.faultEnd(r);
    this.touchLines(r, cacheHot, node);
    this.pages++;
    this.advance(r);
    r.phase = PH_PAGE;
  }

  /** up_read(mmap_sem) and the return to user mode (the trap's exit is in trapNs). */
  private faultEnd(r: Runner): void {
    this.writeMmLine(r);
  }

  /**
   * lru_cache_add_active: the page joins this CPU's pagevec; the 16th drains it onto the
   * zone's active list under zone->lru_lock (every CPU faulting in that zone takes it), two
   * lines moving per drain: the lock's (with the list head) and the struct page of the page
   * the previous drain left at the head.
   */
  private lruAdd(r: Runner, pfn: number): void {
    const pvec = this.m.cpus.lruPvec;
    const k = pvec[r.cpu]! + 1;
    if (k < PAGEVEC_SIZE) {
      pvec[r.cpu] = k;
      return;
    }
    pvec[r.cpu] = 0;
    const zone = this.m.zoneOf(pfn);
    const begin = Math.max(r.t, zone.lruLockFreeAt);
    this.sys(r, begin - r.t + 2 * this.bounce(r, zone.lruLockCpu) + PAGEVEC_SIZE * this.c.lruPerPageNs);
    zone.lruLockFreeAt = r.t;
    zone.lruLockCpu = r.cpu;
  }

  /** __pte_alloc for r.addr's PMD (it has no pte page): false when memory is exhausted. */
  private pteAlloc(r: Runner): boolean {
    const pt = this.procs.pteAlloc(this.mm, r.addr, r.node, r.cpu, this.served);
    if (!pt) return false;
    this.remember(r, r.addr, pt.table);
    if (pt.fresh) this.priceAlloc(r);
    return true;
  }

  /** Allocate (and price) the fault's n pages into r.pfns, stopping at the first failure. */
  private allocRun(r: Runner, n: number): void {
    const m = this.m;
    if (n > r.pfns.length) {
      r.pfns = new Float64Array(n);
      r.hot = new Uint8Array(n);
    }
    for (let i = 0; i < n; i++) {
      const pfn = m.allocPages(0, true, r.node, r.cpu, this.served);
      if (pfn < 0) break;
      const hot = this.priceAlloc(r);
      if (hot) {
        this.hotZeroed++;
        m.vm.faultHotZeroed++;
      } else {
        this.prezeroed++;
        m.vm.faultPrezeroed++;
      }
      if (i === 0) r.firstNode = this.served.zone!.node;
      r.pfns[i] = pfn;
      r.hot[i] = hot ? 1 : 0;
      r.nPages++;
    }
  }

  /** Out of memory: the thread stops here, as the OOM killer would stop it. */
  private outOfMemory(r: Runner): void {
    this.oom++;
    this.m.vm.faultOom++;
    r.done = true;
  }

  /**
   * Anticipatory prefault as Lameter's V2 patch has it: a fault where the task was predicted
   * to fault next raises the order by one and maps 2^order pages, up to PAGEVEC_SIZE (16);
   * after a 16-page fault the order goes back to vm.max_prealloc_order (V2's constant 3), so
   * the next hit maps 2^(3+1) = 16 again: 1, 2, 4, 8, 16, 16 … A miss or MADV_RANDOM resets the
   * order; max_prealloc_order 0 turns prefault off. The run is clipped to the VMA end and the
   * PMD (one pte page) boundary.
   */
  private prefaultPages(r: Runner): number {
    const task = r.task;
    const max = this.m.sysctl.max_prealloc_order;
    if (max === 0 || r.vma.random || r.faultAddr !== task.nextAddr) task.order = 0;
    else task.order = Math.min((task.order >= PAGEVEC_ORDER ? max : task.order) + 1, PAGEVEC_ORDER);
    // The runner's pte page is faultAddr's (faultBegin made sure): its end is the PMD's.
    const limit = Math.min(r.vma.end, r.tableEnd);
    const n = Math.max(1, Math.min(orderPages(task.order), (limit - r.faultAddr) / this.ps));
    task.nextAddr = r.faultAddr + n * this.ps;
    return n;
  }

  /**
   * Price the page allocPages() just handed out (this.served): the per-cpu list, struct page,
   * zone->lock on a refill, and hot zeroing when no prezeroed page came. Returns hot-zeroed.
   * A huge page (thp.ts) passes the bytes its hot zeroing clears (one extent).
   */
  priceAlloc(r: Runner, zeroBytes = this.ps): boolean {
    const c = this.c;
    const info = this.served;
    const zone = info.zone!;
    const local = zone.node === r.node;
    // struct page of the new page: count, flags, LRU links — misses, dearer on another node.
    this.sys(r, local ? this.allocNs : this.allocRemoteNs);
    if (info.lockedPages > 0) {
      // rmqueue_bulk under zone->lock: every CPU allocating from this zone takes it.
      const begin = Math.max(r.t, zone.lockFreeAt);
      this.sys(r, begin - r.t + this.bounce(r, zone.lockCpu) + info.lockedPages * c.buddyPerPageNs);
      zone.lockFreeAt = r.t;
      zone.lockCpu = r.cpu;
    }
    if (info.hotZeroed) this.hotZero(r, local, zeroBytes);
    return info.hotZeroed;
  }

  /** Phase B of a huge fault: the PMD mapped (its pages counted), or ours released and retried. */
  private thpInstall(r: Runner): void {
    const h = this.thp!.install(r);
    if (h === null) {
      this.bgAt = this.m.nextBackgroundAt(); // the release may have woken kscrubd
      return;
    }
    const pages = orderPages(this.thp!.order);
    if (h.hot) this.hotZeroed += pages;
    else this.prezeroed += pages;
    this.pages++;
    this.advance(r);
  }

  /**
   * clear_page() on the faulting CPU. Alone on its node's bus it runs at the CPU's own store
   * rate; with other CPUs of the node zeroing (threads, kscrubd) the bus is shared.
   */
  private hotZero(r: Runner, local: boolean, bytes: number): void {
    const cpus = this.m.cpus;
    const sharers = cpus.zeroingOn(r.node, r.t, r.cpu) + 1;
    const ns = sharers === 1 && bytes === this.ps ? (local ? this.zeroNs : this.zeroRemoteNs) : this.m.cpuZero.zero(bytes, !local, sharers).cpuNs;
    cpus.zeroUntil[r.cpu] = r.t + ns;
    this.sys(r, ns);
    this.zeroedNs += ns;
  }

  /** The program writes `lines` cachelines: hits if the CPU just zeroed the page, else misses. */
  private userTouch(r: Runner, cacheHot: boolean, pfn: number): void {
    this.touchLines(r, cacheHot, !cacheHot && pfn >= 0 ? this.m.zoneOf(pfn).node : -1);
  }

  /** userTouch() of a page on `node` (-1: a line miss is not possible, it always hits). */
  touchLines(r: Runner, cacheHot: boolean, node: number): void {
    const c = this.c;
    let line = c.lineHitNs;
    if (!cacheHot && node >= 0) {
      const remote = node !== r.node ? c.remoteFactor : 1;
      line = c.lineMissNs * remote;
    }
    const ns = c.userPageNs + this.o.lines * line;
    r.userNs += ns;
    this.m.cpus.userNs[r.cpu]! += ns;
    r.t += ns;
  }

  sys(r: Runner, ns: number): void {
    r.sysNs += ns;
    r.cpuSys += ns;
    r.t += ns;
  }

  /** An atomic on mm_struct's first line (mmap_sem's count; page_table_lock is beside it). */
  private writeMmLine(r: Runner): void {
    const mm = this.mm;
    this.sys(r, this.bounce(r, mm.semCpu));
    mm.semCpu = r.cpu;
  }

  /**
   * page_table_lock held for `hold` ns within the runner's event (a huge fault's install,
   * thp.ts): spin until the last release if the lock is busy, take it, hold it. A holder whose
   * section is still to come (a granted spinner) is not waited for: an approximation, for the
   * THP path only.
   */
  lockPtl(r: Runner, hold: number): void {
    const l = this.lockOf(r.addr);
    if (Number.isFinite(l.freeAt) && l.freeAt > r.t) this.sys(r, l.freeAt - r.t);
    this.takeLine(r, l);
    this.sys(r, hold);
    if (Number.isFinite(l.freeAt)) l.freeAt = r.t;
  }

  /** The page-table lock that covers `addr`: the mm's, or its pte page's (split ptlocks). */
  private lockOf(addr: number): PtLock {
    if (!this.split) return this.mmLock;
    const key = Math.floor(addr / this.pmdBytes);
    let l = this.tableLocks.get(key);
    if (l === undefined) {
      l = new PtLock();
      this.tableLocks.set(key, l);
    }
    return l;
  }

  /** The CPU that last wrote the lock's line (mm_struct's first line for the mm-wide lock). */
  private lineOf(l: PtLock): number {
    return this.split ? l.lineCpu : this.mm.semCpu;
  }

  private setLine(l: PtLock, cpu: number): void {
    if (this.split) l.lineCpu = cpu;
    else this.mm.semCpu = cpu;
  }

  /** An atomic on the lock's line: pull it from whoever wrote it last. */
  private takeLine(r: Runner, l: PtLock): void {
    this.sys(r, this.bounce(r, this.lineOf(l)));
    this.setLine(l, r.cpu);
  }

  /**
   * spin_lock(&mm->page_table_lock): take it if it is free and nobody spins; else spin — the
   * runner parks until a release grants it, and its next event is `then`. True: taken now.
   */
  private spinLock(r: Runner, then: number): boolean {
    // A runner faults through its share a PMD at a time: the lock it took last is usually it.
    const pmd = this.split ? Math.floor(r.faultAddr / this.pmdBytes) : 0;
    const l = r.lock !== null && r.lockPmd === pmd ? r.lock : this.lockOf(r.faultAddr);
    r.lock = l;
    r.lockPmd = pmd;
    if (l.freeAt <= r.t && l.spinners.length === 0) {
      this.takeLine(r, l);
      // Held until its release event (shared); one runner alone releases within the event.
      if (this.shared) l.freeAt = Number.POSITIVE_INFINITY;
      return true;
    }
    r.phase = then;
    r.parked = true;
    r.spinFrom = r.t;
    if (l.spinners.length === 0) this.contended.push(l);
    l.spinners.push(r);
    // The spinner's CPU is busy spinning, whatever else wants it.
    if (this.spinOwnsCpu) this.m.cpus.freeAt[r.cpu] = Number.POSITIVE_INFINITY;
    return false;
  }

  /**
   * spin_unlock: the releasing store needs the line back exclusively — from another CPU that
   * wrote it meanwhile (mmap_sem), or by invalidating the copies the spinners read.
   */
  private unlockPtl(r: Runner): void {
    const l = r.lock!;
    if (l.spinners.length > 0) {
      this.sys(r, this.farthest(r.cpu, l));
      this.setLine(l, r.cpu);
    } else this.takeLine(r, l);
    l.freeAt = r.t;
  }

  /**
   * The release of page_table_lock at ptlFreeAt with runners spinning: they all re-read the
   * line and race with cmpxchg; the one nearest the releasing CPU sees the release first and
   * wins (ties: the longest spinning). Each loser's request queued ahead of the winner's at
   * the line's home delays it, half of them on average: spinning CPUs keep stealing the line.
   */
  private grant(l: PtLock): void {
    const spinners = l.spinners;
    const from = this.lineOf(l);
    const t = l.freeAt;
    // A runner whose event began before the release may reach spin_lock after it (its trap ran
    // ahead within the event): it was not spinning at the release and cannot win this round,
    // unless nobody was; then it finds the lock free when it gets there.
    let best = -1;
    let bestCost = 0;
    let first = 0;
    for (let i = 0; i < spinners.length; i++) {
      const s = spinners[i]!;
      if (s.spinFrom < spinners[first]!.spinFrom) first = i;
      if (s.spinFrom > t) continue;
      const cost = this.transfer(from, s.cpu);
      if (best < 0 || cost < bestCost) {
        best = i;
        bestCost = cost;
      }
    }
    const late = best < 0;
    if (late) best = first;
    const w = spinners[best]!;
    spinners.splice(best, 1);
    const at = late ? w.spinFrom : t;
    const handoff = late ? this.transfer(from, w.cpu) : bestCost * (1 + spinners.length / 2);
    const spin = at - w.spinFrom + handoff;
    const systemNs = this.m.cpus.systemNs;
    w.sysNs += spin;
    systemNs[w.cpu]! += spin;
    w.t = at + handoff;
    w.parked = false;
    this.setLine(l, w.cpu);
    // Held from now until the winner's section releases it.
    l.freeAt = Number.POSITIVE_INFINITY;
    if (spinners.length === 0) this.contended.splice(this.contended.indexOf(l), 1);
    this.m.cpus.freeAt[w.cpu] = w.t;
  }

  /** The dearest transfer from `cpu` to a spinner's CPU (the invalidation waits for the last). */
  private farthest(cpu: number, l: PtLock): number {
    let worst = 0;
    for (const s of l.spinners) worst = Math.max(worst, this.transfer(cpu, s.cpu));
    return worst;
  }

  /** Cost of pulling a cacheline last written by CPU `last` (-1: nobody) over to r's CPU. */
  private bounce(r: Runner, last: number): number {
    return this.transfer(last, r.cpu);
  }

  /** A cache-to-cache transfer of a line from CPU `from` (-1: nobody has it) to CPU `to`. */
  private transfer(from: number, to: number): number {
    if (from < 0 || from === to) return 0;
    const nodeOf = this.m.cpus.nodeOf;
    return nodeOf[from] === nodeOf[to] ? this.c.lineBounceNs : this.c.lineRemoteNs;
  }
}

/**
 * What a zap (munmap, exit_mmap) costs its CPU: per page freed, zap_pte_range through
 * free_hot_cold_page (freePageNs); per page a full per-cpu list drains back, free_pages_bulk's
 * work under zone->lock (buddyPerPageNs).
 */
export function zapCostNs(m: Machine, pagesFreed: number, pagesDrained: number): number {
  return pagesFreed * m.cost.freePageNs + pagesDrained * m.cost.buddyPerPageNs;
}
