// A pool of reader threads (worker_threads) that open+read+close the mounted files in a loop
// and parse every read with the product's strict parsers (src/uapi/proc.ts), so that a reader
// that gets a torn or half-rendered file reports it (test/integration/robust-*.test.ts).
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createMachine } from '../../src/model';
import { fixedFilesFor } from '../../src/procfs';
import { parseProcFile } from '../../src/uapi';

// ---- every file ---------------------------------------------------------------------------------

/** The FILES rows a default mount has (altix, kscrubd): a policy's own files exist only with it. */
const MOUNTED = fixedFilesFor(createMachine({ clock: 'manual' }));
/** Every mounted file a reader may read (paths relative to the mount): all but /control. */
export const READABLE_FILES: readonly string[] = MOUNTED.filter((f) => f.render !== undefined).map((f) => f.path.slice(1));
/** The writable sysctls, relative to the mount. */
/** The writable files that parse as proc_dointvec (sys/vm/*); the sysfs files of sys/kernel/mm parse as kstrtoul and are tested apart. */
export const SYSCTL_FILES: readonly string[] = MOUNTED.filter((f) => f.write !== undefined && f.path.startsWith('/sys/vm/')).map((f) => f.path.slice(1));

// ---- reader threads -------------------------------------------------------------------------------

export interface ReaderOptions {
  /** Files to read, relative to the mount (default: READABLE_FILES). */
  files?: readonly string[];
  /** Bytes per read(2), one per reader in turn (default: a mix from 333 B to 128 KiB). */
  chunkSizes?: readonly number[];
  /** Stop at the first failed syscall (the daemon going away) instead of counting it. */
  stopOnError?: boolean;
  /** Hard stop, ms from start: a reader never outlives it (default 10 minutes). */
  maxMs?: number;
}

export interface ReaderReport {
  reader: number;
  reads: number;
  bytes: number;
  perFile: Record<string, number>;
  /** Reads that returned text the strict parser refused (at most 20 kept; `malformedCount` has all). */
  malformed: { file: string; message: string; text: string }[];
  malformedCount: number;
  /** Failed syscalls (at most 20 kept). */
  errors: { file: string; code: string; message: string }[];
  errorCount: number;
  /** Why the loop ended. */
  ended: 'stopped' | 'error' | 'deadline';
  elapsedMs: number;
}

export interface ReaderPool {
  /** Reads done so far by all readers. */
  reads(): number;
  /** Ask every reader to stop after its current file; resolves with their reports. */
  stop(): Promise<ReaderReport[]>;
  /** Resolves when every reader has ended by itself (stopOnError, or the deadline). */
  readonly done: Promise<ReaderReport[]>;
}

interface ReaderWorkerData {
  kscrubfsReader: true;
  dir: string;
  files: readonly string[];
  chunk: number;
  index: number;
  stopOnError: boolean;
  maxMs: number;
  shared: SharedArrayBuffer;
}

const DEFAULT_CHUNKS = [65536, 4096, 1000, 131072, 4096, 333, 65536, 7919];

/**
 * Start `n` reader threads on the mount at `dir`. Each loops over the files: open, read to EOF
 * in its chunk size, close, parse strictly. Real blocking syscalls on their own threads, so the
 * daemon sees `n` concurrent readers (the test's own event loop stays free).
 */
export function startReaders(dir: string, n: number, opts: ReaderOptions = {}): ReaderPool {
  // [0] stop flag, [1 + i] reads of reader i.
  const shared = new SharedArrayBuffer(4 * (n + 1));
  const flags = new Int32Array(shared);
  const chunks = opts.chunkSizes ?? DEFAULT_CHUNKS;
  const workers = Array.from({ length: n }, (_, index) => {
    const data: ReaderWorkerData = {
      kscrubfsReader: true, dir, files: opts.files ?? READABLE_FILES, chunk: chunks[index % chunks.length]!, index,
      stopOnError: opts.stopOnError ?? false, maxMs: opts.maxMs ?? 600_000, shared,
    };
    return new Worker(__filename, { workerData: data, execArgv: [] });
  });
  const done = Promise.all(workers.map((w, index) => new Promise<ReaderReport>((resolve, reject) => {
    let report: ReaderReport | undefined;
    w.on('message', (r: ReaderReport) => { report = r; });
    w.on('error', reject);
    w.on('exit', (code) => (report ? resolve(report) : reject(new Error(`reader ${index} exited (${code}) without a report`))));
  })));
  done.catch(() => undefined); // observed by whoever awaits it
  return {
    reads: () => {
      let s = 0;
      for (let i = 1; i <= n; i++) s += Atomics.load(flags, i);
      return s;
    },
    stop: () => {
      Atomics.store(flags, 0, 1);
      return done;
    },
    done,
  };
}

function runReader(d: ReaderWorkerData): ReaderReport {
  const flags = new Int32Array(d.shared);
  const start = Date.now();
  const report: ReaderReport = {
    reader: d.index, reads: 0, bytes: 0, perFile: {}, malformed: [], malformedCount: 0, errors: [], errorCount: 0,
    ended: 'stopped', elapsedMs: 0,
  };
  const buf = Buffer.alloc(d.chunk);
  // Readers start at different files so that every file is under concurrent reads.
  let k = d.index;
  for (;;) {
    if (Atomics.load(flags, 0) !== 0) break;
    if (Date.now() - start > d.maxMs) {
      report.ended = 'deadline';
      break;
    }
    const file = d.files[k++ % d.files.length]!;
    let text: string;
    try {
      text = readWhole(path.join(d.dir, file), buf);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      report.errorCount++;
      if (report.errors.length < 20) report.errors.push({ file, code: e.code ?? 'unknown', message: e.message });
      if (d.stopOnError) {
        report.ended = 'error';
        break;
      }
      continue;
    }
    report.reads++;
    report.bytes += text.length;
    report.perFile[file] = (report.perFile[file] ?? 0) + 1;
    Atomics.add(flags, 1 + d.index, 1);
    try {
      parseProcFile(file, text);
    } catch (err) {
      report.malformedCount++;
      if (report.malformed.length < 20) report.malformed.push({ file, message: (err as Error).message, text: text.slice(0, 2000) });
    }
  }
  report.elapsedMs = Date.now() - start;
  return report;
}

/** open, read(2) in `buf`-sized pieces until one returns 0, close. */
function readWhole(file: string, buf: Buffer): string {
  const fd = openSync(file, 'r');
  try {
    const parts: Buffer[] = [];
    for (;;) {
      const got = readSync(fd, buf, 0, buf.length, null);
      if (got === 0) break;
      parts.push(Buffer.from(buf.subarray(0, got)));
    }
    return Buffer.concat(parts).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

if (!isMainThread && (workerData as Partial<ReaderWorkerData> | null)?.kscrubfsReader === true) {
  parentPort!.postMessage(runReader(workerData as ReaderWorkerData));
}

/** Every readable file's text, each parsed strictly on the way (a torn file throws). */
export async function snapshotFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of READABLE_FILES) {
    const text = await readFile(path.join(dir, rel), 'utf8');
    parseProcFile(rel, text);
    out.set(rel, text);
  }
  return out;
}
