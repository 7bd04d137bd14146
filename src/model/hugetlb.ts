import debugFactory from 'debug';
import { ModelError } from '../uapi';
import type { HugeClearMode } from '../uapi/hugetlb';
import { assert } from './errors';
import { folioClearExtent } from './zero-drivers';
import { KIND_ALLOC, NOT_ZEROED, ZEROED, orderPages, pageFlags } from './page';
import type { PageOwner, Parts } from './parts';
import type { Zone } from './zone';
import { type HugeFault, HugetlbMappings, type HugetlbMapMachine } from './hugetlb-map';

/** What hugetlb uses of the machine (parts.ts). */
export type HugetlbMachine = Pick<Parts, 'config' | 'cost' | 'cpuZero' | 'cpus' | 'firstCpuOf' | 'freePages' | 'llc' | 'maxOrder' | 'nodeZones' | 'now' | 'owners' | 'pageSize' | 'zoneOf' | 'zones'> & HugetlbMapMachine<HugetlbPool>;

const log = debugFactory('kscrubfs:model');

/**
 * hugetlb: pools of huge pages per size (struct hstate) and node, as mm/hugetlb.c keeps them,
 * with the two pre-zeroing proposals of 2024–2026 laid over them:
 *
 *   pool      nr_hugepages per size and per node; pages come out of the buddy allocator when
 *             the pool grows (alloc_pool_huge_folio: a block of the hstate's order from the
 *             node's zones, __GFP_THISNODE) and go back when it shrinks. A gigantic page (order
 *             ≥ MAX_ORDER, 1 GiB on x86) is taken as alloc_contig_range takes it: a run of whole
 *             free top-order blocks, aligned to the page's size. Shrinking below the pages in
 *             use turns those into surplus pages, freed when they are released.
 *   free list enqueue_hugetlb_folio adds a freed page at the head of its node's list and
 *             dequeue takes from the head, so the list runs from the most recently freed (head)
 *             to the oldest (tail).
 *   khzerod   "mm/hugetlb: optionally pre-zero hugetlb pages" (Frank van der Linden, Dec 2024):
 *             with prezero_enabled, one thread per (size, node) zeroes free pages from the tail
 *             towards the head, so the pages a fault takes last are the ones zeroed first; a
 *             zeroed free page is counted in free_huge_pages_zero and a fault that gets it skips
 *             clearing. A fault whose page is being zeroed at that moment waits for the zeroing
 *             to finish rather than clearing another page itself.
 *   zeroable_hugepages  "Introduce a huge-page pre-zeroing mechanism" (Li Zhe, Dec 2025 – Jan
 *             2026): a per-node file reads how many free pages could be zeroed now; writing N
 *             (0 ≤ N ≤ that count) zeroes N of them in the writer's own context, on the
 *             writer's CPU, before the write returns.
 */

/** One huge page size (struct hstate). */
export interface Hstate {
  readonly order: number;
  readonly bytes: number;
  readonly kB: number;
  /** Larger than the buddy allocator's largest block: taken as a contiguous range of them. */
  readonly gigantic: boolean;
  /** Its sysfs directory: hugepages-<size>kB. */
  readonly dir: string;
}

/** A pool page's state (one byte a page, in HugetlbPool.state). */
export const HP_FREE = 0;
export const HP_ZEROED = 1;
export const HP_ZEROING = 2;
export const HP_INUSE = 3;
/** A slot of a page that went back to the buddy allocator. */
export const HP_GONE = 4;

export { HUGE_CLEAR_MODES, type HugeClearMode } from '../uapi/hugetlb';


/** Pages a resize or a zeroable_hugepages write handles between two yields (well under a millisecond). */
export const STEP_PAGES = 256;

/** Run a generator of steps to its end. */
function finish<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Who zeroes a page off the free list: khzerod, or a writer of zeroable_hugepages. */
interface Zeroing {
  readonly id: number;
  readonly done: number;
  readonly cpu: number;
}

