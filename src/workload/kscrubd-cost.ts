/**
 * kscrubd's share of a wall-clock answer. A prezeroed run is measured after kscrubd settled:
 * the zeroing it did beforehand is in none of the run's columns. For a machine that has to
 * keep zeroing as fast as the program faults, that work happens during the run: the CPUs the
 * program leaves idle take it first, and what is left takes time from the program's own:
 *
 *   extra = max(0, K − (cpus − busy) × Wall) ÷ busy        Wall' = Wall + extra
 *
 * K = kscrubd's CPU seconds for the pages the run took prezeroed (its CPU per page zeroed,
 * measured while it settled, × those pages); busy = the CPUs the program ran on. kscrubd's
 * CPU time already contains its waits for the memory bus (the model's bus owner makes a clear
 * wait its turn), so the bandwidth it takes shows in K; `bytesPerS` says how much: the bytes
 * it cleared for the run over Wall'.
 */
export interface KscrubdShare {
  /** kscrubd's CPU seconds for the run's prezeroed pages. */
  readonly cpuS: number;
  /** Bytes it cleared for them. */
  readonly bytes: number;
  /** Wall with its work counted (see above). */
  readonly wallS: number;
  /** Its clearing bandwidth over that wall, bytes a second. */
  readonly bytesPerS: number;
}

export function kscrubdShare(o: { wallS: number; prezeroedPages: number; pageSize: number; cpuSPerPage: number; cpus: number; busy: number }): KscrubdShare {
  const cpuS = o.prezeroedPages * o.cpuSPerPage;
  const busy = Math.max(1, Math.min(o.busy, o.cpus));
  const extra = Math.max(0, cpuS - (o.cpus - busy) * o.wallS) / busy;
  const wallS = o.wallS + extra;
  const bytes = o.prezeroedPages * o.pageSize;
  return { cpuS, bytes, wallS, bytesPerS: wallS > 0 ? bytes / wallS : 0 };
}
