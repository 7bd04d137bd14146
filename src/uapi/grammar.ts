import { KscrubError, ModelError } from './errors';
import { MAX_CPUS, MAX_LINES_PER_PAGE, MAX_MAP_BYTES, MAX_MAX_ORDER, MAX_NODES, MAX_THREADS } from './limits';
import { parseDuration, parseSize } from './units';

// The control protocol's grammar: one line → one Command, and back. Pure: no machine, no I/O.
//
//   line     := [command] [comment]
//   command  := verb [subverb] { arg }          tokens separated by spaces or tabs
//   arg      := key "=" value | flag | positional
//   comment  := "#" … to the end of the line    (a token that starts with "#")
//
// Every verb is one row of SPECS below: its keys (with kind and range), its flags, its
// positional argument if any. The parser, the formatter and the help text all read that
// table, so a verb added there is parsed, formatted and documented at once.
//
// A line is rejected when it is longer than MAX_LINE_BYTES, is not UTF-8, or holds a control
// character (anything below U+0020 but tab, DEL, C1); when its verb or subverb is unknown;
// when a key is unknown, given twice or missing; when a flag is unknown, given twice or
// conflicts with another (read/write); when a value is malformed or out of its range.
// Numbers are plain decimal (no sign, no leading zeros, no hex, no exponent) except
// addresses, which are 0x hex. Sizes take the model's spellings (4096, 16K, 2M, 1G, 0x1000),
// durations its units (250ms, 2s, 100us). Error messages name the verb and quote the token.

/** Longest command line accepted, in bytes (without its newline). */
export const MAX_LINE_BYTES = 4096;
/**
 * Caps that keep one command's work and result line bounded (the control file's own); every
 * other range below is the model's, from limits.ts.
 */
export const MAX_COUNT = 1_000_000;
export const MAX_TICK_NS = 24 * 3600e9;

export type Access = 'read' | 'write';

/** `faults`' list, as parallel arrays (entry i: task tasks[i] writes (1) or reads (0) addrs[i]). */
export interface FaultEntries {
  readonly addrs: readonly number[];
  readonly tasks: readonly number[];
  readonly writes: readonly (0 | 1)[];
}

/** A parsed command. Optional fields are absent when the line did not give them. */
export type Command =
  | { readonly verb: 'tick'; readonly ns: number }
  | { readonly verb: 'alloc'; readonly order: number; readonly node?: number; readonly count?: number; readonly zero?: boolean }
  | { readonly verb: 'free'; readonly handles: readonly number[] }
  | { readonly verb: 'drain' }
  | { readonly verb: 'bte'; readonly fail: number }
  | { readonly verb: 'check' }
  | { readonly verb: 'stats' }
  | { readonly verb: 'config' }
  | { readonly verb: 'mm new'; readonly keep?: boolean }
  | { readonly verb: 'mm list' }
  | { readonly verb: 'mm exit'; readonly mm: number }
  | { readonly verb: 'mmap'; readonly mm: number; readonly size: number; readonly addr?: number; readonly random?: boolean; readonly thp?: boolean; readonly hugetlb?: number }
  | { readonly verb: 'munmap'; readonly mm: number; readonly addr: number; readonly size: number }
  | {
    readonly verb: 'touch'; readonly mm: number; readonly addr: number; readonly size: number;
    readonly threads?: number; readonly lines?: number; readonly access?: Access; readonly stride?: number;
    readonly thp?: boolean;
  }
  | { readonly verb: 'fault'; readonly mm: number; readonly addr: number; readonly access?: Access }
  | { readonly verb: 'faults'; readonly mm: number; readonly at: FaultEntries; readonly cpus?: readonly number[]; readonly lines?: number };

export type Verb = Command['verb'];
export type CommandOf<V extends Verb> = Extract<Command, { verb: V }>;

