import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import debugFactory from 'debug';
import { type CommandOf, KscrubError, type Result, type Verb, formatCommand, parseResult, parseSysctl } from '../uapi';

const log = debugFactory('kscrubfs:workload');

/** An error the workload reports to its user as one clear line (and exit code). */
export class WorkloadError extends KscrubError<'KSCRUB_WORKLOAD'> {
  constructor(message: string) {
    super('KSCRUB_WORKLOAD', message);
  }
}

/** errno codes that mean the daemon is gone but its mount is still there. */
const GONE = new Set(['ENOTCONN', 'ECONNABORTED', 'ENODEV']);

/**
 * A failed access to `file` of the mount at `dir`, as one line a user can act on. Every client
 * of the mount (pft's control file, watch's files) explains its errors here.
 */
export function explainMountError(err: unknown, dir: string, file: string, what = `read ${file}`): WorkloadError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (code === 'ENOENT') {
    return new WorkloadError(`nothing is mounted at ${dir} (no ${path.join(dir, file)}; start one with 'kscrubfs mount ${dir}')`);
  }
  if (GONE.has(code)) {
    return new WorkloadError(`the kscrubfs mount at ${dir} does not answer (${code}) during ${what}: its daemon is gone; 'kscrubfs umount ${dir}' clears it`);
  }
  if (code === 'EACCES' && (file === 'control' || file.startsWith('sys/')) && readable(path.join(dir, 'meminfo'))) {
    // The mount is readable, so the refusal is the file's own mode: say whose it is.
    return new WorkloadError(`${what} on the kscrubfs mount at ${dir}: EACCES: ${file} is ${file === 'control' ? '0600' : 'writable only'} for the user who mounted it (and root); run as that user`);
  }
  return new WorkloadError(`${what} on the kscrubfs mount at ${dir}: ${(err as Error).message}`);
}

function readable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** What a workload needs of the model: control commands and sysctls (a mount, or a machine in this process). */
export interface Control {
  /** Run one command line; returns the text after `ok`, throws WorkloadError with the `err` reason. */
  call(line: string): string;
  readSysctl(name: string): number;
  writeSysctl(name: string, value: number): void;
  close(): void;
}

/**
 * One command, formatted by the grammar, its `ok` line parsed by the result table
 * (src/uapi/results.ts) into a typed object: the request and the response both typed.
 */
export function run<V extends Verb>(ctl: Control, cmd: CommandOf<V>): Result<V> {
  const line = formatCommand(cmd);
  try {
    return parseResult(cmd.verb as V, ctl.call(line));
  } catch (err) {
    if (err instanceof KscrubError && err.code === 'KSCRUB_CONTROL_RESULT') throw new WorkloadError(`'${line}': ${err.message}`);
    throw err;
  }
}

/** The text after `ok`, or a WorkloadError quoting the `err` reason. */
function okText(line: string, result: string): string {
  if (result.startsWith('ok')) return result.slice(2).trim();
  throw new WorkloadError(`'${line}': ${result.replace(/^err\s*/, '')}`);
}

/** A machine in this process behind the control grammar (LocalControl): no mount, same commands. */
export class LocalClient implements Control {
  constructor(private readonly local: { run(line: string): string; readSysctl(name: string): number; writeSysctl(name: string, value: number): void }) {}

  call(line: string): string {
    return okText(line, this.local.run(line));
  }

  readSysctl(name: string): number {
    return this.local.readSysctl(name);
  }

  writeSysctl(name: string, value: number): void {
    try {
      this.local.writeSysctl(name, value);
    } catch (err) {
      throw new WorkloadError(`write vm.${name}=${value}: ${(err as Error).message}`);
    }
  }

  close(): void {
    // nothing held
  }
}

/**
 * The workload's only channel to the model: the mount's `control` file, opened read-write
 * once, one command line written and one result line read per call, like a character device.
 */
