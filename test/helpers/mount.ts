import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pollUntil } from '../../src/daemon/poll';
import { findMount, fusermountUnmount, servedBy } from '../../src/fuse/mountpoint';

// Helpers for tests that drive the real daemon (`node dist/src/cli/main.js mount …`) as a
// child process and check it with real tools. Never read a mount from the process serving it:
// the daemon is always a child, the test process is only a client.

/** The repository root: tests run compiled, from dist/test/helpers/. */
export const REPO_ROOT = path.resolve(__dirname, '../../..');
export const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');

const MOUNT_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Kill the command (SIGKILL) and reject after this long; default 20 s. */
  timeoutMs?: number;
  /** Run as nobody:nogroup with no supplementary groups (setpriv), cwd '/' unless given. */
  asNobody?: boolean;
}

/** Run a program to completion; resolves with its exit status and output (never rejects on exit code). */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, argv] = opts.asNobody
    ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', file, ...args]]
    : [file, [...args]];
  const cwd = opts.cwd ?? (opts.asNobody ? '/' : REPO_ROOT);
  return new Promise((resolve, reject) => {
    const stdin = opts.input === undefined ? 'ignore' : 'pipe';
    const child = spawn(cmd, argv, { cwd, env: opts.env ?? process.env, stdio: [stdin, 'pipe', 'pipe'] });
    const out = collect(child);
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${timeoutMs} ms: ${[file, ...args].join(' ')}\n${out.stderr()}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out.stdout(), stderr: out.stderr() });
    });
    // A command may exit without reading its input: that is its business, not an error here.
    child.stdin?.on('error', () => undefined).end(opts.input);
  });
}

/** A real shell command line: `sh -c cmd`. */
export function sh(cmd: string, opts: RunOptions = {}): Promise<RunResult> {
  return run('sh', ['-c', cmd], opts);
}

/** The kscrubfs CLI as a user runs it: `node dist/src/cli/main.js …args`. */
export function kscrubfs(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [opts.asNobody ? cliForNobody() : CLI, ...args], opts);
}

let nobodyCli: string | undefined;

/**
 * A copy of the built CLI that nobody can run: a clone may sit under a directory nobody cannot
 * enter (/root is 0700), and then node could not even load main.js. The copy (dist/src and the
 * runtime node_modules and the FUSE binding, not the compiler) lives in a world-readable temporary directory for
 * the life of this test process.
 */
export function cliForNobody(): string {
  if (nobodyCli) return nobodyCli;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-nobody-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const devOnly = new Set(['typescript', '@types']);
  cpSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'));
  cpSync(path.join(REPO_ROOT, 'dist/src'), path.join(dir, 'dist/src'), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), {
    recursive: true,
    filter: (src) => !devOnly.has(path.relative(path.join(REPO_ROOT, 'node_modules'), src).split(path.sep)[0]!),
  });
  // The FUSE binding built from native/ (src/fuse/binding.ts finds it beside dist/).
  const built = path.join(REPO_ROOT, 'native/build/Release/fuse.node');
  if (existsSync(built)) cpSync(built, path.join(dir, 'native/build/Release/fuse.node'));
  // mkdtemp makes the directory 0700; nobody needs to enter it.
  chmodSync(dir, 0o755);
  nobodyCli = path.join(dir, 'dist/src/cli/main.js');
  return nobodyCli;
}

