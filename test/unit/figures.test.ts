import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ALTIX_COST, COST_NAMES, EPYC_COST, I386_COST, X86_64_COST, figureProblems, fittedTo, presetFigures, resolveConfig,
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
});
