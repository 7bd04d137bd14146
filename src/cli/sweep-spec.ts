import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type MachineOptions, SYSCTL_NAMES } from '../model';
import { MAX_LINES_PER_PAGE, MAX_MAP_BYTES, MAX_MAX_ORDER, MAX_PREALLOC_ORDER, MAX_REPS, MAX_THREADS, parseSize } from '../uapi';
import { checkMachineOptions } from '../uapi/bounds';
import type { PftOptions } from '../workload/pft';
import { CliError } from './errors';

// A sweep spec (JSON): a grid of machines × sysctls × workloads, one pft row per point.
//
//   {
//     "name": "threads",                        // names the output (threads.jsonl)
//     "description": "…",
//     "machine":  { "preset": ["altix", "x86_64"], "zeroDrivers": "cpu", "mem": "6G", "cost": [{}, {"trapNs": 900}] },
//     "sysctl":   { "scrub_load": 999 },        // written before the workload (vm.<name>)
//     "workload": { "bytes": "256M", "threads": [1, 2, 4, 8], "scrub": ["off", "on"], "settle": true },
//     "plot":     { "x": "threads", "series": ["preset", "scrub"] }
//   }
//
// Every value is a list of choices; a single value is a list of one. The grid is the product of
// all lists, in the order the keys are written (the first key varies slowest). A point is a flat
// record of every dimension's value; its key is a hash of that record (sorted keys), so the key
// does not change when the spec is reordered or another dimension is added around it.
//
//   machine:  preset, mem, nodes, cpus, pageSize, maxOrder, cpuMhz, zeroDrivers ("bte,cpu"), cost ({name: value})
//   sysctl:   scrub_start, scrub_stop, scrub_load, max_prealloc_order
//   workload: bytes (size), reps, threads, cachelines, scrub ("on"|"off"), scrubStart, scrubStop,
//             prealloc (vm.max_prealloc_order for the run; default 0, as pft's, unless the sysctl
//             section sets max_prealloc_order), settle (true: wait until kscrubd sleeps),
//             thp (true: map MADV_HUGEPAGE, as pft --thp)
// Every point runs on a fresh machine with a manual clock: results depend on the point only.
// A grid has at most MAX_SWEEP_POINTS points (counted before one is built); machine values
// are checked as a record's machine options are (src/uapi/bounds.ts).

/** The most points a spec may make: ten thousand pft runs is days of work already. */
export const MAX_SWEEP_POINTS = 10_000;

const MACHINE_KEYS = ['preset', 'mem', 'nodes', 'cpus', 'pageSize', 'maxOrder', 'cpuMhz', 'zeroDrivers', 'cost'] as const;
const WORKLOAD_KEYS = ['bytes', 'reps', 'threads', 'cachelines', 'scrub', 'scrubStart', 'scrubStop', 'prealloc', 'settle', 'thp'] as const;
const SECTIONS = { machine: MACHINE_KEYS, sysctl: SYSCTL_NAMES, workload: WORKLOAD_KEYS } as const;
type Section = keyof typeof SECTIONS;

export type Value = string | number | boolean | Readonly<Record<string, number>>;

/** One point: every dimension's value, by its name, and the section it belongs to. */
export interface Point {
  readonly key: string;
  /** Position in the grid (the output's order). */
  readonly index: number;
  readonly values: Readonly<Record<string, Value>>;
}

export interface SweepSpec {
  readonly name: string;
  readonly description: string;
  readonly file: string;
  /** Dimension name → section, in spec order. */
  readonly dims: ReadonlyArray<readonly [string, Section, readonly Value[]]>;
  readonly plot: { readonly x: string; readonly series: readonly string[] } | undefined;
  readonly points: readonly Point[];
}

function bad(file: string, why: string): never {
  throw new CliError('KSCRUB_BAD_INPUT', `sweep spec ${file}: ${why}`);
}

