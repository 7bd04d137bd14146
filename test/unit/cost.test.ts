import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALTIX_COST, COST_NAMES, createMachine, parseCostOverrides } from '../../src/model';
import { ModelError } from '../../src/uapi';

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
    ['bogus=1', /not a cost figure/], ['trapNs', /not name=number/], ['trapNs=-1', /not name=number/],
    ['trapNs=1,trapNs=2', /given twice/], ['remoteFactor=0', /> 0/], ['zeroBytesPerNs=0', /> 0/], ['', /not name=number/],
  ] as const) {
    test(`when --cost is "${text}" then it is refused naming the problem`, () => {
      assert.throws(() => parseCostOverrides(text), (e: unknown) => e instanceof ModelError && why.test(e.message));
    });
  }
});
