import { constants as fsConstants } from 'node:fs';
import createDebug from 'debug';
import type Fuse from 'fuse-native';
import type { FileHandle, ProcTree, WriteSignal } from '../procfs/types';
import { ProcError } from '../uapi';
import { performance } from 'node:perf_hooks';
import type { Request } from './binding';
import { killedInExit } from './dying';
import { EACCES, EBADF, EINTR, EMFILE, ENFILE, ENOENT, EPERM, toErrno } from './errno';

// A thin adapter from a ProcTree to fuse-native's ops. It owns the open handles (each one a
// snapshot or stream made by procfs at open) and nothing else: paths, modes and content all
// come from the tree. Every op goes through guard(), which replies exactly once.

const log = createDebug('kscrubfs:fuse');

const { S_IFDIR, S_IFREG, O_RDONLY } = fsConstants;
/** The access-mode bits of open(2) flags (Linux; Node does not export it). */
const O_ACCMODE = 0o3;
/** Directories are r-x for everyone, as /proc's are. */
const DIR_MODE = 0o555;
/**
 * Handle numbers: a handle that waits in close(2)'s FLUSH (control: its writes' commands)
 * gets one with the top bit set; the native binding answers every other FLUSH itself, at no
 * cost to the event loop (native/README.md).
 */
const FLUSH_FD_BIT = 0x8000_0000;
const MAX_FD = FLUSH_FD_BIT - 1;
/**
 * How often a request waiting on a command's results (a read, a FLUSH) looks whether the
 * kernel interrupted it: the native binding raises that flag in rounds of the same length.
 */
const INTERRUPT_POLL_MS = 10;
/**
 * Open handles the daemon keeps at most: an unread handle costs a few hundred bytes (it
 * renders at its first read), so this bounds them to tens of MB — four times the 65,536
 * descriptors a process may raise its limit to without root.
 */
export const MAX_OPEN_HANDLES = 1 << 18;
/**
 * Handles one user other than root (and the daemon's own) may hold by default: a quarter of
 * the mount's, so that no one user (nor three) can take them all.
 */
export const MAX_HANDLES_PER_USER = MAX_OPEN_HANDLES / 4;
/**
 * The handles only root may take (as the kernel lets only CAP_SYS_ADMIN open files past
 * file-max): users together stop an eighth short of MAX_OPEN_HANDLES.
 */
const ROOT_RESERVE = MAX_OPEN_HANDLES / 8;
/** Wall time the fair queue serves requests before it lets the event loop in (as a command's slice). */
const SERVE_MS = 8;
/** Entries below this directory answer as /proc/sys's do (see the ops that change names). */
const SYSCTL_DIR = '/sys';

/**
 * The ops we implement, each counted. libfuse's high-level API folds the kernel's LOOKUP into
 * getattr, so `getattr` counts both. `flush` counts only the FLUSHes that reach JS (control's).
 */
export const OP_NAMES = [
  'getattr', 'readdir', 'opendir', 'releasedir', 'open', 'read', 'write', 'flush',
  'truncate', 'ftruncate', 'release', 'statfs',
  'create', 'mknod', 'mkdir', 'symlink', 'link', 'rename', 'unlink', 'rmdir', 'chmod', 'chown', 'utimens',
] as const;
export type OpName = (typeof OP_NAMES)[number];

/** Requests per op since mount, plus how many were answered with an errno. */
export type OpCounts = Record<OpName | 'failed', number>;

export interface Adapter {
  readonly ops: Fuse.Operations;
  readonly counts: OpCounts;
  /** Handles opened and not yet released. */
  openHandles(): number;
  /** Handles `uid` opened and has not released (0 when callers are unknown). */
  handlesOf(uid: number): number;
}

/** A reply is the callback's arguments: a code (0, a byte count, or a negative errno) and values. */
type Reply = readonly [code: number, ...values: unknown[]];
type Callback = (...reply: unknown[]) => void;

