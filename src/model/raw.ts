import { ModelError } from '../uapi';
import type { PageOwner, Parts } from './parts';
import type { Zone } from './zone';

/** What raw uses of the machine (parts.ts). */
export type RawMachine = Pick<Parts, 'allocPages' | 'config' | 'firstCpuOf' | 'freePages' | 'managedPagesTotal' | 'maxOrder' | 'owners' | 'zoneOf'>;

/** A raw allocation made by the control file's `alloc` (for shaping fragmentation). */
export interface RawBlock {
  readonly pfn: number;
  readonly order: number;
  readonly zone: Zone;
}

/** An `orders` entry for a freed block, kept until the next compaction. */
const DEAD = 0xff;
const MIN_CAPACITY = 64;

/**
 * The control file's raw blocks, by handle. Handles are handed out in increasing order, so
 * the blocks sit in handle order in three parallel typed arrays and a handle is found by
 * binary search: no object and no Map entry per block, so a million-block `alloc` costs
 * 17 bytes a block and nothing caps the count (a Map throws at 2^24 entries). A freed block
 * is marked DEAD in place and the arrays are compacted once the dead outnumber the living.
 * Every command is all or nothing: alloc frees what it took when it runs out, free checks
 * every handle before it frees one.
 */
export class RawBlocks implements PageOwner {
  readonly label = 'raw blocks';
  private handles = new Float64Array(MIN_CAPACITY);
  private pfns = new Float64Array(MIN_CAPACITY);
  private orders = new Uint8Array(MIN_CAPACITY);
  /** free()'s "named already" marks, all 0 between calls. */
  private marks = new Uint8Array(MIN_CAPACITY);
  /** Slots in use, dead ones included. */
  private len = 0;
  private nextHandle = 1;
  /** Live blocks, and the pages they hold. */
  size = 0;
  pages = 0;

  constructor(private readonly m: RawMachine) {
    m.owners.add(this);
  }

