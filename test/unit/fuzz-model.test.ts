// The model fuzz (test/fuzz.ts) in `npm test`: a bounded number of random steps with processes
// — mm new, mmap, touch with threads, faults, munmap, exit — mixed with raw alloc/free, ticks,
// sysctl changes, drains, BTE failures and refused calls, on the fixed shapes and a few random
// ones, check() after every step. test/unit/model-property.test.ts fuzzes the allocator alone;
// this adds the processes. KSCRUB_FUZZ_SEED=<n> replays, KSCRUB_FUZZ_STEPS=<n> runs longer;
// `npm run fuzz` is the long run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FIXED_SHAPES, type FuzzStats, fuzzOutside, fuzzRun, shapeSeed, shapesFor } from '../fuzz';

const SEED = process.env.KSCRUB_FUZZ_SEED !== undefined ? Number(process.env.KSCRUB_FUZZ_SEED) : 20041215;
const STEPS = process.env.KSCRUB_FUZZ_STEPS !== undefined ? Number(process.env.KSCRUB_FUZZ_STEPS) : 400;
const RANDOM_SHAPES = 4;
assert.ok(Number.isSafeInteger(SEED) && SEED >= 0, `KSCRUB_FUZZ_SEED=${process.env.KSCRUB_FUZZ_SEED} is a whole number`);
assert.ok(Number.isSafeInteger(STEPS) && STEPS > 0, `KSCRUB_FUZZ_STEPS=${process.env.KSCRUB_FUZZ_STEPS} is a positive whole number`);

const shapes = shapesFor(SEED, FIXED_SHAPES.length + RANDOM_SHAPES);
const all: FuzzStats[] = [];

describe('model fuzz: processes, faults and the allocator together', () => {
  shapes.forEach((shape, i) => {
    it(`when ${STEPS} random steps run on ${shape.name} then check() and the accounting hold after each (seed ${SEED})`, () => {
      const st = fuzzRun(shape, shapeSeed(SEED, i), STEPS);
      all.push(st);
      // The run did what it claims to.
      assert.equal(st.steps, STEPS);
      assert.ok(st.faults > 0 && st.munmaps > 0 && st.exits > 0 && st.refused > 0, JSON.stringify(st));
      if (i < FIXED_SHAPES.length) assert.ok(st.prefaulted > 0 && st.zeroPageMaps > 0, `prefault and ZERO_PAGE maps happened: ${JSON.stringify(st)}`);
      if (shape.name.startsWith('tiny')) assert.ok(st.oom > 0 || st.nomem > 0, `the tiny machine ran out: ${JSON.stringify(st)}`);
      if (shape.name.startsWith('altix 6G')) assert.ok(st.kscrubdBlocks > 0 && st.bteFallbacks > 0, `kscrubd used the BTE and fell back: ${JSON.stringify(st)}`);
    });
  });

  it('when all shapes have run then together they took the paths that matter (COW, OOM, both zeroed-fault kinds)', (t) => {
    assert.equal(all.length, shapes.length, 'every shape ran to the end (a failed shape is reported above)');
    const sum = (f: (s: FuzzStats) => number): number => all.reduce((n, s) => n + f(s), 0);
    const totals = {
      faults: sum((s) => s.faults), cow: sum((s) => s.cow), oom: sum((s) => s.oom), prezeroed: sum((s) => s.prezeroed),
      hotZeroed: sum((s) => s.hotZeroed), prefaulted: sum((s) => s.prefaulted), refused: sum((s) => s.refused), kscrubdBlocks: sum((s) => s.kscrubdBlocks),
    };
    for (const [k, v] of Object.entries(totals)) assert.ok(v > 0, `${k}: ${JSON.stringify(totals)}`);
    t.diagnostic(JSON.stringify(totals));
  });

  it('when a shape runs twice with one seed then both runs do the same', () => {
    const a = fuzzRun(FIXED_SHAPES[1]!, SEED, 200);
    const b = fuzzRun(FIXED_SHAPES[1]!, SEED, 200);
    assert.deepEqual(a, b);
  });
});

describe('fuzz: machine options from outside', () => {
  it(`when 600 random option sets (wrong types, edges, __proto__) are checked and booted then each is taken or refused by name, never a TypeError (seed ${SEED})`, () => {
    const st = fuzzOutside(SEED, 600);
    assert.equal(st.cases, 600);
    assert.ok(st.accepted >= 10 && st.refused >= 200, JSON.stringify(st));
  });
});
