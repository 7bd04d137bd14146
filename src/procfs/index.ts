import { constants as fsConstants } from 'node:fs';
import type { Machine } from '../model';
import type { BuddyinfoFormat } from './buddyinfo';
import { filesFor } from './files';
import { ProcError } from '../uapi';
import type { FileEntry, FileHandle, ProcFile, ProcTree, RenderOptions } from './types';

export { FILES, filesFor, fixedFilesFor, present } from './files';
export { BUDDYINFO_FORMATS } from './buddyinfo';
export type { BuddyinfoFormat } from './buddyinfo';
export type { FileEntry, FileHandle, ProcFile, ProcTree, RenderOptions } from './types';

/** The access-mode bits of open(2) flags (Linux; Node does not export O_ACCMODE). */
const O_ACCMODE = 0o3;

export interface ProcTreeOptions {
  readonly buddyinfo: BuddyinfoFormat;
  /**
   * Bring the machine's clock up to the wall (a live clock; a manual one stays): called
   * before every render and write, so a reader sees the present.
   */
  readonly syncClock: () => void;
  /** The `/control` entry (src/control); without it there is no /control. */
  readonly control?: FileEntry;
  /**
   * A count that moves whenever something other than the clock and this tree's own writes
   * may have changed the machine (the control scheduler's slices). Given it, opens while it,
   * the clock and the writes stand still share one snapshot: 300 opens of a 7 MB zoneinfo
   * that are never read hold one text, not 300. Without it, every open renders its own.
   */
  readonly generation?: () => number;
  /**
   * Bytes of text the open handles may hold at once (default MAX_HELD_SNAPSHOT_BYTES): a read
   * that would render past it fails ENOMEM, as an allocation the kernel cannot make does.
   */
  readonly maxHeldBytes?: number;
  /**
   * The wall clock, in ms, that times a stat against the first read after it (default
   * performance.now): a test passes its own so the window it checks is not the host's load.
   */
  readonly wallMs?: () => number;
}

/** What open handles may hold in rendered text when the mount does not say (mount passes a part of --max-memory). */
export const MAX_HELD_SNAPSHOT_BYTES = 256 * 2 ** 20;

/**
 * The text the tree's open handles hold, counted once per snapshot however many handles share
 * it. A handle holds its snapshot from its first read until a read reaches the end, a re-read
 * from 0 takes another, or it is closed.
 */
class HeldSnapshots {
  private bytes = 0;
  private readonly holders = new Map<Snapshot, number>();
  constructor(private readonly maxBytes: number) {}

  hold(s: Snapshot, path: string): void {
    const n = this.holders.get(s) ?? 0;
    if (n === 0) {
      if (this.bytes + s.textLength > this.maxBytes) {
        throw new ProcError('ENOMEM', `${path}: open handles already hold ${this.bytes} bytes of rendered text, at most ${this.maxBytes}; read them to the end or close them`);
      }
      this.bytes += s.textLength;
    }
    this.holders.set(s, n + 1);
  }

  letGo(s: Snapshot): void {
    const n = this.holders.get(s) ?? 0;
    if (n <= 1) {
      if (n === 1) this.bytes -= s.textLength;
      this.holders.delete(s);
    } else {
      this.holders.set(s, n - 1);
    }
  }
}

/** The tree the FUSE adapter serves: one entry per FILES row, directories derived from the paths. */
export function buildProcTree(machine: Machine, opts: ProcTreeOptions): ProcTree {
  const files = new Map<string, FileEntry>();
  const writes = { count: 0 };
  const held = new HeldSnapshots(opts.maxHeldBytes ?? MAX_HELD_SNAPSHOT_BYTES);
  for (const file of filesFor(machine)) {
    const entry = file.render ? snapshotEntry(machine, file, file.render, opts, writes, held) : suppliedEntry(file, opts);
    if (entry) files.set(entry.path, entry);
  }
  return { files, dirs: directories([...files.keys()]) };
}