/** One size's pool on every node. Page ids index the typed state; freed slots are reused. */
export class HugetlbPool {
  readonly hs: Hstate;
  private headPfn = new Float64Array(64);
  private stateOf = new Uint8Array(64);
  private nodeOf = new Int32Array(64);
  private slots = 0;
  private readonly spare: number[] = [];
  /** Per node: free page ids, head at the end of the array (the most recently freed). */
  readonly freeLists: number[][];
  readonly nrNode: Float64Array;
  readonly freeNode: Float64Array;
  readonly surplusNode: Float64Array;
  readonly zeroNode: Float64Array;
  /** resv_huge_pages: pages promised to mappings and not yet faulted. */
  resv = 0;
  /** nr_overcommit_hugepages. */
  overcommit = 0;
  /** prezero_enabled. */
  prezero = false;
  /** Per node: the page khzerod is zeroing, if any. */
  readonly khzerod: (Zeroing | null)[];
  /** Counters: pages cleared by faults, by khzerod, by writers; faults that waited; their wait. */
  faultCleared = 0;
  faultPrezeroed = 0;
  faultWaited = 0;
  khzerodPages = 0;
  khzerodNs = 0;
  writerPages = 0;
  writerNs = 0;

  constructor(hs: Hstate, nodes: number) {
    this.hs = hs;
    this.freeLists = Array.from({ length: nodes }, () => []);
    this.nrNode = new Float64Array(nodes);
    this.freeNode = new Float64Array(nodes);
    this.surplusNode = new Float64Array(nodes);
    this.zeroNode = new Float64Array(nodes);
    this.khzerod = Array.from({ length: nodes }, () => null);
  }

  get nr(): number { return sum(this.nrNode); }
  get free(): number { return sum(this.freeNode); }
  get surplus(): number { return sum(this.surplusNode); }
  get freeZero(): number { return sum(this.zeroNode); }

  pfn(id: number): number { return this.headPfn[id]!; }
  state(id: number): number { return this.stateOf[id]!; }
  node(id: number): number { return this.nodeOf[id]!; }
  setState(id: number, st: number): void { this.stateOf[id] = st; }

  /** A new page in the pool, free and dirty, at the head of its node's list. */
  add(pfn: number, node: number): number {
    const id = this.spare.pop() ?? this.grow();
    this.headPfn[id] = pfn;
    this.nodeOf[id] = node;
    this.stateOf[id] = HP_FREE;
    this.nrNode[node]!++;
    this.freeNode[node]!++;
    this.freeLists[node]!.push(id);
    return id;
  }

  /** The page leaves the pool (back to the buddy allocator). Precondition: it is off the free list. */
  remove(id: number): void {
    this.nrNode[this.nodeOf[id]!]!--;
    this.stateOf[id] = HP_GONE;
    this.spare.push(id);
  }

  private grow(): number {
    if (this.slots === this.headPfn.length) {
      const n = this.slots * 2;
      const pfn = new Float64Array(n); pfn.set(this.headPfn); this.headPfn = pfn;
      const st = new Uint8Array(n); st.set(this.stateOf); this.stateOf = st;
      const nd = new Int32Array(n); nd.set(this.nodeOf); this.nodeOf = nd;
    }
    return this.slots++;
  }

  /** Every page id the pool holds (in use or free). */
  forEachPage(fn: (id: number) => void): void {
    for (let id = 0; id < this.slots; id++) if (this.stateOf[id] !== HP_GONE) fn(id);
  }

  /** Take a free page `id` off node's list (it is somewhere in it). */
  unlist(node: number, id: number): void {
    const list = this.freeLists[node]!;
    const i = list.lastIndexOf(id);
    assert(i >= 0, `hugetlb page ${id} is on node ${node}'s free list`);
    list.splice(i, 1);
    this.freeNode[node]!--;
    if (this.stateOf[id] === HP_ZEROED) this.zeroNode[node]!--;
  }
}

/** A free page (dirty or zeroed, not one being zeroed) of a list, or -1. */
function lastFreeAny(pool: HugetlbPool, list: readonly number[]): number {
  for (let i = list.length - 1; i >= 0; i--) if (pool.state(list[i]!) === HP_FREE || pool.state(list[i]!) === HP_ZEROED) return list[i]!;
  return -1;
}

/** The free, dirty page nearest the head of a list, or -1. */
function lastFree(pool: HugetlbPool, list: readonly number[]): number {
  for (let i = list.length - 1; i >= 0; i--) if (pool.state(list[i]!) === HP_FREE) return list[i]!;
  return -1;
}

function sum(a: Float64Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}

