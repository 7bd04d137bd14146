import type { Cacheline, LineCosts } from './cacheline';

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
  private readonly waiting: W[] = objectList<W>();
  /** Those spinning on it, in the order they began (ptlock.ts grants it at its release). */
  get spinners(): readonly W[] { return this.waiting; }

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

  /** `w` starts spinning on it. */
  spin(w: W): void {
    this.waiting.push(w);
  }

  /** The spinner at `i` stops spinning (it won the lock); the others keep their order. */
  unspin(i: number): W {
    const w = this.waiting[i]!;
    removeAt(this.waiting, i);
    return w;
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
