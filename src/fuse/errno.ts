import { Fuse } from './binding';
import { ProcError, type ProcErrno } from '../uapi';

// The one place errors become errno values. The numbers come from fuse-native's table
// (already negative, as FUSE replies want them); nothing here computes a sign.

/** ProcErrno → negative Linux errno. */
export const PROC_ERRNO = {
  EINVAL: Fuse.EINVAL,
  EACCES: Fuse.EACCES,
  ENOENT: Fuse.ENOENT,
  EISDIR: Fuse.EISDIR,
  ENOTDIR: Fuse.ENOTDIR,
  EIO: Fuse.EIO,
  EBUSY: Fuse.EBUSY,
  ENOMEM: Fuse.ENOMEM,
  EINTR: Fuse.EINTR,
  EAGAIN: Fuse.EAGAIN,
} as const satisfies Record<ProcErrno, number>;

/** Errno values the adapter answers itself: a handle the kernel should not have sent us, and what /proc answers to changes of names, modes and owners. */
export const EBADF = Fuse.EBADF;
/** The table of open files is full (the kernel's file-max answer). */
export const ENFILE = Fuse.ENFILE;
/** One user holds as many handles as it may (a process's "too many open files"). */
export const EMFILE = Fuse.EMFILE;
export const { ENOENT, EPERM, EACCES } = Fuse;
/** A request whose sender was interrupted while it waited on a command (the adapter answers it at once). */
export const EINTR = Fuse.EINTR;

/** A ProcError's errno; anything else (a bug, not a refusal) is EIO. */
export function toErrno(err: unknown): number {
  return err instanceof ProcError ? PROC_ERRNO[err.errno] : Fuse.EIO;
}