/** The machine's hugetlb state: one pool per size, and the files' settings. */
export class Hugetlb implements PageOwner {
  readonly label = 'hugetlb pool';
  readonly hstates: readonly Hstate[];
  readonly pools: readonly HugetlbPool[];
  /** How faults (and khzerod, and writers) clear a page: one subpage at a time, or extents (mount --huge-clear). */
  clearMode: HugeClearMode;
  /** Every process's hugetlb mappings. */
  readonly maps: HugetlbMappings<HugetlbPool>;
  /** Per zone: the section index from which gigantic allocations search (past is taken). */
  private readonly contigCursor: Int32Array;

  constructor(private readonly m: HugetlbMachine) {
    this.hstates = hstatesOf(m);
    this.clearMode = m.config.hugeClear;
    this.pools = this.hstates.map((hs) => new HugetlbPool(hs, m.config.nodes));
    this.contigCursor = new Int32Array(m.zones.length);
    this.maps = new HugetlbMappings(m);
    m.owners.add(this);
  }

  /** The pool of the size `bytes`, or a refusal naming the sizes there are. */
  poolOf(bytes: number, what: string): HugetlbPool {
    const p = this.pools.find((x) => x.hs.bytes === bytes);
    if (!p) throw new ModelError('KSCRUB_BAD_SIZE', `${what}: no huge page size of ${bytes} bytes on this machine (sizes: ${this.hstates.map((h) => `${h.kB}kB`).join(', ')})`);
    return p;
  }

  /** default_hstate: the first size (what meminfo's HugePages_* and /proc/sys/vm/nr_hugepages show). */
  get defaultPool(): HugetlbPool | undefined {
    return this.pools[0];
  }

  /** PageOwner: the buddy blocks of non-gigantic pool pages (gigantic ones are whole sections; check() below). */
  forEachPage(fn: (pfn: number) => void): void {
    for (const p of this.pools) if (!p.hs.gigantic) p.forEachPage((id) => fn(p.pfn(id)));
  }

  /** Pages (base pages) the pools hold: meminfo's Hugetlb. */
  get totalBytes(): number {
    return this.pools.reduce((s, p) => s + p.nr * p.hs.bytes, 0);
  }

  // ---- the pool's size --------------------------------------------------------------------

  /**
   * set_max_huge_pages(h, count, nid): make the persistent pool `count` pages (on `node` only
   * when given; else spread over nodes round-robin, as the interleaved allocation does).
   * Grows as far as memory allows (short of `count` is not an error, as in the kernel);
   * shrinks by freeing free pages, and what is in use beyond `count` becomes surplus.
   */
  setNrHugepages(pool: HugetlbPool, count: number, node?: number): void {
    finish(this.resizeSteps(pool, count, node));
  }

  /** setNrHugepages() yielding every STEP_PAGES pages allocated or freed (a file write runs it in slices). */
  *resizeSteps(pool: HugetlbPool, count: number, node?: number): Generator<void, void, void> {
    const nodes = node === undefined ? [...pool.nrNode.keys()] : [node];
    // Persistent pages on the nodes concerned.
    const persistent = (): number => nodes.reduce((s, n) => s + pool.nrNode[n]! - pool.surplusNode[n]!, 0);
    // Surplus pages in use count towards the pool first (the kernel converts them back).
    for (const n of nodes) {
      while (persistent() < count && pool.surplusNode[n]! > 0) pool.surplusNode[n]!--;
    }
    let rr = 0;
    let failures = 0;
    let work = 0;
    while (persistent() < count && failures < nodes.length) {
      const n = nodes[rr++ % nodes.length]!;
      if (this.allocPoolPage(pool, n)) failures = 0;
      else failures++;
      if (++work % STEP_PAGES === 0) yield;
    }
    while (persistent() > count) {
      const n = this.nodeToShrink(pool, nodes);
      if (n < 0) break;
      this.freePoolPage(pool, n);
      if (++work % STEP_PAGES === 0) yield;
    }
    // In use beyond count: surplus (freed to the buddy allocator when released).
    while (persistent() > count) {
      const n = nodes.find((x) => pool.nrNode[x]! - pool.surplusNode[x]! > 0);
      if (n === undefined) break;
      pool.surplusNode[n]!++;
    }
    log('hugetlb %s: nr_hugepages %d', pool.hs.dir, pool.nr);
  }


