import debugFactory from 'debug';
import type { Machine } from '../model';
import type { FileEntry, FileHandle, WriteSignal } from '../procfs/types';
import { OUTPUT_LIMIT, ProcError } from '../uapi';
import { type BatchResult, batchJob, onlyObservers, planBatch } from './batch';
import { type Session, commandJob, detachedSession } from './execute';
import { MAX_LINE_BYTES, SPECS, usageOf } from '../uapi/grammar';
import { type CommandBudget, type Job, type JobRunner, runToEnd } from './job';

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
    'failed"). A write returns once its lines parse and are queued; commands run one at a',
    'time, in the order written (stats, config and mm list at once). A read waits for the',
    "results; close waits for the commands its process wrote and fails with the first",
    'failure: EINVAL (ENOMEM when memory ran out, EIO if check finds a broken invariant,',
    'EINTR if a signal stopped it). A signal to a reader or closer waiting on a command',
    'stops it at its next step.',
    "(bash's echo and printf builtins write line by line, one batch per line; cat writes",
    'a file of commands in blocks of up to 128 KiB, each block a batch.)',
    `Unread results are kept up to ${OUTPUT_LIMIT >> 20} MiB: a write whose results could pass that fails with`,
    'EBUSY before anything runs (one command alone, with nothing unread, always runs).',
    `At most ${MAX_QUEUED_WRITES} writes are queued on a mount (a user other than root: ${MAX_QUEUED_WRITES_PER_USER}); past that EAGAIN.`,
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

/**
 * Writes whose commands are queued or running at once, on the whole mount. A write returns
 * once queued; each holds its bytes until it has run, and over FUSE a reader or close(2)
 * waiting on it holds one of libfuse's threads: this bounds both.
 */
export const MAX_QUEUED_WRITES = 1024;
/** Bytes of command lines queued at once on the whole mount (a write is at most 128 KiB: FUSE's max_write). */
export const MAX_QUEUED_BYTES = 16 << 20;
/** What one user other than root and the daemon's own may have queued: a quarter, as for handles. */
export const MAX_QUEUED_WRITES_PER_USER = MAX_QUEUED_WRITES / 4;
export const MAX_QUEUED_BYTES_PER_USER = MAX_QUEUED_BYTES / 4;

/** Writes and bytes queued, for the mount and per user. */
class QueueCaps {
  writes = 0;
  bytes = 0;
  private readonly byUser = new Map<number, { writes: number; bytes: number }>();
  private readonly owner = process.getuid?.() ?? 0;

  /** Why a write of `bytes` from `uid` may not queue now (EAGAIN), or null. */
  refusal(uid: number | undefined, bytes: number): string | null {
    if (this.writes + 1 > MAX_QUEUED_WRITES || this.bytes + bytes > MAX_QUEUED_BYTES) {
      return `control: ${this.writes} writes (${this.bytes} bytes) of commands are queued or running on this mount, at most ${MAX_QUEUED_WRITES} (${MAX_QUEUED_BYTES} bytes); nothing was queued (read results, then write again)`;
    }
    if (uid === undefined || uid === 0 || uid === this.owner) return null;
    const u = this.byUser.get(uid) ?? { writes: 0, bytes: 0 };
    if (u.writes + 1 > MAX_QUEUED_WRITES_PER_USER || u.bytes + bytes > MAX_QUEUED_BYTES_PER_USER) {
      return `control: uid ${uid} has ${u.writes} writes (${u.bytes} bytes) of commands queued or running, at most ${MAX_QUEUED_WRITES_PER_USER} (${MAX_QUEUED_BYTES_PER_USER} bytes) a user; nothing was queued (read results, then write again)`;
    }
    return null;
  }

