import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlEntry } from '../../src/control';
import { Scheduler } from '../../src/daemon/scheduler';
import { check, createMachine, type Machine } from '../../src/model';
import { hugetlbFiles } from '../../src/procfs/hugetlb';
import { statsPairs } from '../../src/control';
import * as meminfo from '../../src/procfs/meminfo';
import { parseMeminfo } from '../../src/uapi';
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
    await h.settled!();
    error = h.takeFailure!();
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

  it('when an alloc is interrupted part way then it gives back every block it took: nothing kept, free memory as before, the machine checks', async () => {
    const m = manual();
    const memFree = (): number => parseMeminfo(meminfo.render(m)).get('MemFree')!;
    const free = memFree();
    // Looks: 1 before the batch's first command, 2 after the alloc's first 4096 blocks. Order 1:
    // freed order-0 pages would stay on the per-cpu lists, out of MemFree.
    const r = await send(m, 'alloc order=1 count=10000\n', signalAt(2));
    assert.equal(r.error?.errno, 'EINTR');
    assert.deepEqual(r.lines, ['err alloc: interrupted by a signal to its writer; nothing kept (the blocks taken so far are free again)']);
    assert.equal(m.raw.pages, 0);
    assert.equal(memFree(), free);
    assert.equal(check(m), null);
  });

  it('when a check is interrupted then it stops at its next step and says it changed nothing', async () => {
    const m = manual();
    const before = JSON.stringify(statsPairs(m));
    const r = await send(m, 'check\n', signalAt(2));
    assert.equal(r.error?.errno, 'EINTR');
    assert.deepEqual(r.lines, ['err check: interrupted by a signal to its writer; it stopped part way (check only reads: nothing changed)']);
    assert.equal(JSON.stringify(statsPairs(m)), before);
  });

  it('when a touch of a hugetlb mapping is interrupted then the huge pages it faulted stay, its line counts them, and the rest can still be touched', async () => {
    const m = createMachine({ preset: 'x86_64', mem: '4G', nodes: 1, clock: 'manual' });
    const nr = hugetlbFiles(m).find((f) => f.path === '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages')!;
    await nr.write!(m, Buffer.from('1536'));
    const setup = await send(m, 'mm new keep\nmmap mm=1 size=3G hugetlb=2M\n');
    const addr = /addr=(0x[0-9a-f]+)/.exec(setup.lines[1]!)![1];
    // Looks: 1 before the command, 2 after its first 1024 huge page faults.
    const r = await send(m, `touch mm=1 addr=${addr} size=3G\n`, signalAt(2));
    assert.equal(r.error?.errno, 'EINTR');
    const faults = Number(/^err touch: interrupted by a signal to its writer; what it did stays: pages=\d+ faults=(\d+) /.exec(r.lines[0]!)?.[1]);
    assert.equal(faults, 1024, r.lines[0]);
    assert.equal(check(m), null);
    const rest = await send(m, `touch mm=1 addr=${addr} size=3G\n`);
    assert.match(rest.lines[0]!, /^ok pages=\d+ faults=512 /, 'the other 512 huge pages fault now');
    assert.equal(check(m), null);
  });
});