  /** Allocate `count` blocks of `order` on `node`, all or nothing. Returns their handles. */
  alloc(order: number, zero: boolean, node: number, count: number): number[] {
    const steps = this.allocSteps(order, zero, node, count, Number.POSITIVE_INFINITY);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value!;
    }
  }

  /**
   * alloc() as a job that yields after every `perStep` blocks, so that a million-block alloc
   * lets the daemon answer readers in between; still all or nothing (a reader meanwhile sees
   * the blocks taken so far, as it sees a touch's pages). `stop` is asked before each yield:
   * when it says so, the blocks taken are given back, as when memory runs out, and the
   * result is null.
   */
  *allocSteps(order: number, zero: boolean, node: number, count: number, perStep: number, stop?: () => boolean): Generator<void, number[] | null> {
    const m = this.m;
    if (!Number.isInteger(order) || order < 0 || order >= m.maxOrder) {
      throw new ModelError('KSCRUB_BAD_OPTION', `order=${order} is out of range 0..${m.maxOrder - 1}`);
    }
    if (!Number.isInteger(node) || node < 0 || node >= m.config.nodes) {
      throw new ModelError('KSCRUB_BAD_OPTION', `node=${node} is out of range 0..${m.config.nodes - 1}`);
    }
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new ModelError('KSCRUB_BAD_OPTION', `count=${count} is not a whole number of blocks ≥ 1`);
    }
    const nomem = (got: number): ModelError =>
      new ModelError('KSCRUB_NOMEM', `alloc: out of memory after ${got} of ${count} order-${order} blocks (nothing kept)`);
    // More pages than the machine manages can never be had: say so before sizing arrays for them.
    if (count * 2 ** order > m.managedPagesTotal()) throw nomem(0);
    this.reserve(count);
    const cpu = m.firstCpuOf(node);
    const first = this.len;
    const giveBack = (): void => {
      for (let j = first; j < this.len; j++) m.freePages(this.pfns[j]!, order, this.cpuOf(this.pfns[j]!));
      this.len = first;
    };
    for (let i = 0; i < count; i++) {
      if (i > 0 && i % perStep === 0) {
        if (stop?.() === true) {
          giveBack();
          return null;
        }
        yield;
      }
      const pfn = m.allocPages(order, zero, node, cpu);
      if (pfn < 0) {
        giveBack();
        throw nomem(i);
      }
      this.handles[this.len] = this.nextHandle + i;
      this.pfns[this.len] = pfn;
      this.orders[this.len] = order;
      this.len++;
    }
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = this.nextHandle + i;
    this.nextHandle += count;
    this.size += count;
    this.pages += count * 2 ** order;
    return out;
  }

  /** Free blocks by handle, all or nothing: an unknown or repeated handle frees none. Returns pages freed. */
  free(handles: readonly number[]): number {
    const at = new Float64Array(handles.length);
    let bad: ModelError | null = null;
    let i = 0;
    for (; i < handles.length; i++) {
      const h = handles[i]!;
      const idx = this.find(h);
      if (idx < 0) { bad = new ModelError('KSCRUB_BAD_HANDLE', `free: no block has handle ${h}`); break; }
      if (this.marks[idx]) { bad = new ModelError('KSCRUB_BAD_HANDLE', `free: handle ${h} is named twice`); break; }
      this.marks[idx] = 1;
      at[i] = idx;
    }
    for (let j = 0; j < i; j++) this.marks[at[j]!] = 0;
    if (bad) throw bad;
    let pages = 0;
    for (let j = 0; j < at.length; j++) {
      const idx = at[j]!;
      const order = this.orders[idx]!;
      this.m.freePages(this.pfns[idx]!, order, this.cpuOf(this.pfns[idx]!));
      this.orders[idx] = DEAD;
      pages += 2 ** order;
    }
    this.size -= at.length;
    this.pages -= pages;
    if (this.len - this.size > this.size) this.compact();
    return pages;
  }

  has(h: number): boolean {
    return this.find(h) >= 0;
  }

  get(h: number): RawBlock | undefined {
    const idx = this.find(h);
    if (idx < 0) return undefined;
    const pfn = this.pfns[idx]!;
    return { pfn, order: this.orders[idx]!, zone: this.m.zoneOf(pfn) };
  }

  /** Live handles, in increasing order. */
  keys(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.len; i++) if (this.orders[i] !== DEAD) out.push(this.handles[i]!);
    return out;
  }

  /** Each live block's head pfn (check() asks every owner). */
  forEachPage(fn: (pfn: number) => void): void {
    for (let i = 0; i < this.len; i++) if (this.orders[i] !== DEAD) fn(this.pfns[i]!);
  }

  /** A block frees to the first CPU of its node (the control file runs on no CPU of its own). */
  private cpuOf(pfn: number): number {
    return this.m.firstCpuOf(this.m.zoneOf(pfn).node);
  }

  /** Index of live handle h, or -1. */
  private find(h: number): number {
    if (!Number.isSafeInteger(h)) return -1;
    let lo = 0;
    let hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.handles[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.len && this.handles[lo] === h && this.orders[lo] !== DEAD ? lo : -1;
  }

  /** Room for `more` blocks after the last slot: compact, then grow by doubling. */
  private reserve(more: number): void {
    if (this.len + more <= this.handles.length) return;
    if (this.len > this.size) this.compact();
    if (this.len + more <= this.handles.length) return;
    let cap = this.handles.length;
    while (cap < this.len + more) cap *= 2;
    const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a.subarray(0, this.len) as never);
      return b;
    };
    // Every array is made before any is replaced: a failed allocation changes nothing.
    const handles = grow(this.handles, (n) => new Float64Array(n));
    const pfns = grow(this.pfns, (n) => new Float64Array(n));
    const orders = grow(this.orders, (n) => new Uint8Array(n));
    const marks = new Uint8Array(cap);
    this.handles = handles;
    this.pfns = pfns;
    this.orders = orders;
    this.marks = marks;
  }

  /** Drop dead slots, keeping handle order. */
  private compact(): void {
    let w = 0;
    for (let r = 0; r < this.len; r++) {
      if (this.orders[r] === DEAD) continue;
      this.handles[w] = this.handles[r]!;
      this.pfns[w] = this.pfns[r]!;
      this.orders[w] = this.orders[r]!;
      w++;
    }
    this.len = w;
  }
}
