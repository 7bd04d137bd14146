import type { CostModel } from './cost';

/**
 * The last-level caches: one owner for every CPU's LLC, or for each group of CPUs that share
 * one (a Zen 3 CCX: eight cores, one 32 MiB L3). Nothing is kept per line or per page: a
 * cache is its capacity, the bytes the clearing and the program's cold touches have filled
 * it with, and the working sets registered on it with how much of each is still resident.
 *
 * Replacement rule: each line filled evicts one resident line chosen without regard to who
 * owns it (random replacement). After n lines filled into a cache of L lines, each line that
 * was resident stays with probability (1 − 1/L)^n — the footprint model of Thiébaut and
 * Stone ("Footprints in the Cache", ACM TOCS 5(4), 1987), who show it also describes LRU
 * when the filling stream and the program's own accesses interleave. That is the case here:
 * the clearing streams through pages the program never looks at while the program keeps
 * touching its own lines, so neither set of lines is uniformly older. Real LLCs of these
 * machines are set-associative with NRU/pseudo-LRU sets (Itanium 2 L3, P6 L2) or an
 * undisclosed victim policy (Zen 3 L3); none is the strict LRU under which a fill of the
 * cache's size would always evict everything.
 *
 * Who fills which cache (callers): clear_page in the fault fills the faulting CPU's; kscrubd's
 * CPU driver fills the cache of the CPU it runs on; the program's touches of cold lines fill
 * its CPU's; init_on_free's clear fills the freeing CPU's. Non-temporal stores, CLZERO and the
 * SN2 BTE write memory without allocating lines, and fill nothing.
 */
export class Llc {
  /** The cache of each CPU (CPUs of one cache are consecutive ids). */
  readonly cacheOf: Int32Array;
  readonly caches: number;
  /** Lines in one cache. */
  readonly lines: number;
  /** Bytes filled into each cache by clearing with cached stores (pollution). */
  readonly clearedBytes: Float64Array;
  /** Bytes filled into each cache by the program's touches of cold lines. */
  readonly touchedBytes: Float64Array;
  /** The working sets of each cache. */
  private readonly sets: WorkingSet[][];
  /** The expected survival of one resident line per line filled: log(1 − 1/L). */
  private readonly logKeep: number;

  constructor(
    cpus: number,
    /** CPUs that share one last-level cache. */
    readonly cpusPerCache: number,
    /** Capacity of one cache, bytes. */
    readonly capacity: number,
    readonly lineSize: number,
  ) {
    this.cacheOf = new Int32Array(cpus);
    for (let c = 0; c < cpus; c++) this.cacheOf[c] = Math.floor(c / cpusPerCache);
    this.caches = Math.ceil(cpus / cpusPerCache);
    this.lines = Math.max(1, Math.floor(capacity / lineSize));
    this.clearedBytes = new Float64Array(this.caches);
    this.touchedBytes = new Float64Array(this.caches);
    this.sets = Array.from({ length: this.caches }, () => []);
    this.logKeep = this.lines === 1 ? Number.NEGATIVE_INFINITY : Math.log1p(-1 / this.lines);
  }

  /** Of what was resident, the fraction left after `bytes` of new lines are filled. */
  keepAfter(bytes: number): number {
    const n = Math.ceil(bytes / this.lineSize);
    return n === 0 ? 1 : Math.exp(n * this.logKeep);
  }

  /**
   * The clearing stores `bytes` through `cpu`'s cache (rep stos, clear_page): the lines
   * it fills evict the working sets' lines.
   */
  clear(cpu: number, bytes: number): void {
    const cache = this.cacheOf[cpu]!;
    this.clearedBytes[cache] = this.clearedBytes[cache]! + bytes;
    this.fill(cache, bytes, null);
  }

  /** The program on `cpu` touches `bytes` of lines that were not in its cache. */
  touchCold(cpu: number, bytes: number): void {
    const cache = this.cacheOf[cpu]!;
    this.touchedBytes[cache] = this.touchedBytes[cache]! + bytes;
    this.fill(cache, bytes, null);
  }

