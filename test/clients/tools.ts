import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pollUntil } from '../../src/daemon/poll';
import { parseStat, parseBuddyinfo as strictBuddyinfo, parseMeminfo as strictMeminfo } from '../../src/uapi';
import { REPO_ROOT, run, type RunOptions, type RunResult } from '../helpers/mount';

// Helpers for the tests that drive real client tools (procps, node_exporter, psutil, collectd)
// against a kscrubfs mount. The tools come from `scripts/setup.sh --with-clients`.

export const WITH_PROCFS = path.join(REPO_ROOT, 'scripts/with-procfs');

/** Debian's python3: python3-psutil is installed for it, not for a pyenv/venv python on PATH. */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** Fail (not skip) when a tool is missing: a skip would hide a missing install step in CI. */
export function requireTool(file: string, pkg: string): void {
  assert.ok(existsSync(file), `${file} is missing: install ${pkg} (scripts/setup.sh --with-clients)`);
}

/** `scripts/with-procfs --mount DIR -- …cmd`. */
export function withProcfs(dir: string, cmd: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(WITH_PROCFS, ['--mount', dir, '--', ...cmd], opts);
}

/** A file of the mount, read by the test process (a client; the daemon is a child). */
export function readModel(dir: string, file: string): Promise<string> {
  return readFile(path.join(dir, file), 'utf8');
}

/** /proc/meminfo → { MemTotal: kB, … } (HugePages_* counts as they are), by the strict parser. */
export function parseMeminfo(text: string): Record<string, number> {
  return Object.fromEntries(strictMeminfo(text));
}

export async function meminfo(dir: string): Promise<Record<string, number>> {
  return parseMeminfo(await readModel(dir, 'meminfo'));
}

/** buddyinfo (stock or v6) → the counts of each zone's first line, per "node zone". */
export function parseBuddyinfo(text: string): Map<string, readonly number[]> {
  return new Map(strictBuddyinfo(text).map((z) => [`${z.node} ${z.zone}`, z.counts]));
}

/** /proc/stat's cpu line → the machine's user, system and idle ticks (USER_HZ). */
export function parseStatCpu(text: string): { user: number; system: number; idle: number } {
  const [user, , system, idle] = parseStat(text).cpus.get('cpu')!;
  return { user: user!, system: system!, idle: idle! };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A long-running tool started by a test: its output so far, and a bounded stop. */
export interface Service {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

export function startService(file: string, args: readonly string[], opts: { cwd?: string } = {}): Service {
  const child = spawn(file, [...args], { cwd: opts.cwd ?? REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  child.stderr?.on('data', (c: Buffer) => chunks.push(c));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (err) => {
      chunks.push(Buffer.from(`spawn ${file}: ${err.message}\n`));
      done = true;
      resolve({ code: 127, signal: null });
    });
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  const output = (): string => Buffer.concat(chunks).toString();
  return {
    child,
    exited,
    output,
    hasExited: () => done,
    async stop(graceMs = 5000): Promise<void> {
      if (done) return;
      child.kill('SIGTERM');
      const gone = await pollUntil(() => (done ? true : undefined), { timeoutMs: graceMs, intervalMs: 50 });
      if (!gone) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
