import { createHash } from 'node:crypto';
import type { Machine } from '../model';
import { buildProcTree, fixedFilesFor, type BuddyinfoFormat, type FileEntry, type FileHandle, type ProcTree } from '../procfs';
import type { WriteSignal } from '../procfs/types';
import { controlEntry, execute } from '../control';
import type { CommandBudget } from '../control';
import { KscrubError, MAX_TICK_NS } from '../uapi';
import { Scheduler } from './scheduler';

// Record and replay (mount --record, kscrubfs replay). A session is what changed the machine,
// in order: the bytes of every write to /control and /sys/vm/*, which control file they went
// to (a process made by `mm new` dies with its file, so opens and closes count), and the
// virtual time after every wall-clock sync that moved it (a live clock). The model is
// deterministic, so replaying those on a fresh machine of the same config must render every
// file of FILES byte for byte as the mount did when it stopped: the record ends with one
// sha256 per file, and replay compares.
//
// Events are recorded at the procfs entries (what the FUSE adapter calls), so replay drives
// the very same entries in process, batches, partial lines and sessions included.

/** One thing that changed the machine. `n` counts events from 1; `t` is the model's now when it happened. */
export type RecordEvent =
  | { readonly ev: 'open'; readonly n: number; readonly t: number; readonly fd: number }
  | { readonly ev: 'close'; readonly n: number; readonly t: number; readonly fd: number }
  /** A write(2): `fd` for /control (its open), absent for a sysctl; bytes as `data` (UTF-8) or `b64`. */
  | { readonly ev: 'write'; readonly n: number; readonly t: number; readonly path: string; readonly fd?: number; readonly offset: number; readonly data?: string; readonly b64?: string }
  /**
   * A wall-clock sync moved virtual time to `t`. `during`: it happened inside event `during`
   * (a write syncs before its commands run), so replay applies it there, not after.
   */
  | { readonly ev: 'advance'; readonly n: number; readonly t: number; readonly during?: number }
  /**
   * The sender of write `of` was interrupted (a signal: FUSE_INTERRUPT), and its commands saw
   * it at their `check`-th look (they look at fixed points: between commands, between steps
   * of a touch or tick): replay interrupts it at the same look.
   */
  | { readonly ev: 'interrupt'; readonly n: number; readonly t: number; readonly of: number; readonly check: number }
  /**
   * The session stopped (umount, a signal) while the commands of the writes `during` were
   * still running: the digests that follow show the machine part way through them, after
   * `steps` steps of the scheduler (absent in records older than it: those cannot be replayed).
   */
  | { readonly ev: 'stopped'; readonly n: number; readonly t: number; readonly during: readonly number[]; readonly steps?: number };

/** Where recorded events go (the CLI appends them to the record file). */
export interface Recorder {
  event(e: RecordEvent): void;
}

/** Path → sha256 (hex) of what the file shows: every row of FILES the machine has, in table order. */
export type Digests = Readonly<Record<string, string>>;

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * What every file shows now, as digests, without syncing the clock (a digest must not move
 * the time it digests). /control has no text of its own: its row digests the `stats` line.
 */
export function digestFiles(machine: Machine, buddyinfo: BuddyinfoFormat): Digests {
  const out: Record<string, string> = {};
  for (const f of fixedFilesFor(machine)) {
    out[f.path] = sha256(f.render ? f.render(machine, { buddyinfo }) : execute(machine, { verb: 'stats' }));
  }
  return out;
}

/** Encode a write's bytes: as text when they are UTF-8 (readable, editable), else base64. */
function bytesField(data: Buffer): { data: string } | { b64: string } {
  const text = data.toString('utf8');
  return Buffer.from(text, 'utf8').equals(data) ? { data: text } : { b64: data.toString('base64') };
}

/**
 * A session being recorded: wraps a mount's wall clock and tree so that every change reaches
 * `rec`. Build the tree with `syncClock` (the wrapped sync), then pass it through `tree()`.
 */
export class RecordingSession {
  private n = 0;
  private fds = 0;
  /** The event whose handler is running (a sync then belongs to it), 0 when none. */
  private inside = 0;
  readonly syncClock: () => void;

  /**
   * An advance between events, not yet written: the live clock moves on every read, and
   * advancing in steps or at once ends the same (advanceTo runs each background event at its
   * own time), so only the last before the next event matters. Readers alone then add nothing
   * to the record, however often they read.
   */
  private pendingAdvance: number | null = null;
  /** Where the clock stood before the advance held back began. */
  private pendingFrom = 0;