/** A line the grammar refuses; `message` is the reason as the `err` line shows it. */
export class ControlSyntaxError extends KscrubError<'KSCRUB_CONTROL_SYNTAX'> {
  constructor(message: string) {
    super('KSCRUB_CONTROL_SYNTAX', message);
  }
}

type ValueKind = 'int' | 'addr' | 'size' | 'duration' | 'handles' | 'faults';

interface ArgSpec {
  /** The key on the line, and the Command field it fills. */
  readonly key: string;
  readonly kind: ValueKind;
  readonly required: boolean;
  /** Range of the value (of each handle for `handles`). */
  readonly min: number;
  readonly max: number;
  /** Placeholder in the help text. */
  readonly hint: string;
}

interface FlagSpec {
  /** The Command field it fills. */
  readonly field: string;
  /** One name: the field is `true` when given. Several: mutually exclusive, the field is the name given. */
  readonly names: readonly string[];
}

interface VerbSpec {
  readonly verb: Verb;
  /** A bare value that is not a flag (tick's duration); its key is the Command field. */
  readonly positional?: ArgSpec;
  readonly args: readonly ArgSpec[];
  readonly flags: readonly FlagSpec[];
  /** For the help text. */
  readonly summary: string;
  readonly result: string;
}

const SAFE = Number.MAX_SAFE_INTEGER;
const arg = (key: string, kind: ValueKind, required: boolean, min: number, max: number, hint: string): ArgSpec =>
  ({ key, kind, required, min, max, hint });
const MM = arg('mm', 'int', true, 0, SAFE, '<id>');
const ADDR = arg('addr', 'addr', true, 0, SAFE, '0x<hex>');
const SIZE = arg('size', 'size', true, 1, MAX_MAP_BYTES, '<size>');
const LINES = arg('lines', 'int', false, 1, MAX_LINES_PER_PAGE, '<n>');
const ACCESS: FlagSpec = { field: 'access', names: ['read', 'write'] };
const THP: FlagSpec = { field: 'thp', names: ['thp'] };

