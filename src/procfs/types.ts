import type { Machine } from '../model';
import type { BuddyinfoFormat } from './buddyinfo';

// The contract between the procfs layer (text in, text out) and the FUSE adapter.
// procfs knows nothing of FUSE: it hands the adapter a table of entries, and each open
// returns a handle that owns whatever per-open state the file needs (a rendered snapshot,
// or the control file's result queue).

/** One open file. */
/** What a write's sender does meanwhile: the FUSE request carrying it was interrupted (a signal). */
export interface WriteSignal {
  interrupted(): boolean;
}

export interface FileHandle {
  /**
   * Bytes at `offset`, at most `length`; an empty buffer is EOF. Snapshot files serve every
   * offset from the text rendered at open. Stream files (control) ignore the offset and hand
   * out the next unread bytes, like a character device.
   */
  read(offset: number, length: number): Buffer;
  /**
   * The same bytes as read(), copied into `target` (at most `length`); returns the count, 0 at
   * EOF. Optional: the adapter uses it when present, so that a snapshot can encode its text
   * straight into the FUSE reply buffer instead of into a Buffer of its own per open.
   */
  readInto?(target: Buffer, offset: number, length: number): number;
  /**
   * Absent on read-only files. Returns the number of bytes accepted (or a promise of it, for
   * a command that runs in slices); throws (or rejects with) ProcError.
   */
  write?(data: Buffer, offset: number, signal?: WriteSignal): number | Promise<number>;
  /** Called once when the last reference goes away. */
  release?(): void;
}

export interface FileEntry {
  /** Absolute inside the mount, no trailing slash: '/buddyinfo', '/sys/vm/scrub_start'. */
  readonly path: string;
  /** Permission bits only: 0o444, 0o644, 0o600. */
  readonly mode: number;
  /** Does this file accept writes at all (sysctls, control)? */
  readonly writable: boolean;
  /** Make a handle; `flags` are open(2) flags. Read-only files opened for writing throw EACCES. */
  open(flags: number): FileHandle;
  /**
   * Byte length of the text an open would read now (st_size for stat(2), as LXCFS reports it);
   * a first read soon after serves this same text, so fstat-then-read readers agree with it.
   * Absent on writable files: sysctls, whose O_APPEND writes must land at offset 0, and the
   * control file, whose bytes are per-open replies.
   */
  size?(): number;
}

/** The whole tree the adapter serves: files plus the directories implied by their paths. */
export interface ProcTree {
  readonly files: ReadonlyMap<string, FileEntry>;
  /** Directory path ('/', '/sys', '/sys/vm') → child names in listing order. */
  readonly dirs: ReadonlyMap<string, readonly string[]>;
}

/** What a renderer may depend on besides the machine (mount options). */
export interface RenderOptions {
  readonly buddyinfo: BuddyinfoFormat;
}

/**
 * One mounted file. `render` makes its text (snapshot at open); `write` takes one write(2) at
 * offset 0 and returns the bytes consumed. A row with neither is supplied by the caller
 * (`/control`, whose handle lives in src/control).
 */
export interface ProcFile {
  /** Absolute inside the mount: '/buddyinfo', '/sys/vm/scrub_start'. */
  readonly path: string;
  /** Permission bits: 0o444 read-only, 0o644 sysctl, 0o600 control. */
  readonly mode: number;
  readonly render?: (m: Machine, opts: RenderOptions) => string;
  /** A promise when the write runs in slices (a hugetlb pool resize or zeroing of many pages). */
  readonly write?: (m: Machine, data: Buffer) => number | Promise<number>;
}