  /** `steps`: the daemon scheduler's step count (Scheduler.steps), to say where a stopped session stopped. */
  constructor(private readonly machine: Machine, syncClock: () => void, private readonly rec: Recorder, private readonly steps: () => number = () => 0) {
    this.syncClock = (): void => {
      const before = this.machine.now;
      syncClock();
      const t = this.machine.now;
      if (t === before) return;
      if (this.inside) {
        this.flush();
        this.advance(before, t, this.inside);
      } else {
        if (this.pendingAdvance === null) this.pendingFrom = before;
        this.pendingAdvance = t;
      }
    };
  }

  /** Write the advance held back, if any (before the next event, and before the digests). */
  flush(): void {
    if (this.pendingAdvance === null) return;
    this.advance(this.pendingFrom, this.pendingAdvance);
    this.pendingAdvance = null;
  }

  /**
   * Advance events from `from` to `to`, each at most MAX_TICK_NS on from the last, as replay
   * accepts them: a live clock left unread for long (a fast --speed) moves further at once.
   * Advancing in steps ends where one jump would (advanceTo runs every event at its time).
   */
  private advance(from: number, to: number, during?: number): void {
    for (let t = from + MAX_TICK_NS; t < to; t += MAX_TICK_NS) this.rec.event({ ev: 'advance', n: ++this.n, t, ...(during !== undefined && { during }) });
    this.rec.event({ ev: 'advance', n: ++this.n, t: to, ...(during !== undefined && { during }) });
  }

  /** The same tree, with the writable entries (control, sysctls) reporting to the recorder. */
  tree(tree: ProcTree): ProcTree {
    const files = new Map<string, FileEntry>();
    for (const [path, entry] of tree.files) files.set(path, entry.writable ? this.entry(entry) : entry);
    return { files, dirs: tree.dirs };
  }

  private entry(entry: FileEntry): FileEntry {
    const control = entry.path === '/control';
    return {
      path: entry.path,
      mode: entry.mode,
      writable: entry.writable,
      open: (flags: number): FileHandle => {
        const h = entry.open(flags);
        const fd = control ? ++this.fds : undefined;
        if (fd !== undefined) {
          this.flush();
          this.rec.event({ ev: 'open', n: ++this.n, t: this.machine.now, fd });
        }
        const wrapped: FileHandle = { read: (o, l) => h.read(o, l) };
        if (h.readInto) wrapped.readInto = (b, o, l) => h.readInto!(b, o, l);
        if (h.readable) wrapped.readable = () => h.readable!();
        if (h.settled) wrapped.settled = () => h.settled!();
        if (h.takeFailure) wrapped.takeFailure = () => h.takeFailure!();
        if (h.interrupt) wrapped.interrupt = () => h.interrupt!();
        if (h.write) {
          wrapped.write = (data, offset, signal) => this.within({ ev: 'write', path: entry.path, ...(fd !== undefined ? { fd } : {}), offset, ...bytesField(data) },
            (n) => h.write!(data, offset, signal && this.noting(n, signal)), h);
        }
        wrapped.release = () => {
          if (fd !== undefined) this.within({ ev: 'close', fd }, () => h.release?.());
          else h.release?.();
        };
        return wrapped;
      },
    };
  }

  /** `signal`, and the first time it says the write `of` was interrupted, an `interrupt` event. */
  private noting(of: number, signal: WriteSignal): WriteSignal {
    let noted = false;
    let check = 0;
    return {
      uid: signal.uid,
      pid: signal.pid,
      ...(signal.cancel && { cancel: () => signal.cancel!() }),
      interrupted: () => {
        check++;
        const yes = signal.interrupted();
        if (yes && !noted) {
          noted = true;
          this.flush();
          this.rec.event({ ev: 'interrupt', n: ++this.n, t: this.machine.now, of, check });
        }
        return yes;
      },
    };
  }

  /** Record `e` (numbered, timed now), then run its handler; syncs inside it are marked as its own. */
  private within<T>(e: Omit<Extract<RecordEvent, { ev: 'write' }>, 'n' | 't'> | Omit<Extract<RecordEvent, { ev: 'close' }>, 'n' | 't'>, run: (n: number) => T, h?: FileHandle): T {
    this.flush();
    const n = ++this.n;
    const { ev, ...rest } = e;
    this.rec.event({ ev, n, t: this.machine.now, ...rest } as RecordEvent);
    const outer = this.inside;
    this.inside = n;
    try {
      const r = run(n);
      // A write returns before its commands end (once queued, or a sysctl's at once): it is
      // in flight until its handle has settled.
      const track = (): void => {
        const settled = h?.settled?.();
        if (!settled) return;
        this.inFlight.add(n);
        const done = (): void => void this.inFlight.delete(n);
        settled.then(done, done);
      };
      if (r instanceof Promise) r.then(track, () => undefined);
      else track();
      return r;
    } finally {
      this.inside = outer;
    }
  }

