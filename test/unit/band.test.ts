import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LocalControl } from '../../src/control';
import { type CostModel, type MachineOptions, createMachine, resolveConfig } from '../../src/model';
import { type BandFigure, bandSteps, bands, runBand } from '../../src/workload/band';
import { PUBLISHED, calibrationErrors, standingRows } from '../../src/workload/calibration';
import { LocalClient } from '../../src/workload/client';
import { runPftOn } from '../../src/workload/pft';
import { renderTornadoSvg } from '../../src/workload/plot';
import { bandFigures } from '../../src/cli/band';

// Bands on a small machine with a manual clock: an x86_64 of 128 MiB and 2 CPUs, pft of 8 MiB
// once, base (every fault clears its page). Real runs of the model; no timings.
const SMALL: MachineOptions = { preset: 'x86_64', mem: '128M', cpus: 2, clock: 'manual' };
const BASE = resolveConfig(SMALL).cost;

/** pft's flt/cpu/s and fault/wsec on a fresh small machine with `cost` set. */
async function pft(cost: Readonly<Record<string, number>>): Promise<number[]> {
  const ctl = new LocalClient(new LocalControl(createMachine({ ...SMALL, cost: cost as Partial<CostModel> })));
  const { rows } = await runPftOn(ctl, { bytes: 8 * 2 ** 20, reps: 1, threads: [1], cachelines: 1, scrub: 'off', prealloc: 0, settle: false });
  return [rows[0]!.fltPerCpuS, rows[0]!.faultPerWsec];
}

const figure = (name: keyof CostModel, lo: number, hi: number): BandFigure => ({ name, value: BASE[name], lo, hi });
const ANSWERS = ['flt/cpu/s', 'fault/wsec'];

