import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Machine } from '../../src/model';
import { PREFAULT_VARIANTS } from '../../src/uapi';
import { accountedPages, assertChecked, prefaultRun, ptesOf, tickUntilScrubbed, tiny } from '../helpers/model';

// Anticipatory prefault (vm.max_prealloc_order, default 4 = V2 as published) on the TINY
// machine (4 KiB pages, one pte page = 4096 / 8 = 512 ptes = 2 MiB; mmap places mappings
// PMD-aligned). V2: a hit doubles the run, at most 2^max_prealloc_order pages and at most a
// pagevec (PAGEVEC_SIZE, 14 in 2.6.10/2.6.11): 1, 2, 4, 8, 14, 14 …
const PAGE = 4096;
const PTRS_PER_PTE = PAGE / 8;

function proc(m: Machine, pages: number, random = false): { id: number; addr: number } {
  const id = m.procs.create().id;
  const { addr } = m.procs.mmap(id, pages * PAGE, random);
  assert.equal(addr % (PTRS_PER_PTE * PAGE), 0, 'mappings start on a PMD boundary');
  return { id, addr };
}

describe('fault: anticipatory prefault', () => {
  test('when 23 pages are written in order then faults map 1, 2, 4, 8, 14 pages (the last reaching past them)', () => {
    const m = tiny();
    const { id, addr } = proc(m, 64);
    const free = accountedPages(m);
    const r = m.procs.touch(id, { addr, size: 23 * PAGE });
    assert.equal(r.pages, 23);
    assert.equal(r.faults, 5);
    assert.equal(r.prefaulted, 29 - 5);
    assert.equal(r.hotZeroed, 29, 'no zeroed page exists: every page is cleared in the fault');
    assert.equal(m.vm.prefaultPages, 24);
    assert.equal(m.procs.nrAnonPages, 29);
    assert.equal(accountedPages(m), free - 29 - 1, 'the 29 pages and their one pte page');
    assert.equal(m.procs.nrPageTablePages, 1);
    assertChecked(m);
  });

  test('when single faults follow the prediction then each maps 1, 2, 4, 8, 14, 14 pages (a pagevec is 14)', () => {
    const m = tiny();
    const { id, addr } = proc(m, 64);
    assert.deepEqual(prefaultRun(m, id, addr, 6), [1, 2, 4, 8, 14, 14]);
    assert.equal(m.procs.nrAnonPages, 43);
    assert.equal(m.vm.pgfault, 6);
    assertChecked(m);
  });

  test('when max_prealloc_order is n then no fault maps more than 2^n pages: the sysctl does what its name says', () => {
    for (const [n, runs] of [[1, [1, 2, 2, 2, 2]], [2, [1, 2, 4, 4, 4]], [3, [1, 2, 4, 8, 8]], [4, [1, 2, 4, 8, 14]]] as const) {
      const m = tiny();
      m.setSysctl('max_prealloc_order', n);
      const { id, addr } = proc(m, 64);
      assert.deepEqual(prefaultRun(m, id, addr, 5), runs, `max_prealloc_order ${n}`);
    }
  });

  test('when a published prefault version is named then its default order runs: v1 1, 2, 4, 8, 8; v2 … 14; v5 1, 2, 2; off 1 a fault; prefaulted pages hot zeroed', () => {
    // Every page prezeroed first: the faulting page of each run comes off the zeroed lists
    // (__GFP_ZERO), the pages prefaulted with it are GFP_HIGHUSER and cleared in the fault.
    const want = { off: [1, 1, 1, 1, 1], v1: [1, 2, 4, 8, 8], v2: [1, 2, 4, 8, 14], v5: [1, 2, 2, 2, 2] } as const;
    assert.deepEqual(Object.keys(PREFAULT_VARIANTS).sort(), Object.keys(want).sort());
    for (const [name, order] of Object.entries(PREFAULT_VARIANTS)) {
      const m = tiny();
      m.setSysctl('scrub_stop', 0);
      m.setSysctl('scrub_start', 0);
      tickUntilScrubbed(m);
      m.setSysctl('max_prealloc_order', order);
      const { id, addr } = proc(m, 64);
      const runs = want[name as keyof typeof want];
      const pages = runs.reduce((a, b) => a + b, 0);
      assert.deepEqual(prefaultRun(m, id, addr, 5), runs, name);
      assert.equal(m.procs.nrAnonPages, pages, name);
      assert.equal(m.vm.prefaultPages, pages - 5, `${name}: the pages each fault mapped past its own`);
      assert.deepEqual([m.vm.faultPrezeroed, m.vm.faultHotZeroed], [5, pages - 5], `${name}: which class each page came from`);
      assertChecked(m);
    }
  });

  test('when the written pages are prezeroed then only the faulting page of each run is: V2 clears its prefaulted pages itself', () => {
    const m = tiny();
    m.setSysctl('scrub_stop', 0);
    m.setSysctl('scrub_start', 0);
    tickUntilScrubbed(m);
    const { id, addr } = proc(m, 64);
    const r = m.procs.touch(id, { addr, size: 29 * PAGE });
    assert.equal(r.faults, 5);
    assert.equal(r.prezeroed, 5, 'the faulting pages: __GFP_ZERO from the zeroed lists');
    assert.equal(r.hotZeroed, 24, 'the prefaulted pages: GFP_HIGHUSER, cleared by clear_user_highpage');
    assertChecked(m);
  });

  test('when pages are read in order then read faults map ZERO_PAGE over the predicted run', () => {
    const m = tiny();
    const { id, addr } = proc(m, 64);
    const free = accountedPages(m);
    const r = m.procs.touch(id, { addr, size: 29 * PAGE, write: false });
    assert.equal(r.faults, 5, '1 + 2 + 4 + 8 + 14');
    assert.deepEqual(ptesOf(m, id), { anon: 0, zero: 29 });
    assert.equal(accountedPages(m), free - 1, 'only the pte page: ZERO_PAGE is shared');
    // The prediction moved on with the reads: the next write continues the run.
    assert.deepEqual(prefaultRun(m, id, addr + 29 * PAGE, 1), [14]);
    assertChecked(m);
  });

  test('when a fault misses the prediction then prefault starts again from one page', () => {
    const m = tiny();
    const { id, addr } = proc(m, 64);
    // Out of order: every fault is a miss.
    for (const p of [30, 20, 0]) {
      const r = m.procs.fault(id, addr + p * PAGE);
      assert.equal(r.faults, 1);
      assert.equal(r.prefaulted, 0, `fault at page ${p} maps one page`);
    }
    assert.deepEqual(prefaultRun(m, id, addr + PAGE, 2), [2, 4], 'page 1 was predicted: the run grows');
    // A miss in the middle of a run resets it.
    assert.deepEqual(prefaultRun(m, id, addr + 10 * PAGE, 3), [1, 2, 4]);
    assert.equal(m.procs.nrAnonPages, 3 + 6 + 7);
    assert.equal(m.vm.prefaultReleased, 0);
    assertChecked(m);
  });

  test('when the mapping is MADV_RANDOM then no fault prefaults', () => {
    const m = tiny();
    const { id, addr } = proc(m, 64, true);
    const r = m.procs.touch(id, { addr, size: 23 * PAGE });
    assert.equal(r.faults, 23);
    assert.equal(r.prefaulted, 0);
    assert.equal(m.vm.prefaultPages, 0);
    assert.equal(m.procs.nrAnonPages, 23);
  });

  test('when max_prealloc_order is 0 then no fault prefaults', () => {
    const m = tiny();
    m.setSysctl('max_prealloc_order', 0);
    const { id, addr } = proc(m, 64);
    const r = m.procs.touch(id, { addr, size: 23 * PAGE });
    assert.equal(r.faults, 23);
    assert.equal(r.prefaulted, 0);
    assert.deepEqual(prefaultRun(m, id, addr + 23 * PAGE, 3), [1, 1, 1]);
  });

  test('when a 3-page mapping is written then no 4th page is mapped', () => {
    const m = tiny();
    const { id, addr } = proc(m, 3);
    const free = accountedPages(m);
    const r = m.procs.touch(id, { addr, size: 3 * PAGE });
    assert.equal(r.faults, 2, '1 + 2');
    assert.equal(r.pages, 3);
    assert.equal(m.procs.nrAnonPages, 3);
    assert.deepEqual(ptesOf(m, id), { anon: 3, zero: 0 });
    assert.equal(accountedPages(m), free - 3 - 1, 'free pages drop by exactly 3 and the pte page');
    assert.equal(m.vm.allocHotZeroed, 2 + 1, 'the 2 faulting pages (__GFP_ZERO) and the pte page: nothing was allocated and given back');
    assert.equal(m.vm.faultHotZeroed, 3, 'and the prefaulted page, cleared in the fault');
    assertChecked(m);
  });

  test('when a prefault run reaches the VMA end then it is clipped there', () => {
    const m = tiny();
    const { id, addr } = proc(m, 5);
    const free = accountedPages(m);
    assert.deepEqual(prefaultRun(m, id, addr, 3), [1, 2, 2], 'the 4-page run at page 3 keeps 2');
    assert.equal(accountedPages(m), free - 5 - 1, 'five pages and their pte page');
    assert.equal(m.vm.prefaultReleased, 0);
    assertChecked(m);
  });

  test('when a prefault run reaches the end of a pte page then it is clipped there and goes on in the next', () => {
    const m = tiny();
    const { id, addr } = proc(m, 600);
    // From page 500: 500 | 501-502 | 503-506 | 507-511 (8 clipped to 5 at 512) | 512-525 | 526-539.
    assert.deepEqual(prefaultRun(m, id, addr + 500 * PAGE, 6), [1, 2, 4, 5, 14, 14]);
    assert.equal(m.procs.nrPageTablePages, 2);
    assert.equal(m.procs.nrAnonPages, 40);
    assertChecked(m);
  });

  test('when a sequential touch crosses a pte page then the counts follow the clipping', () => {
    const m = tiny();
    const { id, addr } = proc(m, 530);
    // 1+2+4+8 = 15, then 14-page runs 15..504 (35 of them), 505-511 (clipped at the PMD end), 512-525, 526-529 (VMA end).
    const r = m.procs.touch(id, { addr, size: 530 * PAGE });
    assert.equal(r.faults, 4 + 35 + 1 + 1 + 1);
    assert.equal(r.pages, 530);
    assert.equal(m.procs.nrAnonPages, 530);
    assertChecked(m);
  });

  test('when a prefault run covers a page that is already mapped then its spare page goes back', () => {
    const m = tiny();
    const { id, addr } = proc(m, 64);
    m.procs.fault(id, addr + 5 * PAGE);
    const free = accountedPages(m);
    assert.deepEqual(prefaultRun(m, id, addr, 2), [1, 2]);
    const r = m.procs.fault(id, addr + 3 * PAGE); // run of 4: pages 3, 4, (5 mapped), 6
    assert.equal(r.faults, 1);
    assert.equal(r.prefaulted, 2);
    assert.equal(m.vm.prefaultReleased, 1);
    assert.equal(accountedPages(m), free - 3 - 3, 'the released page is free again');
    assert.equal(m.procs.nrAnonPages, 1 + 3 + 3);
    assert.deepEqual(ptesOf(m, id), { anon: 7, zero: 0 });
    assertChecked(m);
  });

  test('when several threads prefault into each other\'s shares then every page is mapped once', () => {
    const m = tiny({ cpus: 4 });
    const { id, addr } = proc(m, 1000);
    const free = accountedPages(m);
    const r = m.procs.touch(id, { addr, size: 1000 * PAGE, threads: 4 });
    assert.equal(r.pages, 1000);
    assert.equal(m.procs.nrAnonPages, 1000);
    assert.deepEqual(ptesOf(m, id), { anon: 1000, zero: 0 });
    assert.equal(accountedPages(m), free - 1000 - m.procs.nrPageTablePages, 'the pages and their pte pages');
    assert.equal(m.procs.nrPageTablePages, 2, '1000 pages from a PMD boundary span two pte pages');
    assert.equal(m.vm.pgfault, r.faults);
    assert.equal(m.vm.prefaultPages, r.prefaulted);
    assert.equal(r.faults + r.prefaulted, 1000, 'every mapped page was mapped by exactly one fault');
    assertChecked(m);
  });
});

