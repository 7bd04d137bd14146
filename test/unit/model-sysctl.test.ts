// The model's sysctls: ranges, the error code, and that a refused write changes nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SYSCTL_NAMES, createMachine, isSysctlName } from '../../src/model';
import { ModelError } from '../../src/uapi';
import type { SysctlName } from '../../src/model';

const badSysctl = (name: string, value: number) => (e: unknown): boolean => {
  assert.ok(e instanceof ModelError, `a ModelError, not ${String(e)}`);
  assert.equal(e.code, 'KSCRUB_BAD_SYSCTL');
  assert.match(e.message, new RegExp(`vm\\.${name}`));
  assert.ok(e.message.includes(`"${value}"`), `the message quotes the value: ${e.message}`);
  return true;
};

describe('model: sysctls', () => {
  it('when the machine boots then the sysctls have the V6 defaults (scrub_start = MAX_ORDER is off)', () => {
    const m = createMachine({ clock: 'manual' });
    assert.deepEqual(m.sysctl, { scrub_start: 18, scrub_stop: 4, scrub_load: 999, max_prealloc_order: 4 });
    const small = createMachine({ preset: 'x86_64', mem: '64M', maxOrder: 4, clock: 'manual' });
    assert.equal(small.sysctl.scrub_start, 4);
  });

  it('when values at the ends of each range are written then they are kept', () => {
    const m = createMachine({ clock: 'manual' });
    const ranges: [SysctlName, number, number][] = [
      ['scrub_start', 0, 18], ['scrub_stop', 0, 18], ['scrub_load', 0, 1000], ['max_prealloc_order', 0, 4],
    ];
    for (const [name, lo, hi] of ranges) {
      m.setSysctl(name, lo);
      assert.equal(m.sysctl[name], lo);
      m.setSysctl(name, hi);
      assert.equal(m.sysctl[name], hi);
    }
  });

  it('when a value is out of range or not an integer then KSCRUB_BAD_SYSCTL and the value is unchanged', () => {
    const m = createMachine({ clock: 'manual' });
    const cases: [SysctlName, number][] = [
      ['scrub_start', 19], ['scrub_start', -1], ['scrub_start', 1.5], ['scrub_start', Number.NaN],
      ['scrub_stop', 19], ['scrub_stop', -1],
      ['scrub_load', 1001], ['scrub_load', -1], ['scrub_load', Number.POSITIVE_INFINITY],
      ['max_prealloc_order', 5], ['max_prealloc_order', -1],
      ['scrub_start', 2 ** 53],
    ];
    for (const [name, value] of cases) {
      const before = m.sysctl[name];
      assert.throws(() => m.setSysctl(name, value), badSysctl(name, value), `${name} = ${value}`);
      assert.equal(m.sysctl[name], before);
    }
    assert.equal(m.kscrubd.some((k) => k.wakes > 0), false, 'a refused scrub_start wakes nobody');
  });

  it('when MAX_ORDER is small then max_prealloc_order still reaches a pagevec (its runs are order-0 pages)', () => {
    const m = createMachine({ preset: 'x86_64', mem: '64M', maxOrder: 4, clock: 'manual' });
    m.setSysctl('max_prealloc_order', 4);
    assert.throws(() => m.setSysctl('max_prealloc_order', 5), badSysctl('max_prealloc_order', 5));
    assert.throws(() => m.setSysctl('scrub_start', 5), badSysctl('scrub_start', 5));
  });

  it('when a name is checked then only the four vm sysctls are known', () => {
    assert.deepEqual([...SYSCTL_NAMES], ['scrub_start', 'scrub_stop', 'scrub_load', 'max_prealloc_order']);
    assert.equal(isSysctlName('scrub_start'), true);
    assert.equal(isSysctlName('min_free_kbytes'), false);
    assert.equal(isSysctlName('__proto__'), false);
  });
});
