import { ModelError } from '../uapi';
import type { Processes } from './mm';
import type { Mm } from './mm-types';
import type { Parts } from './parts';

/** What hugetlb-map uses of the machine (parts.ts). */
export type HugetlbMapMachine<P> = Pick<Parts, 'advanceTo' | 'config' | 'cpus' | 'now' | 'pageSize'> & { readonly hugetlb: HugetlbPools<P>; readonly procs: Processes };

/** A pool as the mappings see it: the size of its pages (HugetlbPool, hugetlb.ts). */
export interface MappedPool {
  readonly hs: { readonly bytes: number; readonly kB: number };
}

/**
 * What the mappings ask of the pools of type P (Hugetlb, hugetlb.ts, which owns the pools and
 * builds this table, so this file does not import it).
 */
export interface HugetlbPools<P> {
  reserve(pool: P, pages: number): void;
  unreserve(pool: P, pages: number): void;
  fault(pool: P, cpu: number, t: number, sharers: number): HugeFault | null;
  release(pool: P, id: number): void;
}

/**
 * What a huge page fault got: the page, the CPU time it spent (`ns`), and how long it slept
 * waiting for khzerod to finish the page (`waitNs`: time, not CPU).
 */
export interface HugeFault {
  readonly id: number;
  readonly ns: number;
  readonly waitNs: number;
  readonly how: 'prezeroed' | 'cleared' | 'waited';
}

/**
 * hugetlb mappings (MAP_HUGETLB): a VMA of the mm reserves the address range, and this table
 * says which huge page backs each aligned slot of it. Pages are reserved from the pool at mmap
 * (hugetlb_reserve_pages), taken at the first fault, and go back to the pool at munmap or exit.
 */
export interface HugeMapping<P> {
  start: number;
  end: number;
  readonly pool: P;
  /** Per huge page slot: the pool page's id, or -1 while not faulted (a reservation holds it). */
  pages: Int32Array;
}

/** One huge page fault's outcome, for a touch's totals. */
export interface HugeTouchResult {
  pages: number;
  faults: number;
  prezeroed: number;
  hotZeroed: number;
  waited: number;
  oom: number;
  sysNs: number;
  wallNs: number;
  /** The quickest and the slowest fault, from entry to return (a sleep for khzerod included). */
  minFaultNs: number;
  maxFaultNs: number;
}

/** Every process's hugetlb mappings. */
export class HugetlbMappings<P extends MappedPool> {
  private readonly byMm = new Map<Mm, HugeMapping<P>[]>();

  constructor(private readonly m: HugetlbMapMachine<P>) {}

  /**
   * mmap(MAP_HUGETLB) of `bytes` with pages of the pool's size: the length is rounded up to
   * whole huge pages, the address aligned to one, and every page reserved (ENOMEM if the pool
   * cannot promise them: nothing is mapped then).
   */
  mmap(mmId: number, bytes: number, pool: P): { addr: number; size: number } {
    const hb = pool.hs.bytes;
    const size = Math.ceil(bytes / hb) * hb;
    const n = size / hb;
    this.m.hugetlb.reserve(pool, n);
    const procs = this.m.procs;
    let r: { addr: number; size: number };
    try {
      // Reserve address space one huge page longer, then trim to an aligned range (what a
      // program does for an alignment mmap cannot promise).
      r = procs.mmap(mmId, size + hb, true);
    } catch (err) {
      this.m.hugetlb.unreserve(pool, n);
      throw err;
    }
    const start = Math.ceil(r.addr / hb) * hb;
    if (start > r.addr) procs.munmap(mmId, r.addr, start - r.addr);
    if (r.addr + r.size > start + size) procs.munmap(mmId, start + size, r.addr + r.size - start - size);
    const mm = procs.get(mmId);
    const list = this.byMm.get(mm) ?? [];
    list.push({ start, end: start + size, pool, pages: new Int32Array(n).fill(-1) });
    this.byMm.set(mm, list);
    return { addr: start, size };
  }

  /** The hugetlb mapping holding addr, if any. */
  at(mm: Mm, addr: number): HugeMapping<P> | undefined {
    return this.byMm.get(mm)?.find((x) => addr >= x.start && addr < x.end);
  }

  /** Refuse a base-page access (touch, fault) to a hugetlb range: it faults in huge pages only. */
  refuseBase(mm: Mm, addr: number, size: number, what: string): void {
    const list = this.byMm.get(mm);
    if (!list) return;
    const x = list.find((v) => v.start < addr + size && addr < v.end);
    if (x) throw new ModelError('KSCRUB_BAD_ADDRESS', `${what}: 0x${addr.toString(16)} is in a hugetlb mapping (0x${x.start.toString(16)}-0x${x.end.toString(16)}); touch it whole-page with touch`);
  }