  /** The node with the most free pages not promised to a reservation, or -1. */
  private nodeToShrink(pool: HugetlbPool, nodes: readonly number[]): number {
    let best = -1;
    for (const n of nodes) if (pool.freeNode[n]! > 0 && (best < 0 || pool.freeNode[n]! > pool.freeNode[best]!)) best = n;
    if (best >= 0 && pool.free - 1 < pool.resv) return -1; // try_to_free_low keeps reserved pages
    return best;
  }

  /** alloc_pool_huge_folio on `node`: true if a page was added. */
  private allocPoolPage(pool: HugetlbPool, node: number): boolean {
    const pfn = pool.hs.gigantic ? this.allocGigantic(pool.hs, node) : this.allocBuddy(pool.hs, node);
    if (pfn < 0) return false;
    pool.add(pfn, node);
    return true;
  }

  /** A block of the hstate's order from `node`'s zones (highest first) above the low watermark. */
  private allocBuddy(hs: Hstate, node: number): number {
    const zones = this.m.nodeZones[node]!;
    const flags = pageFlags(KIND_ALLOC, hs.order, NOT_ZEROED);
    for (let i = zones.length - 1; i >= 0; i--) {
      const z = zones[i]!;
      if (!z.watermarkOk(hs.order, z.watermarkLow)) continue;
      let pfn = z.takeBlock(hs.order, NOT_ZEROED, flags);
      if (pfn < 0) pfn = z.takeBlock(hs.order, ZEROED, flags);
      if (pfn < 0) continue;
      z.setHead(pfn, flags);
      z.countAlloc(orderPages(hs.order));
      return pfn;
    }
    return -1;
  }

  /** alloc_contig_range: an aligned run of whole free sections in one of the node's zones. */
  private allocGigantic(hs: Hstate, node: number): number {
    for (const z of [...this.m.nodeZones[node]!].reverse()) {
      const count = orderPages(hs.order) / z.secPages;
      if (z.freePages - z.scrubPages - count * z.secPages <= z.watermarkHigh) continue;
      const rel = z.findFreeSections(count, this.contigCursor[z.id]!);
      if (rel < 0) continue;
      this.contigCursor[z.id] = rel + count;
      return z.takeSections(rel, count);
    }
    return -1;
  }

  /** Free one free page of `node` back to the buddy allocator (a dirty one first: the head). */
  private freePoolPage(pool: HugetlbPool, node: number): void {
    const list = pool.freeLists[node]!;
    let id = lastFree(pool, list);
    for (let i = list.length - 1; id < 0 && i >= 0; i--) if (pool.state(list[i]!) === HP_ZEROED) id = list[i]!;
    if (id < 0) {
      // Only the page khzerod is zeroing is left: it gives it up (its time is spent already).
      id = pool.khzerod[node]!.id;
      pool.khzerod[node] = null;
    }
    pool.unlist(node, id);
    this.releaseToBuddy(pool, id);
  }

  /** update_and_free_hugetlb_folio: the page's memory goes back to the buddy lists. */
  private releaseToBuddy(pool: HugetlbPool, id: number): void {
    const pfn = pool.pfn(id);
    const z = this.m.zoneOf(pfn);
    pool.remove(id);
    if (pool.hs.gigantic) {
      z.returnSections(pfn, orderPages(pool.hs.order) / z.secPages);
      this.contigCursor[z.id] = Math.min(this.contigCursor[z.id]!, pfn / z.secPages - z.firstSec);
      return;
    }
    this.m.freePages(pfn, pool.hs.order, this.m.firstCpuOf(z.node));
  }

  // ---- mappings: reserve, fault, release ----------------------------------------------------

  /**
   * hugetlb_reserve_pages at mmap: the pages must be free and unpromised; what the pool lacks
   * is made up with surplus pages from the buddy allocator while nr_overcommit_hugepages
   * allows (gather_surplus_pages); else ENOMEM, and nothing was kept.
   */
  reserve(pool: HugetlbPool, pages: number): void {
    const needed = pages - (pool.free - pool.resv);
    if (needed > 0) this.gatherSurplus(pool, needed);
    pool.resv += pages;
  }

