import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execute } from '../../src/control';
import { createMachine } from '../../src/model';
import { type ConfigResult, parseResult } from '../../src/uapi';

// `config` is what a result needs to say how it was made: the machine's shape and options,
// the clock, the sysctls as they are now, and only the cost figures that were overridden.

function configOf(line: string): ConfigResult {
  assert.match(line, /^ok /);
  return parseResult('config', line.slice(3));
}

describe('control config', () => {
  it('when the machine is the default altix then config names it and lists no cost overrides', () => {
    const c = configOf(execute(createMachine({ clock: 'manual' }), { verb: 'config' }));
    assert.equal(c.preset, 'altix');
    assert.equal(c.mem_bytes, String(6 * 2 ** 30));
    assert.deepEqual([c.nodes, c.cpus, c.page_size, c.max_order], ['4', '8', '16384', '18']);
    assert.equal(c.zero_drivers, 'bte,cpu');
    assert.deepEqual([c.clock, c.speed], ['manual', '1']);
    assert.deepEqual([c['sysctl.scrub_start'], c['sysctl.scrub_stop'], c['sysctl.scrub_load'], c['sysctl.max_prealloc_order']], ['18', '4', '999', '4']);
    assert.deepEqual(Object.keys(c).filter((k) => k.startsWith('cost.')), []);
  });

  it('when costs are overridden and a sysctl written then config shows exactly those', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'live', speed: 0.5, zeroDrivers: ['cpu'], cost: { trapNs: 123 } });
    m.setSysctl('scrub_stop', 2);
    const c = configOf(execute(m, { verb: 'config' }));
    assert.deepEqual([c.preset, c.clock, c.speed, c.zero_drivers], ['x86_64', 'live', '0.5', 'cpu']);
    assert.equal(c['sysctl.scrub_stop'], '2');
    assert.deepEqual(Object.entries(c).filter(([k]) => k.startsWith('cost.')), [['cost.trapNs', '123']]);
  });
});
