import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import createDebug from 'debug';

// What is mounted on a directory, and by whom. A kscrubfs mount names its daemon in the
// mount source: fsname `kscrubfs@<pid>` (see /proc/mounts), so the pid lives exactly as long
// as the mount and needs no pidfile. Nothing here reads a mount of our own process.

const log = createDebug('kscrubfs:fuse');
const run = promisify(execFile);

export const FSTYPE = 'fuse.kscrubfs';
const SOURCE = /^kscrubfs(?:@(\d+))?$/;

export interface MountInfo {
  readonly mountPoint: string;
  readonly fsType: string;
  /** The mount source: for kscrubfs the fsname, `kscrubfs@<pid>`. */
  readonly source: string;
  readonly options: string;
  readonly superOptions: string;
}

export type MountState =
  | { readonly state: 'free' }
  /** Mounted, but nobody answers ("Transport endpoint is not connected"). */
  | { readonly state: 'dead'; readonly mount: MountInfo }
  | { readonly state: 'live'; readonly mount: MountInfo; readonly pid: number | undefined; readonly kscrubfs: boolean };

/** The fsname that records the daemon's pid. */
export function fsnameFor(pid: number): string {
  return `kscrubfs@${pid}`;
}

/**
 * The absolute path mountinfo would show for `dir`: symlinks in the parent are resolved, the
 * last component is not touched (stat on a dead mount point fails with ENOTCONN).
 */
export function mountPointPath(dir: string): string {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  try {
    return path.join(realpathSync(parent), path.basename(abs));
  } catch {
    return abs;
  }
}

/** /proc/self/mountinfo, parsed (proc(5)); octal escapes (\040 for space) decoded. */
export function readMountInfo(text = readFileSync('/proc/self/mountinfo', 'utf8')): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0) continue;
    mounts.push({
      mountPoint: unescape(fields[4] ?? ''),
      options: fields[5] ?? '',
      fsType: fields[dash + 1] ?? '',
      source: unescape(fields[dash + 2] ?? ''),
      superOptions: fields[dash + 3] ?? '',
    });
  }
  return mounts;
}

function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** The mount on top at `absDir`, if any (later lines stack over earlier ones). */
export function findMount(absDir: string, mounts = readMountInfo()): MountInfo | undefined {
  return mounts.filter((m) => m.mountPoint === absDir).at(-1);
}

/** A FUSE mount of type fuse.kscrubfs (a source alone proves nothing: any mount can claim one). */
export function isKscrubfs(mount: MountInfo): boolean {
  return mount.fsType === FSTYPE;
}

/**
 * Is `pid` a kscrubfs daemon (a process running our CLI's mount that holds /dev/fuse)?
 * What umount checks before it signals anything.
 */
export function isDaemonProcess(pid: number): boolean {
  if (!daemonAlive(pid)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('mount') && argv.some((a) => a === 'kscrubfs' || a.endsWith('/kscrubfs') || a.endsWith('cli/main.js'));
  } catch {
    return false;
  }
}

/** The daemon pid a kscrubfs mount records in its source, if it does. */
export function daemonPid(mount: MountInfo): number | undefined {
  const pid = SOURCE.exec(mount.source)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/**
 * Is `pid` a live FUSE daemon? A zombie or a reused pid is not: a daemon holds /dev/fuse open.
 * When we may not look (another user's process), a live pid is taken at its word.
 */
export function daemonAlive(pid: number): boolean {
  const alive = processAlive(pid);
  if (alive !== 'yes') return alive === 'not ours';
  try {
    const fdDir = `/proc/${pid}/fd`;
    return readdirSync(fdDir).some((fd) => safeReadlink(path.join(fdDir, fd)) === '/dev/fuse');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * Is `pid` a running process (not a zombie)? 'not ours' when it runs as another user, whom
 * we may not signal. A daemon that has not mounted yet is alive without holding /dev/fuse.
 */
export function processAlive(pid: number): 'yes' | 'no' | 'not ours' {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? 'not ours' : 'no';
  }
  try {
    const statLine = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = statLine.slice(statLine.lastIndexOf(')') + 2, statLine.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X' ? 'no' : 'yes';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no' : 'yes';
  }
}

function safeReadlink(link: string): string | undefined {
  try {
    return readlinkSync(link);
  } catch {
    return undefined;
  }
}

/** Does `file` on a mount answer stat()? 'hung' if not within `timeoutMs`. */
export function probe(file: string, timeoutMs = 2000): Promise<Probe> {
  return withDeadline(stat(file), timeoutMs);
}

/** A file every kscrubfs tree has: a mount "answers" once it can be stat'ed. */
const READY_FILE = 'buddyinfo';

/** Is `absDir` mounted by the daemon `pid`, and does that mount answer? */
export async function servedBy(absDir: string, pid: number | undefined): Promise<boolean> {
  const mount = findMount(absDir);
  if (mount === undefined || pid === undefined || daemonPid(mount) !== pid) return false;
  // Two daemons mounted at once, one over the other: the lower wins, the upper one leaves.
  const live = readMountInfo().filter((m) => m.mountPoint === absDir && isKscrubfs(m) && daemonPid(m) !== undefined && daemonAlive(daemonPid(m)!));
  if (live.length > 1) return false;
  return (await probe(path.join(absDir, READY_FILE), 1000)) === 'ok';
}

/**
 * Does anyone answer for the mount on `absDir`? statfs is never served from the kernel's
 * attribute cache, so a mount whose daemon just died reads 'dead' (ENOTCONN) at once.
 */
export function probeMount(absDir: string, timeoutMs = 2000): Promise<Probe> {
  return withDeadline(statfs(absDir), timeoutMs);
}

export type Probe = 'ok' | 'dead' | 'hung' | 'error';

async function withDeadline(request: Promise<unknown>, timeoutMs: number): Promise<Probe> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'hung'>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, 'hung');
  });
  const answer = request.then(
    () => 'ok' as const,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOTCONN' || err.code === 'ECONNABORTED' ? 'dead' as const : 'error' as const),
  );
  try {
    return await Promise.race([answer, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** What is mounted on `absDir` and whether anyone answers for it. */
export async function inspect(absDir: string): Promise<MountState> {
  const mount = findMount(absDir);
  if (!mount) return { state: 'free' };
  const kscrubfs = isKscrubfs(mount);
  const pid = kscrubfs ? daemonPid(mount) : undefined;
  // A live daemon is not probed: a stopped one (SIGSTOP) would hang the stat.
  if (pid !== undefined && daemonAlive(pid)) return { state: 'live', mount, pid, kscrubfs };
  if (mount.fsType.startsWith('fuse') && (await probeMount(absDir)) === 'dead') return { state: 'dead', mount };
  return { state: 'live', mount, pid, kscrubfs };
}

/** `fusermount -u`, then the lazy `-u -z` if the mount is busy. Resolves false if both fail. */
export async function fusermountUnmount(absDir: string): Promise<boolean> {
  for (const args of [['-u', absDir], ['-u', '-z', absDir]]) {
    try {
      await run('fusermount', args);
      log('fusermount %s: done', args.join(' '));
      return true;
    } catch (err) {
      log('fusermount %s: %s', args.join(' '), (err as { stderr?: string }).stderr?.trim() ?? err);
    }
  }
  return !findMount(absDir);
}
