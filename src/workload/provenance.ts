import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describeKscrubd } from '../uapi';
import { type Control, ControlClient, WorkloadError, run } from './client';

// Every result says how it was made: the kscrubfs version, the machine (preset, memory,
// nodes, CPUs, page size, max order, zero drivers, cost overrides), the clock and its speed,
// and every sysctl when the run started. The daemon tells through the control command
// `config`; this module turns that line into the JSON object and the CSV comment lines that
// pft, calibrate, watch --once and sweep print. A result without them cannot be checked:
// a plot that looks 2× off may just have had prefault on.

export interface Provenance {
  /** The kscrubfs version that printed the result. */
  readonly kscrubfs: string;
  /** The command line, as given (argv after the program). */
  readonly command: string;
  readonly machine: {
    readonly preset: string;
    readonly memBytes: number;
    readonly nodes: number;
    readonly cpus: number;
    readonly pageSize: number;
    readonly lineSize: number;
    readonly maxOrder: number;
    readonly cpuMhz: number;
    readonly zeroDrivers: readonly string[];
    /** Cost figures that differ from the preset's (mount --cost). */
    readonly costOverrides: Readonly<Record<string, number>>;
    /** Zeroing policies (mount --zeroing-policy), when not the default kscrubd alone. */
    readonly zeroingPolicy?: readonly string[];
    /** How faults clear a huge page (mount --huge-clear), when not the default, page at a time. */
    readonly hugeClear?: string;
    /** The preemption model (mount --preempt), when not the preset's. */
    readonly preempt?: string;
  };
  readonly clock: { readonly mode: string; readonly speed: number; readonly startNs: number };
  /** vm.* sysctls when the run started (after the run's own settings, e.g. pft --scrub). */
  readonly sysctl: Readonly<Record<string, number>>;
}

/** The `config` result line's pairs, as strings. */
export type ConfigPairs = Readonly<Record<string, string>>;

/** Ask the daemon behind `ctl` how its machine was made. */
export function readConfig(ctl: Control): ConfigPairs {
  return run(ctl, { verb: 'config' });
}

/** A `config` line (pairs) plus what only the client knows → the provenance record. */
export function provenance(config: ConfigPairs, version: string, command: string): Provenance {
  const num = (key: string): number => {
    const v = Number(config[key]);
    if (config[key] === undefined || !Number.isFinite(v)) throw new WorkloadError(`control config did not report ${key}`);
    return v;
  };
  const prefixed = (prefix: string): Record<string, number> => Object.fromEntries(
    Object.keys(config).filter((k) => k.startsWith(prefix)).map((k) => [k.slice(prefix.length), num(k)]),
  );
  return {
    kscrubfs: version,
    command,
    machine: {
      preset: config.preset ?? '?',
      memBytes: num('mem_bytes'),
      nodes: num('nodes'),
      cpus: num('cpus'),
      pageSize: num('page_size'),
      lineSize: num('line_size'),
      maxOrder: num('max_order'),
      cpuMhz: num('cpu_mhz'),
      zeroDrivers: (config.zero_drivers ?? '').split(',').filter(Boolean),
      costOverrides: prefixed('cost.'),
      ...(config.zeroing_policy === undefined ? {} : { zeroingPolicy: config.zeroing_policy.split(',') }),
      ...(config.huge_clear === undefined ? {} : { hugeClear: config.huge_clear }),
      ...(config.preempt === undefined ? {} : { preempt: config.preempt }),
    },
    clock: { mode: config.clock ?? '?', speed: num('speed'), startNs: num('now_ns') },
    sysctl: prefixed('sysctl.'),
  };
}

/**
 * Provenance of a mount at `dir` for a client that otherwise reads only files (watch): through
 * the control file when it may open it (root, 0600), else null with the reason.
 */
export function mountProvenance(dir: string, version: string, command: string): { provenance: Provenance | null; why?: string; sysctl?: Record<string, number> } {
  let ctl: ControlClient | undefined;
  try {
    ctl = new ControlClient(dir);
    return { provenance: provenance(readConfig(ctl), version, command) };
  } catch (err) {
    return { provenance: null, why: (err as Error).message, ...sysctlFiles(dir) };
  } finally {
    ctl?.close();
  }
}

/**
 * The sysctls as their files read (0644: anyone may), for a result whose control file is
 * closed to it; nothing when they cannot be read either.
 */
function sysctlFiles(dir: string): { sysctl?: Record<string, number> } {
  try {
    const vm = path.join(dir, 'sys/vm');
    const sysctl: Record<string, number> = {};
    for (const name of readdirSync(vm).sort()) sysctl[name] = Number(readFileSync(path.join(vm, name), 'utf8').trim());
    return { sysctl };
  } catch {
    return {};
  }
}

