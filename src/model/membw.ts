/**
 * Memory bandwidth per node: the front-side bus and memory controller the node's CPUs share.
 * Every byte a CPU moves crosses it: clear_page in a fault and kscrubd's clear_pages, and the
 * program's own stores to lines not in its cache (each read for ownership now, written back
 * later). So zeroing CPUs and the program slow each other:
 * - a clear shares the bus with the node's other clears, counted (CpuZeroDriver prices the
 *   share), and lets through first what the program's transfers under way still move
 *   (bytesLeft): a touch is short, so it takes its bytes, not a sharer's part of a long clear;
 * - the program's misses (misses()) queue behind what the node's other CPUs move meanwhile.
 * Both depend on the overlap of transfers, not on who is on the bus at one instant, so a
 * small shift in time moves a price by a little, never by a jump.
 * The BTE's transfers are not on it yet: they go to memory through the SHub, not over the
 * CPUs' bus, and would need a rate of their own rather than a sharer's part.
 */
export class NodeBus {
  /** Each CPU's last clear on its node's bus: [zeroFrom, zeroUntil), zeroBytes bus bytes. */
  private readonly zeroFrom: Float64Array;
  private readonly zeroUntil: Float64Array;
  private readonly zeroBytes: Float64Array;
  /** Each CPU's last transfer of the program's lines: [moveFrom, moveUntil), moveBytes bus bytes. */
  private readonly moveFrom: Float64Array;
  private readonly moveUntil: Float64Array;
  private readonly moveBytes: Float64Array;
  /** Per node, when its last stream known so far ends: after it nobody moves anything, and nothing needs a scan. */
  private readonly quietAt: Float64Array;
  /** A node's CPUs are consecutive ids (Cpus): node n's are firstCpu[n] … firstCpu[n + 1] − 1. */
  private readonly firstCpu: Int32Array;
  private readonly nodeOf: Int32Array;
  /** bytesDuring()'s answer (see there). */
  private readonly sum = new Float64Array(1);

  constructor(
    nodeOf: Int32Array,
    /** The bus's sustained bandwidth (CostModel.fsbBytesPerNs). */
    private readonly bytesPerNs: number,
  ) {
    this.nodeOf = nodeOf;
    const cpus = nodeOf.length;
    this.zeroFrom = new Float64Array(cpus);
    this.zeroUntil = new Float64Array(cpus);
    this.zeroBytes = new Float64Array(cpus);
    this.moveFrom = new Float64Array(cpus);
    this.moveUntil = new Float64Array(cpus);
    this.moveBytes = new Float64Array(cpus);
    const nodes = cpus === 0 ? 0 : nodeOf[cpus - 1]! + 1;
    this.quietAt = new Float64Array(nodes);
    this.firstCpu = new Int32Array(nodes + 1).fill(cpus);
    for (let c = cpus - 1; c >= 0; c--) this.firstCpu[nodeOf[c]!] = c;
  }

  /**
   * `cpu` clears memory during [from, until), moving `bytes` over its node's bus: from, until
   * and bytes in io[0], io[1], io[2] (see io).
   */
  zeroing(cpu: number): void {
    const io = this.io;
    const until = io[1]!;
    this.zeroFrom[cpu] = io[0]!;
    this.zeroUntil[cpu] = until;
    this.zeroBytes[cpu] = io[2]!;
    this.extend(cpu, until);
  }

  /**
   * The doubles the bus's calls take and answer (times, byte counts), passed here: a double
   * passed to or returned from a call V8 does not inline is boxed, a heap number each, and
   * these run for every page faulted (tens of MB a run, most of a run's garbage). Each call
   * says which slots it reads and which it writes.
   */
  readonly io = new Float64Array(3);

  /**
   * The program on `cpu` misses `bytes` of lines from time t (io[0]), taking ownNs (io[1])
   * when the bus is its own (coldLinesNs: latency, overlap, and one stream's bus time). Its
   * reads queue behind what the node's other CPUs move over the bus meanwhile (clears, other
   * misses): they take that long more. Each line is read for ownership now and written back
   * later, both on the bus from t. Leaves the time taken in io[0].
   */
  misses(cpu: number, bytes: number): void {
    const io = this.io;
    const t = io[0]!;
    const ownNs = io[1]!;
    let ns = ownNs;
    const node = this.nodeOf[cpu]!;
    if (t < this.quietAt[node]!) {
      this.bytesDuring(node, t, t + ownNs, cpu);
      ns += this.sum[0]! / this.bytesPerNs;
    }
    this.moveFrom[cpu] = t;
    this.moveUntil[cpu] = t + ns;
    this.moveBytes[cpu] = 2 * bytes;
    this.extend(cpu, t + ns);
    io[0] = ns;
  }

  private extend(cpu: number, t: number): void {
    const node = this.nodeOf[cpu]!;
    if (t > this.quietAt[node]!) this.quietAt[node] = t;
  }

  /** CPUs of `node` other than `cpu` zeroing at time t (io[0]): they share the node's bus with it. */
  zeroingOn(node: number, cpu: number): number {
    const t = this.io[0]!;
    let n = 0;
    if (t >= this.quietAt[node]!) return n;
    for (let c = this.firstCpu[node]!, end = this.firstCpu[node + 1]!; c < end; c++) if (c !== cpu && this.zeroUntil[c]! > t) n++;
    return n;
  }

  /**
   * Bus bytes the program's transfers by CPUs of `node` other than `cpu` still move after t
   * (io[0]; each at an even pace over its interval): left in io[0].
   */
  bytesLeft(node: number, cpu: number): void {
    const io = this.io;
    const t = io[0]!;
    let bytes = 0;
    if (t < this.quietAt[node]!) {
      for (let c = this.firstCpu[node]!, end = this.firstCpu[node + 1]!; c < end; c++) {
        if (c !== cpu) bytes += share(this.moveFrom[c]!, this.moveUntil[c]!, this.moveBytes[c]!, t, Number.POSITIVE_INFINITY);
      }
    }
    io[0] = bytes;
  }

  /**
   * Bus bytes CPUs of `node` other than `cpu` move during [a, b), clears and the program's
   * transfers, left in sum[0]: a double returned from a call V8 does not inline is boxed, a
   * heap number per page faulted while the node's bus is busy.
   */
  private bytesDuring(node: number, a: number, b: number, cpu: number): void {
    let bytes = 0;
    for (let c = this.firstCpu[node]!, end = this.firstCpu[node + 1]!; c < end; c++) {
      if (c === cpu) continue;
      bytes += share(this.zeroFrom[c]!, this.zeroUntil[c]!, this.zeroBytes[c]!, a, b);
      bytes += share(this.moveFrom[c]!, this.moveUntil[c]!, this.moveBytes[c]!, a, b);
    }
    this.sum[0] = bytes;
  }
}

/** The part of `bytes` moved at an even pace over [from, until) that falls in [a, b). */
function share(from: number, until: number, bytes: number, a: number, b: number): number {
  const lo = Math.max(from, a);
  const hi = Math.min(until, b);
  return hi > lo ? (bytes * (hi - lo)) / (until - from) : 0;
}