/** Read and check a spec file; every point of its grid, in order. */
export function loadSpec(file: string): SweepSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    bad(file, (err as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) bad(file, 'not a JSON object');
  const spec = raw as Record<string, unknown>;
  for (const k of Object.keys(spec)) {
    if (!['name', 'description', 'machine', 'sysctl', 'workload', 'plot'].includes(k)) bad(file, `unknown key "${k}"`);
  }
  const dims: [string, Section, Value[]][] = [];
  for (const section of Object.keys(SECTIONS) as Section[]) {
    const body = spec[section] ?? {};
    if (typeof body !== 'object' || body === null || Array.isArray(body)) bad(file, `"${section}" is not an object`);
    for (const [name, v] of Object.entries(body as Record<string, unknown>)) {
      if (!(SECTIONS[section] as readonly string[]).includes(name)) bad(file, `${section}: unknown key "${name}" (keys: ${SECTIONS[section].join(', ')})`);
      const choices = (Array.isArray(v) ? v : [v]) as unknown[];
      if (choices.length === 0) bad(file, `${section}.${name}: no values`);
      for (const c of choices) checkValue(file, section, `${section}.${name}`, name, c);
      dims.push([name, section, choices as Value[]]);
    }
  }
  const count = dims.reduce((n, d) => n * d[2].length, 1);
  if (count > MAX_SWEEP_POINTS) bad(file, `its grid has ${count} points, more than the ${MAX_SWEEP_POINTS} a sweep runs (split it into several specs)`);
  const name = typeof spec.name === 'string' && /^[\w.-]+$/.test(spec.name) ? spec.name : path.basename(file).replace(/\.json$/, '');
  const plot = parsePlot(file, spec.plot, dims.map((d) => d[0]));
  return { name, description: typeof spec.description === 'string' ? spec.description : '', file, dims, plot, points: grid(dims) };
}

function checkValue(file: string, section: Section, where: string, name: string, v: unknown): void {
  if (section === 'machine') {
    try {
      checkMachineOptions(machineOptions(name, v as Value), where);
    } catch (err) {
      bad(file, (err as Error).message);
    }
    return;
  }
  const ok = name === 'settle' || name === 'thp' ? typeof v === 'boolean'
    : name === 'scrub' ? v === 'on' || v === 'off'
      : name === 'bytes' ? isSize(v)
        : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!ok) bad(file, `${where}: ${JSON.stringify(v)} is not a valid value`);
  // The fixed limits, as pft's options have them; what depends on the machine (lines a page,
  // its MAX_ORDER) pft checks against the mount before the point's row runs.
  const range = section === 'sysctl' ? (name === 'max_prealloc_order' ? [0, MAX_PREALLOC_ORDER] : undefined) : WORKLOAD_RANGES[name];
  if (range && typeof v === 'number' && (v < range[0]! || v > range[1]!)) bad(file, `${where}: ${v} is out of range ${range[0]}..${range[1]}`);
  if (name === 'bytes' && section === 'workload' && (typeof v === 'number' ? v : parseSize(v as string)) > MAX_MAP_BYTES) {
    bad(file, `${where}: ${JSON.stringify(v)} is more than the largest mapping (${MAX_MAP_BYTES} bytes)`);
  }
}

const WORKLOAD_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  reps: [1, MAX_REPS], threads: [1, MAX_THREADS], cachelines: [1, MAX_LINES_PER_PAGE],
  scrubStart: [0, MAX_MAX_ORDER], scrubStop: [0, MAX_MAX_ORDER], prealloc: [0, MAX_PREALLOC_ORDER],
};

/** A size: "256M", or a whole number of bytes > 0 (0.5 bytes is no size). */
function isSize(v: unknown): boolean {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0;
  if (typeof v !== 'string') return false;
  try {
    return parseSize(v) > 0;
  } catch {
    return false;
  }
}

/** One machine dimension's value as the option it sets (zeroDrivers "bte,cpu" is a list). */
function machineOptions(name: string, v: Value): Record<string, unknown> {
  return { [name]: name === 'zeroDrivers' && typeof v === 'string' ? v.split(',').map((d) => d.trim()) : v };
}