// A page a write fault cleared but did not map (its pte filled by another task meanwhile) is
// no fault page: pgfault_prezeroed/hot_zeroed count the pages faults mapped, as a huge fault's.
describe('fault: pages that lose a pte race', () => {
  test('when task 1 maps a page inside task 0\'s predicted run first then task 0\'s page for it is released, cleared but not counted hot-zeroed', () => {
    const m = tiny({ cpus: 2 });
    const { id, addr } = proc(m, 64);
    // Task 0: page 0 (run 1), 1 (run 2: 1-2), 3 (run 4: 3-6). Task 1: page 5, once, at once.
    const at = [0, 1, 3, 5].map((i) => addr + i * PAGE);
    const r = m.procs.faults(id, { addrs: at, tasks: [0, 0, 0, 1], writes: [1, 1, 1, 1], cpus: [0, 1], lines: 1 });
    assert.equal(m.vm.prefaultReleased, 1, 'task 0\'s page 5');
    assert.equal(r.faults, 4);
    assert.equal(r.pages, 4);
    // Mapped: 0 | 1, 2 | 3, 4, 6 (task 0) and 5 (task 1): 7 pages, 4 faulting and 3 prefaulted.
    assert.equal(m.procs.nrAnonPages, 7);
    assert.equal(r.prefaulted, 3);
    assert.equal(r.hotZeroed, 7, 'the 8th page cleared went back unmapped');
    assert.equal(r.prezeroed, 0);
    assert.equal(m.vm.faultHotZeroed, 7);
    assert.equal(m.vm.faultHotZeroed + m.vm.faultPrezeroed, m.vm.pgfault + m.vm.prefaultPages);
    assertChecked(m);
  });

  test('when two tasks fault the same page at once then the loser\'s page goes back, no prefaulted page and no fault page', () => {
    const m = tiny({ cpus: 2 });
    const { id, addr } = proc(m, 64);
    const r = m.procs.faults(id, { addrs: [addr, addr], tasks: [0, 1], writes: [1, 1], cpus: [0, 1], lines: 1 });
    assert.equal(r.faults, 2);
    assert.equal(m.procs.nrAnonPages, 1);
    assert.equal(m.vm.prefaultReleased, 0, 'the faulting page is not a prefaulted one');
    assert.equal(r.hotZeroed + r.prezeroed, 1);
    assert.equal(m.vm.faultHotZeroed + m.vm.faultPrezeroed, 1);
    assertChecked(m);
  });

  test('when a task\'s faulting page loses its pte but its prefaulted page is mapped then vmstat and the result line count that one page', () => {
    const m = tiny({ cpus: 2 });
    const { id, addr } = proc(m, 64);
    // Task 0 writes page 5 then 1 (a miss: run of 1); task 1 writes 0 then 1 (a hit: run of 2,
    // pages 1-2). Task 0 maps page 1 first: task 1's page for 1 goes back, its page 2 is mapped.
    const at = [5, 1, 0, 1].map((i) => addr + i * PAGE);
    const r = m.procs.faults(id, { addrs: at, tasks: [0, 0, 1, 1], writes: [1, 1, 1, 1], cpus: [0, 1], lines: 1 });
    assert.equal(r.faults, 4);
    assert.equal(m.procs.nrAnonPages, 4, 'pages 0, 1, 2 and 5');
    assert.equal(m.vm.pgfree, 1, 'task 1\'s page for 1');
    assert.equal(m.vm.prefaultReleased, 0, 'the faulting page is not a prefaulted one');
    assert.equal(r.prefaulted, 1);
    assert.equal(m.vm.prefaultPages, 1, 'page 2, prefaulted by a fault that mapped nothing at its own address');
    assert.equal(r.hotZeroed + r.prezeroed, 4);
    assert.equal(m.vm.faultHotZeroed + m.vm.faultPrezeroed, 4);
    assertChecked(m);
  });
});
