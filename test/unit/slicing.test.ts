import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Machine, TouchResult } from '../../src/model';
import { assertChecked, faultFingerprint, fingerprint, perCpu, tiny } from '../helpers/model';

// DESIGN §5: a long command runs a few events at a time so the daemon can answer readers in
// between; how the events are split must never change the outcome.
const PAGE = 4096;

/** Touch through TouchJob.run(budget) until done; how many slices it took. */
function slicedTouch(m: Machine, id: number, opts: Parameters<Machine['procs']['touch']>[1], budget: number): { r: TouchResult; slices: number } {
  const job = m.procs.touchJob(id, opts);
  let slices = 1;
  while (!job.run(budget)) slices++;
  return { r: job.result, slices };
}

function script(m: Machine, budget: number): { results: TouchResult[]; slices: number } {
  m.setSysctl('scrub_stop', 1);
  m.setSysctl('scrub_start', 2);
  const id = m.procs.create().id;
  const { addr } = m.procs.mmap(id, 600 * PAGE);
  const results: TouchResult[] = [];
  let slices = 0;
  for (const opts of [
    { addr, size: 300 * PAGE, threads: 3, lines: 4 },
    { addr, size: 600 * PAGE, write: false, threads: 2 },
    { addr, size: 600 * PAGE, threads: 1, stride: 2 * PAGE },
    { addr, size: 600 * PAGE, threads: 5 },
  ]) {
    const s = slicedTouch(m, id, opts, budget);
    results.push(s.r);
    slices += s.slices;
    m.tick(3e6);
  }
  return { results, slices };
}

describe('slicing: a touch in slices', () => {
  test('when a touch runs one event at a time or 7 at a time then results and state equal a whole touch', () => {
    const whole = tiny();
    const one = tiny();
    const seven = tiny();
    const w = script(whole, Number.POSITIVE_INFINITY);
    const o = script(one, 1);
    const s = script(seven, 7);
    assert.equal(w.slices, 4, 'an unbounded budget runs each touch in one slice');
    assert.ok(o.slices > 900, `one event a slice took ${o.slices} slices`);
    assert.deepEqual(o.results, w.results);
    assert.deepEqual(s.results, w.results);
    for (const m of [one, seven]) {
      assert.equal(faultFingerprint(m), faultFingerprint(whole));
      assert.equal(fingerprint(m), fingerprint(whole));
      assert.deepEqual(perCpu(m, (c) => m.cpus.inUse(c)), perCpu(whole, (c) => whole.cpus.inUse(c)), 'no CPU is left marked in use');
      assert.equal(m.cpus.runningTasks, 0);
    }
    assertChecked(one);
  });

  test('when a touch is in progress then its CPUs are in use and the result is not yet there', () => {
    const m = tiny();
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 64 * PAGE);
    const job = m.procs.touchJob(id, { addr, size: 64 * PAGE });
    assert.equal(job.run(3), false);
    assert.equal(m.cpus.runningTasks, 1);
    assert.throws(() => job.result, /before the touch completed/);
    while (!job.run(5));
    assert.equal(job.result.pages, 64);
    assert.equal(m.cpus.runningTasks, 0);
  });
});

describe('slicing: munmap and exit in steps', () => {
  /** Run a stepped operation, counting its steps. */
  function stepped<T>(g: Generator<void, T, void>): { value: T; steps: number } {
    let steps = 1;
    for (;;) {
      const r = g.next();
      if (r.done) return { value: r.value, steps };
      steps++;
    }
  }

  function shaped(): { m: Machine; id: number; addr: number } {
    const m = tiny();
    m.setSysctl('scrub_start', 2);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 40 * 2 ** 20);
    m.procs.touch(id, { addr, size: 40 * 2 ** 20, threads: 2 });
    m.procs.mmap(id, 64 * PAGE);
    return { m, id, addr };
  }

  test('when munmap and exit run in steps then pages freed and the machine equal the whole calls', () => {
    const whole = shaped();
    const step = shaped();
    const w1 = whole.m.procs.munmap(whole.id, whole.addr + 1024 * PAGE, 512 * PAGE);
    const s1 = stepped(step.m.procs.munmapSteps(step.id, step.addr + 1024 * PAGE, 512 * PAGE));
    assert.equal(s1.value, w1);
    const w2 = whole.m.procs.exit(whole.id);
    const s2 = stepped(step.m.procs.exitSteps(step.id));
    assert.equal(s2.value, w2);
    assert.ok(s2.steps > 2, `exit took ${s2.steps} steps`);
    assert.equal(fingerprint(step.m), fingerprint(whole.m));
    assertChecked(step.m);
  });

  test('when a 64 TiB mapping with one touched page is unmapped or exits then it costs its page tables, not its size', () => {
    const m = tiny();
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, 2 ** 46);
    m.procs.touch(id, { addr: addr + size - PAGE, size: PAGE });
    const t = stepped(m.procs.munmapSteps(id, addr + size / 2, size / 2));
    assert.equal(t.value, 1);
    assert.equal(t.steps, 1, 'one page table: no step to yield between');
    m.procs.touch(id, { addr, size: PAGE });
    assert.equal(m.procs.exit(id), 1);
    assertChecked(m);
  });

  test('when a process has 30,000 mappings then mmap, touch and exit stay quick (binary search, no sort per mmap)', () => {
    const m = tiny();
    const id = m.procs.create().id;
    let last = 0;
    for (let i = 0; i < 30_000; i++) last = m.procs.mmap(id, PAGE).addr;
    assert.equal(m.procs.touch(id, { addr: last, size: PAGE }).faults, 1);
    assert.equal(m.procs.get(id).findVma(last + PAGE), undefined, 'the guard gap after a mapping is unmapped');
    assert.equal(m.procs.exit(id), 1);
  });
});
