import debugFactory from 'debug';
import { counterValues } from '../procfs/counters';
import { type Machine, SYSCTL_NAMES, kscrubdTotals, type TouchJob, type TouchResult, type ZapResult, checkSteps, resolveConfig } from '../model';
import { MODEL_ERRNO, ModelError, PID_MAX_DEFAULT, formatZeroingPolicy, isDefaultZeroingPolicy } from '../uapi';
import type { Command, CommandOf, Verb } from '../uapi/grammar';
import { type Job, runToEnd } from './job';

const log = debugFactory('kscrubfs:control');

// Running one parsed command against the machine: one result line, `ok …` or `err …`.
// Each command is atomic because the model validates before it mutates (raw alloc and free
// are all or nothing); a ModelError becomes the `err` line, quoting the model's message.

/** How a command ended: its result line, and the errno its write fails with (null: it did not fail). */
export interface Outcome {
  readonly line: string;
  /** EINTR: its writer was interrupted (a signal) and the command stopped part way. */
  readonly failed: null | 'EINVAL' | 'EIO' | 'ENOMEM' | 'EINTR';
}


/** Plain decimal for the result line (virtual times may carry fractions of a ns). */
function n(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`result value ${v} is not a finite number`);
  return String(Math.round(v));
}

const hex = (v: number): string => `0x${Math.round(v).toString(16)}`;


/**
 * `stats`: the machine's shape (clients need page_size, max_order) and state, then every
 * counter of the table (src/uapi/counters.ts) by the name vmstat prints it, in table order.
 */
export function statsPairs(m: Machine): [string, number][] {
  return [
    ['now_ns', m.now],
    ['page_size', m.pageSize],
    ['max_order', m.maxOrder],
    ['nodes', m.config.nodes],
    ['cpus', m.config.cpus],
    ['raw_pages', m.raw.pages],
    ['mms', m.procs.nrMms],
    ['kscrubd_awake', kscrubdTotals(m.kscrubd).awake],
    ...counterValues(m),
  ];
}

/**
 * Who a command runs for: the open control file that sent it. A process (mm) made with
 * `mm new` belongs to it and exits when it is closed, unless made with `keep`.
 */
export interface Session {
  /** mm ids this session made (without keep) that are still alive. */
  readonly owned: Set<number>;
  /** Is mm `id` owned by some open session? (`mm list` shows the others as kept.) */
  tied(id: number): boolean;
  /**
   * Has the write that sent the running command been interrupted (its sender got a signal:
   * FUSE_INTERRUPT)? Long commands that can stop part way (touch, tick) ask between steps.
   */
  interrupted?(): boolean;
}

/** A session that owns nothing and ties nothing (a caller without open files: tests). */
export function detachedSession(): Session {
  return { owned: new Set(), tied: () => false };
}

/** Events a touch runs between two yields (well under a millisecond of work). */
const TOUCH_EVENTS_PER_STEP = 4096;
/** Blocks a slice of `alloc` takes (about a millisecond's work). */
const ALLOC_BLOCKS_PER_STEP = 4096;

type Result = string | Job<string>;
type Executor<V extends Verb> = (m: Machine, cmd: CommandOf<V>, s: Session) => Result;
type Executors<V extends Verb> = { readonly [K in V]: Executor<K> };

/**
 * `config`: how the machine was made, for a result to say so (provenance). Values are single
 * tokens; the cost figures listed are only those that differ from the preset's (the
 * `--cost` overrides), so a result names exactly what a reader must pass to remake it.
 */
export function configPairs(m: Machine): [string, string][] {
  const c = m.config;
  const base = resolveConfig({ preset: c.preset, ...(c.preset === 'i386' ? { cpuMhz: c.cpuMhz } : {}) });
  const preset = base.cost;
  // The hugetlb clear mode and the preemption model, only where they are not the preset's
  // (so a default machine's `config` reads as it always did).
  const clearing: [string, string][] = [
    ...(c.hugeClear === base.hugeClear ? [] : [['huge_clear', c.hugeClear] as [string, string]]),
    ...(c.preempt === base.preempt ? [] : [['preempt', c.preempt ? 'full' : 'none'] as [string, string]]),
  ];
  const overrides = (Object.keys(m.cost) as (keyof typeof m.cost)[])
    .filter((k) => m.cost[k] !== preset[k])
    .map((k): [string, string] => [`cost.${k}`, String(m.cost[k])]);
  return [
    ['preset', c.preset],
    ['mem_bytes', String(c.memBytes)],
    ['nodes', String(c.nodes)],
    ['cpus', String(c.cpus)],
    ['page_size', String(c.pageSize)],
    ['line_size', String(c.lineSize)],
    ['max_order', String(c.maxOrder)],
    ['cpu_mhz', String(c.cpuMhz)],
    ['zero_drivers', c.zeroDrivers.join(',')],
    ['clock', m.clock.mode],
    ['speed', String(m.clock.speed)],
    ['now_ns', n(m.now)],
    ...SYSCTL_NAMES.map((k): [string, string] => [`sysctl.${k}`, String(m.sysctl[k])]),
    ...overrides,
    ...clearing,
    ...policyPairs(m),
  ];
}

