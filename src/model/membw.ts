/**
 * Memory bandwidth per node: the front-side bus and memory controller the node's CPUs share.
 * Today it knows who is zeroing (clear_page in a fault, kscrubd's clear_pages), since CPUs
 * of one node zeroing at once share the bus (CpuZeroDriver prices the share).
 */
export class NodeBus {
  /** Until when each CPU is zeroing memory. */
  private readonly zeroUntil: Float64Array;
  /** A node's CPUs are consecutive ids (Cpus): node n's are firstCpu[n] … firstCpu[n + 1] − 1. */
  private readonly firstCpu: Int32Array;

  constructor(nodeOf: Int32Array) {
    this.zeroUntil = new Float64Array(nodeOf.length);
    const nodes = nodeOf.length === 0 ? 0 : nodeOf[nodeOf.length - 1]! + 1;
    this.firstCpu = new Int32Array(nodes + 1).fill(nodeOf.length);
    for (let c = nodeOf.length - 1; c >= 0; c--) this.firstCpu[nodeOf[c]!] = c;
  }

  /** `cpu` zeroes from now until t on its node's bus. */
  zeroing(cpu: number, t: number): void {
    this.zeroUntil[cpu] = t;
  }

  /** CPUs of `node` other than `cpu` zeroing at time t: they share the node's bus with it. */
  zeroingOn(node: number, t: number, cpu: number): number {
    let n = 0;
    for (let c = this.firstCpu[node]!, end = this.firstCpu[node + 1]!; c < end; c++) if (c !== cpu && this.zeroUntil[c]! > t) n++;
    return n;
  }
}
