/**
 * The one base of every error kscrubfs raises on purpose (a refusal, not a bug): `code` is
 * stable and starts KSCRUB_ (callers switch on it, as on undici's UND_ERR_* codes; the CLI maps
 * it to an exit status in one table, src/cli/errors.ts); `message` is for people and quotes the
 * offending value. Each layer has its own subclass and codes.
 */
export class KscrubError<C extends `KSCRUB_${string}` = `KSCRUB_${string}`> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The model's refusals: bad arguments, or not enough memory; nothing was changed. */
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

export class ModelError extends KscrubError<ModelErrorCode> {}