/**
 * The zeroing policies, only when not the default (so a default machine's `config` reads as
 * it always did), and init_on_free's boot-time wipe (pages, one CPU's ns).
 */
function policyPairs(m: Machine): [string, string][] {
  const p = m.config.zeroingPolicy;
  if (isDefaultZeroingPolicy(p)) return [];
  const out: [string, string][] = [['zeroing_policy', formatZeroingPolicy(p)]];
  if (m.policy.initOnFree) out.push(['boot_wipe_pages', n(m.bootWipe.pages)], ['boot_wipe_ns', n(m.bootWipe.ns)]);
  return out;
}

/** One executor per verb: the compiler checks that every verb of the grammar has one. */
const EXECUTORS: Executors<Verb> = {
  tick: (m, c, s) => tickJob(m, c.ns, s),
  alloc: (m, c, s) => allocJob(m, c, s),
  free: (m, c) => `ok freed_pages=${n(m.raw.free(c.handles))}`,
  drain: (m) => `ok drained_pages=${n(m.drainPcp())}`,
  bte: (m, c) => (m.injectBteFailures(c.fail), 'ok'),
  check: (m, _c, s) => checkJob(m, s),
  stats: (m) => `ok ${statsPairs(m).map(([k, v]) => `${k}=${n(v)}`).join(' ')}`,
  config: (m) => `ok ${configPairs(m).map(([k, v]) => `${k}=${v}`).join(' ')}`,
  // The process verbs; touch leaves what the line does not give to Processes.touch's defaults
  // (write, 1 thread, 1 line a page, a page's stride).
  'mm new': (m, c, s) => {
    // What bounds `mm list`'s line and the daemon's memory for processes, as pid_max bounds fork.
    if (m.procs.mms.size >= PID_MAX_DEFAULT) {
      throw new ModelError('KSCRUB_NOMEM', `${m.procs.mms.size} processes are alive, the kernel's pid_max (PID_MAX_DEFAULT); mm exit some first`);
    }
    const id = m.procs.create().id;
    if (c.keep !== true) s.owned.add(id);
    return `ok mm=${n(id)}`;
  },
  'mm list': (m, _c, s) => {
    const ids = [...m.procs.mms.keys()].sort((a, b) => a - b);
    return `ok mms=${ids.join(',')} kept=${ids.filter((id) => !s.tied(id)).join(',')}`;
  },
  'mm exit': (m, c, s) => exitJob(m, c.mm, s),
  mmap: (m, c) => {
    if (c.hugetlb !== undefined) return hugetlbMmap(m, c);
    const r = m.procs.mmap(c.mm, c.size, c.random === true, c.addr, c.thp === true);
    return `ok addr=${hex(r.addr)} size=${n(r.size)}`;
  },
  munmap: (m, c) => freedJob(m.procs.munmapTimedSteps(c.mm, c.addr, c.size)),
  touch: (m, c, s) => (m.hugetlb.maps.at(m.procs.get(c.mm), c.addr) ? hugetlbTouch(m, c, s) : runTouch(s, m.procs.touchJob(c.mm, {
    addr: c.addr, size: c.size, write: c.access !== 'read',
    ...(c.threads !== undefined && { threads: c.threads }),
    ...(c.lines !== undefined && { lines: c.lines }),
    ...(c.stride !== undefined && { stride: c.stride }),
    ...(c.thp === true && { thp: true }),
  }))),
  fault: (m, c) => touchLine(m.procs.fault(c.mm, c.addr, c.access !== 'read')),
  faults: (m, c) => {
    const r = m.procs.faults(c.mm, { ...c.at, lines: c.lines ?? 1, ...(c.cpus !== undefined && { cpus: c.cpus }) });
    return `${touchLine(r)} zero_ns=${n(r.zeroNs)}`;
  },
};