/** The grammar, one row per verb, in help order. */
export const SPECS: readonly VerbSpec[] = [
  {
    verb: 'tick', positional: arg('ns', 'duration', true, 0, MAX_TICK_NS, '<duration>'), args: [], flags: [],
    summary: 'advance the manual clock (kscrubd runs meanwhile)', result: 'ok now_ns=<n>',
  },
  {
    verb: 'alloc',
    args: [arg('order', 'int', true, 0, MAX_MAX_ORDER - 1, '<n>'), arg('node', 'int', false, 0, MAX_NODES - 1, '<n>'), arg('count', 'int', false, 1, MAX_COUNT, '<n>')],
    flags: [{ field: 'zero', names: ['zero'] }],
    summary: 'allocate count (1) blocks of 2^order pages on node (0), __GFP_ZERO if zero; all or nothing',
    result: 'ok handles=<h1,h2,...>',
  },
  {
    verb: 'free', args: [arg('handles', 'handles', true, 1, SAFE, '<h1,h2,...>')], flags: [],
    summary: 'free blocks by handle; all or nothing', result: 'ok freed_pages=<n>',
  },
  { verb: 'drain', args: [], flags: [], summary: 'return every per-cpu list to the buddy lists', result: 'ok drained_pages=<n>' },
  {
    verb: 'bte', args: [arg('fail', 'int', true, 0, MAX_COUNT, '<n>')], flags: [],
    summary: 'make the next n BTE transfers fail (the CPU zeroes instead)', result: 'ok',
  },
  { verb: 'check', args: [], flags: [], summary: "verify the allocator's invariants", result: 'ok | err <first broken invariant>' },
  { verb: 'stats', args: [], flags: [], summary: "the machine's shape and state (now_ns, page_size, max_order, nodes, cpus, raw_pages, mms, kscrubd_awake), then every counter of the counter table, by the names and with the values vmstat prints", result: 'ok now_ns=<n> page_size=<n> ... nr_zero_pages=<n> ...' },
  {
    verb: 'config', args: [], flags: [],
    summary: 'how this machine was made (preset, memory, zero drivers, clock, cost overrides) and the sysctls now, for provenance',
    result: 'ok preset=<name> mem_bytes=<n> ... zero_drivers=<a,b> clock=<mode> speed=<x> sysctl.<name>=<n> ... cost.<name>=<x> ...',
  },
  {
    verb: 'mm new', args: [], flags: [{ field: 'keep', names: ['keep'] }],
    summary: 'create a process; it exits when this open control file is closed, unless keep', result: 'ok mm=<id>',
  },
  { verb: 'mm list', args: [], flags: [], summary: 'the processes alive, and those kept past their control file', result: 'ok mms=<id,...> kept=<id,...>' },
  { verb: 'mm exit', args: [MM], flags: [], summary: 'end a process, freeing its memory', result: 'ok freed_pages=<n> sys_ns=<ns> wall_ns=<ns>' },
  {
    verb: 'mmap', args: [MM, SIZE, { ...ADDR, required: false }, arg('hugetlb', 'size', false, 2 ** 21, 2 ** 30, '<2M|1G>')], flags: [{ field: 'random', names: ['random'] }, THP],
    summary: 'map anonymous memory, at addr if given (it must be free; joins a neighbour as vma_merge does; random = MADV_RANDOM: no prefault; thp = MADV_HUGEPAGE: huge pages where aligned; hugetlb = MAP_HUGETLB with pages of that size from its pool, reserved now, aligned, size rounded up)',
    result: 'ok addr=0x<hex> size=<bytes>',
  },
  { verb: 'munmap', args: [MM, ADDR, SIZE], flags: [], summary: 'unmap, freeing the pages', result: 'ok freed_pages=<n> sys_ns=<ns> wall_ns=<ns>' },
  {
    verb: 'touch',
    args: [MM, ADDR, SIZE, arg('threads', 'int', false, 1, MAX_THREADS, '<n>'), LINES, arg('stride', 'size', false, 1, MAX_MAP_BYTES, '<size>')],
    flags: [ACCESS, THP],
    summary: 'touch the range with threads (1), lines (1) cachelines per page every stride (a page), write (default) or read; thp first marks its mapping MADV_HUGEPAGE',
    result: 'ok pages=<n> faults=<n> prezeroed=<n> hot_zeroed=<n> prefaulted=<n> oom=<n> user_ns=<n> sys_ns=<n> wall_ns=<n>',
  },
  {
    verb: 'fault', args: [MM, ADDR], flags: [ACCESS],
    summary: 'one page fault at addr, write (default) or read', result: 'ok pages=<n> faults=<n> ... (as touch)',
  },
  {
    verb: 'faults',
    args: [MM, arg('at', 'faults', true, 0, MAX_THREADS - 1, '<task><r|w><hex>,...'), arg('cpus', 'handles', false, 0, MAX_CPUS - 1, '<c0,c1,...>'), LINES],
    flags: [],
    summary: 'one access per entry (task 0 writes 0x7f0000: 0w7f0000), each task in list order on cpus[task] (task mod cpus), tasks overlapping as touch threads',
    result: 'ok pages=<n> faults=<n> ... (as touch) zero_ns=<n> (hot zeroing, of sys_ns)',
  },
];

const SPEC_BY_VERB = new Map<string, VerbSpec>(SPECS.map((s) => [s.verb, s]));
/** First words that take a subverb ('mm' → ['new', 'exit']). */
const SUBVERBS = new Map<string, string[]>();
for (const s of SPECS) {
  const [head, sub] = s.verb.split(' ');
  if (sub !== undefined) SUBVERBS.set(head!, [...(SUBVERBS.get(head!) ?? []), sub]);
}
const VERB_NAMES = [...new Set(SPECS.map((s) => s.verb.split(' ')[0]!))];

