import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pollUntil } from '../../src/daemon/poll';
import { findMount, fusermountUnmount, probe } from '../../src/fuse/mountpoint';
import { startDaemon, stopDaemon, waitForMount, type Daemon } from '../helpers/mount';
import { pinServer, type Pinning } from './common';

// The FUSE servers the read benchmark compares, each a child process of the bench (never read
// a mount from the process serving it): kscrubfs itself, the minimal fuse-native daemon, and
// Debian's LXCFS. Each is started, waited for by bounded polling, pinned to the server CPU,
// and always stopped and unmounted again.

const READY_MS = 15_000;
const STOP_MS = 5_000;

export interface Server {
  readonly label: string;
  readonly dir: string;
  readonly pid: number;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

/** `kscrubfs mount DIR …args`, as the integration tests start it. */
export async function startKscrubfs(label: string, dir: string, args: readonly string[], pin: Pinning): Promise<Server> {
  mkdirSync(dir, { recursive: true });
  const daemon: Daemon = startDaemon(dir, args);
  try {
    await waitForMount(dir, daemon);
    await pinServer(pin, daemon.pid);
  } catch (err) {
    await stopDaemon(daemon, dir);
    throw err;
  }
  return { label, dir, pid: daemon.pid, stderr: daemon.stderr, stop: () => stopDaemon(daemon, dir) };
}

/** test/bench/minimal-daemon.ts: one constant file, `/file`. */
export function startMinimal(label: string, dir: string, flags: readonly string[], pin: Pinning): Promise<Server> {
  const script = path.join(__dirname, 'minimal-daemon.js');
  return startChild(label, dir, process.execPath, [script, dir, ...flags], 'file', pin);
}

/**
 * LXCFS in the foreground (-f; -d is its debug mode, which is also foreground), with its own
 * pidfile so it never touches /run/lxcfs.pid. Undefined, with the reason, when it cannot run.
 */
export async function startLxcfs(dir: string, pin: Pinning, debug = false): Promise<Server | string> {
  const binary = ['/usr/bin/lxcfs', '/usr/local/bin/lxcfs'].find((p) => existsSync(p));
  if (!binary) return 'lxcfs is not installed (Debian: apt-get install lxcfs)';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  const pidfile = `${dir}.pid`;
  try {
    return await startChild('LXCFS', dir, binary, [debug ? '-d' : '-f', '-p', pidfile, dir], 'proc/meminfo', pin);
  } catch (err) {
    return `lxcfs did not come up: ${(err as Error).message.split('\n')[0]}`;
  }
}

async function startChild(label: string, dir: string, file: string, args: readonly string[], readyFile: string, pin: Pinning): Promise<Server> {
  mkdirSync(dir, { recursive: true });
  const child = spawn(file, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const err: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const stderr = (): string => Buffer.concat(err).toString();
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const server: Server = { label, dir, pid: child.pid ?? -1, stderr, stop: () => stopChild(child, exited, dir) };
  const ready = await pollUntil(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    return findMount(dir) && (await probe(path.join(dir, readyFile), 1000)) === 'ok' ? 'ready' : undefined;
  }, { timeoutMs: READY_MS, intervalMs: 50 });
  if (ready !== 'ready') {
    await server.stop();
    throw new Error(`${label} on ${dir} ${ready === 'exited' ? 'exited' : 'did not answer'}: ${stderr().trim().split('\n').slice(-3).join(' / ')}`);
  }
  await pinServer(pin, server.pid);
  return server;
}

/** SIGTERM, SIGKILL after a grace period, then make sure nothing stays mounted. */
async function stopChild(child: ChildProcess, exited: Promise<void>, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const gone = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(r, STOP_MS, false))]);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  if (findMount(dir)) await fusermountUnmount(dir);
}

/** Stop every server, even if some stop fails; the first failure is rethrown after. */
export async function stopAll(servers: readonly Server[]): Promise<void> {
  const results = await Promise.allSettled(servers.map((s) => s.stop()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * The adapter's request counts, by op, as the daemon prints them on SIGUSR2
 * (`kscrubfs: requests {…}`): send the signal and wait for the new line.
 */
export async function requestCounts(server: Server): Promise<Record<string, number>> {
  const marker = 'kscrubfs: requests ';
  const seen = server.stderr().split(marker).length;
  process.kill(server.pid, 'SIGUSR2');
  const line = await pollUntil(() => {
    const parts = server.stderr().split(marker);
    return parts.length > seen ? parts[parts.length - 1]!.split('\n')[0] : undefined;
  }, { timeoutMs: 5000, intervalMs: 10 });
  if (line === undefined) throw new Error(`${server.label}: no request counts after SIGUSR2`);
  return JSON.parse(line) as Record<string, number>;
}

/** libfuse's debug log ("unique: N, opcode: OPEN (14), …"): requests by opcode in `text`. */
export function opcodesIn(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/opcode: ([A-Z_]+)/g)) counts[m[1]!] = (counts[m[1]!] ?? 0) + 1;
  return counts;
}
