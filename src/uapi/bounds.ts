import { ModelError } from './errors';
import { MAX_MAP_BYTES } from './limits';

// Every number that comes from outside — a --cost figure, a record's or a sweep's machine
// options, a trace header — is checked here, against what a machine could physically have,
// before anything uses it: the CLI, replay, trace replay and sweep share these checks, so a
// value one of them refuses none of them runs. Types are checked before use (a JSON `5` where
// a size string belongs is refused by name, not met as a TypeError deep inside), unknown keys
// are refused, and a key inherited from Object.prototype (`__proto__`) is never looked up.

function bad(message: string): never {
  throw new ModelError('KSCRUB_BAD_OPTION', message);
}

/** 1 byte per second to 1 TB/s, in bytes per ns: the slowest and fastest memory anyone builds. */
export const MIN_BYTES_PER_NS = 1e-9;
export const MAX_BYTES_PER_NS = 1e3;
/** A latency of one step of the fault path: none at all up to a whole second. */
export const MAX_LATENCY_NS = 1e9;

interface Bound {
  readonly min: number;
  readonly max: number;
  /** Also allowed: 0 meaning "no such term" (writebackBytesPerNs). */
  readonly zeroMeansNone?: true;
  readonly unit: string;
}

const BANDWIDTH: Bound = { min: MIN_BYTES_PER_NS, max: MAX_BYTES_PER_NS, unit: 'bytes/ns (1 B/s to 1 TB/s)' };
const LATENCY: Bound = { min: 0, max: MAX_LATENCY_NS, unit: 'ns (0 to 1 s)' };
const CLOCK: Bound = { min: 0.1, max: 10, unit: 'GHz (100 MHz to 10 GHz)' };
const XFER_BYTES: Bound = { min: 0, max: MAX_MAP_BYTES, unit: 'bytes' };

/**
 * The physical range of every cost figure, by the name --cost gives it (src/model/cost.ts's
 * CostModel; the compiler checks there that every figure has a range and nothing else does).
 */
export const COST_BOUNDS = {
  trapNs: LATENCY, handlerNs: LATENCY, ptlCheckNs: LATENCY, ptlSetNs: LATENCY, lineBounceNs: LATENCY,
  lineRemoteNs: LATENCY, pcpAllocNs: LATENCY, buddyPerPageNs: LATENCY, lruPerPageNs: LATENCY, lineMissNs: LATENCY,
  lineHitNs: LATENCY, userPageNs: LATENCY, freePageNs: LATENCY, bteSetupNs: LATENCY, wakeupNs: LATENCY,
  zeroBytesPerNs: BANDWIDTH, zeroHugeBytesPerNs: BANDWIDTH, zeroGiantBytesPerNs: BANDWIDTH, zeroRunBytesPerNs: BANDWIDTH,
  fsbBytesPerNs: BANDWIDTH,
  // Core clocks: from the slowest CPU a kernel of either era ran on (a 100 MHz P5) to past any boost clock built (6.2 GHz).
  zeroRateGHz: CLOCK, allCoreGHz: CLOCK, boostGHz: CLOCK,
  bteBytesPerNs: BANDWIDTH,
  // 0: no such instruction on the CPU (the driver is not offered).
  ntBytesPerNs: { ...BANDWIDTH, zeroMeansNone: true }, clzeroBytesPerNs: { ...BANDWIDTH, zeroMeansNone: true },
  // At least one miss at a time; no core has kept a thousand in flight.
  missesInFlight: { min: 1, max: 1000, unit: 'lines in flight' },
  writebackBytesPerNs: { ...BANDWIDTH, zeroMeansNone: true },
  // A struct page of at most 64 bytes spans at most 5 lines of the smallest (16-byte) line.
  structPageLines: { min: 0, max: 8, unit: 'cachelines' },
  // No CPU has a last-level cache of a TiB.
  cacheBytes: { min: 0, max: 2 ** 40, unit: 'bytes' },
  // Remote memory is never faster than local, and no NUMA machine is 100 times slower remote.
  remoteFactor: { min: 1, max: 100, unit: '× local' },
  bteMinBytes: XFER_BYTES, bteMaxBytes: XFER_BYTES,
} as const satisfies Readonly<Record<string, Bound>>;

export type CostName = keyof typeof COST_BOUNDS;
export const COST_FIGURES = Object.keys(COST_BOUNDS) as readonly CostName[];
export type CostFigures = { readonly [K in CostName]?: number };

