import debugFactory from 'debug';
import type { Machine } from '../model';
import { ProcError } from '../procfs/types';
import { runCommand } from './execute';
import { type Command, ControlSyntaxError, decodeLine, parseLine } from './grammar';

const log = debugFactory('kscrubfs:control');

// One write(2) to the control file is one batch:
//   phase 1  parse every line; if any is refused, nothing runs: each refused line reads
//            "err <reason>", each good one "err skipped: line N of this write was rejected"
//            (N = the first refused line), and the write fails EINVAL;
//   phase 2  catch the clock up with the wall (live mode), run the commands in order; the
//            first that fails ends the batch: its "err" line, then "err skipped: line N of
//            this write failed" for the rest, and the write fails (EINVAL for a refusal by
//            the model, EIO for a broken invariant or a bug).
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

/** Split on newlines; a last line without one is still a line. */
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

/** Parse and run one write's worth of command lines. */
export function runBatch(machine: Machine, wallClockMs: () => number, data: Buffer): BatchResult {
  const parsed = parseAll(data);
  const bad = parsed.find((p) => p.reason !== undefined);
  if (bad) {
    log('write rejected: line %d: %s', bad.lineNo, bad.reason);
    return {
      lines: parsed.map((p) => (p.reason !== undefined ? `err ${p.reason}` : `err skipped: line ${bad.lineNo} of this write was rejected`)),
      error: new ProcError('EINVAL', `control: line ${bad.lineNo}: ${bad.reason}`),
    };
  }
  if (parsed.length === 0) return { lines: [], error: null };
  machine.syncWall(wallClockMs());
  const lines: string[] = [];
  let failed: { lineNo: number; error: ProcError } | null = null;
  for (const p of parsed) {
    if (failed) {
      lines.push(`err skipped: line ${failed.lineNo} of this write failed`);
      continue;
    }
    const o = runCommand(machine, p.cmd!);
    log('%s → %s', p.text, o.line);
    lines.push(o.line);
    if (o.failed) failed = { lineNo: p.lineNo, error: new ProcError(o.failed, `control: line ${p.lineNo}: ${o.line.slice(4)}`) };
  }
  return { lines, error: failed?.error ?? null };
}