export interface AdapterOptions {
  /** mtime/ctime/atime of every entry (default: now). */
  mountTime?: Date;
  /**
   * The FUSE request whose op is being called (binding.ts), or null when the binding does not
   * say (the stock fuse-native): then every request is served as it comes and handles are
   * capped for the mount only.
   */
  caller?: () => Request | null;
  /** Handles one user other than root may hold (default MAX_HANDLES_PER_USER). */
  maxHandlesPerUser?: number;
}

/**
 * Requests waiting to be served, one queue per user, served in turns: a user who sends many
 * (8 loops reading a 64-node zoneinfo) waits for their own, never ahead of another user's.
 * Requests arrive each in its own callback of one event-loop turn; they are served after it
 * (setImmediate), so all that arrived together are ordered by turns.
 */
class FairQueue {
  private readonly byUser = new Map<number, (() => void)[]>();
  private scheduled = false;

  push(uid: number, serve: () => void): void {
    const q = this.byUser.get(uid);
    if (q) q.push(serve);
    else this.byUser.set(uid, [serve]);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const end = performance.now() + SERVE_MS;
    for (;;) {
      const first = this.byUser.entries().next();
      if (first.done) return;
      const [uid, q] = first.value;
      const serve = q.shift()!;
      // The user served goes to the back of the turn order.
      this.byUser.delete(uid);
      if (q.length > 0) this.byUser.set(uid, q);
      serve();
      if (performance.now() >= end) {
        if (this.byUser.size > 0) this.schedule();
        return;
      }
    }
  }
}