  /** Number the next event (one the session's owner writes itself: the stop). */
  nextN(): number {
    return ++this.n;
  }

  /** Writes whose commands were still running (their events' n), as the session stops. */
  running(): readonly number[] {
    return [...this.inFlight];
  }

  private readonly inFlight = new Set<number>();
}

/**
 * Move a replay's clock to event `e`'s time. No event may jump it further than control's
 * `tick` may (MAX_TICK_NS): a record is input from outside, and a jump to t = 1e300 is no
 * session a mount could have had (the recorder splits a long idle stretch into steps of at
 * most that, RecordingSession.advance).
 */
function advanceTo(machine: Machine, e: RecordEvent): void {
  if (e.t - machine.now > MAX_TICK_NS) {
    throw new KscrubError('KSCRUB_BAD_INPUT', `event ${e.n} (${e.ev}) moves virtual time from ${Math.round(machine.now)} ns to ${e.t} ns, `
      + `more than the ${MAX_TICK_NS / 3600e9} h a tick may (a recording mount writes a longer stretch as steps of at most that); nothing after it was replayed`);
  }
  machine.advanceTo(e.t);
}

/** How a replay ended: the digests of the replayed machine, and where its clock stood. */
export interface ReplayOutcome {
  readonly digests: Digests;
  readonly now: number;
}

/**
 * Replay `events` on `machine` (fresh, of the recorded config): the same tree as a mount's,
 * driven in process in the recorded order; each write waits for its commands, as the
 * recording client did. Virtual time moves only where the record says: a write or close
 * applies the advances recorded inside it, the rest at their place. A write whose sender was
 * interrupted is interrupted at the recorded step; a session stopped part way through a
 * command stops at the recorded step, leaving it part way as the daemon did.
 */
export async function replayEvents(machine: Machine, buddyinfo: BuddyinfoFormat, events: readonly RecordEvent[], budget?: CommandBudget): Promise<ReplayOutcome> {
  const scheduler = new Scheduler();
  const interruptAt = new Map<number, number>();
  for (const e of events) {
    if (e.ev === 'interrupt') interruptAt.set(e.of, e.check);
    if (e.ev === 'stopped' && e.steps !== undefined) scheduler.haltAt(e.steps, 'the recorded session stopped here');
  }
  let current = 0;
  let next = 0;
  /** The advances recorded inside event `current` that follow it in the record. */
  const syncClock = (): void => {
    while (next < events.length) {
      const e = events[next]!;
      if (e.ev !== 'advance' || e.during === undefined || e.during !== current) break;
      advanceTo(machine, e);
      next++;
    }
  };
  const tree = buildProcTree(machine, { buddyinfo, syncClock, control: controlEntry(machine, syncClock, scheduler, budget) });
  const control = tree.files.get('/control')!;
  const open = new Map<number, FileHandle>();
  while (next < events.length) {
    const e = events[next++]!;
    advanceTo(machine, e);
    if (e.ev === 'advance' || e.ev === 'interrupt' || e.ev === 'stopped') continue;
    current = e.n;
    try {
      switch (e.ev) {
        case 'open':
          open.set(e.fd, control.open(2 /* O_RDWR */));
          break;
        case 'close':
          open.get(e.fd)?.release?.();
          open.delete(e.fd);
          break;
        case 'write': {
          const bytes = e.b64 !== undefined ? Buffer.from(e.b64, 'base64') : Buffer.from(e.data ?? '', 'utf8');
          const h = e.fd !== undefined ? open.get(e.fd) : tree.files.get(e.path)?.open(1 /* O_WRONLY */);
          if (!h?.write) break;
          const at = interruptAt.get(e.n);
          let check = 0;
          const signal = at === undefined ? undefined : { interrupted: () => ++check >= at };
          // A refused write (EINVAL, EBUSY) refused the same way when recorded: it is part of the session.
          try {
            await h.write(bytes, e.offset, signal);
          } catch {
            /* as recorded */
          }
          // Its commands end before the next event, as they did for the recording client's
          // next request on the control file (a read, a close) or before its next write.
          await h.settled?.();
          h.takeFailure?.();
          break;
        }
      }
    } finally {
      current = 0;
    }
  }
  // Processes of files closed last exit through the scheduler: wait for them (unless the
  // session stopped part way, as its daemon did).
  try {
    await scheduler.run((function* () { /* after everything queued */ })());
  } catch {
    /* halted where the record stopped */
  }
  return { digests: digestFiles(machine, buddyinfo), now: machine.now };
}
