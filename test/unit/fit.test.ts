import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALTIX_COST, ALTIX_FITTED, presetFigures } from '../../src/model';
import type { MachineOptions } from '../../src/model';
import { PFT_STRIDE, type PublishedRow } from '../../src/workload/calibration';
import { bandExcess, fit, fitParams, formatFit, logError, runPublishedRow } from '../../src/cli/fit';
import { fittedFileText, fittedSetOf } from '../../src/cli/fit-file';

// A small altix (4 nodes × 64 MiB) and 64 MiB rows: the fit runs the real model, so it is
// kept to two figures and two rows to stay fast; the full fit is the same code on more.
// Its other figures are the fit's fixed first guesses, not the cost file's fitted values: what
// these tests find must not move when a fit is adopted.
const SMALL: MachineOptions = { preset: 'altix', mem: '256M', zeroDrivers: ['cpu'], clock: 'manual', cost: ALTIX_FITTED.start };
const machine = (): MachineOptions => SMALL;
const TRUE_FIGURES = { trapNs: 550, zeroBytesPerNs: 1.56 };

async function rowsFromModel(): Promise<PublishedRow[]> {
  const shape = (label: string, scrub: 'on' | 'off'): PublishedRow => ({
    label, preset: 'altix', gb: 1 / 16, rep: 2, threads: 1, cachelines: 1, scrub, prefault: false, stride: PFT_STRIDE, fltPerCpuS: [1], faultPerWsec: [1],
  });
  const out: PublishedRow[] = [];
  for (const r of [shape('small base 1t', 'off'), shape('small patched 1t', 'on')]) {
    const got = await runPublishedRow(r, TRUE_FIGURES, SMALL);
    out.push({ ...r, fltPerCpuS: [got.fltPerCpuS], faultPerWsec: [got.faultPerWsec] });
  }
  return out;
}

describe('calibrate --fit', () => {
  test('when rows come from the model itself then the fit recovers the figures that made them', async () => {
    const rows = await rowsFromModel();
    const all = fitParams(presetFigures('altix'), { ...ALTIX_COST, ...ALTIX_FITTED.start, trapNs: 1000, zeroBytesPerNs: 0.9 }, 'altix');
    const params = all.filter((p) => p.name === 'trapNs' || p.name === 'zeroBytesPerNs');
    assert.equal(params.length, 2);
    const r = await fit({ rows, params, machine, maxIterations: 12 });
    const got = Object.fromEntries(r.params.map((p) => [p.name, p.value]));
    assert.ok(Math.abs(got.trapNs! / TRUE_FIGURES.trapNs - 1) < 0.03, `trapNs ${got.trapNs}`);
    assert.ok(Math.abs(got.zeroBytesPerNs! / TRUE_FIGURES.zeroBytesPerNs - 1) < 0.03, `zeroBytesPerNs ${got.zeroBytesPerNs}`);
    assert.ok(r.sumSq < r.startSumSq / 100, `Σe² ${r.sumSq} from ${r.startSumSq}`);
    for (const e of r.residuals) assert.ok(Math.abs(e.logError) < 0.01, `${e.label} ${e.column}: ${e.logError}`);
    const text = formatFit(r);
    assert.match(text, /^trapNs +1000 +5\d\d(\.\d+)? +300 +1200/m);
    assert.match(text, /--cost trapNs=5\d\d(\.\d+)?,zeroBytesPerNs=1\.\d+/);
  });

  test('when the truth lies outside the bounds then the fit stops at the bound and says so', async () => {
    const rows = await rowsFromModel();
    const params = [{ name: 'trapNs' as const, lo: 700, hi: 1200, start: 1000 }, { name: 'zeroBytesPerNs' as const, lo: 0.8, hi: 6.4, start: 1.56 }];
    const r = await fit({ rows, params, machine, maxIterations: 6 });
    assert.equal(r.params[0]!.value, 700);
    assert.equal(r.params[0]!.atBound, 'lo');
    assert.match(formatFit(r), /^trapNs .* at its lower bound$/m);
    // What --write keeps of it: the bound value, which figure sits on a bound, the in-band count.
    const set = fittedSetOf('altix', 'kscrubfs calibrate --fit altix --write', r);
    assert.equal(set.values.trapNs, 700);
    assert.deepEqual(set.atBound, ['trapNs']);
    assert.deepEqual(set.rows, ['small base 1t', 'small patched 1t']);
    assert.equal(set.within, r.residuals.filter((e) => e.logError >= Math.log(0.9) && e.logError <= Math.log(1.1)).length);
    assert.match(fittedFileText(set), /^ {4}trapNs: 700,$/m);
    assert.match(fittedFileText(set), /^ {2}atBound: \['trapNs'\],$/m);
  });

  test('when a model value lies inside, below or above the envelope of published values then its log error is 0, ln(v/lo), ln(v/hi)', () => {
    assert.equal(logError(95, [90, 100]), 0);
    assert.equal(logError(45, [90, 100]), Math.log(0.5));
    assert.equal(logError(200, [90, 100]), Math.log(2));
  });

  test('when a model value lies inside the band (the envelope ±10 %) then the fit counts nothing for it, and outside only the part beyond the band', () => {
    assert.equal(bandExcess(109, [90, 100], 0.1), 0);
    assert.equal(bandExcess(82, [90, 100], 0.1), 0);
    assert.ok(Math.abs(bandExcess(220, [90, 100], 0.1) - Math.log(2)) < 1e-12);
    assert.ok(Math.abs(bandExcess(40.5, [90, 100], 0.1) - Math.log(0.5)) < 1e-12);
    assert.equal(bandExcess(95, [100], 0), logError(95, [100]));
  });

  test('when nothing is fitted or there is nothing to fit to then fit refuses', async () => {
    await assert.rejects(fit({ rows: [], params: [{ name: 'trapNs', lo: 1, hi: 2, start: 1 }] }), /no published rows/);
    await assert.rejects(fit({ rows: await rowsFromModel(), params: [] }), /no fitted figure/);
  });
});
