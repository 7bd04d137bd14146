// Freeing a run of consecutive pfns at once (Machine.freePageRun, Zone.pcpFreeRun and
// freeRun: what exit and munmap do) must leave the machine exactly as freeing its pages one by
// one does: the same free blocks in the same list order, page flags, counters, per-cpu lists
// and kscrubd wakes. Two identical machines get the same allocations; one frees by runs, the
// other page by page; their states are compared after every round.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { createMachine, NOT_ZEROED, ZEROED } from '../../src/model';
import type { FreeClass, Machine, MachineOptions } from '../../src/model';
import { Rng } from '../helpers/rng';
import { TINY, fingerprint } from '../helpers/model';

/** fingerprint() plus what it leaves out: each free list's live order, and every section's flags. */
function state(m: Machine): string {
  const lists = m.zones.map((z) => {
    const out: number[][] = [];
    for (const cls of [NOT_ZEROED, ZEROED] as FreeClass[]) for (let o = 0; o < z.topOrder; o++) out.push(z.listEntries(o, cls));
    return out;
  });
  const flags = createHash('sha1');
  for (const z of m.zones) for (const [sec, f] of [...z.sections].sort((a, b) => a[0] - b[0])) flags.update(`${sec}:`).update(f);
  return JSON.stringify({ machine: fingerprint(m), lists, flags: flags.digest('hex'), pgfree: m.vm.pgfree, drained: m.vm.pcpDrainPages });
}

/** Maximal runs of consecutive pfns in `pfns` (ascending), cut at random into smaller runs. */
function runsOf(pfns: number[], rng: Rng): [number, number][] {
  const sorted = [...pfns].sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i + 1;
    while (j < sorted.length && sorted[j] === sorted[i]! + (j - i) && (rng.next() > 0.02 || j - i < 2)) j++;
    runs.push([sorted[i]!, j - i]);
    i = j;
  }
  // Shuffled: a zap's runs come in address order, but the equivalence holds for any order.
  for (let i = runs.length - 1; i > 0; i--) {
    const k = rng.int(i + 1);
    [runs[i], runs[k]] = [runs[k]!, runs[i]!];
  }
  return runs;
}

const SHAPES: readonly [string, MachineOptions][] = [
  ['tiny', TINY],
  ['x86_64 2 nodes', { preset: 'x86_64', mem: '256M', nodes: 2, cpus: 4, clock: 'manual' }],
  ['altix', { preset: 'altix', mem: '4G', nodes: 2, cpus: 4, clock: 'manual' }],
  ['prezero (the zero flag lost on merge)', { preset: 'x86_64', mem: '256M', cpus: 2, clock: 'manual', zeroingPolicy: ['prezero'] }],
];

describe('freeing runs of pages', () => {
  for (const [name, opts] of SHAPES) {
    it(`${name}: by runs and page by page end in the same state`, () => {
      const byRuns = createMachine(opts);
      const byPages = createMachine(opts);
      // A low scrub_start: runs freed at once must wake kscrubd exactly when single frees do.
      for (const m of [byRuns, byPages]) m.setSysctl('scrub_start', Math.min(3, m.maxOrder - 1));
      const rng = new Rng(20050208);
      let runs = 0;
      let longest = 0;
      for (let round = 0; round < 12; round++) {
        const cpu = rng.int(byRuns.config.cpus);
        const node = byRuns.cpus.nodeOf[cpu]!;
        const want = 1 + rng.int(3000);
        const got: number[] = [];
        for (let i = 0; i < want; i++) {
          const zero = rng.next() < 0.5;
          const a = byRuns.allocPages(0, zero, node, cpu);
          const b = byPages.allocPages(0, zero, node, cpu);
          assert.equal(a, b, 'the two machines allocate alike');
          if (a < 0) break;
          got.push(a);
        }
        const freeCpu = rng.int(byRuns.config.cpus);
        for (const [pfn, n] of runsOf(got, rng)) {
          byRuns.freePageRun(pfn, n, freeCpu);
          for (let i = 0; i < n; i++) byPages.freePages(pfn + i, 0, freeCpu);
          runs++;
          longest = Math.max(longest, n);
        }
        assert.equal(state(byRuns), state(byPages), `round ${round}: the same state`);
        const ns = 1e6 * (1 + rng.int(50));
        byRuns.tick(ns);
        byPages.tick(ns);
        assert.equal(state(byRuns), state(byPages), `round ${round}: the same state after kscrubd ran`);
      }
      assert.ok(longest >= 64, `some runs were long (longest ${longest} of ${runs})`);
      assert.ok(byRuns.vm.pcpDrainPages > 0, 'the per-cpu lists drained');
    });
  }
});