/** mmap hugetlb=SIZE: MAP_HUGETLB from that size's pool (no fixed address, no THP, no prefault to ask for). */
function hugetlbMmap(m: Machine, c: CommandOf<'mmap'>): string {
  if (c.addr !== undefined || c.thp === true) throw new ModelError('KSCRUB_BAD_OPTION', 'mmap: hugetlb= takes neither addr= nor thp');
  const r = m.hugetlb.maps.mmap(c.mm, c.size, m.hugetlb.poolOf(c.hugetlb!, 'mmap'));
  return `ok addr=${hex(r.addr)} size=${n(r.size)}`;
}

/**
 * A look at whether the command's writer (or whoever waits on it) was interrupted, for a
 * model job that stops where it can; `seen` says whether a look said so.
 */
function stopper(s: Session): { readonly stop: () => boolean; readonly seen: () => boolean } {
  let seen = false;
  return { stop: () => (seen = s.interrupted?.() === true), seen: () => seen };
}

/** touch of a hugetlb mapping: huge page faults (hugetlb-map.ts), as a job; reads and lines do not change them. Interrupted, it stops at the next huge page. */
function* hugetlbTouch(m: Machine, c: CommandOf<'touch'>, s: Session): Job<string> {
  if (c.thp === true) throw new ModelError('KSCRUB_BAD_OPTION', 'touch: thp does not apply to a hugetlb mapping');
  const look = stopper(s);
  const r = yield* m.hugetlb.maps.touchSteps(c.mm, c.addr, c.size, c.threads ?? 1, look.stop);
  const line = `pages=${n(r.pages)} faults=${n(r.faults)} prezeroed=${n(r.prezeroed)} hot_zeroed=${n(r.hotZeroed)} prefaulted=0 oom=${n(r.oom)} `
    + `user_ns=0 sys_ns=${n(r.sysNs)} wall_ns=${n(r.wallNs)} waited=${n(r.waited)} max_fault_ns=${n(r.maxFaultNs)}`;
  return look.seen() ? `err touch: ${INTERRUPTED}; what it did stays: ${line}` : `ok ${line}`;
}

/** check, stopped at its next step when interrupted: it only reads, so nothing needs undoing. */
function* checkJob(m: Machine, s: Session): Job<string> {
  const steps = checkSteps(m);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value === null ? 'ok' : `err check: ${r.value}`;
    if (s.interrupted?.() === true) {
      steps.return(null);
      return `err check: ${INTERRUPTED}; it stopped part way (check only reads: nothing changed)`;
    }
    yield;
  }
}

function* exitJob(m: Machine, id: number, s: Session): Job<string> {
  const line = yield* freedJob(m.procs.exitTimedSteps(id));
  s.owned.delete(id);
  return line;
}

/** munmap / mm exit: the pages freed and what the zap cost (pft times a process's whole life). */
function* freedJob(steps: Job<ZapResult>): Job<string> {
  const z = yield* steps;
  return `ok freed_pages=${n(z.freed)} sys_ns=${n(z.sysNs)} wall_ns=${n(z.wallNs)}`;
}

/** alloc, as a job: interrupted, it gives back the blocks taken so far (all or nothing, as when memory runs out). */
function* allocJob(m: Machine, c: CommandOf<'alloc'>, s: Session): Job<string> {
  const look = stopper(s);
  const handles = yield* m.raw.allocSteps(c.order, c.zero === true, c.node ?? 0, c.count ?? 1, ALLOC_BLOCKS_PER_STEP, look.stop);
  return handles === null ? `err alloc: ${INTERRUPTED}; nothing kept (the blocks taken so far are free again)` : `ok handles=${handles.join(',')}`;
}

/** The prefix of a command's `err` line when its writer was interrupted part way. */
export const INTERRUPTED = 'interrupted by a signal to its writer';

/**
 * A touch's job, run in steps of TOUCH_EVENTS_PER_STEP events, as a control job. Interrupted,
 * it stops at the next page and reports what it did: the pages touched stay touched.
 */
