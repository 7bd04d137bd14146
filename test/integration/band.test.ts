import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { writeFillTrace } from '../helpers/trace';
import type { Band } from '../../src/workload/band';
import { PUBLISHED } from '../../src/workload/calibration';
import { bandFigures } from '../../src/cli/band';
import { kscrubfs, withMount, withTempDir } from '../helpers/mount';

// --band through the real commands, on small machines with a manual clock: the band holds the
// answer the command printed, the tornado chart draws its figures in the band's order.

/** Each band holds its point; every tornado is ordered by effect. */
function assertBands(bands: readonly Band[]): void {
  assert.ok(bands.length > 0);
  for (const b of bands) {
    assert.ok(b.lo <= b.point && b.point <= b.hi, `${b.answer}: ${b.lo} ≤ ${b.point} ≤ ${b.hi}`);
    for (let i = 1; i < b.tornado.length; i++) assert.ok(b.tornado[i - 1]!.effect >= b.tornado[i]!.effect, `${b.answer}: tornado order`);
  }
}

describe('--band: answers with how sure they are', () => {
  test('when trace replay runs with --band on i386 then each side and the gains carry a band around the printed answer, with the calibration error of its published rows, and the tornado draws the gains', { timeout: 240_000 }, async () => {
    await withTempDir(async (tmp) => {
      const trace = path.join(tmp, 'fill.trace');
      writeFillTrace(trace, 1024);
      const svg = path.join(tmp, 'tornado.svg');
      const r = await kscrubfs(['trace', 'replay', trace, '--preset', 'i386', '--tornado', svg, '--json'], { timeoutMs: 200_000 });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { rows: { scrub: string; fltPerCpuS: number; faultPerWsec: number; faultPerWsecWithKscrubd: number }[]; band: Band[]; sysctl: Record<string, number> };
      assert.equal(out.sysctl.max_prealloc_order, 0, 'no prefault: a trace is of a mainline kernel');
      assert.deepEqual(out.band.map((b) => b.answer), [
        'kscrubd off: flt/cpu/s', 'kscrubd off: fault/wsec', 'kscrubd on: flt/cpu/s', 'kscrubd on: fault/wsec', 'flt/cpu/s gain (on ÷ off)', 'fault/wsec gain, kscrubd counted',
      ]);
      assertBands(out.band);
      const [off, on] = out.rows;
      // The band's point is the answer printed (each band run is a fresh machine of the preset, as the private mount).
      const near = (a: number, b: number): boolean => Math.abs(a / b - 1) < 1e-6;
      assert.ok(near(out.band[0]!.point, off!.fltPerCpuS) && near(out.band[2]!.point, on!.fltPerCpuS), JSON.stringify([out.band[0]!.point, off!.fltPerCpuS]));
      assert.ok(near(out.band[4]!.point, on!.fltPerCpuS / off!.fltPerCpuS));
      assert.ok(on!.faultPerWsecWithKscrubd < on!.faultPerWsec, "kscrubd's zeroing, counted, costs the on side wall time");
      // i386 has published rows: the calibration error is in every band, every fitted figure in the tornado.
      for (const b of out.band) {
        assert.ok(b.calibration !== null && b.calibration > 0);
        assert.equal(b.tornado.length, bandFigures({ preset: 'i386' }).length);
      }
      const chart = readFileSync(svg, 'utf8');
      const drawn = [...chart.matchAll(/class="bar" data-figure="(\w+)" data-side="lo"/g)].map((m) => m[1]);
      assert.deepEqual(drawn, [...out.band[4]!.tornado.slice(0, 10), ...out.band[5]!.tornado.slice(0, 10)].map((t) => t.figure));
    });
  });

  test('when payoff runs with --band on i386 then each gain of its table carries a band around it, with the calibration error, and the tornado draws the every-CPU gain', { timeout: 400_000 }, async () => {
    await withTempDir(async (tmp) => {
      const r = await kscrubfs(['payoff', '--quick', '--band', '--machines', 'i386', '--tornado', 't.svg'], { cwd: tmp, timeoutMs: 380_000 });
      assert.equal(r.code, 0, r.stderr);
      const figures = bandFigures({ preset: 'i386' }).length;
      assert.match(r.stdout, new RegExp(`^i386: band: ${figures} fitted figures each at its bounds \\(\\d+ runs besides the point\\), plus the preset's calibration error \\(rms ln \\d\\.\\d+\\)$`, 'm'));
      // | i386 | 4K | 16M | threads | … | flt/cpu/s gain | … | fault/wsec +kscrubd gain |
      const table = r.stdout.split('\n').filter((l) => l.startsWith('| i386 ')).map((l) => l.split('|').map((c) => c.trim()));
      assert.deepEqual(table.map((c) => c[4]), ['1', '2']);
      for (const c of table) {
        for (const [answer, cell] of [['flt/cpu/s gain', c[7]!], ['fault/wsec gain +kscrubd', c[14]!]] as const) {
          const m = new RegExp(`^  i386 4K ${c[4]} thr: ${answer.replace('+', '\\+')}: ([\\d.]+) \\[([\\d.]+) … ([\\d.]+)\\]`, 'm').exec(r.stdout);
          assert.ok(m, `a band for ${c[4]} thr ${answer}\n${r.stdout}`);
          const [point, lo, hi] = [Number(m[1]), Number(m[2]), Number(m[3])];
          assert.ok(lo < point && point < hi, `${answer}: ${lo} < ${point} < ${hi}`);
          assert.ok(Math.abs(point - Number(cell.replace('×', ''))) < 0.006, `${answer}: the band's point ${point} is the table's ${cell}`);
        }
      }
      const svg = readFileSync(path.join(tmp, 't.svg'), 'utf8');
      assert.ok(svg.includes('>i386 4K 2 thr: flt/cpu/s gain'), 'the every-CPU gain is drawn');
      assert.ok(!svg.includes('>i386 4K 1 thr:'), 'the one-thread gains are not');
    });
  });

  test('when trace replay --band is given a running mount then it is refused before anything runs', async () => {
    await withTempDir(async (tmp) => {
      const trace = path.join(tmp, 'fill.trace');
      writeFillTrace(trace, 16);
      const r = await kscrubfs(['trace', 'replay', trace, '-m', tmp, '--band']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /--band: the band changes cost figures, which a running mount keeps: leave out -m/);
      assert.equal(r.stdout, '');
    });
  });

  test('when policies runs with --band on a small x86_64 then each policy has a band, said to be without calibration error (no published rows)', { timeout: 120_000 }, async () => {
    let r = { code: null as number | null, stdout: '', stderr: '' };
    await withTempDir(async (tmp) => {
      const svg = path.join(tmp, 'p.svg');
      const out = await kscrubfs(['policies', 'pft', '--preset', 'x86_64', '--mem', '256M', '--cpus', '2', '--size', '8M', '--only', 'none,kscrubd', '--band', '--svg', svg], { timeoutMs: 100_000 });
      assert.equal(out.code, 0, out.stderr);
      // The chart draws each band the text prints as a whisker on its bar.
      const whiskers = readFileSync(svg, 'utf8').match(/<path class="band" data-policy="\w+"/g) ?? [];
      assert.equal(whiskers.length, (out.stdout.match(/^  \w+: [a-z ]+ (ms|us): /gm) ?? []).length);
      assert.ok(whiskers.length >= 11, `${whiskers.length} whiskers`);
      r = out;
    });
    assert.match(r.stdout, new RegExp(`^band: ${bandFigures({ preset: 'x86_64' }).length} fitted figures each at`, 'm'));
    assert.match(r.stdout, /^band: \d+ fitted figures each at its bounds \(\d+ runs besides the point\); no published rows for this preset: calibration error unknown, not in the band$/m);
    for (const p of ['none', 'kscrubd']) assert.match(r.stdout, new RegExp(`^  ${p}: ready ms: [\\d.]+ \\[[\\d.]+ … [\\d.]+\\] .*; most: \\w+ `, 'm'));
    // Every time column has its band; one the point left at 0 has none (nothing zeroed in the background without kscrubd).
    for (const c of ['app cpu ms', 'exit ms', 'max fault us', 'corun ms']) for (const p of ['none', 'kscrubd']) assert.match(r.stdout, new RegExp(`^  ${p}: ${c}: [\\d.]+ \\[`, 'm'), `${p}: ${c}`);
    assert.match(r.stdout, /^  kscrubd: bg cpu ms: [\d.]+ \[/m);
    assert.doesNotMatch(r.stdout, /^  none: (bg|prep) cpu ms/m);
    const j = await kscrubfs(['policies', 'pft', '--preset', 'x86_64', '--mem', '256M', '--cpus', '2', '--size', '8M', '--only', 'kscrubd', '--band', '--json'], { timeoutMs: 100_000 });
    const out = JSON.parse(j.stdout) as { rows: { readyNs: number }[]; band: Band[] };
    assertBands(out.band);
    assert.equal(out.band[0]!.point, out.rows[0]!.readyNs / 1e6);
    assert.equal(out.band[0]!.calibration, null);
  });

  test('when pft runs with no --prealloc on a mount whose prefault is on then it runs without prefault, as trace replay and payoff do', async () => {
    await withMount(['--clock', 'manual', '--preset', 'x86_64', '--mem', '256M'], async (dir) => {
      const r = await kscrubfs(['pft', '-m', dir, '-b', '8M', '--scrub', 'off', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { sysctl: Record<string, number>; rows: { faults: number; pages: number; prefaulted: number }[] };
      assert.equal(out.sysctl.max_prealloc_order, 0);
      assert.deepEqual([out.rows[0]!.faults, out.rows[0]!.prefaulted], [out.rows[0]!.pages, 0]);
      assert.equal(readFileSync(path.join(dir, 'sys/vm/max_prealloc_order'), 'utf8'), '4\n', 'the mount keeps its own');
    });
  });

  test("when calibrate --preset i386 runs then it compares i386's published rows only and says, per preset, how far the model is and which row is farthest, and names the presets without rows", { timeout: 200_000 }, async () => {
    const r = await kscrubfs(['calibrate', '--preset', 'i386'], { timeoutMs: 180_000 });
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    const labels = [...r.stdout.matchAll(/^(\S.*?) +(?:User|System|Wall|flt\/cpu\/s|fault\/wsec) +[\d.]+ +[\d.]+ +[\d.]+/gm)].map((m) => m[1]);
    assert.deepEqual([...new Set(labels)], PUBLISHED.filter((p) => p.preset === 'i386').map((p) => p.label));
    const line = /^i386: (\d+) of 8 flt\/cpu\/s and fault\/wsec within band; rms ln\(model ÷ published\) ([\d.]+); farthest: (i386 \w+ \dt) (flt\/cpu\/s|fault\/wsec) ×([\d.]+)$/m.exec(r.stdout);
    assert.ok(line, r.stdout);
    assert.doesNotMatch(r.stdout, /^altix: /m);
    assert.match(r.stdout, /^no published rows: x86_64, epyc, genoa, icelake-x, skylake-sp \(/m);
    // The farthest row is as far as the table's own ratio for it says.
    const ratio = new RegExp(`^${line[3]!} +${line[4]!.replace('/', '\\/')} +\\d+ +\\d+ +([\\d.]+)`, 'm').exec(r.stdout);
    assert.equal(ratio?.[1], line[5]);
    const bad = await kscrubfs(['calibrate', '--preset', 'epyc']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /calibrate --preset: "epyc" has no published rows \(presets with rows: altix, i386\)/);
  });

  test('when sweep runs with --band then each row carries flt/cpu/s and fault/wsec bands around its own row, the same whatever the jobs, --tornado draws them, and an output of rows without bands is refused', { timeout: 200_000 }, async () => {
    await withTempDir(async (tmp) => {
      const spec = path.join(tmp, 'tiny.json');
      writeFileSync(spec, JSON.stringify({
        name: 'tiny', machine: { preset: 'x86_64', mem: '256M', cpus: 2 }, workload: { bytes: '4M', threads: [1, 2], scrub: 'off' }, plot: { x: 'threads', series: [] },
      }));
      const sweep = (args: string[]) => kscrubfs(['sweep', spec, ...args], { cwd: tmp, timeoutMs: 180_000 });
      const one = await sweep(['--band', '--jobs', '1']);
      assert.equal(one.code, 0, one.stderr);
      const two = await sweep(['--band', '--jobs', '2', '-o', 'two.jsonl']);
      assert.equal(two.code, 0, two.stderr);
      const text = readFileSync(path.join(tmp, 'tiny-band.jsonl'), 'utf8');
      assert.equal(text, readFileSync(path.join(tmp, 'two.jsonl'), 'utf8'));
      const rows = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { row: { fltPerCpuS: number; faultPerWsec: number }; band: Band[] });
      assert.equal(rows.length, 2);
      for (const r of rows) {
        assert.deepEqual(r.band.map((b) => [b.answer, b.point]), [['flt/cpu/s', r.row.fltPerCpuS], ['fault/wsec', r.row.faultPerWsec]]);
        assertBands(r.band);
        assert.equal(r.band[0]!.tornado.length, bandFigures({ preset: 'x86_64' }).length);
      }
      // --tornado draws the output's rows (all there already: nothing runs again), a panel a band.
      const tornado = await sweep(['--tornado', 't.svg']);
      assert.equal(tornado.code, 0, tornado.stderr);
      assert.match(tornado.stderr, /2 already in tiny-band\.jsonl, nothing to run/);
      const svg = readFileSync(path.join(tmp, 't.svg'), 'utf8');
      for (const t of ['threads 1: flt/cpu/s', 'threads 1: fault/wsec', 'threads 2: flt/cpu/s', 'threads 2: fault/wsec']) assert.ok(svg.includes(`>${t}: `), `a panel ${t}`);
      assert.match(svg, />sweep tiny: which fitted figures move each point&#39;s answer</);
      const refused = await sweep(['--tornado', 'u.svg', '--list']);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /sweep --tornado draws the output's rows: not with --list or --point/);
      const plain = await sweep(['-o', 'plain.jsonl']);
      assert.equal(plain.code, 0, plain.stderr);
      const mixed = await sweep(['--band', '-o', 'plain.jsonl']);
      assert.equal(mixed.code, 2);
      assert.match(mixed.stderr, /plain\.jsonl holds rows without a band/);
      assert.equal((await sweep(['--band', '--csv', 'x.csv'])).code, 2);
    });
  });
});

