/**
 * The model's one error type. `code` is stable (callers switch on it, as undici's
 * UND_ERR_* codes); `message` is for people and quotes the offending value.
 */
export type ModelErrorCode =
  | 'KSCRUB_BAD_SIZE'
  | 'KSCRUB_BAD_DURATION'
  | 'KSCRUB_BAD_OPTION'
  | 'KSCRUB_BAD_SYSCTL'
  | 'KSCRUB_BAD_HANDLE'
  | 'KSCRUB_BAD_ADDRESS'
  | 'KSCRUB_BAD_MM'
  | 'KSCRUB_CLOCK_MODE'
  | 'KSCRUB_NOMEM';

export class ModelError extends Error {
  readonly code: ModelErrorCode;
  constructor(code: ModelErrorCode, message: string) {
    super(message);
    this.name = 'ModelError';
    this.code = code;
  }
}

/** Cheap invariant check on hot paths; check() verifies everything, this catches misuse early. */
export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`kscrubfs model invariant: ${what}`);
}