const isObject = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null && !Array.isArray(v);
const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** One cost figure, range-checked; the message names the figure, the value and the range. */
export function checkCostFigure(name: string, v: unknown, where = 'cost'): number {
  if (!own(COST_BOUNDS, name)) bad(`${where}: "${name}" is not a cost figure (names: ${COST_FIGURES.join(', ')})`);
  const b: Bound = COST_BOUNDS[name as CostName];
  if (typeof v !== 'number' || !Number.isFinite(v)) bad(`${where}: ${name}=${JSON.stringify(v)} is not a number`);
  if (v === 0 && b.zeroMeansNone) return v;
  if (v < b.min || v > b.max) bad(`${where}: ${name}=${v} is outside ${b.min}..${b.max} ${b.unit}`);
  return v;
}

/** A set of cost figures ({name: number}), each range-checked; unknown names refused. */
export function checkCost(v: unknown, where = 'cost'): CostFigures {
  if (!isObject(v)) bad(`${where}: must be an object of cost figures ({"trapNs": 900})`);
  const out: Partial<Record<CostName, number>> = {};
  for (const name of Object.keys(v)) out[name as CostName] = checkCostFigure(name, v[name], where);
  return out;
}


/**
 * What a caller may say of a machine; everything is optional and overrides the preset. The
 * model's MachineOptions is this type, so an option added there must be given a kind below.
 */
export interface CheckedMachineOptions {
  preset?: string;
  mem?: string;
  nodes?: number;
  cpus?: number;
  pageSize?: string;
  lineSize?: number;
  maxOrder?: number;
  /** Core clock in MHz, for presets whose costs are stated in core cycles (i386). */
  cpuMhz?: number;
  clock?: 'live' | 'manual';
  speed?: number;
  zeroDrivers?: readonly string[];
  cost?: CostFigures;
  /**
   * The kernel's own boot-time allocations (slab) taken from the buddy lists (default true).
   * Hand-worked tests turn them off to reason about an allocator nobody has used yet.
   */
  bootAllocations?: boolean;
  /** Zeroing policies the machine boots with (src/uapi/policies.ts); default kscrubd alone. */
  zeroingPolicy?: string | readonly string[];
  /** CONFIG_PREEMPT (MachineConfig.preempt), instead of the preset's (mount --preempt full|none). */
  preempt?: boolean;
  /** How a fault clears a huge page: pages or extents (src/uapi/hugetlb.ts HUGE_CLEAR_MODES; mount --huge-clear). */
  hugeClear?: string;
  /**
   * update_mem_hiwater() in the anonymous fault (MachineConfig.hiwaterInFault), instead of the
   * preset's: 2.6.11 has it, the 2.6.10 kernels of the published pft rows did not.
   */
  hiwaterInFault?: boolean;
  /**
   * The kernel places a new thread by balancing on fork (2.6.12 on), instead of the preset's:
   * false leaves a thread bound for another node waiting for that node's idle balance
   * (MachineConfig.nodeBalanceMaxNs), as the altix's 2.6.10/2.6.11 did.
   */
  forkBalance?: boolean;
  /**
   * Place a new thread by each CPU's balance timers kept in virtual time (MachineConfig.balanceTimers),
   * instead of half the node domain's longest interval, where the kernel does not balance on fork.
   */
  balanceTimers?: boolean;
  /**
   * Price a contended page_table_lock's handoff by the lock line's queue at its home
   * (MachineConfig.lockLineQueue) instead of half a transfer per other spinner.
   */
  lockLineQueue?: boolean;
}

type Kind = 'string' | 'clock' | 'size' | 'integer' | 'number' | 'boolean' | 'names' | 'name or names' | 'cost';

/** Each machine option and what it must be; the values' ranges are resolveConfig's. */
const OPTION_KINDS: Readonly<Record<keyof CheckedMachineOptions, Kind>> = {
  preset: 'string', mem: 'size', nodes: 'integer', cpus: 'integer', pageSize: 'size', lineSize: 'integer',
  maxOrder: 'integer', cpuMhz: 'integer', clock: 'clock', speed: 'number', zeroDrivers: 'names', cost: 'cost',
  bootAllocations: 'boolean', zeroingPolicy: 'names', preempt: 'boolean', hugeClear: 'string', hiwaterInFault: 'boolean',
  forkBalance: 'boolean', balanceTimers: 'boolean', lockLineQueue: 'boolean',
};
export const MACHINE_OPTION_NAMES = Object.keys(OPTION_KINDS) as readonly (keyof CheckedMachineOptions)[];

