import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlEntry } from '../../src/control';
import { Scheduler } from '../../src/daemon/scheduler';
import { check, createMachine, type Machine } from '../../src/model';
import { ProcError } from '../../src/uapi';
import type { WriteSignal } from '../../src/procfs/types';

// A write whose sender was interrupted (FUSE_INTERRUPT, src/fuse/binding.ts): its commands look
// at fixed points (between commands, between steps of a touch or tick) and stop at the first
// look that sees it, leaving what they did and saying so. In process, with the daemon's own
// scheduler; the real mount's side is test/integration/callers.test.ts.

const O_RDWR = 2;

/** A sender interrupted from its `at`-th look on; counts the looks. */
function signalAt(at: number): WriteSignal & { looks: number } {
  const s = { looks: 0, interrupted: () => ++s.looks >= at };
  return s;
}

/** Write `text` on a fresh control handle with `signal`; the result lines and the error, if any. */
async function send(m: Machine, text: string, signal?: WriteSignal): Promise<{ lines: string[]; error: ProcError | null }> {
  const h = controlEntry(m, () => undefined, new Scheduler()).open(O_RDWR);
  let error: ProcError | null = null;
  try {
    await h.write!(Buffer.from(text), 0, signal);
  } catch (err) {
    if (!(err instanceof ProcError)) throw err;
    error = err;
  }
  return { lines: h.read(0, 1 << 20).toString().trim().split('\n'), error };
}

const manual = (): Machine => createMachine({ preset: 'x86_64', mem: '1G', clock: 'manual' });

describe('a write whose sender is interrupted', () => {
  it('when a tick is interrupted part way then the clock stays where its last step left it, the line says so and the write fails EINTR', async () => {
    const m = manual();
    const r = await send(m, 'tick 24h\nstats\n', signalAt(4));
    assert.equal(r.error?.errno, 'EINTR');
    const now = Number(/^err tick: interrupted by a signal to its writer; the clock stays at now_ns=(\d+)$/.exec(r.lines[0]!)?.[1]);
    assert.ok(now > 0 && now < 24 * 3600e9, r.lines[0]);
    assert.equal(Math.round(m.now), now);
    assert.deepEqual(r.lines.slice(1), ['err skipped: line 1 of this write failed']);
  });

  it('when the same tick is interrupted at the same look on a fresh machine then both machines are the same (the steps are counted in work)', async () => {
    const [a, b] = [manual(), manual()];
    const ra = await send(a, 'tick 6h\n', signalAt(3));
    const rb = await send(b, 'tick 6h\n', signalAt(3));
    assert.deepEqual(ra.lines, rb.lines);
    assert.equal(a.now, b.now);
  });

  it('when a touch is interrupted then the pages it touched stay, its line counts them, and the machine checks', async () => {
    const m = manual();
    const setup = await send(m, 'mm new keep\nmmap mm=1 size=768M\n');
    const addr = /addr=(0x[0-9a-f]+)/.exec(setup.lines[1]!)![1];
    const r = await send(m, `touch mm=1 addr=${addr} size=768M\n`, signalAt(3));
    assert.equal(r.error?.errno, 'EINTR');
    const pages = Number(/^err touch: interrupted by a signal to its writer; what it did stays: pages=(\d+) faults=\d+ /.exec(r.lines[0]!)?.[1]);
    assert.ok(pages > 0 && pages < (768 << 20) / 4096, r.lines[0]);
    assert.equal(check(m), null);
    // The rest of the range can still be touched: nothing was left half-done.
    const rest = await send(m, `touch mm=1 addr=${addr} size=768M\n`);
    assert.match(rest.lines[0]!, /^ok pages=196608 /);
    assert.equal(check(m), null);
  });

  it('when the sender is interrupted before the batch starts then nothing runs and every line says why', async () => {
    const m = manual();
    const r = await send(m, 'tick 1s\nmm new\n', signalAt(1));
    assert.equal(r.error?.errno, 'EINTR');
    assert.deepEqual(r.lines, ['err tick: interrupted by a signal to its writer; nothing ran', 'err skipped: line 1 of this write failed']);
    assert.equal(m.now, 0);
    assert.equal(m.procs.mms.size, 0);
  });
});