export function createAdapter(tree: ProcTree, opts: AdapterOptions = {}): Adapter {
  const mountTime = opts.mountTime ?? new Date();
  // Entries belong to whoever serves them: root's mount is root's (as /proc is); a user's own
  // mount is the user's, so default_permissions lets them write its sysctls and control.
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const counts = Object.fromEntries([...OP_NAMES, 'failed'].map((name) => [name, 0])) as OpCounts;
  const handles = new Map<number, FileHandle>();
  const caller = opts.caller ?? ((): null => null);
  const maxPerUser = opts.maxHandlesPerUser ?? MAX_HANDLES_PER_USER;
  /** The uid that opened each handle, and how many each uid holds (when callers are known). */
  const openedBy = new Map<number, number>();
  const heldBy = new Map<number, number>();
  const queue = new FairQueue();
  /** The request whose handler is running (null: unknown, or none). */
  let current: Request | null = null;
  let lastFd = 0;
  /** Requests waiting on a handle's commands (reads, FLUSHes): what to do if the kernel interrupts one. */
  const waiters = new Map<Request, { readonly abandoned: (() => boolean) | undefined; readonly stop: () => void }>();
  let poll: NodeJS.Timeout | null = null;

  /**
   * Reply once `until` settles, with `then`'s reply. Meanwhile, if the kernel interrupts the
   * request (its sender got a signal: Ctrl-C, SIGKILL), the handle's commands are told to stop
   * at their next look and the request is answered EINTR at once: the sender is never held
   * for a command it no longer waits for. `abandoned` says the same where no INTERRUPT comes.
   */
  function waitFor<T>(request: Request | null, handle: FileHandle, until: Promise<T>, then: (v: T) => Reply | Promise<Reply>, abandoned?: () => boolean): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      let done = false;
      if (request) {
        waiters.set(request, { abandoned, stop: () => {
          done = true;
          handle.interrupt?.();
          resolve([EINTR]);
        } });
        if (!poll) {
          poll = setInterval(() => {
            // Deleting the entry being visited is safe in a Map's iteration: no copy per round.
            for (const [r, w] of waiters) {
              if (!r.interrupted() && !w.abandoned?.()) continue;
              waiters.delete(r);
              w.stop();
            }
            if (waiters.size === 0 && poll) {
              clearInterval(poll);
              poll = null;
            }
          }, INTERRUPT_POLL_MS);
        }
      }
      until.then((v) => {
        if (done) return;
        done = true;
        if (request) waiters.delete(request);
        try {
          resolve(then(v));
        } catch (err) {
          reject(err);
        }
      }, (err: unknown) => {
        if (done) return;
        done = true;
        if (request) waiters.delete(request);
        reject(err);
      });
    });
  }

  /** What a write's commands look at: its sender's interrupt, then (cancel) those of whoever waits on them. */
  function writeSignal(request: Request): WriteSignal {
    let cancelled = false;
    return {
      uid: request.uid,
      pid: request.pid,
      interrupted: () => cancelled || request.interrupted(),
      cancel: () => void (cancelled = true),
    };
  }

  /**
   * Run `handler` and reply with its result. A throw becomes an errno (ProcError → its code,
   * anything else → EIO) so a bug answers one request with EIO instead of killing the daemon.
   */
  function guard<A extends unknown[]>(name: OpName, handler: (...args: A) => Reply | Promise<Reply>) {
    return (...args: [...A, Callback]): void => {
      const cb = args[args.length - 1] as Callback;
      const input = args.slice(0, -1) as unknown[] as A;
      counts[name]++;
      // Who sent it can be asked only now, inside fuse-native's call.
      const request = caller();
      const reply = (r: Reply): void => {
        if (r[0] < 0) counts.failed++;
        if (log.enabled) log('%s %s → %d', name, describe(input), r[0]);
        request?.answered();
        cb(...r);
      };
      const refuse = (err: unknown): void => {
        if (err instanceof ProcError) log('%s %s: %s %s', name, input[0], err.code, err.message);
        else log('%s %s: unexpected error, replying EIO: %O', name, input[0], err);
        reply([toErrno(err)]);
      };
      const serve = (): void => {
        let r: Reply | Promise<Reply>;
        current = request;
        try {
          r = handler(...input);
        } catch (err) {
          refuse(err);
          return;
        } finally {
          current = null;
        }
        // A command that runs in slices answers later; other requests are served meanwhile.
        if (r instanceof Promise) r.then(reply, refuse);
        else reply(r);
      };
      if (request) queue.push(request.uid, serve);
      else serve();
    };
  }

  function stat(path: string): Fuse.Stat {
    const times = { atime: mountTime, mtime: mountTime, ctime: mountTime };
    const children = tree.dirs.get(path);
    if (children) {
      const subdirs = children.filter((name) => tree.dirs.has(join(path, name))).length;
      return { mode: S_IFDIR | DIR_MODE, nlink: 2 + subdirs, size: 0, uid: owner.uid, gid: owner.gid, ...times };
    }
    const file = tree.files.get(path);
    // st_size is the length of the text, as LXCFS reports it: sendfile and splice (shutil.copyfile,
    // cp, tar) copy up to st_size, and Node's fs.readFile reads no further. fstat(2) reaches us
    // as a GETATTR without the handle (the kernel's fuse_getattr passes none), so the entry
    // keeps the text it measured and an open's first read right after serves that same text
    // (procfs/index.ts); attr_timeout 0 (fuse/mount.ts) makes every stat ask. Without an
    // fgetattr op libfuse answers a GETATTR that carries a handle (lseek SEEK_END) the same way.
    // Reads never stop at st_size (direct_io). Writable files (sysctls, control) stay 0.
    if (file) {
      return { mode: S_IFREG | file.mode, nlink: 1, size: file.size?.() ?? 0, uid: owner.uid, gid: owner.gid, ...times };
    }
    throw new ProcError('ENOENT', `no such entry: ${path}`);
  }

  function exists(path: string): boolean {
    return tree.files.has(path) || tree.dirs.has(path);
  }

  /** unlink, rmdir, rename of an entry that exists: see the ops below. */
  function removeErrno(path: string): number {
    return path.startsWith(`${SYSCTL_DIR}/`) ? EACCES : EPERM;
  }

  function fileAt(path: string) {
    const file = tree.files.get(path);
    if (file) return file;
    if (tree.dirs.has(path)) throw new ProcError('EISDIR', `${path} is a directory`);
    throw new ProcError('ENOENT', `no such file: ${path}`);
  }

  function dirAt(path: string): readonly string[] {
    const children = tree.dirs.get(path);
    if (children) return children;
    if (tree.files.has(path)) throw new ProcError('ENOTDIR', `${path} is not a directory`);
    throw new ProcError('ENOENT', `no such directory: ${path}`);
  }

  function allocFd(flush: boolean): number {
    let fd: number;
    do {
      lastFd = lastFd >= MAX_FD ? 1 : lastFd + 1;
      fd = flush ? lastFd | FLUSH_FD_BIT : lastFd;
    } while (handles.has(fd));
    return fd >>> 0;
  }

  const ops: Fuse.Operations = {
    getattr: guard('getattr', (path: string) => [0, stat(path)]),

    readdir: guard('readdir', (path: string) => [0, ['.', '..', ...dirAt(path)]]),
    // fh 0 = "no handle": directories keep no per-open state.
    opendir: guard('opendir', (path: string, _fh: number) => (dirAt(path), [0, 0])),
    releasedir: guard('releasedir', (_path: string, _fd: number) => [0]),

    open: guard('open', (path: string, flags: number) => {
      const file = fileAt(path);
      // Root passes default_permissions on a 0444 file; refuse here, as read-only sysctls do.
      if ((flags & O_ACCMODE) !== O_RDONLY && !file.writable) {
        throw new ProcError('EACCES', `${path} is read-only`);
      }
      // Every handle costs the daemon memory: past MAX_OPEN_HANDLES an open fails as the
      // kernel's does when its file table is full (ENFILE), and users other than root stop
      // ROOT_RESERVE short of it. One user past their own cap gets EMFILE, the answer to a
      // process past its own limit. Root and the daemon's own user (who alone may open a mount
      // without allow_other) meet the mount's cap only, as do unknown callers (the stock binding).
      const uid = current?.uid;
      const privileged = uid === undefined || uid === 0 || uid === owner.uid;
      const limit = privileged ? MAX_OPEN_HANDLES : MAX_OPEN_HANDLES - ROOT_RESERVE;
      if (handles.size >= limit) {
        log('open %s: %d handles are open, at most %d for uid %s: ENFILE', path, handles.size, limit, uid ?? '?');
        return [ENFILE];
      }
      const held = uid === undefined ? 0 : heldBy.get(uid) ?? 0;
      if (!privileged && held >= maxPerUser) {
        log('open %s: uid %d holds %d handles, at most %d: EMFILE', path, uid, held, maxPerUser);
        return [EMFILE];
      }
      const handle = file.open(flags);
      const fd = allocFd(handle.settled !== undefined);
      handles.set(fd, handle);
      if (uid !== undefined) {
        openedBy.set(fd, uid);
        heldBy.set(uid, held + 1);
      }
      return [0, fd];
    }),

    read: guard('read', (_path: string, fd: number, buffer: Buffer, length: number, position: number): Reply | Promise<Reply> => {
      const handle = handles.get(fd);
      if (!handle) return [EBADF];
      const serve = (): Reply => {
        if (handle.readInto) return [handle.readInto(buffer, position, length)];
        const data = handle.read(position, length);
        return [data.copy(buffer, 0, 0, Math.min(length, data.length))];
      };
      // control: nothing unread while this handle's commands run: wait for their results.
      const ready = handle.readable?.() ?? null;
      return ready ? waitFor(current, handle, ready, serve) : serve();
    }),

    write: guard('write', (_path: string, fd: number, buffer: Buffer, length: number, position: number): Reply | Promise<Reply> => {
      const handle = handles.get(fd);
      if (!handle?.write) return [EBADF];
      // fuse-native's buffer is the kernel's memory and goes away after the reply: copy it.
      const request = current;
      const n = handle.write(Buffer.from(buffer.subarray(0, length)), position, request ? writeSignal(request) : undefined);
      return n instanceof Promise ? waitFor(request, handle, n, (written) => [written]) : [n];
    }),

    // Accepted no-ops, so that `echo 5 > file` (open with O_TRUNC) works on writable files.
    truncate: guard('truncate', (path: string, _size: number) => {
      if (!fileAt(path).writable) throw new ProcError('EACCES', `${path} is read-only`);
      return [0];
    }),
    ftruncate: guard('ftruncate', (_path: string, fd: number, _size: number) => [handles.has(fd) ? 0 : EBADF]),

    // What the host's /proc answers (test/integration/robust-files.test.ts runs each on both).
    // procfs finds no name it does not serve, so making one fails ENOENT; the kernel itself
    // answers EEXIST for a name that exists. Removing or renaming an entry: EPERM in the
    // top directory, EACCES below sys/ (proc_sys_permission refuses writes to its
    // directories, even root's). Modes and owners are fixed: EPERM, as /proc/sys says.
    create: guard('create', (_path: string, _mode: number) => [ENOENT]),
    mknod: guard('mknod', (_path: string, _mode: number, _dev: number) => [ENOENT]),
    mkdir: guard('mkdir', (_path: string, _mode: number) => [ENOENT]),
    symlink: guard('symlink', (_target: string, _path: string) => [ENOENT]),
    link: guard('link', (_target: string, _path: string) => [ENOENT]),
    rename: guard('rename', (src: string, dest: string) => [exists(dest) ? removeErrno(src) : ENOENT]),
    unlink: guard('unlink', (path: string) => [removeErrno(path)]),
    rmdir: guard('rmdir', (path: string) => [removeErrno(path)]),
    chmod: guard('chmod', (_path: string, _mode: number) => [EPERM]),
    chown: guard('chown', (_path: string, _uid: number, _gid: number) => [EPERM]),
    // touch(1) on a /proc file succeeds and changes nothing: so here.
    utimens: guard('utimens', (path: string, _atime: unknown, _mtime: unknown) => (stat(path), [0])),

    // close(2): the kernel sends FLUSH on every close (of every descriptor of the open file,
    // dup'd or inherited ones too) and waits for the reply, without the inode lock that it
    // holds across every write (fs/fuse/file.c, fuse_flush). A control write returns once its
    // commands are queued; close waits for those the closing process wrote and fails with the
    // errno of the first that failed (as NFS reports a write's error at close). Other files
    // have nothing to flush: the native binding answers their FLUSH without asking JS (their
    // handle numbers lack FLUSH_FD_BIT); the stock binding asks, and this answers 0 at once.
    flush: guard('flush', (_path: string, fd: number): Reply | Promise<Reply> => {
      const handle = handles.get(fd);
      if (!handle?.settled) return [0];
      const pid = current?.pid;
      const report = (): Reply => {
        const failure = handle.takeFailure?.(pid) ?? null;
        return [failure ? toErrno(failure) : 0];
      };
      const settled = handle.settled(pid);
      // The close of an exit after a crash between a write and its read (a signal to one
      // thread: SIGSEGV, abort) gets no INTERRUPT (src/fuse/dying.ts); its sender's /proc
      // entry says it is dying of a signal: treated as an interrupt.
      const request = current;
      const dying = request ? (): boolean => killedInExit(request.pid) : undefined;
      return settled ? waitFor(request, handle, settled, report, dying) : report();
    }),

    release: guard('release', (_path: string, fd: number) => {
      const handle = handles.get(fd);
      handles.delete(fd);
      const uid = openedBy.get(fd);
      if (uid !== undefined) {
        openedBy.delete(fd);
        const left = (heldBy.get(uid) ?? 1) - 1;
        if (left > 0) heldBy.set(uid, left);
        else heldBy.delete(uid);
      }
      handle?.release?.();
      return [0];
    }),

    // What procfs reports (`stat -f /proc`): no blocks, names up to 255 bytes.
    statfs: guard('statfs', (_path: string) => [0, {
      bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0,
      files: tree.files.size + tree.dirs.size, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255,
    } satisfies Fuse.StatFs]),
  };

  return { ops, counts, openHandles: () => handles.size, handlesOf: (uid: number) => heldBy.get(uid) ?? 0 };
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Path, fd, length, offset — never the buffer. */
function describe(input: readonly unknown[]): string {
  return input.filter((arg) => typeof arg !== 'object').join(' ');
}
