import debugFactory from 'debug';
import type { Machine } from '../model';
import { OUTPUT_LIMIT, ProcError } from '../uapi';
import { INTERRUPTED, MAX_ERR_CHARS, type Outcome, type Session, commandJob, configPairs, statsPairs } from './execute';
import { type Command, ControlSyntaxError, SPECS, decodeLine, parseLine } from '../uapi/grammar';
import type { CommandBudget, Job } from './job';

const log = debugFactory('kscrubfs:control');

// The whole lines of one write(2) to the control file are one batch (file.ts holds a line
// that has not seen its newline yet until it does):
//   phase 1  (planBatch, as the write arrives) parse every line; if any is refused, nothing
//            runs: each refused line reads "err <reason>", each good one "err skipped: line N
//            of this write was rejected" (N = the first refused line), and the write fails
//            EINVAL; results that could pass the unread limit fail it EBUSY;
//   phase 2  (batchJob, when its turn comes) catch the clock up with the wall (live mode),
//            run the commands in order; the first that fails ends the batch: its "err"
//            line, then "err skipped: line N of this write failed" for the rest, and the
//            batch fails (EINVAL for a refusal by the model, ENOMEM when it ran out of
//            memory, EIO for a broken invariant or a bug): over FUSE, close(2) says so.
// Blank and comment lines give no result. Line N counts every line of the write from 1.

export interface BatchResult {
  /** One result per command, in order, without newlines. */
  readonly lines: readonly string[];
  /** What the write throws after the lines are queued; null: it succeeded. */
  readonly error: ProcError | null;
}

type Parsed = { readonly lineNo: number; readonly text: string } & (
  | { readonly cmd: Command; readonly reason?: undefined }
  | { readonly cmd?: undefined; readonly reason: string }
);

/** Split on newlines; a last line without one is still a line (the caller passes whole lines). */
function splitLines(data: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (;;) {
    const nl = data.indexOf(0x0a, start);
    if (nl < 0) break;
    lines.push(data.subarray(start, nl));
    start = nl + 1;
  }
  if (start < data.length) lines.push(data.subarray(start));
  return lines;
}

function parseAll(data: Buffer): Parsed[] {
  const out: Parsed[] = [];
  splitLines(data).forEach((bytes, i) => {
    const lineNo = i + 1;
    let text = '';
    try {
      text = decodeLine(bytes);
      const cmd = parseLine(text);
      if (cmd === null) return;
      out.push({ lineNo, text, cmd });
    } catch (err) {
      if (!(err instanceof ControlSyntaxError)) throw err;
      out.push({ lineNo, text, reason: err.message });
    }
  });
  return out;
}

/** Digits of the largest safe integer, the widest number a result prints. */
const NUMBER_BYTES = 16;
/**
 * A batch stops at its first failure: one `err` line (cut to MAX_ERR_CHARS, each at most 4
 * bytes of UTF-8), the commands after it each a short `err skipped: …` line.
 */
const ERR_RESULT_BYTES = 4 * MAX_ERR_CHARS;
/** `err skipped: line N of this write failed`, but for N's digits. */
const SKIPPED_TEXT_BYTES = 'err skipped: line  of this write failed'.length;

/**
 * The most bytes an `ok` line of `verb` takes, read from its result template in the grammar:
 * the literal text, and each <field> a number at its widest. A result is reserved at this,
 * not at a round guess: a `tick 1ns` line at 45 bytes, so 30,000 of them fit the unread limit.
 */
const TEMPLATE_BYTES: ReadonlyMap<string, number> = new Map(SPECS.map((s) => {
  const fields = s.result.match(/<[^>]*>/g) ?? [];
  return [s.verb, s.result.replace(/<[^>]*>/g, '').length + fields.length * NUMBER_BYTES];
}));
const TOUCH_BYTES = TEMPLATE_BYTES.get('touch')!;

/**
 * An upper bound on the bytes the results of `cmds`, run as one write, take: each line at
 * its widest (an ok line, or the `skipped` line it becomes after a failure), and room for
 * the one failure's `err` line.
 */
export function batchBound(m: Machine, cmds: readonly Command[]): number {
  const skipped = SKIPPED_TEXT_BYTES + String(cmds.length).length;
  return cmds.reduce((sum, c) => sum + 1 + Math.max(skipped, okBound(m, c)), ERR_RESULT_BYTES);
}

function okBound(m: Machine, cmd: Command): number {
  switch (cmd.verb) {
    case 'alloc':
      return 16 + (cmd.count ?? 1) * (NUMBER_BYTES + 1);
    case 'stats':
      return 4 + statsPairs(m).reduce((s, [k]) => s + k.length + 2 + NUMBER_BYTES, 0);
    case 'config':
      return 4 + configPairs(m).reduce((s, [k, v]) => s + k.length + 2 + Math.max(v.length, NUMBER_BYTES), 0);
    case 'mm list':
      return 32 + 2 * m.procs.mms.size * (NUMBER_BYTES + 1);
    // Their templates say "as touch" rather than repeat it.
    case 'fault':
      return TOUCH_BYTES;
    case 'faults':
      return TOUCH_BYTES + ' zero_ns='.length + NUMBER_BYTES;
    default:
      return TEMPLATE_BYTES.get(cmd.verb)!;
  }
}