/** `tick 250ms`, `alloc order=<n> [node=<n>] [count=<n>] [zero]`, … */
export function usageOf(spec: VerbSpec): string {
  const parts: string[] = [spec.verb];
  if (spec.positional) parts.push(spec.positional.hint);
  for (const a of spec.args) parts.push(a.required ? `${a.key}=${a.hint}` : `[${a.key}=${a.hint}]`);
  for (const f of spec.flags) parts.push(`[${f.names.join('|')}]`);
  return parts.join(' ');
}

const q = (token: string): string => JSON.stringify(token);

function fail(message: string): never {
  throw new ControlSyntaxError(message);
}

const EXAMPLES: Readonly<Record<ValueKind, string>> = { int: '1', addr: '0x4000', size: '16K', duration: '250ms', handles: '1,2', faults: '0w4000,1r8000' };

/** What the verb takes, for error messages: "keys: order, node, count; flags: zero". */
function takes(spec: VerbSpec): string {
  const parts: string[] = [];
  const p = spec.positional;
  if (p) parts.push(`${spec.verb} takes one ${p.hint.slice(1, -1)}: ${spec.verb} ${EXAMPLES[p.kind]}`);
  if (spec.args.length > 0) parts.push(`keys: ${spec.args.map((a) => a.key).join(', ')}`);
  if (spec.flags.length > 0) parts.push(`flags: ${spec.flags.flatMap((f) => f.names).join(', ')}`);
  return parts.length > 0 ? parts.join('; ') : `${spec.verb} takes no arguments`;
}

// ---- values ---------------------------------------------------------------------------------

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const HEX = /^0x[0-9a-fA-F]+$/;

function inRange(verb: string, what: string, text: string, n: number, a: ArgSpec): number {
  if (!Number.isSafeInteger(n) || n < a.min || n > a.max) fail(`${verb}: ${what} ${q(text)} is out of range ${a.min}..${a.max}`);
  return n;
}

function parseInt10(verb: string, what: string, text: string, a: ArgSpec): number {
  if (!DECIMAL.test(text)) fail(`${verb}: ${what} ${q(text)} is not a decimal number (no sign, leading zeros or hex)`);
  return inRange(verb, what, text, Number(text), a);
}

function parseValue(verb: string, a: ArgSpec, text: string): number | number[] | FaultEntries {
  switch (a.kind) {
    case 'int':
      return parseInt10(verb, a.key, text, a);
    case 'addr':
      if (!HEX.test(text)) fail(`${verb}: ${a.key} ${q(text)} is not a hex address (0x...)`);
      return inRange(verb, a.key, text, Number.parseInt(text.slice(2), 16), a);
    case 'size':
      return inRange(verb, a.key, text, viaModel(() => parseSize(text), `${verb}: ${a.key} ${q(text)} is not a size (try 4096, 16K, 2M, 1G)`), a);
    case 'duration':
      return inRange(verb, 'duration', text, viaModel(() => parseDuration(text), `${verb}: ${q(text)} is not a duration (try 250ms, 2s, 100us)`), a);
    case 'handles': {
      if (text === '') fail(`${verb}: ${a.key} is empty`);
      return text.split(',').map((h) => {
        if (h === '') fail(`${verb}: ${a.key} ${q(text)} has an empty entry`);
        return parseInt10(verb, a.key.replace(/s$/, ''), h, a);
      });
    }
    case 'faults':
      return parseFaults(verb, a, text);
  }
}

const FAULT_ENTRY = /^(0|[1-9][0-9]*)([rw])([0-9a-fA-F]+)$/;