  /** gather_surplus_pages: `needed` surplus pages, interleaved over nodes, or ENOMEM with none kept. */
  private gatherSurplus(pool: HugetlbPool, needed: number): void {
    const refuse = (why: string): never => {
      throw new ModelError('KSCRUB_NOMEM', `mmap: ${needed} more huge pages of ${pool.hs.kB} kB wanted than the pool has free and unreserved (nr_hugepages ${pool.nr}): ${why}`);
    };
    if (pool.surplus + needed > pool.overcommit) refuse(`nr_overcommit_hugepages ${pool.overcommit} allows ${Math.max(0, pool.overcommit - pool.surplus)} more surplus pages`);
    const nodes = pool.nrNode.length;
    const got: number[] = [];
    for (let k = 0, failures = 0; got.length < needed && failures < nodes; k++) {
      const n = k % nodes;
      if (this.allocPoolPage(pool, n)) {
        pool.surplusNode[n]!++;
        got.push(n);
        failures = 0;
      } else failures++;
    }
    if (got.length < needed) {
      for (const n of got) {
        pool.surplusNode[n]!--;
        this.freePoolPage(pool, n);
      }
      refuse('the buddy allocator has no more blocks of that size');
    }
  }

  /**
   * Release `pages` reservations a mapping did not fault; surplus pages left free beyond the
   * reservations go back to the buddy allocator (return_unused_surplus_pages).
   */
  unreserve(pool: HugetlbPool, pages: number): void {
    pool.resv -= pages;
    assert(pool.resv >= 0, 'hugetlb reservations never go negative');
    for (let n = 0; n < pool.nrNode.length; n++) {
      while (pool.surplusNode[n]! > 0 && pool.freeNode[n]! > 0 && pool.free > pool.resv && lastFreeAny(pool, pool.freeLists[n]!) >= 0) {
        pool.surplusNode[n]!--;
        this.freePoolPage(pool, n);
      }
    }
  }

  /**
   * hugetlb_no_page for a thread on `cpu` at time `t`, with a reservation: dequeue a page
   * (node-local first) — a zeroed one, else one being zeroed (wait for it), else a dirty one
   * that the fault clears — and say what it cost. Null: no free page (SIGBUS).
   */
  fault(pool: HugetlbPool, cpu: number, t: number, sharers: number): HugeFault | null {
    const m = this.m;
    const home = m.cpus.nodeOf[cpu]!;
    const nodes = m.config.nodes;
    const overhead = m.cost.trapNs + m.cost.handlerNs + m.cost.ptlSetNs;
    for (let k = 0; k < nodes; k++) {
      const n = (home + k) % nodes;
      const remote = n !== home;
      const list = pool.freeLists[n]!;
      // A zeroed page: they gather at the tail, where khzerod starts.
      if (pool.zeroNode[n]! > 0) {
        const id = list.find((x) => pool.state(x) === HP_ZEROED)!;
        pool.unlist(n, id);
        this.take(pool, id);
        pool.faultPrezeroed++;
        return { id, ns: overhead, waitNs: 0, how: 'prezeroed' };
      }
      // One being zeroed: sleep until it is done (cheaper than clearing another from scratch).
      const z = this.inFlight(pool, n);
      if (z) {
        this.claimInFlight(pool, n);
        this.take(pool, z.id);
        pool.faultWaited++;
        return { id: z.id, ns: overhead, waitNs: Math.max(0, z.done - t), how: 'waited' };
      }
      const id = lastFree(pool, list);
      if (id >= 0) {
        pool.unlist(n, id);
        this.take(pool, id);
        pool.faultCleared++;
        this.fillCache(cpu, pool.hs.bytes);
        return { id, ns: overhead + this.clearNs(pool.hs.bytes, remote, sharers), waitNs: 0, how: 'cleared' };
      }
    }
    return null;
  }

  /** A free page becomes a mapping's: in use, one reservation consumed. */
  private take(pool: HugetlbPool, id: number): void {
    pool.setState(id, HP_INUSE);
    pool.resv--;
    if (!pool.hs.gigantic) this.m.zoneOf(pool.pfn(id)).setZero(pool.pfn(id), orderPages(pool.hs.order), true);
  }

