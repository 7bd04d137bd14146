import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findMount } from '../../src/fuse/mountpoint';
import { TraceWriter } from '../../src/workload/trace-format';
import { CLI, kscrubfs } from '../helpers/mount';

// The progress line of the long commands (calibrate, sweep, payoff, trace replay): on a
// terminal, stderr shows what runs and, once something is done, the share done and the time
// left, rewritten in place (\r, erase line) and erased at the end; piped, stderr has no such
// line. The terminal is a real pty: util-linux `script` runs the command on one and copies what
// the pty shows to its stdout. stdout goes to a file inside the command, so the transcript
// holds stderr alone.

const ERASE = '\r\x1b[K';

interface Transcript {
  code: number | null;
  /** What the terminal showed (stderr), with the pty's \r\n turned back into \n. */
  shown: string;
}

const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;

/**
 * `kscrubfs ARGS > stdoutFile` on a pty. With `interruptAt`, once the terminal shows text
 * matching it, SIGINT goes to the command's process group, as a Ctrl-C typed there sends it
 * (typing \x03 into script's stdin does that too, but util-linux 2.38's script then waits for
 * its stdin to close before it exits, and reports 0).
 */
function onTerminal(args: readonly string[], stdoutFile: string, o: { cwd: string; env?: NodeJS.ProcessEnv; interruptAt?: RegExp; timeoutMs: number }): Promise<Transcript> {
  const cmd = `exec ${[process.execPath, CLI, ...args].map(quote).join(' ')} > ${quote(stdoutFile)}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: o.cwd, env: { ...(o.env ?? process.env), TERM: 'dumb' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let shown = '';
    let typed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${o.timeoutMs} ms: kscrubfs ${args.join(' ')}\n${JSON.stringify(shown)}`));
    }, o.timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      shown += b.toString();
      if (o.interruptAt !== undefined && !typed && o.interruptAt.test(shown)) {
        typed = true;
        // script's child is the command (exec), the leader of the pty's session and process group.
        const leader = Number(execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim());
        process.kill(-leader, 'SIGINT');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, shown: shown.replaceAll('\r\n', '\n') });
    });
  });
}

/** The progress lines the terminal showed, each as it was drawn. */
function progressLines(shown: string): string[] {
  return shown.split(ERASE).slice(1).map((s) => s.split(/[\r\n]/)[0]!).filter(Boolean);
}

const ETA = / — \d+ %, about (\d+ s|\d+ min \d\d s|\d+ h \d\d min) left$/;