/** Quote for sh: 'it'\''s'. */
export function q(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

export interface Daemon {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the daemon has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

/** Start `kscrubfs mount DIR …args` in the foreground, as a child of the test. */
export function startDaemon(dir: string, args: readonly string[] = []): Daemon {
  const child = spawn(process.execPath, [CLI, 'mount', dir, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${CLI}`);
  const out = collect(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { pid: child.pid, child, exited, stdout: out.stdout, stderr: out.stderr };
}

/** Has the daemon exited? (A child of ours has its exit code or signal set once it has.) */
function hasExited(daemon: Daemon): boolean {
  return daemon.child.exitCode !== null || daemon.child.signalCode !== null;
}

/** Wait (bounded polling) until `daemon` serves `dir`: its mount is listed and answers a stat. */
export async function waitForMount(dir: string, daemon: Daemon, timeoutMs = MOUNT_TIMEOUT_MS): Promise<void> {
  const outcome = await pollUntil(async () => {
    if (hasExited(daemon)) return 'exited';
    return (await servedBy(dir, daemon.pid)) ? 'ready' : undefined;
  }, { timeoutMs });
  if (outcome === 'ready') return;
  const why = outcome === 'exited' ? `exited (${daemon.child.exitCode ?? daemon.child.signalCode})` : `did not answer within ${timeoutMs} ms`;
  throw new Error(`kscrubfs daemon on ${dir} ${why}\n--- daemon stderr ---\n${daemon.stderr()}`);
}

/** SIGTERM the daemon and wait for it; SIGKILL if it hangs; clear any mount left on `dir`. */
export async function stopDaemon(daemon: Daemon, dir: string): Promise<void> {
  if (!hasExited(daemon)) {
    daemon.child.kill('SIGTERM');
    if (!(await within(daemon.exited, STOP_TIMEOUT_MS))) {
      daemon.child.kill('SIGKILL');
      await daemon.exited;
    }
  }
  await clearMount(dir);
}

/** Last resort after a test: no mount may outlive it. */
export async function clearMount(dir: string): Promise<void> {
  if (findMount(dir) && !(await fusermountUnmount(dir))) throw new Error(`could not unmount ${dir}`);
}

/**
 * A temporary directory that nobody can traverse (for the non-root tests), with `mnt` inside
 * as the mount point. Removed afterwards — but never while something is mounted in it.
 */
export async function withTempDir(fn: (tmp: string, dir: string) => Promise<void>): Promise<void> {
  // realpath: mountinfo lists canonical paths.
  const tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'kscrubfs-test-')));
  const dir = path.join(tmp, 'mnt');
  try {
    await chmod(tmp, 0o755);
    await mkdir(dir, { mode: 0o755 });
    await fn(tmp, dir);
  } finally {
    await clearMount(dir);
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Mount a daemon started with `args` on a fresh temporary directory, run `fn`, then stop the
 * daemon and clean up. A failure carries the daemon's stderr.
 */
export async function withMount(args: readonly string[], fn: (dir: string, daemon: Daemon) => Promise<void>): Promise<void> {
  await withTempDir(async (_tmp, dir) => {
    const daemon = startDaemon(dir, args);
    try {
      await waitForMount(dir, daemon);
      await fn(dir, daemon);
    } catch (err) {
      if (err instanceof Error && !err.message.includes('--- daemon stderr ---')) {
        err.message += `\n--- daemon stderr ---\n${daemon.stderr()}`;
      }
      throw err;
    } finally {
      await stopDaemon(daemon, dir);
    }
  });
}

/** Pids whose parent is `pid` (from /proc; no pgrep needed). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process went away while we looked.
    }
  }
  return children;
}

/** Is `pid` a live process (not a zombie)? */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  return { stdout: () => Buffer.concat(out).toString(), stderr: () => Buffer.concat(err).toString() };
}

async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// The shell client of every test that drives a mount as a user would (bash, echo, read);
// tests that need the protocol from Node use the product's ControlClient and controlBatch
// (src/workload/client.ts).

/**
 * Run control commands on one open file of DIR/control (bash: exec 3<>control, one write and
 * one read per line) and return the result lines; every one must start "ok".
 */
export async function control(dir: string, ...lines: string[]): Promise<string[]> {
  const script = 'exec 3<>"$1"; shift; for l in "$@"; do printf "%s\\n" "$l" >&3; IFS= read -r r <&3; printf "%s\\n" "$r"; done';
  const r = await run('bash', ['-c', script, 'control', path.join(dir, 'control'), ...lines]);
  const results = r.stdout.split('\n').slice(0, -1);
  assert.equal(results.length, lines.length, `control: ${lines.join(' | ')} → ${r.stdout}${r.stderr}`);
  results.forEach((result, i) => assert.match(result, /^ok\b/, `control: ${lines[i]} → ${result}`));
  return results;
}

/** `alloc …` through control; returns the handles ("1,2,3") for a later `free handles=…`. */
export async function alloc(dir: string, args: string): Promise<string> {
  const [result] = await control(dir, `alloc ${args}`);
  const handles = /^ok handles=([\d,]+)$/.exec(result!)?.[1];
  assert.ok(handles, result);
  return handles;
}

/** Write a sysctl of the mount as a user would: `echo VALUE > DIR/sys/vm/NAME`. */
export async function sysctl(dir: string, name: string, value: number): Promise<void> {
  const r = await run('sh', ['-c', 'echo "$2" > "$1"', 'sysctl', path.join(dir, 'sys/vm', name), String(value)]);
  assert.equal(r.code, 0, `echo ${value} > sys/vm/${name}: ${r.stderr}`);
}
