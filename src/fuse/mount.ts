import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import createDebug from 'debug';
import { Fuse, type Request, trackRequests } from './binding';
import { KscrubError } from '../uapi';
import type { ProcTree } from '../procfs/types';
import { createAdapter, type OpCounts } from './adapter';
import { daemonAlive, daemonPid, findMount, fsnameFor, fusermountUnmount, inspect, isKscrubfs, mountPointPath, readMountInfo } from './mountpoint';

const log = createDebug('kscrubfs:fuse');

export type MountErrorCode = 'KSCRUB_MOUNT_BUSY' | 'KSCRUB_MOUNT_FAILED';

/** A mount refused or failed; `message` is for people and names the directory. */
export class MountError extends KscrubError<MountErrorCode> {}

export interface MountOptions {
  /**
   * Kernel cache lifetime of lookups and attributes, in seconds; 0 disables caching (sent as
   * a string: fuse-native drops a numeric 0). Default 0.5 s as LXCFS uses (libfuse's own is
   * 1 s). Our attributes never change while mounted, so this only saves round trips: 300 ×
   * `cat buddyinfo sys/vm/scrub_start` made 3600 getattr calls with 0, 609 with 0.5, 603 with 1.
   */
  entryTimeout?: number | string;
  attrTimeout?: number | string;
  /** libfuse's own dump of every request (-o debug), apart from DEBUG=kscrubfs:*. */
  fuseDebug?: boolean;
  /**
   * allow_other: users other than the one who mounted may read the tree. Default: on for root
   * (a system-wide /proc stand-in), off for anyone else, for whom fusermount permits it only
   * with user_allow_other in /etc/fuse.conf.
   */
  allowOther?: boolean;
  /** Handles one user other than root may hold (default: adapter.ts MAX_HANDLES_PER_USER). */
  maxHandlesPerUser?: number;
}

export interface MountedTree {
  /** Absolute mount point. */
  readonly dir: string;
  /** Requests per op since mount (for the benchmark and the exit log). */
  readonly counts: OpCounts;
  /** Unmount (idempotent). Resolves once the directory is no longer a mount point. */
  unmount(): Promise<void>;
}

/**
 * Mount `tree` on `dir`. A dead mount left there (its daemon killed) is cleared first; a live
 * one is refused with a MountError that says which daemon holds it.
 */
export async function mountProcTree(dir: string, tree: ProcTree, opts: MountOptions = {}): Promise<MountedTree> {
  const abs = mountPointPath(dir);
  await takeMountPoint(abs);

  // The adapter asks who sent each request; the answer comes from the Fuse instance made next.
  let caller: () => Request | null = () => null;
  const adapter = createAdapter(tree, { caller: () => caller(), ...(opts.maxHandlesPerUser !== undefined && { maxHandlesPerUser: opts.maxHandlesPerUser }) });
  const allowOther = opts.allowOther ?? process.getuid?.() === 0;
  const fuse = new Fuse(abs, adapter.ops, {
    // A write to control returns when its batch is done, which may take longer than 15 s
    // (other requests are served meanwhile): no time limit on writes; 15 s on the rest.
    timeout: { default: 15_000, write: false },
    debug: opts.fuseDebug === true,
    force: true,
    mkdir: true,
    autoUnmount: true,
    allowOther,
    defaultPermissions: true,
    // fuse-native has no options for these; its fsname is spliced into -o verbatim.
    // direct_io: every read reaches us (never stopped at st_size); nonempty: ./mount holds .gitkeep.
    fsname: `${fsnameFor(process.pid)},direct_io,nonempty`,
    subtype: 'kscrubfs',
    entryTimeout: String(opts.entryTimeout ?? 0.5),
    // 0: every stat(2) asks, so st_size is the length of the text a read right after serves.
    attrTimeout: String(opts.attrTimeout ?? 0),
  });
  caller = trackRequests(fuse);
  try {
    await withoutFuseBindingsDebug(() => new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve()))));
  } catch (err) {
    const why = process.getuid?.() === 0 ? undefined : await fusermountRefusal(abs, allowOther);
    throw new MountError('KSCRUB_MOUNT_FAILED', `cannot mount on ${abs}: ${why ?? (err as Error).message}`, { cause: err });
  }
  log('mounted on %s', abs);
  // Two daemons started at once both find the directory free and both mount, one over the
  // other. The lower one (mounted first) wins; the upper one unmounts itself and says why.
  const below = lowerDaemon(abs, process.pid);
  if (below !== undefined) {
    await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
    throw new MountError('KSCRUB_MOUNT_BUSY', `${abs} was mounted by another daemon (pid ${below}) at the same moment; it keeps the mount — run 'kscrubfs umount ${abs}' first`);
  }

  let unmounting: Promise<void> | undefined;
  const unmount = async (): Promise<void> => {
    try {
      await new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      // Already gone (someone ran fusermount -u) is fine; anything else gets one more try.
      if (findMount(abs) && !(await fusermountUnmount(abs))) {
        throw new MountError('KSCRUB_MOUNT_FAILED', `cannot unmount ${abs}: ${(err as Error).message}`, { cause: err });
      }
    }
    log('unmounted %s; requests: %o', abs, adapter.counts);
  };
  return {
    dir: abs,
    counts: adapter.counts,
    unmount: () => (unmounting ??= unmount()),
  };
}

