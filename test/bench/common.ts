import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/mount';

// What every benchmark section shares: the result shapes the runner prints, medians, the C
// helpers compiled at bench time, CPU pinning, and child processes that answer in JSON.

const execFileP = promisify(execFile);

/** A table as the runner prints it: a title, column heads, rows of cells. */
export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<readonly (string | number)[]>;
}

/** One target of the issue, judged on this run. */
export interface Target {
  readonly what: string;
  readonly goal: string;
  readonly measured: string;
  /** undefined: could not be measured here (the note says why). */
  readonly met: boolean | undefined;
  readonly note?: string;
}

export interface SectionResult {
  readonly name: string;
  readonly tables: Table[];
  readonly targets: Target[];
  readonly notes: string[];
  /** The raw numbers, for --json. */
  readonly data: Record<string, unknown>;
}

export interface BenchOptions {
  /** Fewer rounds and repetitions: a smoke run, not numbers to publish. */
  readonly quick: boolean;
  /** Progress lines go here (stderr). */
  readonly log: (msg: string) => void;
  /** A private scratch directory for this run (compiled helpers, mount points). */
  readonly tmp: string;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Interquartile range as "lo–hi" around a median, to show the spread of a figure. */
export function quartiles(values: readonly number[]): [number, number] {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
  return [at(0.25), at(0.75)];
}

/** 12345.6 → "12,346"; small numbers keep `digits` decimals. */
export function num(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}×` : '—';
}

export const GIB = 2 ** 30;

/** Where the bench's own sources live (the C files are compiled from here). */
export const BENCH_SRC = path.join(REPO_ROOT, 'test/bench');

/** Compile test/bench/<name>.c with cc -O2 into `outDir`; returns the binary's path. */
export async function compileC(name: string, outDir: string): Promise<string> {
  const out = path.join(outDir, name);
  try {
    await execFileP('cc', ['-O2', '-Wall', '-o', out, path.join(BENCH_SRC, `${name}.c`)]);
  } catch (err) {
    throw new Error(`cc ${name}.c failed (a C compiler is needed: apt-get install gcc): ${(err as { stderr?: string }).stderr ?? err}`);
  }
  return out;
}

/** Run a program to completion; rejects on a non-zero exit, with its stderr. */
export async function runProgram(file: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await execFileP(file, [...args], { timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`${path.basename(file)} ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
  });
  return stdout;
}

/**
 * CPU pinning for client/server measurements: on this kind of VM, unpinned FUSE rates of two
 * identical daemons differ by 2× from one second to the next (the scheduler moves the reader
 * and the daemon's two threads around); pinned, an A/A pair agrees within a few per cent.
 * The client runs on CPU 0, every daemon (all its threads) on the last CPU.
 */
export interface Pinning {
  readonly enabled: boolean;
  readonly clientCpu: number;
  readonly serverCpu: number;
  readonly why: string;
}

export async function pinning(): Promise<Pinning> {
  const cpus = os.availableParallelism();
  if (cpus < 2) return { enabled: false, clientCpu: 0, serverCpu: 0, why: 'one CPU: nothing to pin' };
  try {
    await execFileP('taskset', ['-c', '0', 'true']);
  } catch {
    return { enabled: false, clientCpu: 0, serverCpu: 0, why: 'taskset (util-linux) is missing' };
  }
  return { enabled: true, clientCpu: 0, serverCpu: cpus - 1, why: `client on CPU 0, daemons on CPU ${cpus - 1}` };
}

/** Move every thread of `pid` to the server CPU (threads it starts later inherit it). */
export async function pinServer(pin: Pinning, pid: number): Promise<void> {
  if (pin.enabled) await execFileP('taskset', ['-a', '-p', '-c', String(pin.serverCpu), String(pid)]);
}

/** The command line that runs `file args` on the client CPU. */
export function onClientCpu(pin: Pinning, file: string, args: readonly string[]): [string, string[]] {
  return pin.enabled ? ['taskset', ['-c', String(pin.clientCpu), file, ...args]] : [file, [...args]];
}

/** Run `node dist/test/bench/model-child.js …args` and parse the one JSON line it prints. */
export function modelChild<T>(args: readonly string[], nodeFlags: readonly string[] = []): Promise<T> {
  const script = path.join(__dirname, 'model-child.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`model-child ${args.join(' ')} exited ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`model-child ${args.join(' ')}: not JSON: ${out.slice(0, 200)}`));
      }
    });
  });
}

/** This machine, for the report: the numbers are only meaningful next to it. */
export interface HostInfo {
  readonly date: string;
  readonly nproc: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly node: string;
  readonly memGiB: number;
  readonly loadavg: readonly number[];
  readonly thp: string;
}

export function hostInfo(): HostInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const thpFile = '/sys/kernel/mm/transparent_hugepage/enabled';
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    memGiB: Math.round(os.totalmem() / GIB),
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
    thp: existsSync(thpFile) ? readFileSync(thpFile, 'utf8').trim() : 'n/a',
  };
}
