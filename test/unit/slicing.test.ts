import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Machine, TouchResult } from '../../src/model';
import { assertChecked, faultFingerprint, fingerprint, tiny } from '../helpers/model';

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
      assert.deepEqual([...m.procs.cpuInUse], [...whole.procs.cpuInUse], 'no CPU is left marked in use');
      assert.equal(m.procs.runningTasks, 0);
    }
    assertChecked(one);
  });

  test('when a touch is in progress then its CPUs are in use and the result is not yet there', () => {
    const m = tiny();
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 64 * PAGE);
    const job = m.procs.touchJob(id, { addr, size: 64 * PAGE });
    assert.equal(job.run(3), false);
    assert.equal(m.procs.runningTasks, 1);
    assert.throws(() => job.result, /before the touch completed/);
    while (!job.run(5));
    assert.equal(job.result.pages, 64);
    assert.equal(m.procs.runningTasks, 0);
  });
});