describe('band: a sensitivity run over the fitted figures', () => {
  it('when a figure sits on a bound then that side is not run: at most 2 runs a figure', () => {
    const steps = bandSteps([{ name: 'a', value: 1, lo: 1, hi: 2 }, { name: 'b', value: 3, lo: 2, hi: 4 }]);
    assert.deepEqual(steps, [{ figure: 'a', side: 'hi', value: 2 }, { figure: 'b', side: 'lo', value: 2 }, { figure: 'b', side: 'hi', value: 4 }]);
  });

  it('when the machine runs with each figure at its bounds then the band contains the point estimate, calibration error or not', async () => {
    const figures = [figure('zeroBytesPerNs', 1, 6.4), figure('trapNs', 100, 600)];
    const runs = await runBand(figures, ANSWERS, pft);
    assert.equal(runs.steps.length, 4, '2 × 2 fitted figures');
    assert.deepEqual(runs.point, await pft({}), 'the point is the machine as it is');
    for (const cal of [null, 0.2]) {
      for (const b of bands(figures, runs, cal)) {
        assert.ok(b.lo < b.point && b.point < b.hi, `${b.answer}: ${b.lo} < ${b.point} < ${b.hi} (calibration ${cal})`);
        assert.ok(b.sensitivity[0] >= b.lo && b.sensitivity[1] <= b.hi, 'the calibration term only widens it');
        if (cal !== null) assert.ok(b.hi / b.point >= Math.exp(cal) - 1e-12, 'at least the calibration error wide');
      }
    }
  });

  it("when a figure's bounds widen then the band widens", async () => {
    // The trap is paid once a fault, whichever way it moves.
    const narrow = [figure('trapNs', BASE.trapNs * 0.9, BASE.trapNs * 1.1)];
    const wide = [figure('trapNs', BASE.trapNs * 0.5, BASE.trapNs * 2)];
    const n = bands(narrow, await runBand(narrow, ANSWERS, pft), null)[0]!;
    const w = bands(wide, await runBand(wide, ANSWERS, pft), null)[0]!;
    assert.equal(n.point, w.point);
    assert.ok(w.lo < n.lo && w.hi > n.hi, `wide [${w.lo}, ${w.hi}] ⊋ narrow [${n.lo}, ${n.hi}]`);
  });

  it('when figures move the answer by different amounts then the tornado puts the one that moves it most first, and the chart draws them in that order', async () => {
    // Clearing a 4 KiB page at 1 … 6.4 B/ns is most of a base fault; a per-page user cost of ±1 % of its value is nothing.
    const figures = [figure('userPageNs', BASE.userPageNs * 0.99, BASE.userPageNs * 1.01), figure('zeroBytesPerNs', 1, 6.4), figure('trapNs', 100, 600)];
    const b = bands(figures, await runBand(figures, ANSWERS, pft), null)[0]!;
    assert.deepEqual(b.tornado.map((t) => t.figure), ['zeroBytesPerNs', 'trapNs', 'userPageNs']);
    for (let i = 1; i < b.tornado.length; i++) assert.ok(b.tornado[i - 1]!.effect >= b.tornado[i]!.effect);
    assert.ok(b.tornado[0]!.atLo < b.point, 'slower clearing, fewer faults a second');
    assert.ok(b.tornado[1]!.atLo > b.point && b.tornado[1]!.atHi < b.point, 'a dearer trap, fewer faults a second');
    const svg = renderTornadoSvg([{ title: 'flt/cpu/s', band: b }], { title: 't', subtitle: [], provenance: 'p' });
    const drawn = [...svg.matchAll(/class="bar" data-figure="(\w+)" data-side="lo"/g)].map((m) => m[1]);
    assert.deepEqual(drawn, ['zeroBytesPerNs', 'trapNs', 'userPageNs']);
    assert.equal(svg, renderTornadoSvg([{ title: 'flt/cpu/s', band: b }], { title: 't', subtitle: [], provenance: 'p' }), 'the same band draws the same bytes');
  });

  it('when an answer is 0 then its band is the envelope of the runs, not a logarithm of 0', () => {
    const figures = [{ name: 'a', value: 1, lo: 0.5, hi: 2 }];
    const b = bands(figures, { answers: ['x'], point: [0], steps: [{ step: { figure: 'a', side: 'lo', value: 0.5 }, values: [0] }, { step: { figure: 'a', side: 'hi', value: 2 }, values: [3] }] }, 0.2)[0]!;
    assert.deepEqual([b.lo, b.point, b.hi, b.calibration], [0, 0, 3, null]);
  });

  it("when a preset's fitted figures are listed then they are the figures the cost file marks fitted, at the machine's values", () => {
    const f = bandFigures({ preset: 'altix', cost: { trapNs: 700 } });
    const trap = f.find((x) => x.name === 'trapNs');
    assert.deepEqual(trap && [trap.value, trap.lo, trap.hi], [700, 300, 1200]);
    assert.equal(f.find((x) => x.name === 'pageShift' as string), undefined);
    for (const x of f) assert.ok(x.lo < x.hi, x.name);
  });
});

describe("band: the preset's calibration error from docs/calibration.md", () => {
  const doc = readFileSync(path.resolve(__dirname, '../../../docs/calibration.md'), 'utf8');

  it('when the standing table is read then every published row is in it, and only altix and i386 have an error', () => {
    const rows = standingRows(doc);
    assert.deepEqual(rows.map((r) => r.label), PUBLISHED.map((p) => p.label));
    const errs = calibrationErrors(rows);
    assert.deepEqual([...errs.keys()].sort(), ['altix', 'i386']);
    assert.equal(errs.get('altix')!.rows, PUBLISHED.filter((p) => p.preset === 'altix').length);
    for (const e of errs.values()) assert.ok(e.rms > 0 && e.rms < 1, String(e.rms));
  });

  it('when the model column equals the published one then the error is 0, and 10 % off everywhere makes it ln 1.1', () => {
    const exact = PUBLISHED.map((p) => ({ label: p.label, fltPerCpuS: p.fltPerCpuS[0]!, faultPerWsec: p.faultPerWsec[0]! }));
    assert.equal(calibrationErrors(exact).get('i386')!.rms, 0);
    const off = exact.map((r) => ({ ...r, fltPerCpuS: r.fltPerCpuS * 1.1, faultPerWsec: r.faultPerWsec * 1.1 }));
    assert.ok(Math.abs(calibrationErrors(off).get('i386')!.rms - Math.log(1.1)) < 1e-12);
  });
});