  private fill(cache: number, bytes: number, except: WorkingSet | null): void {
    const sets = this.sets[cache]!;
    if (bytes <= 0 || sets.length === 0) return;
    const keep = this.keepAfter(bytes);
    for (const ws of sets) {
      if (ws === except) continue;
      const lost = ws.resident * (1 - keep);
      ws.evictedBytes += lost;
      // A running job fetches what it lost on its next pass, before the next fill comes
      // (its passes are short beside the time between faults): it misses and stays resident.
      if (ws.running) ws.missedBytes += lost;
      else ws.resident -= lost;
    }
  }

  /**
   * A program on `cpu` that keeps `bytes` of data in its cache (a cache-sensitive job beside
   * the faulting program, or the faulting program's own data). It starts resident, up to
   * the capacity: a working set larger than the cache never fits whatever the clearing does.
   */
  workingSet(cpu: number, bytes: number, running = false): WorkingSet {
    if (!(bytes > 0) || !Number.isFinite(bytes)) throw new RangeError(`working set of ${bytes} bytes: must be a positive size`);
    const cache = this.cacheOf[cpu]!;
    const ws = new WorkingSet(cache, cpu, bytes, Math.min(bytes, this.capacity), running);
    this.sets[cache]!.push(ws);
    return ws;
  }

  /** The program is gone: its lines no longer count. */
  release(ws: WorkingSet): void {
    const sets = this.sets[ws.cache]!;
    const i = sets.indexOf(ws);
    if (i >= 0) sets.splice(i, 1);
  }

  /**
   * The program touches its whole working set again: what was evicted comes back as misses
   * (returned, bytes), and in coming back evicts the lines of the other working sets of its
   * cache as any fill does.
   */
  retouch(ws: WorkingSet): number {
    const fits = Math.min(ws.bytes, this.capacity);
    const missed = Math.max(0, fits - ws.resident);
    ws.resident = fits;
    ws.missedBytes += missed;
    this.fill(ws.cache, missed, ws);
    return missed;
  }
}

/**
 * A program's data in one last-level cache (Llc.workingSet). Idle (the default), what others'
 * fills evict stays evicted until Llc.retouch; running, the program sweeps it continuously and
 * fetches every evicted line again at once (a cache-sensitive job beside the faults).
 */
export class WorkingSet {
  /** Bytes evicted by others' fills so far (whether or not touched again yet). */
  evictedBytes = 0;
  /** Bytes it fetched again (Llc.retouch, or at once when running). */
  missedBytes = 0;
  constructor(
    readonly cache: number,
    readonly cpu: number,
    readonly bytes: number,
    /** Bytes of it in the cache now. */
    public resident: number,
    readonly running = false,
  ) {}
}

/**
 * What touching `n` cold lines one after another costs a CPU (ns): the first pays the whole
 * memory latency; the rest overlap it as far as the CPU keeps misses in flight
 * (missesInFlight: fill buffers, miss address buffers, the bus queue — Little's law), and no
 * faster than the node's bus moves them: each line written crosses it twice (read for
 * ownership, later the write-back). `remote`: the latency of another node's memory.
 */
export function coldLinesNs(c: CostModel, n: number, lineSize: number, remote: boolean): number {
  if (n <= 0) return 0;
  const latency = remote ? c.lineMissNs * c.remoteFactor : c.lineMissNs;
  const overlapped = Math.max(latency / Math.max(1, c.missesInFlight), (2 * lineSize) / c.fsbBytesPerNs);
  return latency + (n - 1) * Math.min(latency, overlapped);
}

/**
 * What fetching a working set's missed lines again cost its program (ns): the lines of each
 * pass overlap as cold lines do (coldLinesNs), counted as one stream.
 */
export function refetchNs(c: CostModel, ws: WorkingSet, lineSize: number): number {
  return coldLinesNs(c, Math.ceil(ws.missedBytes / lineSize), lineSize, false);
}
