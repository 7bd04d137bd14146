import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pollUntil } from '../../src/daemon/poll';
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

/** /proc/meminfo → { MemTotal: kB, … } (HugePages_* counts as they are). */
export function parseMeminfo(text: string): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s+(\d+)(?: kB)?$/.exec(line);
    if (m) fields[m[1]!] = Number(m[2]);
  }
  assert.ok('MemTotal' in fields && 'MemFree' in fields, `meminfo without MemTotal/MemFree:\n${text}`);
  return fields;
}

export async function meminfo(dir: string): Promise<Record<string, number>> {
  return parseMeminfo(await readModel(dir, 'meminfo'));
}

/** buddyinfo (stock or v6) → counts per "node zone" of the first line of each zone. */
export function parseBuddyinfo(text: string): Map<string, number[]> {
  const zones = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    const m = /^Node (\d+), zone +(\S+) +([\d ]+)$/.exec(line);
    if (m) zones.set(`${m[1]} ${m[2]}`, m[3]!.trim().split(/ +/).map(Number));
  }
  assert.ok(zones.size > 0, `no zone lines in buddyinfo:\n${text}`);
  return zones;
}

/** /proc/stat's first line → the machine's user, system and idle ticks (USER_HZ). */
export function parseStatCpu(text: string): { user: number; system: number; idle: number } {
  const m = /^cpu +(\d+) \d+ (\d+) (\d+)/.exec(text);
  assert.ok(m, `no cpu line in stat:\n${text}`);
  return { user: Number(m[1]), system: Number(m[2]), idle: Number(m[3]) };
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
