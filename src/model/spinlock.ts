import type { Cacheline, LineCosts } from './cacheline';

/** The spinner arrays of a lock nobody has spun on yet (never written: the first spin() replaces them). */
const NO_INTS = new Int32Array(0);
const NO_TIMES = new Float64Array(0);

/**
 * A spinlock as the 2.6 kernel has one on SN2: test-and-set on a cacheline, unfair (the CPU
 * that sees the release first wins, not the one that waited longest). The one type for
 * mm->page_table_lock (or a split ptlock), zone->lock and zone->lru_lock.
 *
 * Two ways to take it. hold(): a section whose length is known when it starts (a per-cpu
 * refill under zone->lock, a pagevec drain under zone->lru_lock) — wait for the release, pull
 * the line, hold. Or, for page_table_lock, the fault path's lock sections are events of their
 * own: a taker that finds it busy joins `spinners` and its release grants it (ptlock.ts).
 */
export class SpinLock<W = unknown> {
  private _freeAt = 0;
  /** Virtual time at which it is next free (+∞ while held by a section whose end is an event). */
  get freeAt(): number { return this._freeAt; }
  /**
   * Those spinning on it, in the order they began (ptlock.ts grants it at its release): a
   * list linked through typed arrays, from `firstSpinner` by `nextSpinner` (-1 ends it). Each
   * entry holds the spinner, its CPU, that CPU's node and when it began: a release's search
   * for the nearest spinner reads numbers instead of a field of every spinner's object (up to
   * 63 of them on a 64-thread machine), and the winner leaves without the others moving.
   * Empty until the first spinner: zone->lock and lru_lock never have one, and split ptlocks
   * are many.
   */
  private count = 0;
  private head = -1;
  private tail = -1;
  /** Entries not in the list, linked by `next`. */
  private unused = -1;
  private next = NO_INTS;
  private prev = NO_INTS;
  private cpus = NO_INTS;
  private nodes = NO_INTS;
  private froms = NO_TIMES;
  private readonly who: (W | null)[] = objectList<W | null>();
  /** How many spin on it. */
  get spinning(): number { return this.count; }
  /** The entry of the longest spinning (-1: none); nextSpinner(i) follows it. */
  get firstSpinner(): number { return this.head; }
  get nextSpinner(): Int32Array { return this.next; }
  get spinCpus(): Int32Array { return this.cpus; }
  get spinNodes(): Int32Array { return this.nodes; }
  get spinFroms(): Float64Array { return this.froms; }

  constructor(
    /** Its cacheline: its own, or one it shares (page_table_lock shares mmap_sem's). */
    readonly line: Cacheline,
  ) {}

  /**
   * spin_lock at time t by `cpu`, then `holdNs` of work under it and spin_unlock: returns the
   * time from t to the release (the wait, `lines` transfers of lines last written by the
   * previous holder, the work) — system time of `cpu`. The lock is free again at t + that.
   */
  hold(costs: LineCosts, cpu: number, t: number, lines: number, holdNs: number): number {
    const begin = Math.max(t, this._freeAt);
    const ns = begin - t + lines * costs.transfer(this.line.cpu, cpu) + holdNs;
    this._freeAt = t + ns;
    this.line.writtenBy(cpu);
    return ns;
  }

  /** Taken by a section whose release is an event of its own: held until release(). */
  heldUntilRelease(): void {
    this._freeAt = Number.POSITIVE_INFINITY;
  }

  /** spin_unlock at t. */
  release(t: number): void {
    this._freeAt = t;
  }

  /** `w`, on `cpu` of `node`, starts spinning on it at `from`: last in the list. Returns its entry. */
  spin(w: W, cpu: number, node: number, from: number): number {
    if (this.unused < 0) this.grow();
    const i = this.unused;
    this.unused = this.next[i]!;
    this.who[i] = w;
    this.cpus[i] = cpu;
    this.nodes[i] = node;
    this.froms[i] = from;
    this.next[i] = -1;
    this.prev[i] = this.tail;
    if (this.tail < 0) this.head = i;
    else this.next[this.tail] = i;
    this.tail = i;
    this.count++;
    return i;
  }

  /** The spinner of entry `i` stops spinning (it won the lock); the others keep their order. */
  unspin(i: number): W {
    const w = this.who[i]!;
    this.who[i] = null;
    const n = this.next[i]!;
    const p = this.prev[i]!;
    if (p < 0) this.head = n;
    else this.next[p] = n;
    if (n < 0) this.tail = p;
    else this.prev[n] = p;
    this.next[i] = this.unused;
    this.unused = i;
    this.count--;
    return w;
  }

  /** Twice the entries (at least 4), the new ones unused. */
  private grow(): void {
    const old = this.next.length;
    const size = Math.max(4, 2 * old);
    const widen = <A extends Int32Array | Float64Array>(a: A, make: (n: number) => A): A => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.next = widen(this.next, (n) => new Int32Array(n));
    this.prev = widen(this.prev, (n) => new Int32Array(n));
    this.cpus = widen(this.cpus, (n) => new Int32Array(n));
    this.nodes = widen(this.nodes, (n) => new Int32Array(n));
    this.froms = widen(this.froms, (n) => new Float64Array(n));
    for (let i = size - 1; i >= old; i--) {
      this.who.push(null);
      this.next[i] = this.unused;
      this.unused = i;
    }
  }
}

/**
 * Remove list[i], keeping the others' order (who spins longest breaks a tie). By hand, not
 * splice(): splice returns a new array of what it removed, and this runs on every handoff.
 */
export function removeAt<T>(list: T[], i: number): void {
  for (let j = i + 1; j < list.length; j++) list[j - 1] = list[j]!;
  list.pop();
}

/**
 * An empty list whose elements are objects from the start. A new [] holds small integers as
 * far as V8 knows, and turns into a list of objects at its first push: optimized code made for
 * the earlier touches' lists (objects) then fails its map check on every new touch's list and
 * is thrown away and compiled again. (As zone.ts's pfnList() does for doubles.)
 */
export function objectList<T>(): T[] {
  const list = [{}] as unknown as T[];
  list.pop();
  return list;
}
