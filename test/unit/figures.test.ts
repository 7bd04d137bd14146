import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fittedFileText } from '../../src/cli/fit-file';
import {
  ALTIX_COST, ALTIX_FITTED, COST_NAMES, EPYC_COST, I386_COST, X86_64_COST, figureProblems, fittedTo, presetFigures, resolveConfig,
} from '../../src/model';
import type { CostModel, Figures } from '../../src/model';
import { PRESETS } from '../../src/uapi';
import { PUBLISHED } from '../../src/workload/calibration';

describe('cost figures: measured or fitted', () => {
  for (const preset of PRESETS) {
    test(`when the ${preset} preset's figures are listed then each is measured with a source or fitted within physical bounds`, () => {
      const cfg = resolveConfig({ preset });
      const figures = presetFigures(preset, cfg.cpuMhz);
      assert.deepEqual(figureProblems(cfg.cost, figures), []);
      assert.deepEqual(Object.keys(figures).sort(), [...COST_NAMES].sort());
    });
  }

  test('when i386 runs at 500 MHz then its cycle-stated bounds move with the clock and still hold its figures', () => {
    const cfg = resolveConfig({ preset: 'i386', cpuMhz: 500 });
    const f450 = presetFigures('i386', 450).trapNs;
    const f500 = presetFigures('i386', 500).trapNs;
    assert.ok(f450.kind === 'fitted' && f500.kind === 'fitted');
    assert.ok(Math.abs(f500.bounds[0] / f450.bounds[0] - 0.9) < 1e-9);
    assert.deepEqual(figureProblems(cfg.cost, presetFigures('i386', 500)), []);
  });

  test('when a figure is fitted to a preset\'s rows then that preset has published rows; presets without rows fit nothing', () => {
    for (const [preset, cost] of [['altix', ALTIX_COST], ['i386', I386_COST], ['x86_64', X86_64_COST], ['epyc', EPYC_COST]] as const) {
      const figures = presetFigures(preset);
      for (const name of COST_NAMES) {
        const f = figures[name];
        if (f.kind === 'fitted' && f.rows !== 'none') {
          assert.equal(f.rows, preset, `${preset}.${name} is fitted to another preset's rows`);
          assert.ok(PUBLISHED.some((r) => r.preset === preset), `${preset}.${name}: no published ${preset} rows`);
        }
      }
      assert.equal(typeof cost.trapNs, 'number');
    }
    assert.ok(fittedTo(presetFigures('altix'), 'altix').length > 0);
    assert.ok(fittedTo(presetFigures('i386'), 'i386').length > 0);
  });

  // Each rule of figureProblems broken on purpose, and its message seen.
  const base = presetFigures('altix');
  const broken: [string, Partial<CostModel>, Partial<Figures>, RegExp][] = [
    ['a figure has no provenance', {}, { trapNs: undefined as never }, /trapNs: no provenance/],
    ['a measured figure has no source', {}, { bteMinBytes: { kind: 'measured', source: ' ' } }, /bteMinBytes: measured, but its source says nothing/],
    ['fitted bounds are not an interval', {}, { trapNs: { kind: 'fitted', bounds: [900, 300], why: 'a reason long enough', rows: 'altix' } }, /trapNs: fitted bounds \[900, 300\] are not an interval/],
    ['fitted bounds reach 0', { trapNs: 0 }, { trapNs: { kind: 'fitted', bounds: [0, 300], why: 'a reason long enough', rows: 'altix' } }, /must be above 0/],
    ['a value lies outside its bounds', { trapNs: 5000 }, {}, /trapNs: 5000 lies outside its fitted bounds/],
    ['fitted bounds have no reason', {}, { trapNs: { kind: 'fitted', bounds: [300, 1200], why: '', rows: 'altix' } }, /trapNs: fitted, but nothing says why/],
  ];
  for (const [what, cost, figures, message] of broken) {
    test(`when ${what} then figureProblems says so`, () => {
      const problems = figureProblems({ ...ALTIX_COST, ...cost }, { ...base, ...figures } as Figures);
      assert.equal(problems.length, 1, problems.join('; '));
      assert.match(problems[0]!, message);
    });
  }

  test('when the altix figures are fitted then every one of them takes its value and bounds from the generated fitted-altix.ts, fitted to every altix row', () => {
    const figures = presetFigures('altix');
    const names = fittedTo(figures, 'altix');
    assert.deepEqual(Object.keys(ALTIX_FITTED.values).sort(), [...names].sort());
    for (const name of names) {
      const f = figures[name];
      assert.ok(f.kind === 'fitted');
      assert.equal(ALTIX_COST[name], (ALTIX_FITTED.values as Partial<Record<keyof CostModel, number>>)[name], `${name}: the cost file's value is not the fit's`);
      assert.deepEqual((ALTIX_FITTED.bounds as Partial<Record<keyof CostModel, readonly number[]>>)[name], f.bounds, `${name}: the fit ran with other bounds`);
    }
    assert.deepEqual(ALTIX_FITTED.rows, PUBLISHED.filter((r) => r.preset === 'altix').map((r) => r.label));
    assert.equal(ALTIX_FITTED.targets, 2 * ALTIX_FITTED.rows.length);
    assert.ok(ALTIX_FITTED.sumSq <= ALTIX_FITTED.startSumSq);
  });

  test('when fitted-altix.ts is generated again from what it holds then the text is the same: it was written by the fit, not edited', () => {
    const file = path.join(__dirname, '..', '..', '..', 'src', 'model', 'fitted-altix.ts');
    assert.equal(fittedFileText(ALTIX_FITTED), readFileSync(file, 'utf8'));
  });
});