/**
 * A file rendered at open: reads are served from that snapshot's bytes, so a reader that comes
 * back for the rest at any offset sees one consistent text. A read at offset 0 on a handle that
 * has already been read renders a fresh snapshot, as seq_file does (its traverse() restarts the
 * show() when a read is not where the last one stopped): procps' vmstat, top and `free -s` open
 * /proc/stat, meminfo and vmstat once and lseek(fd, 0) + read every interval. Writable rows
 * (sysctls) take writes at offset 0; later offsets are ignored and reported written, as the
 * kernel's sysctl_writes_strict does.
 */
/** How long after a stat(2) a first read still serves the text that stat measured (wall ms). */
export const STAT_REUSE_MS = 100;

function snapshotEntry(
  machine: Machine, file: ProcFile, render: NonNullable<ProcFile['render']>, opts: ProcTreeOptions, writes: { count: number }, held: HeldSnapshots,
): FileEntry {
  const { path, mode, write } = file;
  const now = opts.wallMs ?? ((): number => performance.now());
  const renderOpts: RenderOptions = { buddyinfo: opts.buddyinfo };
  /** The last snapshot and the state it was rendered in (opts.generation). */
  let last: { key: string; snapshot: Snapshot } | undefined;
  /**
   * The text the last stat(2) measured and when (wall ms). fstat(2) reaches FUSE as a GETATTR
   * without the open's handle, so a handle cannot tell its own stat from another's: a first read
   * within STAT_REUSE_MS of a stat serves that stat's text, which bounds the mismatch to two
   * stats racing in that window and a digit changing between them.
   */
  let lastStat: { snapshot: Snapshot; at: number } | undefined;
  const statted = (at: number): Snapshot => {
    opts.syncClock();
    const snapshot = fresh();
    lastStat = { snapshot, at };
    return snapshot;
  };
  const fresh = (): Snapshot => {
    const gen = opts.generation;
    if (!gen) return new Snapshot(render(machine, renderOpts));
    const key = `${gen()}/${machine.now}/${writes.count}`;
    if (last?.key !== key) last = { key, snapshot: new Snapshot(render(machine, renderOpts)) };
    return last.snapshot;
  };
  return {
    path,
    mode,
    writable: write !== undefined,
    // stat(2) without an open: the text as the machine stands (no catch-up: a stat moves no clock).
    ...(write ? {} : { size: (): number => statted(now()).byteLength() }),
    open(flags: number): FileHandle {
      if (!write && (flags & O_ACCMODE) !== fsConstants.O_RDONLY) throw new ProcError('EACCES', `${path} is read-only`);
      // A first read right after a stat serves the text that stat measured: a reader that
      // trusts st_size (Node's fs.readFile: open, fstat, read st_size bytes) then gets it whole
      // even when the machine moved in between (a running pft, the live clock).
      const take = (): Snapshot => {
        const at = now();
        if (lastStat !== undefined && at - lastStat.at <= STAT_REUSE_MS) return lastStat.snapshot;
        opts.syncClock();
        return fresh();
      };
      // Rendered at the first read, not at open, and let go once a read has reached its end:
      // an open that is held and never read (or read to the end and held) keeps no text, so
      // thousands of idle descriptors cost the daemon only their handles.
      let snapshot: Snapshot | undefined;
      let served = false;
      let written = false;
      /** The snapshot a read at `offset` is served from: a fresh one for a re-read from 0 or after a write. */
      const current = (offset: number): Snapshot => {
        if (snapshot === undefined || (offset === 0 && served) || written) {
          const next = take();
          held.hold(next, path);
          if (snapshot !== undefined) held.letGo(snapshot);
          snapshot = next;
        }
        served = true;
        written = false;
        return snapshot;
      };
      /** After a read at or past the end, the text is no longer needed (a re-read from 0 renders anew). */
      const settle = <T>(s: Snapshot, offset: number, got: T): T => {
        if (s.endsBy(offset) && snapshot === s) {
          held.letGo(s);
          snapshot = undefined;
        }
        return got;
      };
      const release = (): void => {
        if (snapshot !== undefined) held.letGo(snapshot);
        snapshot = undefined;
      };
      const read = (offset: number, length: number): Buffer => {
        const s = current(offset);
        return settle(s, offset, s.read(offset, length));
      };
      const readInto = (target: Buffer, offset: number, length: number): number => {
        const s = current(offset);
        return settle(s, offset, s.readInto(target, offset, length));
      };
      if (!write) return { read, readInto, release };
      return {
        read,
        readInto,
        release,
        write(data: Buffer, offset: number): number | Promise<number> {
          if (offset > 0) return data.length;
          opts.syncClock();
          const n = write(machine, data);
          const done = (v: number): number => {
            writes.count++;
            written = true; // the next read shows the value just written, as the kernel's does
            return v;
          };
          return typeof n === 'number' ? done(n) : n.then(done);
        },
      };
    },
  };
}

