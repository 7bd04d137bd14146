import { COUNTERS, type CounterName, counterShown } from './counters';
import { KscrubError } from './errors';
import type { Verb } from './grammar';
import { DEFAULT_ZEROING_POLICY, type ZeroingPolicyName } from './policies';

// What a control command's `ok` line carries, key by key, as the request side has its grammar:
// the daemon prints these keys, and a client parses a result line into a typed object by the
// same table (parseResult), instead of looking up strings it hopes are there.

/** `stats`: the machine's shape and state, then every counter of the table by its vmstat name. */
export const STATS_STATE_KEYS = ['now_ns', 'page_size', 'max_order', 'nodes', 'cpus', 'raw_pages', 'mms', 'kscrubd_awake'] as const;
export type StatsKey = (typeof STATS_STATE_KEYS)[number] | CounterName;
/** `stats`' keys on a machine running `policies`: its counters are those the machine prints. */
export function statsKeys(policies: readonly ZeroingPolicyName[]): readonly StatsKey[] {
  return [...STATS_STATE_KEYS, ...COUNTERS.filter((c) => counterShown(c, policies)).map((c) => c.name)];
}
/** `stats`' keys on a machine of the default policy. */
export const STATS_KEYS: readonly StatsKey[] = statsKeys(DEFAULT_ZEROING_POLICY);
export type Stats = Readonly<Record<StatsKey, number>>;

/** int: plain decimal; hex: 0x…; ids: a comma list of decimals, maybe empty. */
type ResultKind = 'int' | 'hex' | 'ids';
type KindValue<K extends ResultKind> = K extends 'ids' ? readonly number[] : number;

const TOUCH = {
  pages: 'int', faults: 'int', prezeroed: 'int', hot_zeroed: 'int', prefaulted: 'int', oom: 'int', user_ns: 'int', sys_ns: 'int', wall_ns: 'int',
} as const;
/** What a touch of a hugetlb mapping adds: faults that waited for khzerod, and the slowest fault. */
const HUGETLB_TOUCH_KEYS = ['waited', 'max_fault_ns'] as const;
const FREED = { freed_pages: 'int', sys_ns: 'int', wall_ns: 'int' } as const;
const STATS = Object.fromEntries([...STATS_STATE_KEYS, ...COUNTERS.map((c) => c.name)].map((k) => [k, 'int'])) as Readonly<Record<StatsKey, 'int'>>;
/** Keys a result line carries only on some machines: a zeroing policy's counters, in `stats`. */
const OPTIONAL_KEYS: ReadonlySet<string> = new Set([...COUNTERS.filter((c) => c.policy !== null).map((c) => c.name), ...HUGETLB_TOUCH_KEYS]);

/** The keys of each verb's `ok` line, in the order printed (config's are open: see ConfigResult). */
export const RESULT_KEYS = {
  tick: { now_ns: 'int' },
  alloc: { handles: 'ids' },
  free: { freed_pages: 'int' },
  drain: { drained_pages: 'int' },
  bte: {},
  check: {},
  stats: STATS,
  'mm new': { mm: 'int' },
  'mm list': { mms: 'ids', kept: 'ids' },
  'mm exit': FREED,
  mmap: { addr: 'hex', size: 'int' },
  munmap: FREED,
  touch: { ...TOUCH, waited: 'int', max_fault_ns: 'int' },
  fault: TOUCH,
  faults: { ...TOUCH, zero_ns: 'int' },
} as const satisfies Record<Exclude<Verb, 'config'>, Readonly<Record<string, ResultKind>>>;

/** `config`: preset, mem_bytes, …, sysctl.<name>, cost.<name>: values as printed (names, numbers, lists). */
/**
 * What a run of faults counts, whoever reports it: the model's touch, a pft row. (The result
 * line spells them faults, prezeroed, hot_zeroed, prefaulted, oom.)
 */
export interface FaultCounts {
  /** Pages the run covered (pft: bytes × repetitions ÷ page size, computed as pft does). */
  pages: number;
  /** Faults taken (a prefaulted page is mapped within another page's fault). */
  faults: number;
  prezeroed: number;
  hotZeroed: number;
  prefaulted: number;
  oom: number;
}

export type ConfigResult = Readonly<Record<string, string>>;

type Keys = typeof RESULT_KEYS;
/** The typed `ok` line of verb V. */
export type Result<V extends Verb> = V extends keyof Keys
  ? { readonly [K in keyof Keys[V]]: Keys[V][K] extends ResultKind ? KindValue<Keys[V][K]> : never }
  : ConfigResult;

/** A result line that does not match the table: the daemon and the client disagree. */
export class ControlResultError extends KscrubError<'KSCRUB_CONTROL_RESULT'> {
  constructor(message: string) {
    super('KSCRUB_CONTROL_RESULT', message);
  }
}

const VALUE: Readonly<Record<ResultKind, RegExp>> = { int: /^(0|[1-9]\d*)$/, hex: /^0x[0-9a-f]+$/, ids: /^(\d+(,\d+)*)?$/ };

/**
 * The text after `ok` of a `verb` result → its typed object. Every key of the table must be
 * there once, in order, and nothing else (a zeroing policy's counters only on a machine that
 * runs it); a value of the wrong shape is an error naming it.
 */
export function parseResult<V extends Verb>(verb: V, text: string): Result<V> {
  const tokens = text === '' ? [] : text.split(' ');
  const pairs = tokens.map((t) => {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new ControlResultError(`${verb}: result token "${t}" is not key=value`);
    return [t.slice(0, eq), t.slice(eq + 1)] as const;
  });
  if (verb === 'config') return Object.fromEntries(pairs) as Result<V>;
  const spec = RESULT_KEYS[verb as keyof Keys] as Readonly<Record<string, ResultKind>>;
  const got = pairs.map(([k]) => k);
  const present = new Set(got);
  const keys = Object.keys(spec).filter((k) => !OPTIONAL_KEYS.has(k) || present.has(k));
  if (got.join(' ') !== keys.join(' ')) {
    throw new ControlResultError(`${verb}: result keys "${got.join(' ')}" are not the protocol's "${keys.join(' ')}"`);
  }
  const out: Record<string, number | readonly number[]> = {};
  for (const [k, v] of pairs) {
    const kind = spec[k]!;
    if (!VALUE[kind].test(v)) throw new ControlResultError(`${verb}: result ${k}="${v}" is not ${kind === 'ids' ? 'a list of ids' : kind === 'hex' ? 'a hex address' : 'a decimal integer'}`);
    out[k] = kind === 'ids' ? (v === '' ? [] : v.split(',').map(Number)) : kind === 'hex' ? Number.parseInt(v.slice(2), 16) : Number(v);
  }
  return out as Result<V>;
}