  /** free_huge_folio: a page a mapping let go of goes to the head of its list (dirty), or to the buddy allocator if surplus. */
  release(pool: HugetlbPool, id: number): void {
    const n = pool.node(id);
    assert(pool.state(id) === HP_INUSE, 'a released hugetlb page was in use');
    if (pool.surplusNode[n]! > 0) {
      pool.surplusNode[n]!--;
      this.releaseToBuddy(pool, id);
      return;
    }
    if (!pool.hs.gigantic) this.m.zoneOf(pool.pfn(id)).setZero(pool.pfn(id), orderPages(pool.hs.order), false);
    pool.setState(id, HP_FREE);
    pool.freeLists[n]!.push(id);
    pool.freeNode[n]!++;
    this.wakeKhzerod(pool, n, this.m.now);
  }

  // ---- clearing ---------------------------------------------------------------------------

  /**
   * folio_zero_user of one huge page on a CPU (remote: the page is on another node; sharers:
   * CPUs of the node clearing at once, sharing its bus). `pages`: one base page at a time
   * (clear_user_highpage, a cond_resched() between pages, which costs a flag test when nothing
   * waits to run): a gigantic page (past MAX_ORDER) by clear_gigantic_page, in address order
   * from its first page — one store stream, at zeroRunBytesPerNs — and a smaller one by
   * process_huge_page, which converges on the faulting subpage from both ends, each page at a
   * page's rate. `extents`: the multi-page clearing series' clear_pages() over contiguous
   * extents — the whole page when the kernel is fully preemptible (the clear can be preempted
   * anywhere), else NON_PREEMPT_EXTENT_BYTES at a time.
   */
  clearNs(bytes: number, remote: boolean, sharers: number): number {
    const extent = this.clearExtent(bytes);
    if (extent === this.m.pageSize && bytes > this.maxOrderBytes) return this.m.cpuZero.zeroRun(bytes, remote, sharers).wallNs;
    return (bytes / extent) * this.m.cpuZero.zero(extent, remote, sharers).wallNs;
  }

  /** MAX_ORDER_NR_PAGES worth of bytes: folio_zero_user's line between its two page-at-a-time paths. */
  private get maxOrderBytes(): number {
    return 2 ** (this.m.maxOrder - 1) * this.m.pageSize;
  }

  /** What one clear_page / clear_pages() call of folio_zero_user covers (clearNs). */
  private clearExtent(bytes: number): number {
    return folioClearExtent(this.clearMode, this.m.config.preempt, bytes, this.m.pageSize);
  }

  /**
   * The clear's cached stores fill `cpu`'s last-level cache (llc.ts), evicting whatever shares
   * it — page by page always, an extent past the L3 not on a CPU that elides allocation (Zen).
   */
  private fillCache(cpu: number, bytes: number): void {
    const extent = this.clearExtent(bytes);
    this.m.llc.clear(cpu, (bytes / extent) * this.m.cpuZero.fills(extent));
  }

  // ---- khzerod ------------------------------------------------------------------------------

  /** The page khzerod is zeroing on node n, if a fault may still take it. */
  private inFlight(pool: HugetlbPool, n: number): Zeroing | null {
    const k = pool.khzerod[n] ?? null;
    return k && pool.state(k.id) === HP_ZEROING ? k : null;
  }

  /**
   * A fault takes the page khzerod is zeroing: it stays on the list until khzerod finishes it
   * (advance() then drops it), but is no longer free.
   */
  private claimInFlight(pool: HugetlbPool, n: number): void {
    pool.freeNode[n]!--;
  }

  /** Start khzerod on node n at time t if prezero is on and it is idle with work to do. */
  wakeKhzerod(pool: HugetlbPool, n: number, t: number): void {
    if (!pool.prezero || pool.khzerod[n] !== null) return;
    const list = pool.freeLists[n]!;
    // From the tail (index 0: the oldest free page) towards the head.
    const id = list.find((x) => pool.state(x) === HP_FREE);
    if (id === undefined) return;
    const m = this.m;
    const cpu = m.cpus.mostIdle(n, t);
    const start = Math.max(t, m.cpus.freeAt(cpu));
    const ns = this.clearNs(pool.hs.bytes, false, 1);
    this.fillCache(cpu, pool.hs.bytes);
    pool.setState(id, HP_ZEROING);
    pool.khzerod[n] = { id, done: start + ns, cpu };
    m.cpus.addSystem(cpu, ns);
    m.cpus.busyUntil(cpu, start + ns);
    pool.khzerodNs += ns;
  }