/**
 * fuse-native turns on libfuse's request dump (-o debug) whenever DEBUG holds a `*`, so
 * DEBUG=kscrubfs:* would print every raw request too. It reads DEBUG while mounting: hide it
 * meanwhile (the debug module read it at startup already); libfuse's dump has its own switch.
 */
async function withoutFuseBindingsDebug<T>(mount: () => Promise<T>): Promise<T> {
  const saved = process.env.DEBUG;
  delete process.env.DEBUG;
  try {
    return await mount();
  } finally {
    if (saved !== undefined) process.env.DEBUG = saved;
  }
}

/**
 * Why fusermount refused to mount `abs`, in its own words. For a user who is not root, libfuse 2
 * mounts through setuid fusermount; Node's fds 0-2 are close-on-exec, so fusermount starts with
 * them on /dev/null and its explanation is lost ("fuse failed" is all fuse-native says). Ask it
 * again the same way, with its stderr on a pipe and the socket it sends /dev/fuse back on (the
 * fd it passes is dropped unread). Should it mount this time, the mount is undone at once.
 */
async function fusermountRefusal(abs: string, allowOther: boolean): Promise<string | undefined> {
  const options = `${allowOther ? 'allow_other,' : ''}default_permissions,fsname=kscrubfs-probe,subtype=kscrubfs`;
  const child = spawn('fusermount', ['-o', options, '--', abs], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, _FUSE_COMMFD: '3' },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  (child.stdio[3] as Readable).on('error', () => undefined).resume();
  const code = await new Promise<number | string>((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    child.on('close', (c) => resolve(c ?? 'signal'));
  });
  if (code === 'ENOENT') return 'fusermount is not installed (install fuse or fuse3: libfuse 2 mounts through it)';
  if (code === 0) {
    log('fusermount mounted %s on the second try: unmounting it', abs);
    await fusermountUnmount(abs);
    return undefined;
  }
  const said = stderr.trim().split('\n').filter((l) => l !== '').join('; ');
  return said === '' ? undefined : said;
}

/** The pid of a live kscrubfs daemon whose mount on `abs` lies under ours, if any. */
function lowerDaemon(abs: string, ourPid: number): number | undefined {
  const mounts = readMountInfo().filter((m) => m.mountPoint === abs && isKscrubfs(m));
  const ours = mounts.findIndex((m) => daemonPid(m) === ourPid);
  for (const m of mounts.slice(0, Math.max(0, ours))) {
    const pid = daemonPid(m);
    if (pid !== undefined && pid !== ourPid && daemonAlive(pid)) return pid;
  }
  return undefined;
}

/** Make `abs` free to mount on: clear a dead mount, refuse a live one. */
async function takeMountPoint(abs: string): Promise<void> {
  const found = await inspect(abs);
  switch (found.state) {
    case 'free':
      return;
    case 'dead':
      log('%s: clearing a dead mount (%s)', abs, found.mount.source);
      if (!(await fusermountUnmount(abs))) {
        throw new MountError('KSCRUB_MOUNT_BUSY', `${abs} holds a dead mount that fusermount cannot clear`);
      }
      return;
    case 'live':
      throw new MountError('KSCRUB_MOUNT_BUSY', found.kscrubfs
        ? `${abs} is already mounted by a running daemon (pid ${found.pid ?? 'unknown'}) — run 'kscrubfs umount ${abs}' first`
        : `${abs} is already a mount point (${found.mount.fsType} from ${found.mount.source}) — choose another directory`);
  }
}
