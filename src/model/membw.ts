/**
 * Memory bandwidth per node: the front-side bus and memory controller the node's CPUs share.
 * Today it knows who is zeroing (clear_page in a fault, kscrubd's clear_pages), since CPUs
 * of one node zeroing at once share the bus (CpuZeroDriver prices the share).
 */
export class NodeBus {
  /** Until when each CPU is zeroing memory. */
  private readonly zeroUntil: Float64Array;

  constructor(private readonly nodeOf: Int32Array) {
    this.zeroUntil = new Float64Array(nodeOf.length);
  }

  /** `cpu` zeroes from now until t on its node's bus. */
  zeroing(cpu: number, t: number): void {
    this.zeroUntil[cpu] = t;
  }

  /** CPUs of `node` other than `cpu` zeroing at time t: they share the node's bus with it. */
  zeroingOn(node: number, t: number, cpu: number): number {
    const nodeOf = this.nodeOf;
    let n = 0;
    for (let c = 0; c < nodeOf.length; c++) if (c !== cpu && nodeOf[c] === node && this.zeroUntil[c]! > t) n++;
    return n;
  }
}