function* runTouch(s: Session, job: TouchJob): Job<string> {
  while (!job.run(TOUCH_EVENTS_PER_STEP)) {
    if (s.interrupted?.() === true) {
      job.stop();
      while (!job.run(TOUCH_EVENTS_PER_STEP)) yield;
      return `err touch: ${INTERRUPTED}; what it did stays: ${touchLine(job.result).slice(3)}`;
    }
    yield;
  }
  return touchLine(job.result);
}

/** Background events (kscrubd wake-ups, load samples) a step of `tick` runs at most. */
const TICK_EVENTS_PER_STEP = 256;

/**
 * `tick`: advance the clock a few background events at a time. A step is counted in events,
 * not wall time, so the steps — where an interrupt stops it, and what a record replays — are
 * the same on every run; advanceTo runs every event at its own time, so they never change
 * what happens. Interrupted, the clock stays where the last step left it.
 */
function* tickJob(m: Machine, ns: number, s: Session): Job<string> {
  m.tick(0); // refuses a live clock or a bad duration before anything runs
  const target = m.now + ns;
  while (m.now < target) {
    for (let i = 0; i < TICK_EVENTS_PER_STEP && m.now < target; i++) m.advanceTo(Math.min(target, m.nextBackgroundAt()));
    if (m.now >= target) break;
    if (s.interrupted?.() === true) return `err tick: ${INTERRUPTED}; the clock stays at now_ns=${n(m.now)}`;
    yield;
  }
  return `ok now_ns=${n(m.now)}`;
}

function touchLine(r: TouchResult): string {
  return `ok pages=${n(r.pages)} faults=${n(r.faults)} prezeroed=${n(r.prezeroed)} hot_zeroed=${n(r.hotZeroed)} `
    + `prefaulted=${n(r.prefaulted)} oom=${n(r.oom)} user_ns=${n(r.userNs)} sys_ns=${n(r.sysNs)} wall_ns=${n(r.wallNs)}`;
}

/** A model message with the verb in front, unless it already names it. */
function withVerb(verb: Verb, message: string): string {
  return message.startsWith(`${verb}:`) ? message : `${verb}: ${message}`;
}

/**
 * One command as a job (run it through a Scheduler, or runToEnd). A ModelError (refused
 * before anything changed) is an `err` line and its errno (MODEL_ERRNO: ENOMEM when memory
 * ran out, else EINVAL); a broken invariant from `check` is
 * EIO; anything else is a bug: EIO, logged.
 */
export function* commandJob(machine: Machine, cmd: Command, session: Session): Job<Outcome> {
  const o = yield* runUnchecked(machine, cmd, session);
  // One command, one line: a stray newline in a message must not split the result.
  const line = CONTROL_CHARS.test(o.line) ? o.line.replace(CONTROL_CHARS_G, ' ') : o.line;
  return line.startsWith('err') && line.length > MAX_ERR_CHARS ? { line: `${line.slice(0, MAX_ERR_CHARS - 1)}…`, failed: o.failed } : { line, failed: o.failed };
}

/**
 * An `err` line is cut to this many characters (a message that quotes a long token), so what
 * a batch's one failure may print is known before it runs (batch.ts reserves ERR_RESULT_BYTES).
 */
export const MAX_ERR_CHARS = 512;

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const CONTROL_CHARS_G = /[\u0000-\u001f\u007f]/g;

function* runUnchecked(machine: Machine, cmd: Command, session: Session): Job<Outcome> {
  const exec = EXECUTORS[cmd.verb] as Executor<Verb>;
  try {
    const r = exec(machine, cmd as CommandOf<Verb>, session);
    const line = typeof r === 'string' ? r : yield* r;
    return { line, failed: line.startsWith(`err ${cmd.verb}: ${INTERRUPTED}`) ? 'EINTR' : line.startsWith('err') ? 'EIO' : null };
  } catch (err) {
    if (err instanceof ModelError) return { line: `err ${withVerb(cmd.verb, err.message)}`, failed: MODEL_ERRNO[err.code] };
    const message = err instanceof Error ? err.message : String(err);
    log('%s: internal error: %O', cmd.verb, err);
    return { line: `err ${cmd.verb}: internal error: ${message}`, failed: 'EIO' };
  }
}

/** Run one command to the end, now; its outcome. */
export function runCommand(machine: Machine, cmd: Command, session: Session = detachedSession()): Outcome {
  return runToEnd(commandJob(machine, cmd, session));
}

/** Run one command; its result line (`ok …` or `err …`, no newline). */
export function execute(machine: Machine, cmd: Command): string {
  return runCommand(machine, cmd).line;
}