/** `0w7f0000,1r7f4000`: task, r or w, hex address (no 0x: the list is long). */
function parseFaults(verb: string, a: ArgSpec, text: string): FaultEntries {
  const addrs: number[] = [];
  const tasks: number[] = [];
  const writes: (0 | 1)[] = [];
  if (text === '') fail(`${verb}: ${a.key} is empty`);
  for (const e of text.split(',')) {
    const m = FAULT_ENTRY.exec(e);
    if (!m) fail(`${verb}: ${a.key} entry ${q(e)} is not <task><r|w><hex address> (0w7f0000)`);
    tasks.push(inRange(verb, 'task', e, Number(m[1]), a));
    writes.push(m[2] === 'w' ? 1 : 0);
    addrs.push(inRange(verb, 'address', e, Number.parseInt(m[3]!, 16), { ...a, min: 0, max: SAFE }));
  }
  return { addrs, tasks, writes };
}

/** The model's own parsers (sizes, durations), with our message on refusal. */
function viaModel(parse: () => number, message: string): number {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ModelError) fail(message);
    throw err;
  }
}

function formatValue(a: ArgSpec, v: unknown): string {
  switch (a.kind) {
    case 'int':
      return String(v);
    case 'addr':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? `0x${v.toString(16)}` : String(v);
    case 'size':
      return typeof v === 'number' ? withUnit(v, [[2 ** 40, 'T'], [2 ** 30, 'G'], [2 ** 20, 'M'], [2 ** 10, 'K']], '') : String(v);
    case 'duration':
      return typeof v === 'number' ? withUnit(v, [[1e9, 's'], [1e6, 'ms'], [1e3, 'us']], 'ns') : String(v);
    case 'handles':
      return Array.isArray(v) ? v.join(',') : String(v);
    case 'faults': {
      const f = v as FaultEntries;
      return f.addrs.map((addr, i) => `${f.tasks[i]}${f.writes[i] === 1 ? 'w' : 'r'}${addr.toString(16)}`).join(',');
    }
  }
}

/** The largest unit that divides `n` exactly: 262144 → "256K", 250e6 → "250ms". */
function withUnit(n: number, units: readonly (readonly [number, string])[], base: string): string {
  if (Number.isSafeInteger(n) && n > 0) for (const [size, name] of units) if (n % size === 0) return `${n / size}${name}`;
  return `${n}${base}`;
}

// ---- lines ----------------------------------------------------------------------------------

// C0 controls but tab, DEL, C1 controls. (The newline never reaches here: it ends the line.)
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decode one line's bytes (without its newline). Refuses over-long and non-UTF-8 lines;
 * returns the text for parseLine.
 */
export function decodeLine(bytes: Uint8Array): string {
  if (bytes.length > MAX_LINE_BYTES) fail(`line is ${bytes.length} bytes long (at most ${MAX_LINE_BYTES})`);
  try {
    return utf8.decode(bytes);
  } catch {
    return fail('line is not valid UTF-8');
  }
}

/** Parse one line; null for a blank or comment-only line (it produces no result). */
export function parseLine(line: string): Command | null {
  const bytes = Buffer.byteLength(line, 'utf8');
  if (bytes > MAX_LINE_BYTES) fail(`line is ${bytes} bytes long (at most ${MAX_LINE_BYTES})`);
  const ctl = CONTROL.exec(line);
  if (ctl) fail(`line has a control character U+${ctl[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} at column ${ctl.index + 1}`);
  const tokens = line.split(/[ \t]+/).filter((t) => t !== '');
  const hash = tokens.findIndex((t) => t.startsWith('#'));
  if (hash >= 0) tokens.length = hash;
  const head = tokens.shift();
  if (head === undefined) return null;
  return parseTokens(verbSpec(head, tokens), tokens);
}