describe('progress on a terminal, nothing when piped', () => {
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-progress-'));
  });
  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  it('when sweep runs then a terminal shows each point done with the time left, and a pipe gets only its two summary lines', async () => {
    const spec = path.join(tmp, 'p.json');
    writeFileSync(spec, JSON.stringify({
      name: 'p', machine: { preset: 'x86_64', zeroDrivers: 'cpu' },
      workload: { bytes: '16M', threads: [1, 2, 4], cachelines: 1, prealloc: 0, scrub: 'off' },
    }));
    const tty = await onTerminal(['sweep', spec, '--jobs', '1', '-o', path.join(tmp, 'tty.jsonl')], path.join(tmp, 'tty.out'), { cwd: tmp, timeoutMs: 120_000 });
    assert.equal(tty.code, 0, tty.shown);
    const lines = progressLines(tty.shown).filter((l) => /^sweep p: \d\/3 /.test(l));
    assert.deepEqual(lines.map((l) => l.replace(/, [\d.]+ points\/s.*/, '')), ['sweep p: 1/3 points', 'sweep p: 2/3 points', 'sweep p: 3/3 points'], tty.shown);
    assert.match(lines[0]!, ETA);
    assert.match(lines[1]!, ETA);
    assert.ok(tty.shown.includes(`${ERASE}sweep p: 3 points in `), 'the line is erased before the summary');
    const piped = await kscrubfs(['sweep', spec, '--jobs', '1', '-o', path.join(tmp, 'piped.jsonl')], { cwd: tmp, timeoutMs: 120_000 });
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /[\r\x1b]/);
    assert.deepEqual(piped.stderr.split('\n').map((l) => l.replace(/ in [\d.]+ s;/, ';')),
      [`sweep p: 3 points, 0 already in ${path.join(tmp, 'piped.jsonl')}, 3 to run on 1 worker thread`, `sweep p: 3 points; rows in ${path.join(tmp, 'piped.jsonl')}`, '']);
    const rows = (f: string): number => readFileSync(path.join(tmp, f), 'utf8').trim().split('\n').length;
    assert.equal(rows('tty.jsonl'), 3);
    assert.equal(rows('piped.jsonl'), 3);
  });

  it('when trace replay runs then a terminal shows the faults replayed of both runs with the time left, and a pipe gets nothing but the result', async () => {
    // 60,000 anonymous write faults, one per page: replay reports every 20,000 records.
    const file = path.join(tmp, 't.trace');
    const w = new TraceWriter(file, { page_size: 4096, command: ['synthetic'], kernel: 'k', host_cpus: 1, started: 'now', source: 'test' }, 0);
    const pages = 60_000;
    w.task(1, 100, 100);
    w.cpu(1, 0);
    w.range('map', 2, 0x7f0000000, pages);
    for (let i = 0; i < pages; i++) w.fault(3 + i, 0x7f0000000 + i, true, 'anon');
    w.range('unmap', pages + 3, 0x7f0000000, pages);
    w.exit(pages + 4, true);
    w.end(pages + 5, { exit_status: 0, interrupted: false, faults: { anon: pages, file: 0, unknown: 0 }, write_faults: pages, processes: 1, tasks: 1, lost_events: 0, duration_us: pages + 5 });
    const args = ['trace', 'replay', file, '--preset', 'x86_64', '--json'];
    const tty = await onTerminal(args, path.join(tmp, 'replay-tty.json'), { cwd: tmp, timeoutMs: 120_000 });
    assert.equal(tty.code, 0, tty.shown);
    const lines = progressLines(tty.shown).filter((l) => l.startsWith('replaying'));
    // Both runs, kscrubd off then on; the share done counts both, so it keeps rising.
    assert.ok(lines.some((l) => /^replaying with kscrubd off: \d+ of 60000 faults/.test(l)), tty.shown);
    assert.ok(lines.some((l) => /^replaying with kscrubd on: \d+ of 60000 faults/.test(l)), tty.shown);
    const shares = lines.filter((l) => ETA.test(l)).map((l) => Number(/(\d+) %/.exec(l)![1]));
    assert.ok(shares.length >= 2, tty.shown);
    assert.deepEqual(shares, [...shares].sort((a, b) => a - b), 'the share done never goes back');
    assert.ok(shares.at(-1)! > 50, `the second run counts on from the first: ${shares.join(', ')}`);
    assert.ok(tty.shown.endsWith(ERASE), 'the line is erased at the end');
    const piped = await kscrubfs(args, { cwd: tmp, timeoutMs: 120_000 });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stderr, '');
    const rows = (s: string): unknown => (JSON.parse(s) as { rows: { faults: number }[] }).rows.map((r) => r.faults);
    assert.deepEqual(rows(readFileSync(path.join(tmp, 'replay-tty.json'), 'utf8')), rows(piped.stdout));
  });

  it('when calibrate runs on a terminal then it shows which row of how many runs, with the time left from the second row on; Ctrl-C stops it', async () => {
    const tty = await onTerminal(['calibrate'], path.join(tmp, 'cal.out'), { cwd: tmp, interruptAt: /calibrate: row 2 of \d+, [^\r\n]* — \d+ %, about /, timeoutMs: 120_000 });
    const lines = progressLines(tty.shown);
    assert.match(lines[0]!, /^calibrate: row 1 of (\d+), base 4G×3 1t: /, tty.shown);
    assert.ok(lines.some((l) => /^calibrate: row 2 of \d+, /.test(l) && ETA.test(l)), tty.shown);
    assert.equal(tty.code, 130, tty.shown);
  });

  it('when payoff runs on a terminal then it shows which pft run of how many goes, with the time left; Ctrl-C stops it and leaves nothing mounted', async () => {
    // Its machines are mounted under TMPDIR: this test's own directory.
    const env = { ...process.env, TMPDIR: tmp };
    const tty = await onTerminal(['payoff', '--quick'], path.join(tmp, 'payoff.out'), { cwd: tmp, env, interruptAt: /payoff: [^\r\n]*\(pft run 2 of \d+\) — \d+ %, about /, timeoutMs: 240_000 });
    const lines = progressLines(tty.shown);
    assert.match(lines[0]!, /^payoff: altix, kscrubd off \(pft run 1 of (\d+)\)$/, tty.shown);
    assert.ok(lines.some((l) => /^payoff: altix, kscrubd on \(pft run 2 of \d+\)/.test(l) && ETA.test(l)), tty.shown);
    assert.equal(tty.code, 130, tty.shown);
    for (const d of readdirSync(tmp).filter((f) => f.startsWith('kscrubfs-payoff-'))) {
      assert.equal(findMount(path.join(tmp, d)), undefined, `${d} is not left mounted`);
    }
    assert.equal(readFileSync(path.join(tmp, 'payoff.out'), 'utf8'), '', 'no table from a run cut short');
  });
});
