import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { readdirSync } from 'node:fs';
import { loadSpec } from '../../src/cli/sweep-spec';
import { REPO_ROOT, kscrubfs } from '../helpers/mount';

// kscrubfs sweep: each point on a fresh in-process machine (no FUSE), on worker threads.

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-sweep-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const SPEC = path.join(tmp, 'small.json');
writeFileSync(SPEC, JSON.stringify({
  name: 'small',
  machine: { preset: 'x86_64', mem: '1G' },
  workload: { bytes: '16M', threads: [1, 2], scrub: ['off', 'on'], settle: true },
  plot: { x: 'threads', series: ['scrub'] },
}));
const sweep = (args: string[]) => kscrubfs(['sweep', SPEC, ...args], { cwd: tmp, timeoutMs: 60_000 });
const read = (f: string): string => readFileSync(path.join(tmp, f), 'utf8');
const jsonl = (f: string): { key: string; point: Record<string, unknown>; row: { threads: number; faults: number; prefaulted: number; prezeroed: number; hotZeroed: number }; machine: { preset: string } }[] =>
  read(f).trimEnd().split('\n').map((l) => JSON.parse(l));

describe('kscrubfs sweep', () => {
  test('when a 4-point spec runs with --jobs 1 and --jobs 2 then both outputs are the same bytes, one row per point with its configuration', async () => {
    const one = await sweep(['--jobs', '1', '-o', 'one.jsonl']);
    assert.equal(one.code, 0, one.stderr);
    const two = await sweep(['--jobs', '2', '-o', 'two.jsonl']);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(read('one.jsonl'), read('two.jsonl'));
    const rows = jsonl('one.jsonl');
    assert.deepEqual(rows.map((r) => [r.point.threads, r.point.scrub]), [[1, 'off'], [1, 'on'], [2, 'off'], [2, 'on']]);
    assert.equal(new Set(rows.map((r) => r.key)).size, 4);
    for (const r of rows) {
      assert.match(r.key, /^[0-9a-f]{12}$/);
      assert.equal(r.machine.preset, 'x86_64');
      assert.equal(r.row.threads, r.point.threads);
      if (r.point.scrub === 'off') assert.equal(r.row.prezeroed, 0);
      // kscrubd on: every fault takes a prezeroed page. The spec says nothing of prefault, so
      // there is none, as in pft: a fault a page.
      else assert.ok(r.row.prezeroed === r.row.faults && r.row.faults > 0 && r.row.prefaulted === 0 && r.row.hotZeroed === 0, JSON.stringify(r.row));
    }
  });

  test('when a sweep is rerun then it skips the points already in the output and runs only the missing ones', async () => {
    const full = read('one.jsonl');
    const again = await sweep(['-o', 'one.jsonl']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /4 points, 4 already in one\.jsonl, nothing to run/);
    assert.equal(read('one.jsonl'), full);
    writeFileSync(path.join(tmp, 'part.jsonl'), full.split('\n').slice(0, 1).join('\n') + '\n');
    const rest = await sweep(['-o', 'part.jsonl']);
    assert.match(rest.stderr, /1 already in part\.jsonl, 3 to run/);
    assert.deepEqual(jsonl('part.jsonl').map((r) => r.key).sort(), jsonl('one.jsonl').map((r) => r.key).sort());
  });

  test('when --list is run point by point and the pieces merged then the output equals the one-shot run', async () => {
    const list = await sweep(['--list']);
    assert.equal(list.code, 0, list.stderr);
    const cmds = list.stdout.trimEnd().split('\n');
    assert.equal(cmds.length, 4);
    const pieces: string[] = [];
    for (const [i, c] of cmds.entries()) {
      const m = /^kscrubfs sweep (\S+) --point ([0-9a-f]{12})$/.exec(c);
      assert.ok(m && m[1] === SPEC, c);
      const r = await sweep(['--point', m[2]!]);
      assert.equal(r.code, 0, r.stderr);
      writeFileSync(path.join(tmp, `piece.${i}.jsonl`), r.stdout);
      pieces.push(path.join(tmp, `piece.${i}.jsonl`));
    }
    const merged = await sweep(['--merge', ...pieces.reverse(), '-o', 'merged.jsonl']);
    assert.equal(merged.code, 0, merged.stderr);
    assert.equal(read('merged.jsonl'), read('one.jsonl'));
  });

  test('when the output is --csv then it has # lines, a header and a row per point, reruns skip, and --plot draws every point', async () => {
    const r = await sweep(['--csv', 'out.csv', '--plot', 'out.svg']);
    assert.equal(r.code, 0, r.stderr);
    const lines = read('out.csv').trimEnd().split('\n');
    assert.match(lines[0]!, /^# kscrubfs \d/);
    const body = lines.filter((l) => !l.startsWith('#'));
    assert.equal(body[0]!.split(',').slice(0, 4).join(','), 'key,preset,mem,bytes');
    assert.equal(body.length, 1 + 4);
    assert.equal(new Set(body[0]!.split(',')).size, body[0]!.split(',').length, 'no column twice');
    assert.equal(read('out.svg').match(/class="point"/g)?.length, 2 * 4);
    const again = await sweep(['--csv', 'out.csv', '--plot', 'out2.svg']);
    assert.match(again.stderr, /4 already in out\.csv/);
    assert.equal(read('out2.svg'), read('out.svg'), 'the plot from the CSV read back is the same');
    // The spec leaves drivers, prefault and kscrubd's orders to the defaults: the subtitle says
    // them (prefault off as pft's, though the x86_64 machine boots with max_prealloc_order 4).
    assert.match(read('out.svg'), /<text [^>]*fill="#444444">preset x86_64, mem 1G, bytes 16M, settle true; zero drivers cpu; prefault off; kscrubd off or on: scrub_start 5, scrub_stop 2<\/text>/);
  });

  test('when the shipped specs under scripts/sweeps/ are loaded then each is a grid with a plot', () => {
    const dir = path.join(REPO_ROOT, 'scripts/sweeps');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 3, files.join(', '));
    for (const f of files) {
      const spec = loadSpec(path.join(dir, f));
      assert.ok(spec.points.length >= 4 && spec.plot !== undefined, f);
    }
  });

  test('when kscrubd zeroed a row\'s pages beforehand then the row gives its CPU for them and fault/wsec with it done during the run, on the idle CPUs first', async () => {
    const dir = mkdtempSync(path.join(tmp, 'kscrubd-'));
    // x86_64 has 4 CPUs: one thread leaves three idle for kscrubd's work, four leave none.
    writeFileSync(path.join(dir, 'k.json'), JSON.stringify({ machine: { preset: 'x86_64', mem: '1G' }, workload: { bytes: '16M', threads: [1, 4], scrub: ['off', 'on'], settle: true } }));
    const r = await kscrubfs(['sweep', 'k.json', '--jobs', '1'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    type Row = { point: { threads: number; scrub: string }; row: { wallS: number; pages: number; prezeroed: number; faultPerWsec: number }; kscrubd: { cpuS: number; faultPerWsec: number } };
    const rows = readFileSync(path.join(dir, 'k.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Row);
    assert.equal(rows.length, 4);
    for (const { point, row, kscrubd } of rows) {
      const what = JSON.stringify(point);
      if (point.scrub === 'off') {
        assert.deepEqual(kscrubd, { cpuS: 0, faultPerWsec: row.faultPerWsec }, what);
        continue;
      }
      assert.ok(row.prezeroed === row.pages && kscrubd.cpuS > 0, what);
      // extra = max(0, K − idle CPUs × Wall) ÷ busy CPUs (src/workload/kscrubd-cost.ts)
      const extra = Math.max(0, kscrubd.cpuS - (4 - point.threads) * row.wallS) / point.threads;
      assert.equal(kscrubd.faultPerWsec, row.pages / (row.wallS + extra), what);
      if (point.threads === 4) assert.ok(kscrubd.faultPerWsec < row.faultPerWsec * 0.9, `every CPU busy: kscrubd's work slows the run (${what})`);
    }
    const csv = await kscrubfs(['sweep', 'k.json', '--jobs', '1', '--csv', 'k.csv'], { cwd: dir, timeoutMs: 60_000 });
    assert.equal(csv.code, 0, csv.stderr);
    const lines = readFileSync(path.join(dir, 'k.csv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const head = lines[0]!.split(',');
    const on4 = lines.slice(1).map((l) => l.split(',')).find((f) => f[head.indexOf('threads')] === '4' && f[head.indexOf('scrub')] === 'on')!;
    assert.equal(Number(on4[head.indexOf('faultPerWsecKscrubd')]), rows[3]!.kscrubd.faultPerWsec);
    assert.equal(Number(on4[head.indexOf('kscrubdCpuS')]), rows[3]!.kscrubd.cpuS);
  });

  test('when a spec asks for prefault, in its workload or as the sysctl, then the point prefaults; said nowhere, it does not, as pft', async () => {
    const dir = mkdtempSync(path.join(tmp, 'prefault-'));
    const cases: [Record<string, unknown>, boolean][] = [
      [{ workload: { bytes: '4M' } }, false],
      [{ workload: { bytes: '4M', prealloc: 4 } }, true],
      [{ sysctl: { max_prealloc_order: 4 }, workload: { bytes: '4M' } }, true],
    ];
    for (const [spec, prefaults] of cases) {
      writeFileSync(path.join(dir, 'p.json'), JSON.stringify({ machine: { preset: 'x86_64', mem: '256M' }, ...spec }));
      const key = (await kscrubfs(['sweep', 'p.json', '--list'], { cwd: dir })).stdout.trim().split(' ').pop()!;
      const r = await kscrubfs(['sweep', 'p.json', '--point', key], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { sysctl: Record<string, number>; row: { pages: number; faults: number; prefaulted: number } };
      assert.equal(out.sysctl.max_prealloc_order, prefaults ? 4 : 0, JSON.stringify(spec));
      if (prefaults) assert.ok(out.row.prefaulted > 0 && out.row.faults < out.row.pages, JSON.stringify(out.row));
      else assert.deepEqual([out.row.faults, out.row.prefaulted], [out.row.pages, 0]);
    }
  });

  test('when a spec has an unknown key then sweep says which and exits 1', async () => {
    const bad = path.join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ workload: { threds: [1] } }));
    const r = await kscrubfs(['sweep', bad], { cwd: tmp });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /workload: unknown key "threds"/);
  });

  test('when a spec has a value typo ("scrub": "onn") then sweep rejects it before any point runs, and writes nothing', async () => {
    const dir = mkdtempSync(path.join(tmp, 'typo-'));
    writeFileSync(path.join(dir, 'typo.json'), JSON.stringify({ machine: { preset: 'x86_64', mem: '256M' }, workload: { bytes: '4M', scrub: ['on', 'onn'] } }));
    const r = await kscrubfs(['sweep', 'typo.json'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'kscrubfs: sweep spec typo.json: workload.scrub: "onn" is not a valid value\n');
    assert.deepEqual(readdirSync(dir), ['typo.json'], 'no output: nothing ran');
  });

  test('when a spec has a pft value out of its range (prealloc 99, cachelines 0, bytes past the largest mapping) then sweep names the range before any point runs, and writes nothing', async () => {
    const dir = mkdtempSync(path.join(tmp, 'range-'));
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ workload: { bytes: '4M', prealloc: [0, 99] } }, /workload\.prealloc\S*: 99 is out of range 0\.\.4/],
      [{ sysctl: { max_prealloc_order: 5 }, workload: { bytes: '4M' } }, /sysctl\.max_prealloc_order\S*: 5 is out of range 0\.\.4/],
      [{ workload: { bytes: '4M', cachelines: 0 } }, /workload\.cachelines\S*: 0 is out of range 1\.\.131072/],
      [{ workload: { bytes: '4M', threads: [1, 2000] } }, /workload\.threads\S*: 2000 is out of range 1\.\.1024/],
      [{ workload: { bytes: '100T' } }, /workload\.bytes\S*: "100T" is more than the largest mapping/],
    ];
    for (const [spec, message] of cases) {
      writeFileSync(path.join(dir, 'range.json'), JSON.stringify({ machine: { preset: 'x86_64', mem: '256M' }, ...spec }));
      const r = await kscrubfs(['sweep', 'range.json'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.deepEqual(readdirSync(dir), ['range.json'], 'no output: nothing ran');
    }
  });

  test('when --merge has no pieces, or --list, --point and --merge are mixed, then sweep says so, exits 2 (a usage error) and writes nothing', async () => {
    const dir = mkdtempSync(path.join(tmp, 'modes-'));
    const cases: [string[], RegExp][] = [
      [['--merge'], /--merge: name the pieces to join/],
      [['--list', '--point', 'abc'], /give only one of --list and --point/],
      [['--point', 'abc', '--merge', 'x.jsonl'], /give only one of --point and --merge/],
    ];
    for (const [args, message] of cases) {
      const r = await kscrubfs(['sweep', SPEC, ...args], { cwd: dir });
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '', 'no --list output');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.deepEqual(readdirSync(dir), [], 'no output file made');
  });
});
