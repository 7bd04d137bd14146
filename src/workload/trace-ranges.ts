/**
 * A set of page ranges [start, end), kept sorted and merged: a traced process's anonymous or
 * file-backed address space. add/remove return the ranges that actually changed, which is what
 * the trace records (a MAP of only the new part, an UNMAP of only what was mapped).
 */
export type PageRange = readonly [start: number, end: number];

export class PageRanges {
  /** Flat [s0, e0, s1, e1, …], sorted, disjoint, never touching (touching ranges merge). */
  private r: number[] = [];

  get ranges(): PageRange[] {
    const out: PageRange[] = [];
    for (let i = 0; i < this.r.length; i += 2) out.push([this.r[i]!, this.r[i + 1]!]);
    return out;
  }

  /** Index of the first range whose end is > page (binary search). */
  private firstEndingAfter(page: number): number {
    let lo = 0;
    let hi = this.r.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.r[2 * mid + 1]! > page) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  has(page: number): boolean {
    const i = this.firstEndingAfter(page);
    return i < this.r.length / 2 && this.r[2 * i]! <= page;
  }

  /** The parts of [start, end) inside the set. */
  intersect(start: number, end: number): PageRange[] {
    const out: PageRange[] = [];
    for (let i = this.firstEndingAfter(start); i < this.r.length / 2 && this.r[2 * i]! < end; i++) {
      out.push([Math.max(start, this.r[2 * i]!), Math.min(end, this.r[2 * i + 1]!)]);
    }
    return out;
  }

  /** The parts of [start, end) not in the set. */
  gaps(start: number, end: number): PageRange[] {
    const out: PageRange[] = [];
    let at = start;
    for (const [s, e] of this.intersect(start, end)) {
      if (s > at) out.push([at, s]);
      at = e;
    }
    if (at < end) out.push([at, end]);
    return out;
  }

  /** Add [start, end); returns the parts that were not in the set before. */
  add(start: number, end: number): PageRange[] {
    if (end <= start) return [];
    const added = this.gaps(start, end);
    // Ranges that overlap or touch [start, end) merge into one.
    const i = this.firstEndingAfter(start - 1);
    let s = start;
    let e = end;
    let j = i;
    while (j < this.r.length / 2 && this.r[2 * j]! <= end) {
      s = Math.min(s, this.r[2 * j]!);
      e = Math.max(e, this.r[2 * j + 1]!);
      j++;
    }
    this.r.splice(2 * i, 2 * (j - i), s, e);
    return added;
  }

  /** Remove [start, end); returns the parts that were in the set. */
  remove(start: number, end: number): PageRange[] {
    if (end <= start) return [];
    const removed = this.intersect(start, end);
    if (removed.length === 0) return removed;
    const i = this.firstEndingAfter(start);
    let j = i;
    const keep: number[] = [];
    while (j < this.r.length / 2 && this.r[2 * j]! < end) {
      const s = this.r[2 * j]!;
      const e = this.r[2 * j + 1]!;
      if (s < start) keep.push(s, start);
      if (e > end) keep.push(end, e);
      j++;
    }
    this.r.splice(2 * i, 2 * (j - i), ...keep);
    return removed;
  }

  clear(): void {
    this.r = [];
  }

  copy(): PageRanges {
    const c = new PageRanges();
    c.r = [...this.r];
    return c;
  }
}
