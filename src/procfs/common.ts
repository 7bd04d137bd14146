import { type Machine, type Zone, type ZoneName, ZONE_TYPES, kernelAtLeast } from '../model';
import type { ZeroingPolicyName } from '../uapi';

// Small helpers the renderers share. Everything here reads zone and machine counters only:
// nothing walks pages, sections or lists, so rendering costs the same on a 64 TiB machine.

/** pages → kB, as the kernel's `pages << (PAGE_SHIFT - 10)`. */
export function kb(m: Machine, pages: number): number {
  return pages * (m.pageSize / 1024);
}

/** The zone types of the machine's architecture, in kernel order (presets.ts ZONE_TYPES). */
export function zoneTypes(m: Machine): readonly ZoneName[] {
  return ZONE_TYPES[m.config.zoneLayout];
}

// The model counts anonymous and page-table pages machine-wide only (Processes.nrAnonPages,
// nrPageTablePages), not per node or zone. Machine-wide files (meminfo, vmstat's node items)
// show the totals; zoneinfo's per-node and per-zone items show them only where there is a
// single node / zone to give them to, and 0 otherwise, so that no page is placed on a node
// the model cannot vouch for.

/** Anonymous pages on `node` (0 when the model cannot place them). */
export function nodeAnonPages(m: Machine, node: number): number {
  return m.config.nodes === 1 && node === 0 ? m.procs.nrAnonPages : 0;
}

/** Page-table pages on `node` (0 when the model cannot place them). */
export function nodePageTablePages(m: Machine, node: number): number {
  return m.config.nodes === 1 && node === 0 ? m.procs.nrPageTablePages : 0;
}

/** Anonymous pages in zone `z` (0 when the model cannot place them). */
export function zoneAnonPages(m: Machine, z: Zone): number {
  return m.zones.length === 1 && m.zones[0] === z ? m.procs.nrAnonPages : 0;
}

/** Runnable tasks now: the workload threads on a CPU plus every kscrubd in a burst. */
export function runningTasks(m: Machine): number {
  let n = m.cpus.runningTasks;
  for (const k of m.kscrubd) if (k.awake) n++;
  return n;
}

/**
 * Tasks alive: init, one kscrubd per node, one per process (mm), and the extra threads of a
 * touch that runs several (so that running never exceeds alive while kscrubd is awake too).
 */
export function liveTasks(m: Machine): number {
  return 1 + m.kscrubd.length + m.procs.nrMms + Math.max(0, m.cpus.runningTasks - m.procs.nrMms);
}

/** Sum of `f` over the machine's zones. */
export function sumZones(m: Machine, f: (z: Zone) => number): number {
  let n = 0;
  for (const z of m.zones) n += f(z);
  return n;
}

/** Virtual nanoseconds as the kernel prints a timespec with "%lu.%02lu" (truncated, not rounded). */
export function secondsCentis(ns: number): string {
  const centis = Math.floor(ns / 1e7);
  return `${Math.floor(centis / 100)}.${String(centis % 100).padStart(2, '0')}`;
}

/**
 * `parts` as one flat string, for text made once and reused by every render. V8 keeps `a + b`
 * as a rope, and a rope's pieces are copied again each time a render that contains it is
 * flattened into the snapshot's Buffer; a flat string is copied as one piece. (join() with two
 * or more parts copies into a new flat string; with one it may hand back the rope itself.)
 */
export function flatString(...parts: string[]): string {
  return [...parts, ''].join('');
}

/** A file of the modelled kernel from `release` on (a ProcFile's `present`). */
export function since(release: string): (m: Machine) => boolean {
  return (m) => kernelAtLeast(m.config.kernel, release);
}

/** A file that exists when the machine booted with `policy`: its kernel was built with the patch. */
export function withPolicy(policy: ZeroingPolicyName): (m: Machine) => boolean {
  return (m) => m.config.zeroingPolicy.includes(policy);
}