function parsePlot(file: string, plot: unknown, names: readonly string[]): SweepSpec['plot'] {
  if (plot === undefined) return undefined;
  const p = plot as { x?: unknown; series?: unknown };
  const series = Array.isArray(p.series) ? p.series : p.series === undefined ? [] : [p.series];
  if (typeof p.x !== 'string' || !names.includes(p.x)) bad(file, `plot.x must name a dimension (${names.join(', ')})`);
  for (const s of series) if (typeof s !== 'string' || !names.includes(s)) bad(file, `plot.series: ${JSON.stringify(s)} is not a dimension`);
  return { x: p.x, series: series as string[] };
}

/** The product of the dimensions, first varying slowest. */
function grid(dims: ReadonlyArray<readonly [string, Section, readonly Value[]]>): Point[] {
  let rows: Record<string, Value>[] = [{}];
  for (const [name, , choices] of dims) rows = rows.flatMap((r) => choices.map((c) => ({ ...r, [name]: c })));
  const seen = new Map<string, number>();
  return rows.map((values, index) => {
    const key = pointKey(values);
    if (seen.has(key)) throw new CliError('KSCRUB_BAD_INPUT', `sweep spec: points ${seen.get(key)! + 1} and ${index + 1} are the same (a dimension lists a value twice)`);
    seen.set(key, index);
    return { key, index, values };
  });
}

/** JSON with sorted keys at every level: one text per record, whatever the key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A point's stable key: 12 hex digits of SHA-256 over its canonical record. */
export function pointKey(values: Readonly<Record<string, Value>>): string {
  return createHash('sha256').update(canonical(values)).digest('hex').slice(0, 12);
}

/** What a point runs: the machine's options (manual clock), the sysctls to write, pft's options. */
export interface PointRun {
  readonly machine: MachineOptions;
  readonly sysctl: ReadonlyArray<readonly [string, number]>;
  readonly pft: PftOptions;
}

export function pointRun(spec: Pick<SweepSpec, 'dims'>, p: Point): PointRun {
  const machine: Record<string, unknown> = { clock: 'manual' };
  const sysctl: [string, number][] = [];
  const w: Record<string, Value> = {};
  for (const [name, section] of spec.dims) {
    const v = p.values[name]!;
    if (section === 'machine') Object.assign(machine, checkMachineOptions(machineOptions(name, v)));
    else if (section === 'sysctl') sysctl.push([name, v as number]);
    else w[name] = v;
  }
  const bytes = w.bytes === undefined ? 2 ** 28 : typeof w.bytes === 'number' ? w.bytes : parseSize(w.bytes as string, 'bytes');
  if (w.scrub !== undefined && w.scrub !== 'on' && w.scrub !== 'off') throw new CliError('KSCRUB_BAD_INPUT', `sweep: scrub must be "on" or "off", not ${JSON.stringify(w.scrub)}`);
  const pft: PftOptions = {
    bytes, reps: (w.reps as number | undefined) ?? 1, threads: [(w.threads as number | undefined) ?? 1],
    cachelines: (w.cachelines as number | undefined) ?? 1, settle: (w.settle as boolean | undefined) ?? false,
    ...(w.scrub !== undefined ? { scrub: w.scrub } : {}),
    ...(w.scrubStart !== undefined ? { scrubStart: w.scrubStart as number } : {}),
    ...(w.scrubStop !== undefined ? { scrubStop: w.scrubStop as number } : {}),
    // As pft's --prealloc: no prefault unless the spec asks (no mainline kernel prefaults
    // anonymous memory), so a point agrees with pft, payoff and trace replay of the same size;
    // a spec that writes the sysctl itself keeps what it wrote.
    ...(w.prealloc !== undefined ? { prealloc: w.prealloc as number } : sysctl.some(([n]) => n === 'max_prealloc_order') ? {} : { prealloc: 0 }),
    ...(w.thp === true ? { thp: true } : {}),
  };
  return { machine: machine as MachineOptions, sysctl, pft };
}