  add(uid: number | undefined, bytes: number, sign: 1 | -1): void {
    this.writes += sign;
    this.bytes += sign * bytes;
    if (uid === undefined) return;
    const u = this.byUser.get(uid) ?? { writes: 0, bytes: 0 };
    u.writes += sign;
    u.bytes += sign * bytes;
    if (u.writes > 0) this.byUser.set(uid, u);
    else this.byUser.delete(uid);
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
  readonly caps: QueueCaps;
}

/** One write whose commands are queued or running. */
interface Flight {
  /** The bytes its results are reserved at (planBatch), until they are in the queue. */
  readonly bound: number;
  readonly bytes: number;
  readonly uid: number | undefined;
  readonly pid: number | undefined;
  readonly signal: WriteSignal | undefined;
  started: boolean;
  /** Someone waiting on it was interrupted: its commands stop at their next look. */
  cancelled: boolean;
  /** Its failure was reported already (takeFailure, before it started). */
  reported: boolean;
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
  /** Writes of this handle whose commands are queued or running, in order. */
  private readonly flights = new Set<Flight>();
  /** The first failure of each writer's writes not yet reported (close(2) reports it), by pid. */
  private readonly failures = new Map<number | undefined, ProcError>();
  /** interrupt() calls so far: a write waiting for room queues nothing once one came. */
  private interrupts = 0;
  /** Called whenever a flight ends or is cancelled: readable() and settled() look again. */
  private wakers: (() => void)[] = [];

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
    const lines = this.wholeLines(data);
    return this.queue(lines, data.length, signal);
  }

  /** Results unread or reserved for writes in flight. */
  private unread(): number {
    let reserved = 0;
    for (const f of this.flights) reserved += f.bound;
    return this.out.size + this.rewound.length + reserved;
  }

  /**
   * Check `lines` whole and queue their commands; `n` (the write's count) once queued. A
   * write whose results could pass the unread limit only because of earlier writes of this
   * handle still running waits for them (their results take less than reserved), as every
   * write did before writes returned once queued.
   */
  private queue(lines: Buffer, n: number, signal: WriteSignal | undefined): number | Promise<number> {
    const unread = this.unread();
    if (unread >= OUTPUT_LIMIT && this.flights.size === 0) {
      throw new ProcError('EBUSY', `control: ${unread} bytes of results are unread (at most ${OUTPUT_LIMIT}); read them first`);
    }
    if (lines.length === 0) return n;
    const { machine, syncClock, scheduler, caps } = this.shared;
    const plan = unread >= OUTPUT_LIMIT ? null : planBatch(machine, lines, { room: OUTPUT_LIMIT - unread, empty: unread === 0 });
    if (plan === null || plan.refused?.error?.errno === 'EBUSY') {
      if (this.flights.size > 0) {
        const epoch = this.interrupts;
        return this.until(() => this.flights.size === 0).then(() => {
          if (this.interrupts !== epoch) throw new ProcError('EINTR', 'control: interrupted by a signal while it waited for this file\'s earlier commands; nothing was queued');
          return this.queue(lines, n, signal);
        });
      }
    }
    if (plan === null) throw new ProcError('EBUSY', `control: ${unread} bytes of results are unread (at most ${OUTPUT_LIMIT}); read them first`);
    if (plan.refused) {
      if (!this.closed) this.out.push(Buffer.from(`${plan.refused.lines.join('\n')}\n`));
      throw plan.refused.error;
    }
    if (plan.commands === 0) return n;
    const uid = signal?.uid;
    const refused = caps.refusal(uid, lines.length);
    if (refused !== null) {
      if (!this.closed) this.out.push(Buffer.from(`err ${refused}\n`));
      throw new ProcError('EAGAIN', refused);
    }
    const flight: Flight = { bound: plan.bound, bytes: lines.length, uid, pid: signal?.pid, signal, started: false, cancelled: false, reported: false };
    caps.add(uid, flight.bytes, 1);
    this.flights.add(flight);
    // This write's commands answer to its sender's signals and to those of whoever waits on
    // its results (a reader, a close): the adapter's signal says both; without one (in
    // process), interrupt() below does.
    const session: Session = {
      owned: this.owned,
      tied: (id) => this.tied(id),
      interrupted: () => signal?.interrupted() === true || (signal?.cancel === undefined && flight.cancelled),
    };
    const job = batchJob(machine, syncClock, lines, { session, budget: this.shared.budget });
    const done = (r: BatchResult): void => {
      this.flights.delete(flight);
      caps.add(uid, flight.bytes, -1);
      if (!this.closed) {
        if (r.lines.length > 0) this.out.push(Buffer.from(`${r.lines.join('\n')}\n`));
        if (r.error && !flight.reported && !this.failures.has(flight.pid)) this.failures.set(flight.pid, r.error);
      }
      this.wake();
    };
    const fail = (err: unknown): void => {
      // The daemon is stopping (the scheduler failed every command): nothing more comes.
      log('a write failed: %O', err);
      done({ lines: [], error: new ProcError('EIO', `control: ${err instanceof Error ? err.message : String(err)}`) });
    };
    const tracked = (function* (): Job<BatchResult> {
      flight.started = true;
      return yield* job;
    })();
    // Commands that only look (stats, config, mm list) need no turn among other files'
    // commands: they run now, between slices of whatever runs, as a read of meminfo would —
    // or, behind this handle's own writes, as soon as those end. They never count as the
    // scheduler's steps, so a record replays them the same either way.
    if (onlyObservers(lines)) {
      const now = (): void => done(runToEnd(tracked));
      if (this.flights.size === 1) now();
      else void this.until(() => !this.before(flight)).then(now, fail);
      return n;
    }
    try {
      const r = scheduler.run(tracked);
      if (r instanceof Promise) r.then(done, fail);
      else done(r);
    } catch (err) {
      fail(err);
    }
    return n;
  }

