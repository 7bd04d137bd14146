import { constants as fsConstants } from 'node:fs';
import type { Machine } from '../model';
import type { BuddyinfoFormat } from './buddyinfo';
import { FILES, type ProcFile, type RenderOptions } from './files';
import { ProcError, type FileEntry, type FileHandle, type ProcTree } from './types';

export { FILES } from './files';
export type { ProcFile, RenderOptions } from './files';
export { BUDDYINFO_FORMATS } from './buddyinfo';
export type { BuddyinfoFormat } from './buddyinfo';
export { parseSysctlInt, parseSysctlWrite } from './sysctl';
export type { SysctlWrite } from './sysctl';
export { ProcError } from './types';
export type { FileEntry, FileHandle, ProcErrorCode, ProcTree } from './types';

/** The access-mode bits of open(2) flags (Linux; Node does not export O_ACCMODE). */
const O_ACCMODE = 0o3;

export interface ProcTreeOptions {
  readonly buddyinfo: BuddyinfoFormat;
  /** The wall clock in ms; read at every open so a live clock shows the present. */
  readonly wallClockMs: () => number;
  /** The `/control` entry (src/control); without it there is no /control. */
  readonly control?: FileEntry;
}

/** The tree the FUSE adapter serves: one entry per FILES row, directories derived from the paths. */
export function buildProcTree(machine: Machine, opts: ProcTreeOptions): ProcTree {
  const files = new Map<string, FileEntry>();
  for (const file of FILES) {
    const entry = file.render ? snapshotEntry(machine, file, file.render, opts) : suppliedEntry(file, opts);
    if (entry) files.set(entry.path, entry);
  }
  return { files, dirs: directories([...files.keys()]) };
}

/**
 * A file rendered at open: reads are served from that snapshot's bytes, so a reader that comes
 * back for the rest at any offset sees one consistent text. A read at offset 0 on a handle that
 * has already been read renders a fresh snapshot, as seq_file does (its traverse() restarts the
 * show() when a read is not where the last one stopped): procps' vmstat, top and `free -s` open
 * /proc/stat, meminfo and vmstat once and lseek(fd, 0) + read every interval. Writable rows
 * (sysctls) take writes at offset 0; later offsets are ignored and reported written, as the
 * kernel's sysctl_writes_strict does.
 */
function snapshotEntry(machine: Machine, file: ProcFile, render: NonNullable<ProcFile['render']>, opts: ProcTreeOptions): FileEntry {
  const { path, mode, write } = file;
  const renderOpts: RenderOptions = { buddyinfo: opts.buddyinfo };
  return {
    path,
    mode,
    writable: write !== undefined,
    open(flags: number): FileHandle {
      if (!write && (flags & O_ACCMODE) !== fsConstants.O_RDONLY) throw new ProcError('EACCES', `${path} is read-only`);
      const take = (): Buffer => {
        machine.syncWall(opts.wallClockMs());
        return Buffer.from(render(machine, renderOpts), 'utf8');
      };
      let snapshot = take();
      let served = false;
      const read = (offset: number, length: number): Buffer => {
        if (offset === 0 && served) snapshot = take();
        served = true;
        return snapshot.subarray(offset, offset + length);
      };
      if (!write) return { read };
      return {
        read,
        write(data: Buffer, offset: number): number {
          if (offset > 0) return data.length;
          machine.syncWall(opts.wallClockMs());
          return write(machine, data);
        },
      };
    },
  };
}

/** A row whose entry the caller brings (`/control`); absent when the caller has none. */
function suppliedEntry(file: ProcFile, opts: ProcTreeOptions): FileEntry | undefined {
  if (file.path !== '/control') throw new Error(`procfs: FILES row ${file.path} has no renderer`);
  const entry = opts.control;
  if (!entry) return undefined;
  if (entry.path !== file.path || entry.mode !== file.mode) {
    throw new Error(`procfs: the control entry must be ${file.path} mode 0${file.mode.toString(8)}, not ${entry.path} mode 0${entry.mode.toString(8)}`);
  }
  return entry;
}

/** Every directory implied by the paths, each listing its children in table order. */
function directories(paths: readonly string[]): Map<string, string[]> {
  const dirs = new Map<string, string[]>([['/', []]]);
  for (const path of paths) {
    const parts = path.split('/').slice(1);
    let dir = '/';
    for (const name of parts) {
      const children = dirs.get(dir)!;
      if (!children.includes(name)) children.push(name);
      const child = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (child !== path && !dirs.has(child)) dirs.set(child, []);
      dir = child;
    }
  }
  return dirs;
}