/**
 * Machine options from a file (a record's header, a sweep point): an object whose keys are
 * machine options of the right types, cost figures range-checked. A size may be a string
 * ("6G") or a whole number of bytes. What the values mean (is 6 nodes too many?) resolveConfig
 * decides, for every caller alike.
 */
export function checkMachineOptions(v: unknown, where = 'machine options'): CheckedMachineOptions {
  if (!isObject(v)) bad(`${where}: must be an object of machine options`);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) {
    if (!own(OPTION_KINDS, key)) bad(`${where}: unknown option "${key}" (options: ${MACHINE_OPTION_NAMES.join(', ')})`);
    out[key] = checkOption(key, OPTION_KINDS[key as keyof CheckedMachineOptions], v[key], where);
  }
  return out as CheckedMachineOptions;
}

function checkOption(key: string, kind: Kind, v: unknown, where: string): unknown {
  const refuse = (what: string): never => bad(`${where}: ${key} must be ${what}, not ${JSON.stringify(v) ?? String(v)}`);
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? v : refuse('a string');
    case 'clock':
      return v === 'live' || v === 'manual' ? v : refuse('"live" or "manual"');
    case 'size':
      if (typeof v === 'string') return v;
      return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? String(v) : refuse('a size ("6G", or a whole number of bytes)');
    case 'integer':
      return typeof v === 'number' && Number.isSafeInteger(v) ? v : refuse('an integer');
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? v : refuse('a number');
    case 'boolean':
      return typeof v === 'boolean' ? v : refuse('true or false');
    case 'names':
      return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : refuse('a list of names');
    case 'name or names':
      return typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')) ? v : refuse('a name or a list of names');
    case 'cost':
      return checkCost(v, `${where}: cost`);
  }
}

/** Page sizes a host has (x86's 4 KiB up to a 2 MiB base page, as MIN/MAX_PAGE_SIZE bound a machine's). */
const HOST_PAGE = { min: 4096, max: 2 ** 21 };
/** CONFIG_NR_CPUS goes no higher than 8192. */
const MAX_HOST_CPUS = 8192;

/** A trace's header (src/workload/trace-format.ts writes it, line 2 of the file). */
export interface TraceHeader {
  /** The host's page size: addresses in the trace are in these pages. */
  page_size: number;
  command: string[];
  kernel: string;
  host_cpus: number;
  /** When recording began (ISO 8601). */
  started: string;
  /** How the events were read. */
  source: string;
  /** The host's transparent_hugepage/enabled (always, madvise, never; '' if unknown): a THP fault maps 2 MiB. */
  thp?: string;
}

const TRACE_HEADER_KEYS = ['page_size', 'command', 'kernel', 'host_cpus', 'started', 'source', 'thp'];

/** A trace's header line, parsed JSON: every field of its type, page_size a host's page size. */
export function checkTraceHeader(v: unknown, where: string): TraceHeader {
  if (!isObject(v)) bad(`${where}: its header is not a JSON object`);
  for (const k of Object.keys(v)) if (!TRACE_HEADER_KEYS.includes(k)) bad(`${where}: its header has an unknown field "${k}"`);
  const ps = v.page_size;
  if (typeof ps !== 'number' || !Number.isSafeInteger(ps) || ps < HOST_PAGE.min || ps > HOST_PAGE.max || (ps & (ps - 1)) !== 0) {
    bad(`${where}: its header's page_size ${JSON.stringify(ps)} is not a host's page size (a power of two from ${HOST_PAGE.min} to ${HOST_PAGE.max})`);
  }
  if (!Array.isArray(v.command) || v.command.length === 0 || !v.command.every((x) => typeof x === 'string')) bad(`${where}: its header's command must be a list of strings`);
  for (const k of ['kernel', 'started', 'source'] as const) if (typeof v[k] !== 'string') bad(`${where}: its header's ${k} must be a string`);
  if (v.thp !== undefined && typeof v.thp !== 'string') bad(`${where}: its header's thp must be a string`);
  const cpus = v.host_cpus;
  if (typeof cpus !== 'number' || !Number.isSafeInteger(cpus) || cpus < 1 || cpus > MAX_HOST_CPUS) bad(`${where}: its header's host_cpus ${JSON.stringify(cpus)} is not 1..${MAX_HOST_CPUS}`);
  return v as unknown as TraceHeader;
}