  /**
   * The part of [start, end) inside hugetlb mappings goes: faulted pages back to the pool, the
   * rest's reservations released. A partial unmap must be huge-page aligned (the kernel's
   * hugetlb_vm_op_split refuses otherwise: EINVAL), checked before anything changes.
   */
  zap(mm: Mm, start: number, end: number, what: string): number {
    const list = this.byMm.get(mm);
    if (!list) return 0;
    const hit = list.filter((v) => v.start < end && start < v.end);
    for (const v of hit) {
      const hb = v.pool.hs.bytes;
      if ((start > v.start && (start - v.start) % hb !== 0) || (end < v.end && (end - v.start) % hb !== 0)) {
        throw new ModelError('KSCRUB_BAD_ADDRESS', `${what}: 0x${start.toString(16)}-0x${end.toString(16)} splits a ${v.pool.hs.kB} kB hugetlb page`);
      }
    }
    let released = 0;
    for (const v of hit) {
      const hb = v.pool.hs.bytes;
      const a = Math.max(start, v.start);
      const b = Math.min(end, v.end);
      const from = (a - v.start) / hb;
      const to = (b - v.start) / hb;
      let unfaulted = 0;
      for (let i = from; i < to; i++) {
        const id = v.pages[i]!;
        if (id < 0) unfaulted++;
        else { this.m.hugetlb.release(v.pool, id); released++; }
      }
      this.m.hugetlb.unreserve(v.pool, unfaulted);
      const i = list.indexOf(v);
      const keepLeft = v.pages.slice(0, from);
      const keepRight = v.pages.slice(to);
      const parts: HugeMapping<P>[] = [];
      if (keepLeft.length > 0) parts.push({ start: v.start, end: a, pool: v.pool, pages: keepLeft });
      if (keepRight.length > 0) parts.push({ start: b, end: v.end, pool: v.pool, pages: keepRight });
      list.splice(i, 1, ...parts);
    }
    if (list.length === 0) this.byMm.delete(mm);
    return released;
  }

  /**
   * touch of [addr, addr+size) inside one hugetlb mapping by `threads` threads, each faulting
   * its own contiguous share of the huge pages one after another on its own CPU (a VM's vCPU
   * threads touching their memory), all starting now; faults run in time order so khzerod
   * runs between them. Yields every FAULTS_PER_STEP faults; `halt`, asked before each yield,
   * ends it there (each fault done stays done, as a touch's pages do).
   */
  *touchSteps(mmId: number, addr: number, size: number, threads: number, halt?: () => boolean): Generator<void, HugeTouchResult, void> {
    const m = this.m;
    const mm = m.procs.get(mmId);
    const v = this.at(mm, addr);
    if (!v || addr + size > v.end) throw new ModelError('KSCRUB_BAD_ADDRESS', `touch: 0x${addr.toString(16)}+${size} is not inside one hugetlb mapping`);
    const hb = v.pool.hs.bytes;
    const first = Math.floor((addr - v.start) / hb);
    const last = Math.ceil((addr + size - v.start) / hb);
    const total = last - first;
    const t0 = m.now;
    const cpus = m.config.cpus;
    const nThreads = Math.min(threads, total);
    const next = new Float64Array(nThreads);
    const cursor = new Float64Array(nThreads);
    const stop = new Float64Array(nThreads);
    const clearingUntil = new Float64Array(nThreads).fill(-1);
    const r: HugeTouchResult = { pages: 0, faults: 0, prezeroed: 0, hotZeroed: 0, waited: 0, oom: 0, sysNs: 0, wallNs: 0, minFaultNs: 0, maxFaultNs: 0 };
    for (let k = 0; k < nThreads; k++) {
      cursor[k] = first + Math.floor((k * total) / nThreads);
      stop[k] = first + Math.floor(((k + 1) * total) / nThreads);
      next[k] = Math.max(t0, m.cpus.freeAt(k % cpus));
      m.cpus.switchIn(k % cpus);
    }
    let steps = 0;
    let minNs = Number.POSITIVE_INFINITY;
    try {
      for (;;) {
        let k = -1;
        for (let j = 0; j < nThreads; j++) if (cursor[j]! < stop[j]! && (k < 0 || next[j]! < next[k]!)) k = j;
        if (k < 0) break;
        const slot = cursor[k]!++;
        if (v.pages[slot]! >= 0) continue; // mapped already: no fault
        const t = next[k]!;
        const cpu = k % cpus;
        m.advanceTo(t);
        const node = m.cpus.nodeOf[cpu]!;
        let sharers = 1;
        for (let j = 0; j < nThreads; j++) if (j !== k && clearingUntil[j]! > t && m.cpus.nodeOf[j % cpus] === node) sharers++;
        const f = m.hugetlb.fault(v.pool, cpu, t, sharers);
        if (!f) { r.oom++; continue; }
        v.pages[slot] = f.id;
        r.faults++;
        r.pages += hb / m.pageSize;
        if (f.how === 'prezeroed') r.prezeroed++;
        else if (f.how === 'cleared') { r.hotZeroed++; clearingUntil[k] = t + f.ns; }
        else r.waited++;
        // A fault that slept for khzerod leaves its CPU free meanwhile; its time still counts.
        const took = f.ns + f.waitNs;
        m.cpus.addSystem(cpu, f.ns);
        m.cpus.busyUntil(cpu, t + took);
        next[k] = t + took;
        r.sysNs += f.ns;
        minNs = Math.min(minNs, took);
        r.maxFaultNs = Math.max(r.maxFaultNs, took);
        if (++steps % FAULTS_PER_STEP === 0) {
          if (halt?.() === true) break;
          yield;
        }
      }
    } finally {
      for (let k = 0; k < nThreads; k++) m.cpus.switchOut(k % cpus);
    }
    const end = Math.max(t0, ...next);
    m.advanceTo(end);
    r.wallNs = end - t0;
    r.minFaultNs = r.faults > 0 ? minNs : 0;
    return r;
  }
}

/** Faults a touch runs between two yields. */
const FAULTS_PER_STEP = 1024;
