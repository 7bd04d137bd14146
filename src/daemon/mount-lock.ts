import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { daemonPid, findMount, processAlive } from '../fuse/mountpoint';
import { KscrubError } from '../uapi';
import { pollUntil } from './poll';

/** The daemon's own refusals at mount time: another daemon mounting, no private runtime directory. */
export type DaemonErrorCode = 'KSCRUB_MOUNT_BUSY' | 'KSCRUB_OUTPUT_FAILED';
export class DaemonError extends KscrubError<DaemonErrorCode> {}

/** How long a daemon may take from its start to a mount that answers (`mount --background` waits this long). */
export const MOUNT_READY_MS = 30_000;

/** A short name for a mount point, for files about it in the runtime directory. */
export function mountKey(abs: string): string {
  return createHash('sha256').update(abs).digest('hex').slice(0, 12);
}

/** A lock file nobody has written its pid into yet is this young at most (else it is stale). */
const LOCK_BIRTH_MS = 5_000;
/**
 * A daemon holds the lock only while it checks and mounts (seconds); an older lock is stale
 * whoever has its pid now (a daemon killed mid-mount, its pid since reused).
 */
const LOCK_MAX_AGE_MS = 2 * MOUNT_READY_MS;

/**
 * One daemon at a time mounts on a directory. Two started at once would both find it free;
 * then fuse-native's `force` (or the dead-mount check, probing a mount whose daemon has not
 * begun to answer) clears the other's fresh mount, and sometimes neither survives. So the
 * check-and-mount runs under a lock file in the private runtime directory, created O_EXCL
 * with our pid; a lock whose daemon is gone is stale and taken over. The loser says why.
 */
export async function withMountLock<T>(abs: string, mount: () => Promise<T>): Promise<T> {
  const lock = mountLockPath(abs);
  for (;;) {
    try {
      const fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = lockHolder(lock);
      if (holder !== 'stale') {
        throw new DaemonError('KSCRUB_MOUNT_BUSY', `${abs} is being mounted by another kscrubfs daemon (pid ${holder ?? 'starting'}) at the same moment; it keeps the mount — run 'kscrubfs umount ${abs}' first`);
      }
      rmSync(lock, { force: true });
    }
  }
  try {
    const mounted = await mount();
    // fuse-native may report the mount before mount(2) shows it in mountinfo; a daemon that
    // took the lock then would find the directory free and mount on top. Hold on until ours shows.
    const shown = (): true | undefined => {
      const m = findMount(abs);
      return m && daemonPid(m) === process.pid ? true : undefined;
    };
    await pollUntil(shown, { timeoutMs: 5_000, intervalMs: 10 });
    return mounted;
  } finally {
    rmSync(lock, { force: true });
  }
}

/** The lock file a daemon holds while it checks and mounts `abs` (an absolute mount point). */
export function mountLockPath(abs: string): string {
  return path.join(runtimeDir(), `mounting-${mountKey(abs)}.lock`);
}

/** Who holds a mount lock: a live pid, undefined (just created, pid not written yet), or stale. */
function lockHolder(lock: string): number | undefined | 'stale' {
  let text: string;
  let age: number;
  try {
    text = readFileSync(lock, 'utf8');
    age = Date.now() - statSync(lock).mtimeMs;
  } catch {
    return 'stale'; // gone meanwhile: try again
  }
  const pid = Number(text);
  if (text === '') return age < LOCK_BIRTH_MS ? undefined : 'stale';
  if (age > LOCK_MAX_AGE_MS) return 'stale';
  // Alive is enough: the holder does not hold /dev/fuse until it has mounted.
  return Number.isSafeInteger(pid) && pid > 0 && processAlive(pid) !== 'no' ? pid : 'stale';
}

/**
 * Where daemons' logs go: $XDG_RUNTIME_DIR/kscrubfs, else /run/kscrubfs for root, else
 * /tmp/kscrubfs-<uid>; made 0700 if missing, and refused unless it is a real directory of
 * ours that nobody else can write (a shared /tmp is where the attacks are).
 */
export function runtimeDir(): string {
  const uid = process.getuid?.() ?? 0;
  const xdg = process.env.XDG_RUNTIME_DIR;
  const dir = xdg ? path.join(xdg, 'kscrubfs') : uid === 0 ? '/run/kscrubfs' : path.join(os.tmpdir(), `kscrubfs-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new DaemonError('KSCRUB_OUTPUT_FAILED', `cannot make the log directory ${dir}: ${(err as Error).message}`);
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new DaemonError('KSCRUB_OUTPUT_FAILED', `${dir} is not a private directory of uid ${uid} (a directory, owned by it, mode 0700); remove it or set XDG_RUNTIME_DIR`);
  }
  return dir;
}