/** Where a write's results go: how many bytes they may take (planBatch). */
export interface BatchRoom {
  /** Bytes of results this write may add before the handle passes its unread limit. */
  readonly room: number;
  /** Nothing is unread or in flight: one command alone may print more than `room` (a big alloc's handles). */
  readonly empty: boolean;
}

/** Who runs a write's commands (batchJob). */
export interface BatchTarget {
  readonly session: Session;
  /** The daemon's memory budget; a command that could pass it is refused (ENOMEM) before it runs. */
  readonly budget?: CommandBudget | undefined;
}

/** What a write's lines are, checked before anything runs. */
export type BatchPlan =
  /** Refused whole (a line does not parse, or the results could pass the unread limit): nothing runs. */
  | { readonly refused: BatchResult; readonly commands?: undefined }
  /** Good: `commands` to run, whose results take at most `bound` bytes. */
  | { readonly refused?: undefined; readonly commands: number; readonly bound: number };

/**
 * Phase 1 of a write, at once: parse every line and bound its results. A refusal is the
 * write's own answer (EINVAL, EBUSY); a plan is run later by batchJob, which parses the same
 * bytes again (so that a queued write holds its bytes, not an object per command).
 */
export function planBatch(machine: Machine, data: Buffer, target: BatchRoom): BatchPlan {
  const parsed = parseAll(data);
  const bad = parsed.find((p) => p.reason !== undefined);
  if (bad) {
    log('write rejected: line %d: %s', bad.lineNo, bad.reason);
    const lines = parsed.map((p) => (p.reason !== undefined ? `err ${p.reason}` : `err skipped: line ${bad.lineNo} of this write was rejected`));
    return {
      refused: {
        lines: fits(lines, target) ? lines : [`err ${bad.reason}`],
        error: new ProcError('EINVAL', `control: line ${bad.lineNo}: ${bad.reason}`),
      },
    };
  }
  const bound = parsed.length === 0 ? 0 : batchBound(machine, parsed.map((p) => p.cmd!));
  if (bound > target.room && !(target.empty && parsed.length === 1)) {
    const why = `control: the results of this write could take ${bound} bytes, more than the ${target.room} left of the ${OUTPUT_LIMIT}-byte unread limit; nothing ran (read the results, or write fewer commands at a time)`;
    return { refused: { lines: [`err ${why}`], error: new ProcError('EBUSY', why) } };
  }
  return { commands: parsed.length, bound };
}

/** Verbs that only look at the machine, in one step: a write of nothing else need not queue behind other files' commands. */
const OBSERVERS: ReadonlySet<string> = new Set(['stats', 'config', 'mm list']);

/** Does `data` (whole lines that parse) hold only commands that look and change nothing? */
export function onlyObservers(data: Buffer): boolean {
  const parsed = parseAll(data);
  return parsed.length > 0 && parsed.every((p) => p.cmd !== undefined && OBSERVERS.has(p.cmd.verb));
}

/**
 * Phase 2: run the commands of a write that planBatch accepted, as a job (it yields inside
 * long commands).
 */
export function* batchJob(machine: Machine, syncClock: () => void, data: Buffer, target: BatchTarget): Job<BatchResult> {
  const parsed = parseAll(data);
  if (parsed.length === 0) return { lines: [], error: null };
  syncClock();
  const lines: string[] = [];
  let failed: { lineNo: number; error: ProcError } | null = null;
  for (const p of parsed) {
    if (failed) {
      lines.push(`err skipped: line ${failed.lineNo} of this write failed`);
      continue;
    }
    const refused = target.budget?.refusal(machine, p.cmd!) ?? null;
    // A signal to the writer stops the batch between commands too.
    const o: Outcome = target.session.interrupted?.() === true ? { line: `err ${p.cmd!.verb}: ${INTERRUPTED}; nothing ran`, failed: 'EINTR' }
      : refused !== null ? { line: `err ${p.cmd!.verb}: ${refused}`, failed: 'ENOMEM' }
      : yield* commandJob(machine, p.cmd!, target.session);
    log('%s → %s', p.text, o.line);
    lines.push(o.line);
    if (o.failed) failed = { lineNo: p.lineNo, error: new ProcError(o.failed, `control: line ${p.lineNo}: ${o.line.slice(4)}`) };
  }
  return { lines, error: failed?.error ?? null };
}

function fits(lines: readonly string[], target: { readonly room: number }): boolean {
  return lines.reduce((s, l) => s + Buffer.byteLength(l) + 1, 0) <= target.room;
}
