import type { Machine } from '../model';
import type { BuddyinfoFormat } from './buddyinfo';
import type { ProcError } from '../uapi';

// The contract between the procfs layer (text in, text out) and the FUSE adapter.
// procfs knows nothing of FUSE: it hands the adapter a table of entries, and each open
// returns a handle that owns whatever per-open state the file needs (a rendered snapshot,
// or the control file's result queue).

/** One open file. */
/**
 * Whether a write's commands should stop: the FUSE request carrying it, or one waiting on its
 * results (a read, close's FLUSH), was interrupted (its sender got a signal).
 */
export interface WriteSignal {
  interrupted(): boolean;
  /** From now on interrupted() is true: someone waiting on this write's results was interrupted. */
  cancel?(): void;
  /** Who sent the write (the per-user caps; close(2) waits in the process that wrote), when known. */
  readonly uid?: number | undefined;
  readonly pid?: number | undefined;
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
   * Absent on read-only files. Returns the number of bytes accepted (or a promise of it);
   * throws (or rejects with) ProcError. On control, a write is accepted once its lines parse
   * and are queued: its commands run later, and settled()/takeFailure() say how they ended.
   */
  write?(data: Buffer, offset: number, signal?: WriteSignal): number | Promise<number>;
  /** Called once when the last reference goes away. */
  release?(): void;
  /**
   * Files whose writes return before their work is done (control): a promise that settles
   * once read() has something the writes in flight will give, or null when read() would not
   * wait (something is unread, or nothing is in flight).
   */
  readable?(): Promise<void> | null;
  /**
   * Files whose writes return before their work is done (control): a promise that settles
   * once every write made on this handle by process `pid` (every write, when not given) has
   * run (or will not: stopped before it started), or null when none is in flight. close(2)
   * waits so in the process that closes: a child that inherited the descriptor does not wait
   * for its parent's commands.
   */
  settled?(pid?: number): Promise<void> | null;
  /** The first failure of `pid`'s writes on this handle (anyone's, when not given) not yet reported, or null; each is reported once. */
  takeFailure?(pid?: number): ProcError | null;
  /** Someone waiting on this handle (a read, a FLUSH) was interrupted: stop its writes' commands at their next look. */
  interrupt?(): void;
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
  /**
   * Does this machine have the file? Absent: every machine does. A file exists only where the
   * modelled kernel (MachineConfig.kernel) or a zeroing policy the machine booted with has it.
   */
  readonly present?: (m: Machine) => boolean;
}
