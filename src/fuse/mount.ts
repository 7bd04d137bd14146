import createDebug from 'debug';
import Fuse from 'fuse-native';
import { KscrubError } from '../model';
import type { ProcTree } from '../procfs/types';
import { createAdapter, type OpCounts } from './adapter';
import { findMount, fsnameFor, fusermountUnmount, inspect, mountPointPath } from './mountpoint';

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

  const adapter = createAdapter(tree);
  const fuse = new Fuse(abs, adapter.ops, {
    force: true,
    mkdir: true,
    autoUnmount: true,
    allowOther: true,
    defaultPermissions: true,
    // fuse-native has no options for these; its fsname is spliced into -o verbatim.
    // direct_io: every read reaches us (st_size is 0); nonempty: ./mount holds .gitkeep.
    fsname: `${fsnameFor(process.pid)},direct_io,nonempty`,
    subtype: 'kscrubfs',
    entryTimeout: String(opts.entryTimeout ?? 0.5),
    attrTimeout: String(opts.attrTimeout ?? 0.5),
  });
  try {
    await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  } catch (err) {
    throw new MountError('KSCRUB_MOUNT_FAILED', `cannot mount on ${abs}: ${(err as Error).message}`, { cause: err });
  }
  log('mounted on %s', abs);

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
