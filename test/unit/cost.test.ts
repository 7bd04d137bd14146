import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALTIX_COST, COST_NAMES, createMachine, parseCostOverrides } from '../../src/model';
import { ModelError } from '../../src/uapi';
import { checkMachineOptions } from '../../src/uapi/bounds';

describe('cost overrides', () => {
  test('when figures are given by name then they override the preset and the rest stay', () => {
    const cost = parseCostOverrides('zeroBytesPerNs=2, remoteFactor=1.5');
    assert.deepEqual(cost, { zeroBytesPerNs: 2, remoteFactor: 1.5 });
    const m = createMachine({ cost });
    assert.equal(m.cost.zeroBytesPerNs, 2);
    assert.equal(m.cost.trapNs, ALTIX_COST.trapNs);
  });

  test('when every name is listed then each one is a figure of the preset', () => {
    for (const name of COST_NAMES) assert.equal(typeof ALTIX_COST[name], 'number', name);
    assert.equal(COST_NAMES.length, Object.keys(ALTIX_COST).length);
  });

  for (const [text, why] of [
    ['bogus=1', /not a cost figure/], ['trapNs', /not name=number/], ['trapNs=-1', /trapNs=-1 is outside 0\.\.1000000000 ns/], ['trapNs=abc', /trapNs="abc" is not a number/],
    ['trapNs=1,trapNs=2', /given twice/], ['remoteFactor=0', /outside 1\.\.100/], ['zeroBytesPerNs=0', /outside 1e-9\.\.1000 bytes\/ns/], ['', /not name=number/],
    // The issue's hangs: a bandwidth of 1e-21 bytes/ns and a trap of 1e308 ns written out.
    ['zeroBytesPerNs=0.000000000000000000001', /outside 1e-9\.\.1000 bytes\/ns \(1 B\/s to 1 TB\/s\)/],
    [`trapNs=1${'0'.repeat(308)}`, /outside 0\.\.1000000000 ns \(0 to 1 s\)/], ['trapNs=1e308', /outside 0\.\.1000000000 ns/],
    ['constructor=1', /not a cost figure/], ['structPageLines=1000', /outside 0\.\.8 cachelines/],
  ] as const) {
    test(`when --cost is "${text.length > 40 ? `${text.slice(0, 40)}…` : text}" then it is refused naming the problem`, () => {
      assert.throws(() => parseCostOverrides(text), (e: unknown) => e instanceof ModelError && why.test(e.message));
    });
  }

  test('when a figure is at the edge of its physical range then it is taken, and a machine is built from it', () => {
    const cost = parseCostOverrides('zeroBytesPerNs=1e-9,trapNs=1000000000,writebackBytesPerNs=0,fsbBytesPerNs=1000');
    assert.equal(createMachine({ clock: 'manual', cost }).cost.zeroBytesPerNs, 1e-9);
  });

  test('when figures come in a record or a sweep then the same ranges hold', () => {
    for (const cost of [{ trapNs: -1 }, { zeroBytesPerNs: 0 }, { trapNs: Number.NaN }, { trapNs: '5' }, { bogus: 1 }]) {
      assert.throws(() => checkMachineOptions({ cost }), (e: unknown) => e instanceof ModelError && e.code === 'KSCRUB_BAD_OPTION', JSON.stringify(cost));
    }
  });
});
