import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { WorkloadError, explainMountError } from './client';

// What `kscrubfs watch` reads: the mounted files' text, parsed. A client like cat or vmstat:
// nothing here knows the model, so the same parsers read a real kernel's /proc (stock
// buddyinfo, no MemZero, no kscrubd counters) and say what is missing instead of failing.

/** One zone of buddyinfo: free blocks per order; `zeroed` only when the file splits them (v6). */
export interface BuddyZone {
  readonly node: number;
  readonly zone: string;
  /** All free blocks per order: the zone line plus, in v6, its "Zeroed Pages" line. */
  readonly total: readonly number[];
  /** ZEROED blocks per order (v6), or null for a stock buddyinfo (one line per zone). */
  readonly zeroed: readonly number[] | null;
}

const ZONE_LINE = /^Node (\d+), zone\s+(\S+)((?:\s+\d+)+)\s*$/;
const ZEROED_LINE = /^\s+Zeroed Pages((?:\s+\d+)+)\s*$/;

function numbers(text: string): number[] {
  return text.trim().split(/\s+/).map(Number);
}

/**
 * buddyinfo, either format: v6 (each zone line counts NOT_ZEROED blocks and is followed by its
 * "Zeroed Pages" line) or stock (one line per zone, all blocks). A file mixing the two, or a
 * line of neither shape, is refused with the line quoted.
 */
export function parseBuddyinfo(text: string): BuddyZone[] {
  const zones: { node: number; zone: string; first: number[]; zeroed: number[] | null }[] = [];
  const lines = text.split('\n').filter((l) => l !== '');
  lines.forEach((line, i) => {
    const zone = ZONE_LINE.exec(line);
    const zeroed = zone ? null : ZEROED_LINE.exec(line);
    const last = zones.at(-1);
    if (zone) {
      zones.push({ node: Number(zone[1]), zone: zone[2]!, first: numbers(zone[3]!), zeroed: null });
    } else if (zeroed && last && last.zeroed === null && numbers(zeroed[1]!).length === last.first.length) {
      last.zeroed = numbers(zeroed[1]!);
    } else {
      throw new WorkloadError(`buddyinfo line ${i + 1} is not a zone or "Zeroed Pages" line: "${line}"`);
    }
  });
  const split = zones.filter((z) => z.zeroed !== null).length;
  if (split !== 0 && split !== zones.length) throw new WorkloadError('buddyinfo: some zones have a "Zeroed Pages" line and some do not');
  return zones.map(({ node, zone, first, zeroed }) => ({
    node, zone, zeroed,
    total: zeroed ? first.map((n, order) => n + zeroed[order]!) : first,
  }));
}

/** `name value` (vmstat) or `Name:  value kB` (meminfo) lines → a map; other lines are skipped. */
function parsePairs(text: string, pattern: RegExp): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = pattern.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** meminfo: field → value (kB for the kB fields, a count for HugePages_*). */
export function parseMeminfo(text: string): Map<string, number> {
  return parsePairs(text, /^([^:\s]+):\s+(\d+)(?: kB)?$/);
}

/** vmstat: counter → value. */
export function parseVmstat(text: string): Map<string, number> {
  return parsePairs(text, /^(\S+) (\d+)$/);
}

/** uptime's first field: seconds since boot (virtual time, for kscrubfs). */
export function parseUptime(text: string): number {
  const m = /^(\d+\.\d+) /.exec(text);
  if (!m) throw new WorkloadError(`uptime is not "<seconds> <idle>": "${text.trim()}"`);
  return Number(m[1]);
}

/** loadavg's runnable/total task counts ("0.00 0.00 0.00 4/9 1" → 4, 9). */
export function parseLoadavg(text: string): { runnable: number; tasks: number } {
  const m = /^\S+ \S+ \S+ (\d+)\/(\d+) /.exec(text);
  if (!m) throw new WorkloadError(`loadavg is not "<1> <5> <15> <runnable>/<tasks> <pid>": "${text.trim()}"`);
  return { runnable: Number(m[1]), tasks: Number(m[2]) };
}

/** The sysctls watch shows (kscrubfs mounts them at sys/vm/, as /proc/sys/vm/). */
export const WATCHED_SYSCTLS = ['scrub_start', 'scrub_stop'] as const;
export type WatchedSysctl = (typeof WATCHED_SYSCTLS)[number];

