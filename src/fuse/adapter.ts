import { constants as fsConstants } from 'node:fs';
import createDebug from 'debug';
import type Fuse from 'fuse-native';
import type { FileHandle, ProcTree } from '../procfs/types';
import { ProcError } from '../uapi';
import { EACCES, EBADF, ENFILE, ENOENT, EPERM, toErrno } from './errno';

// A thin adapter from a ProcTree to fuse-native's ops. It owns the open handles (each one a
// snapshot or stream made by procfs at open) and nothing else: paths, modes and content all
// come from the tree. Every op goes through guard(), which replies exactly once.

const log = createDebug('kscrubfs:fuse');

const { S_IFDIR, S_IFREG, O_RDONLY } = fsConstants;
/** The access-mode bits of open(2) flags (Linux; Node does not export it). */
const O_ACCMODE = 0o3;
/** Directories are r-x for everyone, as /proc's are. */
const DIR_MODE = 0o555;
const MAX_FD = 0xffff_ffff;
/**
 * Open handles the daemon keeps at most: an unread handle costs a few hundred bytes (it
 * renders at its first read), so this bounds them to tens of MB — four times the 65,536
 * descriptors a process may raise its limit to without root.
 */
export const MAX_OPEN_HANDLES = 1 << 18;
/** Entries below this directory answer as /proc/sys's do (see the ops that change names). */
const SYSCTL_DIR = '/sys';

/**
 * The ops we implement, each counted. libfuse's high-level API folds the kernel's LOOKUP into
 * getattr, so `getattr` counts both. There is deliberately no `flush`: see below.
 */
export const OP_NAMES = [
  'getattr', 'readdir', 'opendir', 'releasedir', 'open', 'read', 'write',
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
}

/** A reply is the callback's arguments: a code (0, a byte count, or a negative errno) and values. */
type Reply = readonly [code: number, ...values: unknown[]];
type Callback = (...reply: unknown[]) => void;

export interface AdapterOptions {
  /** mtime/ctime/atime of every entry (default: now). */
  mountTime?: Date;
}

export function createAdapter(tree: ProcTree, opts: AdapterOptions = {}): Adapter {
  const mountTime = opts.mountTime ?? new Date();
  // Entries belong to whoever serves them: root's mount is root's (as /proc is); a user's own
  // mount is the user's, so default_permissions lets them write its sysctls and control.
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const counts = Object.fromEntries([...OP_NAMES, 'failed'].map((name) => [name, 0])) as OpCounts;
  const handles = new Map<number, FileHandle>();
  let lastFd = 0;

  /**
   * Run `handler` and reply with its result. A throw becomes an errno (ProcError → its code,
   * anything else → EIO) so a bug answers one request with EIO instead of killing the daemon.
   */
  function guard<A extends unknown[]>(name: OpName, handler: (...args: A) => Reply | Promise<Reply>) {
    return (...args: [...A, Callback]): void => {
      const cb = args[args.length - 1] as Callback;
      const input = args.slice(0, -1) as unknown[] as A;
      counts[name]++;
      const reply = (r: Reply): void => {
        if (r[0] < 0) counts.failed++;
        if (log.enabled) log('%s %s → %d', name, describe(input), r[0]);
        cb(...r);
      };
      const refuse = (err: unknown): void => {
        if (err instanceof ProcError) log('%s %s: %s %s', name, input[0], err.code, err.message);
        else log('%s %s: unexpected error, replying EIO: %O', name, input[0], err);
        reply([toErrno(err)]);
      };
      let r: Reply | Promise<Reply>;
      try {
        r = handler(...input);
      } catch (err) {
        refuse(err);
        return;
      }
      // A command that runs in slices answers later; other requests are served meanwhile.
      if (r instanceof Promise) r.then(reply, refuse);
      else reply(r);
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

  function allocFd(): number {
    do lastFd = lastFd >= MAX_FD ? 1 : lastFd + 1;
    while (handles.has(lastFd));
    return lastFd;
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
      // kernel's does when its file table is full. (FUSE does not tell us who opens, so the
      // cap is the daemon's, not a user's.)
      if (handles.size >= MAX_OPEN_HANDLES) {
        log('open %s: %d handles are open, at most %d: ENFILE', path, handles.size, MAX_OPEN_HANDLES);
        return [ENFILE];
      }
      const fd = allocFd();
      handles.set(fd, file.open(flags));
      return [0, fd];
    }),

    read: guard('read', (_path: string, fd: number, buffer: Buffer, length: number, position: number) => {
      const handle = handles.get(fd);
      if (!handle) return [EBADF];
      if (handle.readInto) return [handle.readInto(buffer, position, length)];
      const data = handle.read(position, length);
      return [data.copy(buffer, 0, 0, Math.min(length, data.length))];
    }),

    write: guard('write', (_path: string, fd: number, buffer: Buffer, length: number, position: number): Reply | Promise<Reply> => {
      const handle = handles.get(fd);
      if (!handle?.write) return [EBADF];
      // fuse-native's buffer is the kernel's memory and goes away after the reply: copy it.
      const n = handle.write(Buffer.from(buffer.subarray(0, length)), position);
      return n instanceof Promise ? n.then((written) => [written] as const) : [n];
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

    // No flush op, on purpose. The kernel sends FLUSH on every close(2) and waits for the
    // reply; we have nothing to flush (writes take effect in write). Unimplemented, libfuse
    // answers the first FLUSH with ENOSYS and the kernel stops sending it for the whole mount
    // (fc->no_flush): one round trip less per open+read+close — 4 requests instead of 5
    // (test/bench/RESULTS.md). Errors are reported by write itself, never deferred to close.
    release: guard('release', (_path: string, fd: number) => {
      const handle = handles.get(fd);
      handles.delete(fd);
      handle?.release?.();
      return [0];
    }),

    // What procfs reports (`stat -f /proc`): no blocks, names up to 255 bytes.
    statfs: guard('statfs', (_path: string) => [0, {
      bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0,
      files: tree.files.size + tree.dirs.size, ffree: 0, favail: 0, fsid: 0, flag: 0, namemax: 255,
    } satisfies Fuse.StatFs]),
  };

  return { ops, counts, openHandles: () => handles.size };
}

function join(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Path, fd, length, offset — never the buffer. */
function describe(input: readonly unknown[]): string {
  return input.filter((arg) => typeof arg !== 'object').join(' ');
}