  /** When the next khzerod finishes a page (+∞: none running). */
  nextAt(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const p of this.pools) for (const k of p.khzerod) if (k && k.done < next) next = k.done;
    return next;
  }

  /** Finish every khzerod page due by t (in time order), each starting its next. */
  advance(t: number): void {
    for (;;) {
      let best: { p: HugetlbPool; n: number } | null = null;
      let at = t;
      for (const p of this.pools) {
        for (let n = 0; n < p.khzerod.length; n++) {
          const k = p.khzerod[n];
          if (k && k.done <= at) { at = k.done; best = { p, n }; }
        }
      }
      if (!best) return;
      const { p, n } = best;
      const k = p.khzerod[n]!;
      p.khzerod[n] = null;
      p.khzerodPages++;
      if (p.state(k.id) === HP_ZEROING) {
        // Still on the list: it is a zeroed free page now.
        p.setState(k.id, HP_ZEROED);
        p.zeroNode[n]!++;
        if (!p.hs.gigantic) this.m.zoneOf(p.pfn(k.id)).setZero(p.pfn(k.id), orderPages(p.hs.order), true);
      } else {
        // A fault took it while it was being zeroed (it waited): off the list already.
        const list = p.freeLists[n]!;
        const i = list.indexOf(k.id);
        if (i >= 0) list.splice(i, 1);
      }
      this.wakeKhzerod(p, n, k.done);
    }
  }

  /** prezero_enabled: turning it on wakes every node's khzerod. */
  setPrezero(pool: HugetlbPool, on: boolean): void {
    pool.prezero = on;
    if (on) for (let n = 0; n < pool.khzerod.length; n++) this.wakeKhzerod(pool, n, this.m.now);
  }

  // ---- zeroable_hugepages -------------------------------------------------------------------

  /** Free pages of node n that are neither zeroed nor being zeroed: what zeroable_hugepages reads. */
  zeroable(pool: HugetlbPool, n: number): number {
    let c = 0;
    for (const id of pool.freeLists[n]!) if (pool.state(id) === HP_FREE) c++;
    return c;
  }

  /**
   * A write of `count` to node n's zeroable_hugepages: the writer's thread zeroes `count` dirty
   * free pages, one after another, on its own CPU (the node's most idle one), its system time;
   * the write returns when the last is done. Returns the ns the writer spent.
   * Precondition: count ≤ zeroable(pool, n) (the file's write checks it).
   */
  zeroInWriter(pool: HugetlbPool, n: number, count: number): number {
    return finish(this.zeroInWriterSteps(pool, n, count));
  }

  /**
   * zeroInWriter() yielding every STEP_PAGES pages: each page is zeroed and charged whole
   * before a yield, so whatever runs between slices (a fault, another writer) sees a
   * consistent pool; a page taken meanwhile is simply not this writer's to zero. Returns the
   * writer's ns (fewer pages if fewer were left).
   */
  *zeroInWriterSteps(pool: HugetlbPool, n: number, count: number): Generator<void, number, void> {
    const m = this.m;
    const cpu = m.cpus.mostIdle(n, m.now);
    let t = Math.max(m.now, m.cpus.freeAt(cpu));
    const begin = t;
    const ns = this.clearNs(pool.hs.bytes, false, 1);
    const list = pool.freeLists[n]!;
    // From the tail towards the head. A slice's yield may let others take pages off the list
    // and shift it: once past its end, one more scan from the tail finds any page skipped.
    let i = 0;
    let rescanned = false;
    for (let done = 0; done < count;) {
      if (i >= list.length) {
        if (rescanned) break;
        rescanned = true;
        i = 0;
        continue;
      }
      const id = list[i++]!;
      if (pool.state(id) !== HP_FREE) continue;
      done++;
      t += ns;
      this.fillCache(cpu, pool.hs.bytes);
      pool.setState(id, HP_ZEROED);
      pool.zeroNode[n]!++;
      if (!pool.hs.gigantic) m.zoneOf(pool.pfn(id)).setZero(pool.pfn(id), orderPages(pool.hs.order), true);
      m.cpus.addSystem(cpu, ns);
      m.cpus.busyUntil(cpu, t);
      pool.writerPages++;
      pool.writerNs += ns;
      if (done % STEP_PAGES === 0) yield;
    }
    return t - begin;
  }


  // ---- check ------------------------------------------------------------------------------

  /** The pools' own invariants: counts agree with the pages, gigantic pages are whole taken sections. */
  check(): string | null {
    for (const p of this.pools) {
      const nr = new Float64Array(p.nrNode.length);
      const free = new Float64Array(p.nrNode.length);
      const zero = new Float64Array(p.nrNode.length);
      let bad: string | null = null;
      p.forEachPage((id) => {
        const n = p.node(id);
        nr[n]!++;
        const st = p.state(id);
        if (st === HP_FREE || st === HP_ZEROED || (st === HP_ZEROING && p.freeLists[n]!.includes(id))) free[n]!++;
        if (st === HP_ZEROED) zero[n]!++;
        if (bad !== null) return;
        if (p.hs.gigantic) bad = this.checkGigantic(p, id);
        else if (st === HP_ZEROED) bad = this.checkZeroed(p, id);
      });
      if (bad !== null) return bad;
      for (let n = 0; n < nr.length; n++) {
        if (nr[n] !== p.nrNode[n]) return `hugetlb ${p.hs.dir} node ${n}: nr_hugepages is ${p.nrNode[n]} but the pool holds ${nr[n]} pages`;
        if (free[n] !== p.freeNode[n]) return `hugetlb ${p.hs.dir} node ${n}: free_hugepages is ${p.freeNode[n]} but ${free[n]} pages are free`;
        if (zero[n] !== p.zeroNode[n]) return `hugetlb ${p.hs.dir} node ${n}: free_huge_pages_zero is ${p.zeroNode[n]} but ${zero[n]} free pages are zeroed`;
      }
      if (p.resv > p.free) return `hugetlb ${p.hs.dir}: resv_hugepages ${p.resv} exceeds free_hugepages ${p.free}`;
    }
    return null;
  }

  /** The content oracle: a page counted in free_huge_pages_zero must read as zero (gigantic pages' bytes are not tracked). */
  private checkZeroed(p: HugetlbPool, id: number): string | null {
    const pfn = p.pfn(id);
    const z: Zone = this.m.zoneOf(pfn);
    const pages = orderPages(p.hs.order);
    for (let i = 0; i < pages; i++) {
      if (!z.isZero(pfn + i)) return `hugetlb ${p.hs.dir}: the free zeroed page at pfn ${pfn} holds pfn ${pfn + i}, whose bytes are not zero`;
    }
    return null;
  }

  private checkGigantic(p: HugetlbPool, id: number): string | null {
    const pfn = p.pfn(id);
    const z: Zone = this.m.zoneOf(pfn);
    const first = pfn / z.secPages - z.firstSec;
    const count = orderPages(p.hs.order) / z.secPages;
    for (let i = 0; i < count; i++) {
      if (z.secState[first + i] !== 4) return `hugetlb ${p.hs.dir}: the gigantic page at pfn ${pfn} has section ${z.firstSec + first + i} outside it`;
    }
    return null;
  }
}

/**
 * The huge page sizes of the machine, the default first: x86-64 has a PMD's worth (2 MiB) and
 * a PUD's (1 GiB, pdpe1gb); i386 without PAE one 4 MiB size; ia64 HPAGE_SHIFT_DEFAULT (256
 * MiB). A size the memory cannot hold once is left out.
 */
export function hstatesOf(m: HugetlbMachine): Hstate[] {
  const ps = m.pageSize;
  let sizes: number[];
  if (m.config.zoneLayout === 'ia64') sizes = [2 ** 28];
  else if (m.config.pteBytes !== 8) sizes = [1024 * ps];
  else sizes = [512 * ps, 512 * 512 * ps];
  const secBytes = 2 ** (m.maxOrder - 1) * ps;
  const nodeBytes = m.config.memBytes / m.config.nodes;
  return sizes
    .filter((b) => b <= nodeBytes && b >= ps)
    .map((bytes) => {
      const order = Math.log2(bytes / ps);
      return { order, bytes, kB: bytes / 1024, gigantic: bytes > secBytes, dir: `hugepages-${bytes / 1024}kB` };
    });
}