export class ControlClient implements Control {
  readonly dir: string;
  private fd: number;
  private pending = '';
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor(dir: string) {
    this.dir = dir;
    const file = path.join(dir, 'control');
    try {
      if (!fs.statSync(file).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      this.fd = fs.openSync(file, 'r+');
    } catch (err) {
      throw explainMountError(err, dir, 'control', 'open control');
    }
  }

  /** Run one command; returns the text after `ok`, throws WorkloadError with the `err` reason. */
  call(line: string): string {
    log('> %s', line);
    let rejected = false;
    try {
      fs.writeSync(this.fd, `${line}\n`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw explainMountError(err, this.dir, 'control', `'${line}'`);
      rejected = true; // its err line is queued for us to read
    }
    const result = this.readLine(line);
    log('< %s', result);
    if (result.startsWith('ok') && rejected) throw new WorkloadError(`'${line}': write rejected but result says ok`);
    return okText(line, result);
  }

  private readLine(line: string): string {
    for (;;) {
      const nl = this.pending.indexOf('\n');
      if (nl >= 0) {
        const out = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        return out;
      }
      let n: number;
      try {
        n = fs.readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (err) {
        throw explainMountError(err, this.dir, 'control', `'${line}'`);
      }
      if (n === 0) throw new WorkloadError(`'${line}': the control file gave no result line`);
      this.pending += this.buf.toString('utf8', 0, n);
    }
  }

  readSysctl(name: string): number {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.dir, 'sys/vm', name), 'utf8');
    } catch (err) {
      throw explainMountError(err, this.dir, `sys/vm/${name}`, `read vm.${name}`);
    }
    return parseSysctl(text, `sys/vm/${name}`);
  }

  writeSysctl(name: string, value: number): void {
    try {
      fs.writeFileSync(path.join(this.dir, 'sys/vm', name), `${value}\n`);
    } catch (err) {
      throw explainMountError(err, this.dir, `sys/vm/${name}`, `write vm.${name}=${value}`);
    }
  }

  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      // the daemon may be gone; nothing left to release
    }
  }
}

/** The errnos close(2) of control reports for a command that failed as it ran (its result line says so too). */
const COMMAND_FAILED = new Set(['EINVAL', 'ENOMEM', 'EIO', 'EINTR']);

/**
 * One batch (lines ending in newlines, one write(2)) on a fresh `control` handle; its result
 * lines, `ok …` or `err …`, read to EOF. A failed command is in its lines, so the close that
 * reports it again is not an error here.
 */
export async function controlBatch(dir: string, text: string): Promise<string[]> {
  const fh = await fsp.open(path.join(dir, 'control'), 'r+');
  let lines: string[] = [];
  try {
    await fh.write(text);
    lines = (await readToEof(fh, 'control')).split('\n').slice(0, -1);
  } finally {
    await fh.close().catch((err: NodeJS.ErrnoException) => {
      if (!COMMAND_FAILED.has(err.code ?? '') || lines.length === 0) throw err;
    });
  }
  return lines;
}

/** More than any file a mount or a kernel shows (a 64-node, 1024-CPU zoneinfo is a few MB). */
const MAX_FILE_BYTES = 64 * 2 ** 20;

/**
 * The text of a mounted file, read to EOF as cat reads it, and only a regular file (opened
 * without blocking, so a FIFO named meminfo cannot hang a client, and /dev/zero is refused),
 * at most MAX_FILE_BYTES of it. Not fs.readFile: it reads st_size bytes when st_size is not 0,
 * and a file's size at stat time (cached by the kernel for up to a second) is not the length
 * of the text a later open renders — vmstat grows a digit, and the last line would arrive cut.
 */
export async function readMountFile(file: string): Promise<string> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw new Error(`${file} is not a regular file (a FIFO, a device or a socket): not what a mount or /proc shows`);
    return await readToEof(fh, file);
  } finally {
    await fh.close();
  }
}

/** read(2) from the file position until one returns 0, at most MAX_FILE_BYTES. */
async function readToEof(fh: fsp.FileHandle, file: string): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  for (;;) {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(65536), 0, 65536, null);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > MAX_FILE_BYTES) throw new Error(`${file} holds more than ${MAX_FILE_BYTES >> 20} MiB: not what a mount or /proc shows`);
    parts.push(buffer.subarray(0, bytesRead));
  }
  return Buffer.concat(parts).toString('utf8');
}
