import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fittedFileText } from '../../src/cli/fit-file';
import {
  ALTIX_COST, ALTIX_FITTED, COST_NAMES, EPYC_COST, I386_COST, I386_FIT_MHZ, I386_FITTED, X86_64_COST, figureProblems, fittedTo, i386Cost, presetFigures, resolveConfig,
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
    ['a derived figure differs from its source', { zeroRunBytesPerNs: ALTIX_COST.zeroBytesPerNs * 2 }, { zeroRunBytesPerNs: { kind: 'derived', from: 'zeroBytesPerNs', why: 'a reason long enough' } }, /zeroRunBytesPerNs: derived from zeroBytesPerNs, but/],
    ['a derived figure is derived from a derived one', { zeroRunBytesPerNs: ALTIX_COST.zeroHugeBytesPerNs }, { zeroHugeBytesPerNs: { kind: 'derived', from: 'zeroBytesPerNs', why: 'a reason long enough' }, zeroRunBytesPerNs: { kind: 'derived', from: 'zeroHugeBytesPerNs', why: 'a reason long enough' } }, /zeroRunBytesPerNs: derived from zeroHugeBytesPerNs, which is not a measured or fitted figure/],
  ];
  for (const [what, cost, figures, message] of broken) {
    test(`when ${what} then figureProblems says so`, () => {
      const problems = figureProblems({ ...ALTIX_COST, ...cost }, { ...base, ...figures } as Figures);
      assert.equal(problems.length, 1, problems.join('; '));
      assert.match(problems[0]!, message);
    });
  }

  // Each preset with published rows, its cost at the clock its rows were measured at (the
  // i386's figures are fitted at the rows' 500 MHz), and its generated file.
  const generated = [
    { preset: 'altix', cost: ALTIX_COST, figures: presetFigures('altix'), set: ALTIX_FITTED },
    { preset: 'i386', cost: i386Cost(I386_FIT_MHZ), figures: presetFigures('i386', I386_FIT_MHZ), set: I386_FITTED },
  ] as const;
  for (const { preset, cost, figures, set } of generated) {
    test(`when the ${preset} figures are fitted then every one of them takes its value and bounds from the generated fitted-${preset}.ts, fitted to every ${preset} row`, () => {
      const names = fittedTo(figures, preset);
      assert.deepEqual(Object.keys(set.values).sort(), [...names].sort());
      for (const name of names) {
        const f = figures[name];
        assert.ok(f.kind === 'fitted');
        assert.equal(cost[name], (set.values as Partial<Record<keyof CostModel, number>>)[name], `${name}: the cost file's value is not the fit's`);
        assert.deepEqual((set.bounds as Partial<Record<keyof CostModel, readonly number[]>>)[name], f.bounds, `${name}: the fit ran with other bounds`);
      }
      assert.deepEqual(set.rows, PUBLISHED.filter((r) => r.preset === preset).map((r) => r.label));
      assert.equal(set.targets, 2 * set.rows.length);
      assert.ok(set.sumSq <= set.startSumSq);
    });

    test(`when fitted-${preset}.ts is generated again from what it holds then the text is the same: it was written by the fit, not edited`, () => {
      const file = path.join(__dirname, '..', '..', '..', 'src', 'model', `fitted-${preset}.ts`);
      assert.equal(fittedFileText(set), readFileSync(file, 'utf8'));
    });
  }

  test('when i386\'s page clear rate is set then its huge, gigantic and run rates follow it (the P6 has one rate), unless set themselves', () => {
    const f = presetFigures('i386');
    for (const name of ['zeroHugeBytesPerNs', 'zeroGiantBytesPerNs', 'zeroRunBytesPerNs'] as const) {
      assert.deepEqual(f[name], { kind: 'derived', from: 'zeroBytesPerNs', why: (f[name] as { why: string }).why });
    }
    assert.ok(!fittedTo(f, 'i386').includes('zeroGiantBytesPerNs'), 'not a parameter of the i386 fit');
    const c = resolveConfig({ preset: 'i386', cost: { zeroBytesPerNs: 0.3 } }).cost;
    assert.deepEqual([c.zeroHugeBytesPerNs, c.zeroGiantBytesPerNs, c.zeroRunBytesPerNs], [0.3, 0.3, 0.3]);
    const own = resolveConfig({ preset: 'i386', cost: { zeroBytesPerNs: 0.3, zeroGiantBytesPerNs: 0.5 } }).cost;
    assert.deepEqual([own.zeroGiantBytesPerNs, own.zeroRunBytesPerNs], [0.5, 0.3]);
  });

  test('when the i386 preset runs at its default 450 MHz then core figures are the fit\'s cycles at that clock and bus figures the fit\'s nanoseconds', () => {
    const at450 = i386Cost(450);
    const fit = I386_FITTED.values;
    // Hand-worked: 600 ns at 500 MHz is 300 cycles, 666.7 ns at 450 MHz.
    assert.ok(Math.abs(at450.trapNs - (fit.trapNs * 500) / 450) < 1e-9);
    assert.ok(Math.abs(at450.handlerNs - (fit.handlerNs * 500) / 450) < 1e-9);
    assert.equal(at450.lineMissNs, fit.lineMissNs);
    assert.equal(at450.zeroBytesPerNs, fit.zeroBytesPerNs);
    assert.equal(at450.fsbBytesPerNs, fit.fsbBytesPerNs);
    assert.deepEqual(figureProblems(at450, presetFigures('i386', 450)), []);
  });
});
