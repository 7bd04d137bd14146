import type { Command } from 'commander';
import createDebug from 'debug';
import { daemonAlive, daemonPid, findMount, fusermountUnmount, isDaemonProcess, isKscrubfs, mountPointPath, processAlive } from '../fuse/mountpoint';
import { action, CliError } from './errors';
import { pollUntil } from '../daemon/poll';
import { defaultMount } from './options';

const log = createDebug('kscrubfs:cli');

/** How long a signalled daemon gets to unmount itself before fusermount does it. */
const DAEMON_STOP_MS = 5_000;

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .description("stop the daemon serving DIR and unmount it (also a mount whose daemon died)")
    .argument('[dir]', 'mount point (default $KSCRUBFS_MOUNT, else ./mount)', defaultMount())
    .action(action(umount));
}

async function umount(dir: string): Promise<void> {
  const abs = mountPointPath(dir);
  const mount = findMount(abs);
  if (!mount) throw new CliError('KSCRUB_NOT_MOUNTED', `${abs} is not mounted`);
  if (!isKscrubfs(mount)) {
    throw new CliError('KSCRUB_NOT_KSCRUBFS', `${abs} is not a kscrubfs mount (${mount.fsType} from ${mount.source}); leaving it alone`);
  }

  const pid = daemonPid(mount);
  if (pid !== undefined && daemonAlive(pid) && !isDaemonProcess(pid)) {
    throw new CliError('KSCRUB_NOT_KSCRUBFS', `${abs} names pid ${pid} as its daemon, but that process is not a kscrubfs daemon; leaving both alone`);
  }
  let stopped = false;
  if (pid !== undefined && daemonAlive(pid)) {
    if (processAlive(pid) === 'not ours') {
      throw new CliError('KSCRUB_UMOUNT_FAILED', `${abs} is served by daemon pid ${pid}, which runs as another user: only that user or root can stop it`);
    }
    // The daemon unmounts itself on SIGTERM; fusermount is only the fallback.
    process.kill(pid, 'SIGTERM');
    stopped = (await pollUntil(() => (daemonAlive(pid) ? undefined : true), { timeoutMs: DAEMON_STOP_MS })) === true;
    // Its own mount goes as it exits; one that stays is another mount of its tree (a bind).
    if (stopped && (await pollUntil(() => (findMount(abs) ? undefined : true), { timeoutMs: 1_000 }))) {
      process.stdout.write(`kscrubfs: unmounted ${abs} (daemon pid ${pid} stopped)\n`);
      return;
    }
    if (!stopped) log('daemon %d did not stop within %d ms', pid, DAEMON_STOP_MS);
  }

  if (findMount(abs) && !(await fusermountUnmount(abs))) {
    throw new CliError('KSCRUB_UMOUNT_FAILED', `cannot unmount ${abs}: fusermount -u and -u -z both failed (try DEBUG=kscrubfs:fuse)`);
  }
  const daemon = pid === undefined ? 'daemon unknown'
    : daemonAlive(pid) ? `daemon pid ${pid} did not exit on SIGTERM and is still running`
      : stopped ? `daemon pid ${pid} stopped; ${abs} was another mount of its files (a bind mount), unmounted after it`
        : `daemon pid ${pid} was not running`;
  process.stdout.write(`kscrubfs: unmounted ${abs} (${daemon})\n`);
}
