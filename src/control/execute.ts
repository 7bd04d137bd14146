import debugFactory from 'debug';
import { type Machine, ModelError, type TouchResult, type ZapResult, check } from '../model';
import type { Command, CommandOf, Verb } from './grammar';

const log = debugFactory('kscrubfs:control');

// Running one parsed command against the machine: one result line, `ok …` or `err …`.
// Each command is atomic because the model validates before it mutates (allocRaw and freeRaw
// are all or nothing); a ModelError becomes the `err` line, quoting the model's message.

/** How a command ended: its result line, and the errno its write fails with (null: it did not fail). */
export interface Outcome {
  readonly line: string;
  readonly failed: null | 'EINVAL' | 'EIO';
}

type Executor<M, V extends Verb> = (m: M, cmd: CommandOf<V>) => string;
type Executors<M, V extends Verb> = { readonly [K in V]: Executor<M, K> };

/** Plain decimal for the result line (virtual times may carry fractions of a ns). */
function n(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`result value ${v} is not a finite number`);
  return String(Math.round(v));
}

const hex = (v: number): string => `0x${Math.round(v).toString(16)}`;

/** munmap / mm exit: the pages freed and what the zap cost (pft times a process's whole life). */
const zapLine = (z: ZapResult): string => `ok freed_pages=${n(z.freed)} sys_ns=${n(z.sysNs)} wall_ns=${n(z.wallNs)}`;

/** `stats`: the machine's shape (clients need page_size, max_order), then the main counters, in this order. */
export function statsPairs(m: Machine): [string, number][] {
  const vm = m.vm;
  const sum = <T>(xs: readonly T[], f: (x: T) => number): number => xs.reduce((s, x) => s + f(x), 0);
  return [
    ['now_ns', m.now],
    ['page_size', m.pageSize],
    ['max_order', m.maxOrder],
    ['nodes', m.config.nodes],
    ['cpus', m.config.cpus],
    ['free_pages', m.freePagesTotal()],
    ['zero_pages', m.zeroPagesTotal()],
    ['pcp_pages', m.pcpPagesTotal()],
    ['scrub_pages', sum(m.zones, (z) => z.scrubPages)],
    ['raw_pages', m.rawPages()],
    ['anon_pages', m.nrAnonPages],
    ['mms', m.nrMms],
    ['kscrubd_awake', sum(m.kscrubd, (k) => (k.awake ? 1 : 0))],
    ['kscrubd_bursts', sum(m.kscrubd, (k) => k.bursts)],
    ['kscrubd_blocks', sum(m.kscrubd, (k) => k.blocks)],
    ['kscrubd_pages', sum(m.kscrubd, (k) => k.pages)],
    ['kscrubd_cpu_ns', sum(m.kscrubd, (k) => k.cpuNs)],
    ['bte_blocks', sum(m.kscrubd, (k) => k.bteBlocks)],
    ['bte_fallbacks', sum(m.kscrubd, (k) => k.bteFallbacks)],
    ['alloc_prezeroed', vm.allocPrezeroed],
    ['alloc_hot_zeroed', vm.allocHotZeroed],
    ['alloc_zero_wasted', vm.allocZeroWasted],
    ['alloc_fail', vm.allocFail],
    ['pgfree', vm.pgfree],
    ['pgfault', vm.pgfault],
    ['fault_prezeroed', vm.faultPrezeroed],
    ['fault_hot_zeroed', vm.faultHotZeroed],
    ['fault_zero_page', vm.faultZeroPage],
    ['fault_cow', vm.faultCow],
    ['fault_oom', vm.faultOom],
    ['prefault_pages', vm.prefaultPages],
    ['prefault_released', vm.prefaultReleased],
  ];
}

/** One executor per verb: the compiler checks that every verb of the grammar has one. */
const EXECUTORS: Executors<Machine, Verb> = {
  tick: (m, c) => `ok now_ns=${n(m.tick(c.ns))}`,
  alloc: (m, c) => `ok handles=${m.allocRaw(c.order, c.zero === true, c.node ?? 0, c.count ?? 1).join(',')}`,
  free: (m, c) => `ok freed_pages=${n(m.freeRaw(c.handles))}`,
  drain: (m) => `ok drained_pages=${n(m.drainPcp())}`,
  bte: (m, c) => (m.injectBteFailures(c.fail), 'ok'),
  check: (m) => {
    const broken = check(m);
    return broken === null ? 'ok' : `err check: ${broken}`;
  },
  stats: (m) => `ok ${statsPairs(m).map(([k, v]) => `${k}=${n(v)}`).join(' ')}`,
  // The process verbs; touch leaves what the line does not give to Machine.touch's defaults
  // (write, 1 thread, 1 line a page, a page's stride).
  'mm new': (m) => `ok mm=${n(m.mmNew())}`,
  'mm exit': (m, c) => zapLine(m.mmExitTimed(c.mm)),
  mmap: (m, c) => {
    const r = m.mmap(c.mm, c.size, c.random === true);
    return `ok addr=${hex(r.addr)} size=${n(r.size)}`;
  },
  munmap: (m, c) => zapLine(m.munmapTimed(c.mm, c.addr, c.size)),
  touch: (m, c) => touchLine(m.touch(c.mm, {
    addr: c.addr, size: c.size, write: c.access !== 'read',
    ...(c.threads !== undefined && { threads: c.threads }),
    ...(c.lines !== undefined && { lines: c.lines }),
    ...(c.stride !== undefined && { stride: c.stride }),
  })),
  fault: (m, c) => touchLine(m.fault(c.mm, c.addr, c.access !== 'read')),
};

function touchLine(r: TouchResult): string {
  return `ok pages=${n(r.pages)} faults=${n(r.faults)} prezeroed=${n(r.prezeroed)} hot_zeroed=${n(r.hotZeroed)} `
    + `prefaulted=${n(r.prefaulted)} oom=${n(r.oom)} user_ns=${n(r.userNs)} sys_ns=${n(r.sysNs)} wall_ns=${n(r.wallNs)}`;
}

/** A model message with the verb in front, unless it already names it. */
function withVerb(verb: Verb, message: string): string {
  return message.startsWith(`${verb}:`) ? message : `${verb}: ${message}`;
}

/**
 * Run one command. A ModelError (refused before anything changed) is an `err` line and
 * EINVAL; a broken invariant from `check` is EIO; anything else is a bug: EIO, logged.
 */
export function runCommand(machine: Machine, cmd: Command): Outcome {
  const o = runUnchecked(machine, cmd);
  // One command, one line: a stray newline in a message must not split the result.
  return CONTROL_CHARS.test(o.line) ? { line: o.line.replace(CONTROL_CHARS_G, ' '), failed: o.failed } : o;
}

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const CONTROL_CHARS_G = /[\u0000-\u001f\u007f]/g;

function runUnchecked(machine: Machine, cmd: Command): Outcome {
  const exec = EXECUTORS[cmd.verb] as Executor<Machine, Verb>;
  try {
    const line = exec(machine, cmd as CommandOf<Verb>);
    return { line, failed: line.startsWith('err') ? 'EIO' : null };
  } catch (err) {
    if (err instanceof ModelError) return { line: `err ${withVerb(cmd.verb, err.message)}`, failed: 'EINVAL' };
    const message = err instanceof Error ? err.message : String(err);
    log('%s: internal error: %O', cmd.verb, err);
    return { line: `err ${cmd.verb}: internal error: ${message}`, failed: 'EIO' };
  }
}

/** Run one command; its result line (`ok …` or `err …`, no newline). */
export function execute(machine: Machine, cmd: Command): string {
  return runCommand(machine, cmd).line;
}