/**
 * The text one open rendered, served at any byte offset. Nearly every reader takes it whole in
 * its first read(2) and then reads 0 at EOF: that first read encodes the text straight into
 * the reply buffer and the snapshot never makes a Buffer of its own. (A fresh Buffer per open
 * cost more than rendering: for zoneinfo, 16–20 µs against 8–9 µs written in place, measured
 * in test/bench.) Any other pattern — small reads, a read at an offset — encodes the text once
 * and serves every offset from those bytes.
 */
export class Snapshot {
  private bytes: Buffer | undefined;
  /** Byte length, once a whole first read has told it (-1: not yet). */
  private size = -1;

  constructor(private readonly text: string) {}

  /** What the text takes in memory, about: a character a byte (V8's one-byte strings). */
  get textLength(): number {
    return this.text.length;
  }

  readInto(target: Buffer, offset: number, length: number): number {
    if (offset === 0 && this.bytes === undefined && length > 0) {
      const n = target.write(this.text, 0, length, 'utf8');
      // write() stops before a character that does not fit, and a character is at most 4
      // bytes: 4 or more bytes to spare means the whole text went in.
      if (n <= length - 4) {
        this.size = n;
        return n;
      }
    }
    if (this.size >= 0 && offset >= this.size) return 0;
    const bytes = this.encoded();
    const start = Math.min(offset, bytes.length);
    return bytes.copy(target, 0, start, Math.min(bytes.length, start + length));
  }

  read(offset: number, length: number): Buffer {
    return this.encoded().subarray(offset, offset + length);
  }

  /** The text's length in bytes (counted once, without encoding it). */
  byteLength(): number {
    if (this.size < 0) this.size = this.bytes?.length ?? Buffer.byteLength(this.text, 'utf8');
    return this.size;
  }

  /** Is `offset` at or past the end (a read there returned 0: the reader saw EOF)? */
  endsBy(offset: number): boolean {
    return this.size >= 0 && offset >= this.size;
  }

  private encoded(): Buffer {
    return (this.bytes ??= Buffer.from(this.text, 'utf8'));
  }
}

/** A row whose entry the caller brings (`/control`); absent when the caller has none. */
function suppliedEntry(file: ProcFile, opts: ProcTreeOptions): FileEntry | undefined {
  if (file.path !== '/control') throw new Error(`procfs: FILES row ${file.path} has no renderer`);
  const entry = opts.control;
  if (!entry) return undefined;
  if (entry.path !== file.path || entry.mode !== file.mode) {
    throw new Error(`procfs: the control entry must be ${file.path} mode 0${file.mode.toString(8)}, not ${entry.path} mode 0${entry.mode.toString(8)}`);
  }
  return entry;
}

/** Every directory implied by the paths, each listing its children in table order. */
function directories(paths: readonly string[]): Map<string, string[]> {
  const dirs = new Map<string, string[]>([['/', []]]);
  for (const path of paths) {
    const parts = path.split('/').slice(1);
    let dir = '/';
    for (const name of parts) {
      const children = dirs.get(dir)!;
      if (!children.includes(name)) children.push(name);
      const child = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (child !== path && !dirs.has(child)) dirs.set(child, []);
      dir = child;
    }
  }
  return dirs;
}
