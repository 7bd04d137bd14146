import debugFactory from 'debug';
import type { Machine } from '../model';
import type { FileEntry, FileHandle, WriteSignal } from '../procfs/types';
import { OUTPUT_LIMIT, ProcError } from '../uapi';
import { type BatchResult, batchJob } from './batch';
import { type Session, commandJob, detachedSession } from './execute';
import { MAX_LINE_BYTES, SPECS, usageOf } from '../uapi/grammar';
import type { CommandBudget, Job, JobRunner } from './job';

const log = debugFactory('kscrubfs:control');

// /control as a file. Each open gets its own result queue: two processes never see each
// other's results. Writes are batches (batch.ts); reads hand out queued results like a
// character device.
//
// Offsets. Results are a stream, so a read's offset does not select bytes: a read returns the
// next unread results, as from a character device. One exception, so that ordinary readers
// work: `read` in bash, `head -n1` and Python's buffered files (before a write) read ahead and
// then lseek(2) back over what they did not use (a FUSE file is seekable). So the handle
// remembers where the file position stands after each read and write, and the bytes its last
// read handed out; the next read or write at an offset *inside* that read (0 < position −
// offset < its length) first puts the bytes from there on back in front of the queue. Every
// other offset is ignored: repeated pread(fd, …, 0) still walks the stream, it never loops.

const EMPTY = Buffer.alloc(0);

/** The text a fresh handle reads when nothing has been written to it. */
export function helpText(): string {
  const out = [
    'kscrubfs control: write command lines, then read one result line per command, on the',
    'same open file (exec 3<>control; echo stats >&3; read -r r <&3). Each open file has its',
    'own results.',
    '',
    'A result line starts "ok" or "err <reason>". Blank lines and "#" comments give none.',
    'The whole lines of one write are a batch; a line runs when its newline arrives, however',
    'its bytes were split between writes. If a line does not parse, nothing runs: that line',
    'reads "err <reason>", the others "err skipped: line N of this write was rejected", and',
    'the write fails with EINVAL. Otherwise the commands run in order, each all or nothing;',
    'the first that fails ends the batch (the rest read "err skipped: line N of this write',
    'failed") and the write fails with EINVAL (ENOMEM when memory ran out, EIO if check',
    'finds a broken invariant).',
    "(bash's echo and printf builtins write line by line, one batch per line; cat writes",
    'a file of commands in blocks of up to 128 KiB, each block a batch.) A long command',
    '(a big touch, mm exit, tick) returns from its write when it is done; other files and',
    'other opens are served meanwhile.',
    `Unread results are kept up to ${OUTPUT_LIMIT >> 20} MiB: a write whose results could pass that fails with`,
    'EBUSY before anything runs (one command alone, with nothing unread, always runs).',
    'A process made by "mm new" exits when the open file that made it is closed, unless it',
    'was made with "mm new keep"; "mm list" shows the processes alive.',
    '',
    `Syntax: verb [key=value | flag]..., separated by spaces or tabs; one command per line,`,
    `at most ${MAX_LINE_BYTES} bytes of UTF-8 without control characters; each key and flag at most`,
    'once. Numbers are decimal (no sign, leading zeros or hex); addresses are 0x hex; sizes',
    'are 4096, 16K, 2M, 1G; durations 250ms, 2s, 100us.',
    '',
  ];
  for (const s of SPECS) out.push(`  ${usageOf(s)}`, `      ${s.summary}`, `      -> ${s.result}`);
  return `${out.join('\n')}\n`;
}

/** Buffers in order; take() hands out bytes from the front. */
class ByteQueue {
  private chunks: Buffer[] = [];
  size = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.size += b.length;
  }

  unshift(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.unshift(b);
    this.size += b.length;
  }

  take(max: number): Buffer {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < max && this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const n = Math.min(head.length, max - got);
      parts.push(head.subarray(0, n));
      got += n;
      if (n === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
    }
    this.size -= got;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
  }
}

/** What every control handle of one mount shares: the machine, the command queue, the open sessions. */
interface ControlShared {
  readonly machine: Machine;
  /** Bring the machine's clock up to the wall before a batch runs (ProcTreeOptions.syncClock). */
  readonly syncClock: () => void;
  readonly scheduler: JobRunner;
  readonly sessions: Set<Session>;
  readonly budget: CommandBudget | undefined;
}

class ControlHandle implements FileHandle, Session {
  private readonly out = new ByteQueue();
  /** A line that has not seen its newline yet (at most MAX_LINE_BYTES + 1 bytes of it). */
  private partial: Buffer = EMPTY;
  /** What the last read handed out (EMPTY after a write), for a seek back into it. */
  private lastRead: Buffer = EMPTY;
  /**
   * Bytes of the last read that a write seeked back over (bash's `read` seeks back over its
   * read-ahead, then `echo >&3` writes there): given back if the next read continues where
   * the writes left the file position, dropped if it reads elsewhere (pwrite moves nothing).
   */
  private rewound: Buffer = EMPTY;
  /** Where the file position stands after our last read or write. */
  private pos = 0;
  private written = false;
  private helpShown = false;
  private closed = false;
  readonly owned = new Set<number>();

