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

/** The errno a file operation fails with; the FUSE adapter maps it to its number in one table (src/fuse/errno.ts). */
export type ProcErrno = 'EINVAL' | 'EACCES' | 'ENOENT' | 'EISDIR' | 'ENOTDIR' | 'EIO' | 'EBUSY' | 'ENOMEM' | 'EINTR' | 'EAGAIN';
export type ProcErrorCode = `KSCRUB_${ProcErrno}`;

/** A file operation refused: `errno` is what the caller's system call returns. */
export class ProcError extends KscrubError<ProcErrorCode> {
  readonly errno: ProcErrno;
  constructor(errno: ProcErrno, message: string) {
    super(`KSCRUB_${errno}`, message);
    this.errno = errno;
  }
}

/**
 * The errno a write(2) of a command gets when the model refuses it, as a kernel would give:
 * out of memory is ENOMEM (an allocation that could not be met), every bad argument EINVAL.
 */
export const MODEL_ERRNO: Readonly<Record<ModelErrorCode, 'EINVAL' | 'ENOMEM'>> = {
  KSCRUB_BAD_SIZE: 'EINVAL', KSCRUB_BAD_DURATION: 'EINVAL', KSCRUB_BAD_OPTION: 'EINVAL', KSCRUB_BAD_SYSCTL: 'EINVAL',
  KSCRUB_BAD_HANDLE: 'EINVAL', KSCRUB_BAD_ADDRESS: 'EINVAL', KSCRUB_BAD_MM: 'EINVAL', KSCRUB_CLOCK_MODE: 'EINVAL',
  KSCRUB_NOMEM: 'ENOMEM',
};
