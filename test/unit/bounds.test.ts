import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { execute } from '../../src/control';
import { parseCommand } from '../../src/uapi';
import { createMachine, type Machine } from '../../src/model';
import { FILES } from '../../src/procfs';
import { checkMachineOptions } from '../../src/uapi/bounds';

// Every number from outside is in a physical range, and the slowest machine those ranges allow
// still answers: a fault on it lasts hours of virtual time, but catching the background up
// over them is bounded work (the load average stops resampling once it stands still).

const run = (m: Machine, line: string): string => execute(m, parseCommand(line));
const text = (m: Machine, path: string): string => FILES.find((f) => f.path === path)!.render!(m, { buddyinfo: 'v6' });

describe('bounds: the slowest cost model the ranges allow', () => {
  test('when zeroing runs at 1 B/s and a trap takes 1 s then a touch of 64 pages completes with the hours it took', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual', cost: { zeroBytesPerNs: 1e-9, zeroHugeBytesPerNs: 1e-9, zeroGiantBytesPerNs: 1e-9, trapNs: 1e9 } });
    const mm = /^ok mm=(\d+)/.exec(run(m, 'mm new keep'))![1]!;
    const map = run(m, `mmap mm=${mm} size=256K`);
    const addr = /addr=(0x[0-9a-f]+)/.exec(map)![1]!;
    const r = run(m, `touch mm=${mm} addr=${addr} size=256K`);
    assert.match(r, /^ok pages=64 /);
    // 64 pages of 4 KiB at 1 byte per second: at least 64 × 4096 s of virtual time.
    assert.ok(m.now >= 64 * 4096e9, `now ${m.now}`);
  });

  test('when the clock is moved a day at once or in 1440 minutes then the load average and every file agree', () => {
    const whole = createMachine({ preset: 'x86_64', clock: 'manual' });
    const steps = createMachine({ preset: 'x86_64', clock: 'manual' });
    for (const m of [whole, steps]) m.setSysctl('scrub_start', 0);
    whole.tick(24 * 3600e9);
    for (let i = 0; i < 1440; i++) steps.tick(60e9);
    assert.equal(text(whole, '/loadavg'), text(steps, '/loadavg'));
    assert.equal(text(whole, '/vmstat'), text(steps, '/vmstat'));
    assert.equal(whole.now, steps.now);
  });

  test('when a record asks for virtual time 1e300 then advancing there is bounded work', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    m.advanceTo(1e300);
    assert.equal(m.now, 1e300);
  });
});

describe('bounds: machine options from a file', () => {
  for (const [opts, why] of [
    [{ mem: true }, /mem must be a size/], [{ mem: 0.5 }, /mem must be a size/], [{ zeroDrivers: 5 }, /zeroDrivers must be a list of names/],
    [{ cost: { zeroBytesPerNs: -1 } }, /zeroBytesPerNs=-1 is outside/], [{ bogus: 1 }, /unknown option "bogus"/],
    [JSON.parse('{"__proto__": {"mem": "1T"}}'), /unknown option "__proto__"/], [{ nodes: '4' }, /nodes must be an integer/],
    [{ cost: [] }, /must be an object of cost figures/], [null, /must be an object/], [{ speed: null }, /speed must be a number/],
  ] as const) {
    test(`when options are ${JSON.stringify(opts)} then they are refused naming the key`, () => {
      assert.throws(() => checkMachineOptions(opts, 'header.options'), (e: unknown) => e instanceof Error && /^header\.options/.test(e.message) && why.test(e.message));
    });
  }

  test('when a record names every option the model takes (zeroing policies too) then all are taken', () => {
    const opts = { preset: 'x86_64', mem: '1G', nodes: 1, cpus: 2, pageSize: '4K', lineSize: 64, maxOrder: 11, clock: 'manual', speed: 2, zeroDrivers: ['cpu'], cost: { trapNs: 900 }, bootAllocations: true, zeroingPolicy: ['init_on_free'] };
    assert.deepEqual(checkMachineOptions(opts), opts);
  });

  test('when a size is a whole number of bytes then it is taken as one', () => {
    assert.deepEqual(checkMachineOptions({ mem: 2 ** 30, pageSize: 4096 }), { mem: String(2 ** 30), pageSize: '4096' });
  });
});
