/**
 * Cachelines the fault path and the allocator share: who wrote each last, and what pulling it
 * over costs by distance. 2.6.11's mm_struct keeps mmap_sem with page_table_lock on its first
 * line and rss/anon_rss on its second; a zone's lock and counters share a line of struct
 * zone, on the zone's node.
 */
export class Cacheline {
  private _cpu = -1;
  /**
   * Until when the line's home is busy serving requests already queued for it (the failed
   * cmpxchgs of a spinlock's losers, ptlock.ts): a store issued before then waits for them.
   */
  servedUntil = 0;
  /** The CPU that wrote it last (-1: nobody yet; it is in memory, and the first access pays nothing extra). */
  get cpu(): number { return this._cpu; }

  /** `cpu` stored to it: the line is in its cache alone now. */
  writtenBy(cpu: number): void {
    this._cpu = cpu;
  }
}

/** What a cache-to-cache transfer of one line costs: from a CPU of the same node, or another. */
export class LineCosts {
  constructor(
    /** Each CPU's node. */
    readonly nodeOf: Int32Array,
    private readonly cost: { readonly lineBounceNs: number; readonly lineRemoteNs: number },
  ) {}

  /** A transfer from CPU `from` (-1: nobody has it) to CPU `to`. */
  transfer(from: number, to: number): number {
    if (from < 0 || from === to) return 0;
    const nodeOf = this.nodeOf;
    return nodeOf[from] === nodeOf[to] ? this.cost.lineBounceNs : this.cost.lineRemoteNs;
  }

  /** A transfer between two CPUs of one node, and between nodes. */
  localNs(): number {
    return this.cost.lineBounceNs;
  }
  remoteNs(): number {
    return this.cost.lineRemoteNs;
  }

  /** The dearest transfer there is: a scan for the dearest may stop once it meets one. */
  dearest(): number {
    return Math.max(this.cost.lineBounceNs, this.cost.lineRemoteNs);
  }

  /** An atomic or a store to `line` by `cpu`: what pulling it over costs; cpu owns it after. */
  take(line: Cacheline, cpu: number): number {
    const ns = this.transfer(line.cpu, cpu);
    line.writtenBy(cpu);
    return ns;
  }
}
