// Virtual time: manual and live clocks, the load average, and tick's argument.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FIXED_1, LoadAvg, createMachine } from '../../src/model';
import { ModelError } from '../../src/uapi';
import { tiny } from '../helpers/model';

describe('model: clock', () => {
  it('when the clock is manual then only tick moves it, and by exactly the amount', () => {
    const m = tiny();
    assert.equal(m.now, 0);
    assert.equal(m.tick(250e6), 250e6);
    assert.equal(m.tick(0), 250e6);
    m.syncWall(1e9); // ignored in manual mode
    assert.equal(m.now, 250e6);
  });

  it('when the clock is live then tick is refused with KSCRUB_CLOCK_MODE', () => {
    const m = createMachine({ preset: 'x86_64', mem: '64M', maxOrder: 4 });
    assert.throws(() => m.tick(1e6), (e: unknown) => e instanceof ModelError && e.code === 'KSCRUB_CLOCK_MODE');
  });

  it('when the live clock syncs then virtual time is wall time × speed and never goes back', () => {
    const m = createMachine({ preset: 'x86_64', mem: '64M', maxOrder: 4, clock: 'live', speed: 2 });
    m.syncWall(1000); // anchors
    assert.equal(m.now, 0);
    m.syncWall(1500);
    assert.equal(m.now, 1e9); // 500 ms × 2
    m.syncWall(1400); // the wall went back: stay, re-anchor
    assert.equal(m.now, 1e9);
    m.syncWall(1500);
    assert.equal(m.now, 1.2e9);
  });

  it('when tick is given a negative, NaN or infinite duration then it is refused and time stays', () => {
    // Run in a child with a timeout: an unguarded advanceTo(NaN) or (Infinity) never returns.
    const model = path.resolve(__dirname, '../../src/model');
    const outcome = (arg: string): string => {
      const code = `
        const { createMachine } = require(${JSON.stringify(model)});
        const m = createMachine({ preset: 'x86_64', mem: '64M', maxOrder: 4, clock: 'manual' });
        m.tick(1000);
        let out;
        try { m.tick(${arg}); out = 'accepted now=' + m.now; } catch (e) { out = (e.code || e.name) + ' now=' + m.now; }
        process.stdout.write(out);`;
      const r = spawnSync(process.execPath, ['-e', code], { timeout: 2000, encoding: 'utf8' });
      return r.signal !== null ? 'hung' : `${r.stdout}${r.stderr}`;
    };
    const args = ['-1', 'NaN', 'Infinity'];
    assert.deepEqual(args.map((a) => [a, outcome(a)]), args.map((a) => [a, 'KSCRUB_BAD_DURATION now=1000']));
  });
});

describe('model: load average', () => {
  it('when one task runs through a 5 s sample then the 1-minute load is 164/2048 = 0.08', () => {
    // calc_load: (0 × 1884 + 2048 × (2048 − 1884) + 2047) >> 11 = 164 (rounding up since active ≥ load).
    const l = new LoadAvg();
    l.sample(1);
    assert.deepEqual(l.avenrun, [164, 34, 11]);
    assert.equal(l.format(0), '0.08');
    assert.equal(l.one(), 164 / FIXED_1);
  });

  it('when tasks run on the machine then tick folds them in every 5 s, kscrubd included while awake', () => {
    const m = tiny();
    m.cpus.switchIn(0);
    m.tick(4_999_999_999);
    assert.equal(m.loadavg.avenrun[0], 0);
    m.tick(1);
    assert.equal(m.loadavg.avenrun[0], 164);
    m.cpus.switchOut(0);
    m.tick(60e9);
    assert.ok(m.loadavg.one() < 0.05, `decays: ${m.loadavg.format(0)}`);
  });
});
