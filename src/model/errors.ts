/** Cheap invariant check on hot paths; check() verifies everything, this catches misuse early. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`kscrubfs model invariant: ${what}`);
}