/** What a result says when the machine cannot be asked (no access to its control file). */
function unknownProvenance(version: string, command: string, why: string, sysctl?: Readonly<Record<string, number>>): Record<string, unknown> {
  return { kscrubfs: version, command, machine: null, clock: null, sysctl: sysctl ?? null, unknown: why };
}

/** The JSON result: one object, provenance first, then `key: rows` and anything else. */
export function toJson(p: Provenance | Unknown, body: Readonly<Record<string, unknown>>): string {
  const head = 'unknown' in p ? unknownProvenance(p.kscrubfs, p.command, p.unknown, p.sysctl) : p;
  return `${JSON.stringify({ ...head, ...body }, null, 2)}\n`;
}

/** A result whose machine could not be asked: version, command and why. */
export interface Unknown {
  readonly kscrubfs: string;
  readonly command: string;
  readonly unknown: string;
  /** Read from sys/vm/ when the control file could not be: the sysctls are anyone's to read. */
  readonly sysctl?: Readonly<Record<string, number>>;
}

/** `# ` lines that carry the provenance at the top of a CSV. */
export function csvComments(p: Provenance | Unknown): string[] {
  const kv = (o: Readonly<Record<string, unknown>>): string => Object.entries(o)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? `{${kv(v as Record<string, unknown>)}}` : String(v)}`)
    .join(' ');
  if ('unknown' in p) return [`# kscrubfs ${p.kscrubfs}`, `# command: ${p.command}`, `# machine: unknown (${p.unknown})`, ...(p.sysctl ? [`# sysctl: ${kv(p.sysctl)}`] : [])];
  return [
    `# kscrubfs ${p.kscrubfs}`,
    `# command: ${p.command}`,
    `# machine: ${kv(p.machine)}`,
    `# clock: ${kv(p.clock)}`,
    `# sysctl: ${kv(p.sysctl)}`,
  ];
}

/** One CSV field: quoted when it holds a comma, quote or newline (RFC 4180). */
function field(v: unknown): string {
  const s = typeof v === 'number' ? String(v) : String(v ?? '');
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The CSV result: provenance comments, a header row of `columns`, one line per row. */
export function toCsv(p: Provenance | Unknown | null, columns: readonly string[], rows: readonly object[]): string {
  const lines = [...(p ? csvComments(p) : []), columns.join(','), ...rows.map((r) => columns.map((c) => field((r as Record<string, unknown>)[c])).join(','))];
  return `${lines.join('\n')}\n`;
}

/** kscrubd's settings as a plot names them: "kscrubd off" or "scrub_start 5, scrub_stop 2". */
export function scrubFact(p: Provenance): string {
  const s = p.sysctl;
  const d = describeKscrubd(s.scrub_start, s.scrub_stop, p.machine.maxOrder);
  return d === 'off' ? 'kscrubd off' : d;
}

/** The facts that change the numbers, for a plot's subtitle (kscrubd's unless `scrub` is false). */
export function subtitleFacts(p: Provenance, scrub = true): string {
  const s = p.sysctl;
  const costs = Object.entries(p.machine.costOverrides).map(([k, v]) => `${k}=${v}`);
  return [
    `${p.machine.preset}`,
    `zero drivers ${p.machine.zeroDrivers.join(',')}`,
    `prefault ${s.max_prealloc_order === 0 ? 'off' : `order ${s.max_prealloc_order}`}`,
    ...(scrub ? [scrubFact(p)] : []),
    ...(costs.length > 0 ? [`cost ${costs.join(',')}`] : []),
  ].join(', ');
}

/**
 * A CSV as toCsv writes it, back: `#` comment lines skipped, the first other line the header,
 * one record per line after it (RFC 4180 quoting).
 */
export function parseCsv(text: string): Record<string, string>[] {
  const records: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  let atLineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (atLineStart && c === '#' && !quoted) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
      continue;
    }
    atLineStart = false;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') field += text[++i];
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      records.push(row);
      row = [];
      field = '';
      atLineStart = true;
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) records.push([...row, field]);
  const [header, ...body] = records;
  return header ? body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? '']))) : [];
}

/**
 * The line every result prints under its table: what it ran with, defaults included, so a
 * number is never read without the settings that made it ("ran with: altix, zero drivers
 * cpu, prefault off, kscrubd off, manual clock; 1 cacheline a fault").
 */
export function ranWith(p: Provenance, extra: readonly string[] = [], scrub = true): string {
  return `ran with: ${subtitleFacts(p, scrub)}, ${p.clock.mode} clock${extra.length > 0 ? `; ${extra.join(', ')}` : ''}`;
}