  constructor(private readonly shared: ControlShared) {
    shared.sessions.add(this);
  }

  tied(id: number): boolean {
    for (const s of this.shared.sessions) if (s.owned.has(id)) return true;
    return false;
  }

  read(offset: number, length: number): Buffer {
    if (this.rewound.length > 0 && offset === this.pos) this.out.unshift(this.rewound);
    else this.seekBack(offset);
    this.rewound = EMPTY;
    if (!this.written && !this.helpShown) {
      this.helpShown = true;
      this.out.push(Buffer.from(helpText()));
    }
    const data = length > 0 ? this.out.take(length) : EMPTY;
    this.lastRead = data;
    this.pos = offset + data.length;
    return data;
  }

  write(data: Buffer, offset: number, signal?: WriteSignal): number | Promise<number> {
    const back = this.pos - offset;
    if (back > 0 && back < this.lastRead.length) this.rewound = this.lastRead.subarray(this.lastRead.length - back);
    else if (offset !== this.pos) this.rewound = EMPTY;
    this.lastRead = EMPTY;
    this.pos = offset + data.length;
    if (!this.written) {
      this.written = true;
      this.out.clear(); // only unread help can be there
    }
    const unread = this.out.size + this.rewound.length;
    if (unread >= OUTPUT_LIMIT) {
      throw new ProcError('EBUSY', `control: ${unread} bytes of results are unread (at most ${OUTPUT_LIMIT}); read them first`);
    }
    const lines = this.wholeLines(data);
    if (lines.length === 0) return data.length;
    const { machine, syncClock, scheduler } = this.shared;
    // This write's commands answer to its own sender's signals (another write may follow on this file).
    const session: Session = signal ? { owned: this.owned, tied: (id) => this.tied(id), interrupted: () => signal.interrupted() } : this;
    const job = batchJob(machine, syncClock, lines, { session, room: OUTPUT_LIMIT - unread, empty: unread === 0, budget: this.shared.budget });
    const done = (r: BatchResult): number => {
      if (!this.closed && r.lines.length > 0) this.out.push(Buffer.from(`${r.lines.join('\n')}\n`));
      if (r.error) throw r.error;
      return data.length;
    };
    const r = scheduler.run(job);
    return r instanceof Promise ? r.then(done) : done(r);
  }

  /**
   * The whole lines this write completes, with the line an earlier write began in front; the
   * bytes after the last newline wait for theirs. A line longer than MAX_LINE_BYTES is kept
   * only that far (plus a byte, so that it is refused as too long when its newline comes).
   */
  private wholeLines(data: Buffer): Buffer {
    const nl = data.lastIndexOf(0x0a);
    if (nl < 0) {
      this.partial = clip(Buffer.concat([this.partial, clip(data)]));
      return EMPTY;
    }
    const lines = this.partial.length > 0 ? Buffer.concat([this.partial, data.subarray(0, nl + 1)]) : data.subarray(0, nl + 1);
    this.partial = clip(Buffer.from(data.subarray(nl + 1)));
    return lines;
  }

  release(): void {
    this.closed = true;
    this.out.clear();
    this.partial = EMPTY;
    this.lastRead = EMPTY;
    this.rewound = EMPTY;
    this.shared.sessions.delete(this);
    // The processes this file made die with it (after any command still in progress).
    const ids = [...this.owned];
    this.owned.clear();
    if (ids.length === 0) return;
    try {
      void Promise.resolve(this.shared.scheduler.run(exitAll(this.shared.machine, ids))).catch((err: unknown) => log('exit on close: %O', err));
    } catch (err) {
      log('exit on close: %O', err); // the daemon is stopping: the machine goes with it
    }
  }

  /** An offset inside the last read: the caller seeked back over bytes it did not use; give them back. */
  private seekBack(offset: number): void {
    const back = this.pos - offset;
    if (back > 0 && back < this.lastRead.length) this.out.unshift(this.lastRead.subarray(this.lastRead.length - back));
    this.lastRead = EMPTY;
    this.pos = offset;
  }
}

/** The first MAX_LINE_BYTES + 1 bytes: enough to refuse a line as too long. */
function clip(b: Buffer): Buffer {
  return b.length > MAX_LINE_BYTES + 1 ? b.subarray(0, MAX_LINE_BYTES + 1) : b;
}

/** `mm exit` for each process a closed control file owned that is still alive. */
function* exitAll(machine: Machine, ids: readonly number[]): Job<void> {
  for (const id of ids) {
    if (!machine.procs.mms.has(id)) continue;
    const o = yield* commandJob(machine, { verb: 'mm exit', mm: id }, detachedSession());
    log('control closed: mm exit mm=%d → %s', id, o.line);
  }
}

/** The `/control` entry for buildProcTree: mode 0600, one result queue per open. */
export function controlEntry(machine: Machine, syncClock: () => void, scheduler: JobRunner, budget?: CommandBudget): FileEntry {
  const shared: ControlShared = { machine, syncClock, scheduler, sessions: new Set(), budget };
  return {
    path: '/control',
    mode: 0o600,
    writable: true,
    open: (_flags: number): FileHandle => new ControlHandle(shared),
  };
}