  /** Is some other flight of this handle ahead of `f`? */
  private before(f: Flight): boolean {
    for (const g of this.flights) return g !== f;
    return false;
  }

  /** A promise that settles once `cond` holds (looked at whenever a flight ends or is cancelled). */
  private until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => {
      const look = (): void => {
        if (cond()) resolve();
        else this.wakers.push(look);
      };
      this.wakers.push(look);
    });
  }

  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const look of w) look();
  }

  /**
   * Flights whose results a read waits for: running, or queued and not cancelled (a cancelled
   * one ends at its next look; one still queued may wait long behind other files' commands).
   */
  private unsettledForRead(): boolean {
    for (const f of this.flights) if (f.started || !f.cancelled) return true;
    return false;
  }

  /**
   * Flights (of `pid`, when given) a close waits for: those not cancelled. One cancelled — its
   * waiter got a signal — holds nobody: it stops at its next look (or, for mm exit and
   * munmap, which cannot stop part way, runs to its end) without its client.
   */
  private unsettled(pid?: number): boolean {
    for (const f of this.flights) if ((pid === undefined || f.pid === undefined || f.pid === pid) && !f.cancelled) return true;
    return false;
  }

  readable(): Promise<void> | null {
    if (this.out.size > 0 || this.rewound.length > 0 || !this.unsettledForRead()) return null;
    const size = this.out.size;
    return this.until(() => this.out.size > size || !this.unsettledForRead());
  }

  settled(pid?: number): Promise<void> | null {
    return this.unsettled(pid) ? this.until(() => !this.unsettled(pid)) : null;
  }

  takeFailure(pid?: number): ProcError | null {
    const mine = (p: number | undefined): boolean => pid === undefined || p === undefined || p === pid;
    let f: ProcError | null = null;
    for (const [p, err] of this.failures) {
      if (!mine(p)) continue;
      f ??= err;
      this.failures.delete(p);
    }
    // A write stopped by a signal that has not ended yet: say so now (once), not when it ends.
    for (const g of this.flights) {
      if (!mine(g.pid) || !g.cancelled || g.reported) continue;
      g.reported = true;
      f ??= new ProcError('EINTR', 'control: interrupted by a signal; its commands stop at their next look');
    }
    return f;
  }

  interrupt(): void {
    this.interrupts++;
    for (const f of this.flights) {
      if (f.cancelled) continue;
      f.cancelled = true;
      f.signal?.cancel?.();
    }
    this.wake();
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
  const shared: ControlShared = { machine, syncClock, scheduler, sessions: new Set(), budget, caps: new QueueCaps() };
  return {
    path: '/control',
    mode: 0o600,
    writable: true,
    open: (_flags: number): FileHandle => new ControlHandle(shared),
  };
}