/** Everything one refresh reads, with the wall time it was read at. */
export interface Sample {
  /** performance.now() when the sample was taken (ms). */
  readonly wallMs: number;
  /** Seconds since boot from uptime: the machine's (virtual) clock, read last. */
  readonly uptimeS: number;
  /**
   * uptime read first, before buddyinfo: each file is its own snapshot, so when the clock
   * moved while the files were read (a live clock, a command running), they may disagree.
   */
  readonly uptimeFirstS: number;
  readonly buddy: readonly BuddyZone[];
  readonly meminfo: ReadonlyMap<string, number>;
  readonly vmstat: ReadonlyMap<string, number>;
  /** Runnable tasks from loadavg, or null when loadavg is missing. */
  readonly runnable: number | null;
  /** Sysctls present under sys/vm/ (missing ones are absent). */
  readonly sysctl: ReadonlyMap<WatchedSysctl, number>;
}

/** More than any file a mount or a kernel shows (a 64-node, 1024-CPU zoneinfo is a few MB). */
const MAX_FILE_BYTES = 64 * 2 ** 20;

/**
 * Read a mounted file whole, as cat would, but only a regular file (opened without blocking,
 * so a FIFO named meminfo cannot hang the watcher, and /dev/zero is refused), and at most
 * MAX_FILE_BYTES of it.
 */
async function readRegularFile(file: string): Promise<string> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw new Error(`${file} is not a regular file (a FIFO, a device or a socket): not what a mount or /proc shows`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await fh.read(Buffer.alloc(1 << 16), 0, 1 << 16, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_FILE_BYTES) throw new Error(`${file} holds more than ${MAX_FILE_BYTES >> 20} MiB: not what a mount or /proc shows`);
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await fh.close();
  }
}

async function read(dir: string, file: string): Promise<string> {
  try {
    return await readRegularFile(path.join(dir, file));
  } catch (err) {
    throw explainMountError(err, dir, file);
  }
}

async function readOptional(dir: string, file: string): Promise<string | null> {
  try {
    return await readRegularFile(path.join(dir, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw explainMountError(err, dir, file);
  }
}

/**
 * Read one sample of the mount at `dir`. buddyinfo comes first, so that an empty directory
 * reads as "nothing is mounted"; each file is its own snapshot, as for any procfs reader.
 */
export async function readSample(dir: string): Promise<Sample> {
  const wallMs = performance.now();
  const buddy = parseBuddyinfo(await read(dir, 'buddyinfo'));
  const first = parseUptime(await read(dir, 'uptime'));
  const [meminfo, vmstat, loadavg] = await Promise.all([read(dir, 'meminfo'), read(dir, 'vmstat'), readOptional(dir, 'loadavg')]);
  const sysctl = new Map<WatchedSysctl, number>();
  for (const name of WATCHED_SYSCTLS) {
    const text = await readOptional(dir, `sys/vm/${name}`);
    if (text !== null && /^\d+\n?$/.test(text)) sysctl.set(name, Number(text));
  }
  const uptime = await read(dir, 'uptime');
  return {
    wallMs,
    uptimeS: parseUptime(uptime),
    uptimeFirstS: first,
    buddy,
    meminfo: parseMeminfo(meminfo),
    vmstat: parseVmstat(vmstat),
    runnable: loadavg === null ? null : parseLoadavg(loadavg).runnable,
    sysctl,
  };
}

/**
 * The page size in kB, from two figures that do not move: meminfo's MemTotal (kB) and the sum
 * of zoneinfo's `managed` pages (the kernel's totalram_pages). Null when either is missing or
 * unreadable.
 */
export async function readPageKb(dir: string): Promise<number | null> {
  let zoneinfo: string;
  let memTotal: number | undefined;
  try {
    zoneinfo = await readRegularFile(path.join(dir, 'zoneinfo'));
    memTotal = parseMeminfo(await readRegularFile(path.join(dir, 'meminfo'))).get('MemTotal');
  } catch {
    return null; // the samples that follow say what is wrong with the mount
  }
  if (memTotal === undefined) return null;
  let managed = 0;
  for (const m of zoneinfo.matchAll(/^\s+managed\s+(\d+)$/gm)) managed += Number(m[1]);
  const pageKb = managed > 0 ? memTotal / managed : NaN;
  return Number.isInteger(pageKb) && pageKb > 0 ? pageKb : null;
}
