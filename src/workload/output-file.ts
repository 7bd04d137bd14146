import { closeSync, constants, fchmodSync, lstatSync, openSync, writeSync } from 'node:fs';

// The files kscrubfs writes for its user — a record, a trace, a plot, a sweep's rows — may
// be named in a directory others can write (/tmp, a shared project directory). Run as root,
// following a symlink someone planted under that name would truncate or append to whatever
// it points at, /etc/shadow included. So the last component of an output path is never
// followed (O_NOFOLLOW: a symlink there fails with ELOOP, said plainly below).

export type OutputMode = 'truncate' | 'append';

/** Open `file` for writing without following a symlink; a new file gets `mode`. */
export function openOutput(file: string, how: OutputMode, mode = 0o644): number {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (how === 'append' ? constants.O_APPEND : constants.O_TRUNC);
  try {
    return openSync(file, flags, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw symlinkError(file);
    throw err;
  }
}

const symlinkError = (file: string): Error => new Error(`${file} is a symbolic link: kscrubfs writes no output through one (name the file itself)`);

/** An output kscrubfs also reads back (a sweep's rows, to resume) is refused the same way when a symlink. */
export function checkNotSymlink(file: string): void {
  let link = false;
  try {
    link = lstatSync(file).isSymbolicLink();
  } catch {
    return; // absent: it will be created
  }
  if (link) throw symlinkError(file);
}

/**
 * Open a file that will hold what only its owner may read (a record holds every command
 * written to the 0600 control file): 0600 whether it is new or was there before.
 */
export function openPrivateOutput(file: string): number {
  const fd = openOutput(file, 'truncate', 0o600);
  try {
    fchmodSync(fd, 0o600);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Write `data` as the whole of `file` (or add it at its end), never through a symlink. */
export function writeOutput(file: string, data: string | Uint8Array, how: OutputMode = 'truncate'): void {
  const fd = openOutput(file, how);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } finally {
    closeSync(fd);
  }
}
