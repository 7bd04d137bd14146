import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type BuddyZone, parseBuddyinfo, parseLoadavg, parseMeminfo, parseSysctl, parseUptime, parseVmstat, parseZoneinfo } from '../uapi';
import { explainMountError, readMountFile } from './client';

// What `kscrubfs watch` reads: the mounted files' text, parsed by the strict parsers every
// client uses (src/uapi/proc.ts). Nothing here knows the model, so the same parsers read a real
// kernel's /proc (stock buddyinfo, no MemZero, no kscrubd counters) and the view says what is
// missing; a line of no known shape is an error naming the file, the line and the token.

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

async function read(dir: string, file: string): Promise<string> {
  try {
    return await readMountFile(path.join(dir, file));
  } catch (err) {
    throw explainMountError(err, dir, file);
  }
}

async function readOptional(dir: string, file: string): Promise<string | null> {
  try {
    return await readMountFile(path.join(dir, file));
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
  const first = parseUptime(await read(dir, 'uptime')).uptime;
  const [meminfo, vmstat, loadavg] = await Promise.all([read(dir, 'meminfo'), read(dir, 'vmstat'), readOptional(dir, 'loadavg')]);
  const sysctl = new Map<WatchedSysctl, number>();
  for (const name of WATCHED_SYSCTLS) {
    const text = await readOptional(dir, `sys/vm/${name}`);
    if (text !== null) sysctl.set(name, parseSysctl(text, `sys/vm/${name}`));
  }
  const uptime = await read(dir, 'uptime');
  return {
    wallMs,
    uptimeS: parseUptime(uptime).uptime,
    uptimeFirstS: first,
    buddy,
    meminfo: parseMeminfo(meminfo),
    vmstat: parseVmstat(vmstat),
    runnable: loadavg === null ? null : parseLoadavg(loadavg).running,
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
    zoneinfo = await readMountFile(path.join(dir, 'zoneinfo'));
    memTotal = parseMeminfo(await readMountFile(path.join(dir, 'meminfo'))).get('MemTotal');
  } catch {
    return null; // the samples that follow say what is wrong with the mount
  }
  if (memTotal === undefined) return null;
  let managed = 0;
  for (const z of parseZoneinfo(zoneinfo)) managed += z.header.get('managed')!;
  const pageKb = managed > 0 ? memTotal / managed : NaN;
  return Number.isInteger(pageKb) && pageKb > 0 ? pageKb : null;
}