/** Find the verb's row, consuming a subverb from `rest` when the verb has them. */
function verbSpec(head: string, rest: string[]): VerbSpec {
  const subs = SUBVERBS.get(head);
  if (subs) {
    const sub = rest.shift();
    if (sub === undefined) fail(`${head}: missing subcommand (subcommands: ${subs.join(', ')})`);
    const spec = SPEC_BY_VERB.get(`${head} ${sub}`);
    if (!spec) fail(`${head}: unknown subcommand ${q(sub)} (subcommands: ${subs.join(', ')})`);
    return spec;
  }
  const spec = SPEC_BY_VERB.get(head);
  if (!spec) fail(`unknown command ${q(head)} (commands: ${VERB_NAMES.join(', ')})`);
  return spec;
}

function parseTokens(spec: VerbSpec, tokens: readonly string[]): Command {
  const verb = spec.verb;
  const out: Record<string, unknown> = { verb };
  const seen = new Set<string>();
  for (const token of tokens) {
    const eq = token.indexOf('=');
    if (eq >= 0) {
      const key = token.slice(0, eq);
      const a = spec.args.find((x) => x.key === key);
      if (!a) fail(`${verb}: unknown key ${q(key)} (${takes(spec)})`);
      if (seen.has(key)) fail(`${verb}: duplicate key ${q(key)}`);
      seen.add(key);
      out[key] = parseValue(verb, a, token.slice(eq + 1));
      continue;
    }
    const f = spec.flags.find((x) => x.names.includes(token));
    if (f) {
      if (seen.has(token)) fail(`${verb}: duplicate flag ${q(token)}`);
      const other = f.names.find((n) => n !== token && seen.has(n));
      if (other !== undefined) fail(`${verb}: flags ${q(other)} and ${q(token)} conflict`);
      seen.add(token);
      out[f.field] = f.names.length === 1 ? true : token;
      continue;
    }
    const p = spec.positional;
    if (p && !seen.has(p.key)) {
      seen.add(p.key);
      out[p.key] = parseValue(verb, p, token);
      continue;
    }
    if (p) fail(`${verb}: unexpected ${q(token)} (${takes(spec)})`);
    fail(`${verb}: unknown flag ${q(token)} (${takes(spec)})`);
  }
  if (spec.positional && !seen.has(spec.positional.key)) fail(`${verb}: missing ${spec.positional.hint.slice(1, -1)} (${takes(spec)})`);
  for (const a of spec.args) if (a.required && !seen.has(a.key)) fail(`${verb}: missing key ${q(a.key)} (usage: ${usageOf(spec)})`);
  return out as Command;
}

/**
 * Parse one command line (no newline). Throws ControlSyntaxError with the `err` reason,
 * also for a blank or comment-only line (which is no command).
 */
export function parseCommand(line: string): Command {
  const cmd = parseLine(line);
  if (cmd === null) fail('no command (the line is blank or a comment)');
  return cmd;
}

/**
 * The canonical line for a command, in the same grammar (keys in spec order, sizes and
 * durations in their largest exact unit, addresses in hex). Throws ControlSyntaxError when the
 * command would not parse back (a value out of range, say), so a client never sends a line the
 * control file will refuse for its syntax.
 */
export function formatCommand(cmd: Command): string {
  const spec = SPEC_BY_VERB.get(cmd.verb);
  if (!spec) fail(`unknown command ${q(String(cmd.verb))}`);
  const fields = cmd as unknown as Readonly<Record<string, unknown>>;
  const parts: string[] = [spec.verb];
  if (spec.positional) parts.push(formatValue(spec.positional, fields[spec.positional.key]));
  for (const a of spec.args) if (fields[a.key] !== undefined) parts.push(`${a.key}=${formatValue(a, fields[a.key])}`);
  for (const f of spec.flags) {
    const v = fields[f.field];
    if (v === undefined || v === false) continue;
    const name = f.names.length === 1 && v === true ? f.names[0] : f.names.find((n) => n === v);
    if (name === undefined) fail(`${spec.verb}: ${f.field} ${q(String(v))} is not one of ${f.names.join(', ')}`);
    parts.push(name);
  }
  const line = parts.join(' ');
  parseCommand(line);
  return line;
}
