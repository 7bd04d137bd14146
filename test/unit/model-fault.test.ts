import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Machine, TouchResult } from '../../src/model';
import {
  accountedPages, assertChecked, faultFingerprint, ptesOf, tickUntilScrubbed, tiny, zoneNamed,
} from '../helpers/model';

// The anonymous fault path on the TINY machine (test/helpers/model.ts: x86_64, 64 MiB, 4 KiB
// pages, MAX_ORDER 4, one CPU, manual clock). Its x86_64 cost figures (src/model/cost.ts):
// trap 250, handler 100, ptl check 40, ptl set 60, per-cpu alloc 50, 3 struct-page lines × 70
// miss, zone->lock 30 per page moved, clear_page 4096 B / 3.2 B/ns = 1280, user loop 20, line
// hit 3, line miss 70 (ns). DMA32's per-cpu batch is 3 (2.6.11: 12,288 pages / 1024 / 4): the
// hot list (low 6) refills 3 pages under zone->lock (3 × 30) on each of the first allocations;
// the zeroed list (low 0) refills 3 when empty. One CPU: no lock line ever moves.
const PAGE = 4096;
const REFILL = 3 * 30;
/** A fault that zeroes its page hot: trap + handler + ptl + alloc + refill + clear_page + ptl. */
const HOT_SYS = 250 + 100 + 40 + (50 + 3 * 70) + REFILL + 1280 + 60; // 2080
/**
 * The same fault when the page was prezeroed: no clear_page, and no refill (the pte page's
 * allocation just before refilled the zeroed list with 3).
 */
const PREZEROED_SYS = HOT_SYS - 1280 - REFILL; // 710
/**
 * The first fault in a PMD also allocates the pte page (a __GFP_ZERO order-0 page; its list
 * refills), zeroed hot unless a prezeroed page was there.
 */
const PTE_PAGE_PREZEROED_SYS = 50 + 3 * 70 + REFILL; // 350
const PTE_PAGE_HOT_SYS = PTE_PAGE_PREZEROED_SYS + 1280; // 1630
/** User time of one page, one line: in cache after hot zeroing, a miss when prezeroed. */
const HOT_USER = 20 + 3;
const COLD_USER = 20 + 70;

/** A TINY machine whose every free block kscrubd has zeroed (scrub_stop 0). */
function prezeroed(): Machine {
  const m = tiny();
  m.setSysctl('scrub_stop', 0);
  m.setSysctl('scrub_start', 3);
  tickUntilScrubbed(m);
  assert.equal(m.zeroPagesTotal(), m.freePagesTotal(), 'kscrubd zeroed every free page');
  return m;
}

/** A process with one mapping of `pages` pages. */
function proc(m: Machine, pages: number, random = false): { id: number; addr: number } {
  const id = m.procs.create().id;
  const { addr, size } = m.procs.mmap(id, pages * PAGE, random);
  assert.equal(size, pages * PAGE);
  return { id, addr };
}

function sumFaults(results: TouchResult[]): number {
  return results.reduce((s, r) => s + r.faults, 0);
}

describe('fault: write faults', () => {
  test('when a write fault finds prezeroed pages then it maps one without zeroing it', () => {
    const m = prezeroed();
    const { id, addr } = proc(m, 4);
    const before = accountedPages(m);
    const zeroBefore = m.zeroPagesTotal();
    const r = m.procs.fault(id, addr);
    assert.deepEqual(
      { pages: r.pages, faults: r.faults, prezeroed: r.prezeroed, hotZeroed: r.hotZeroed, prefaulted: r.prefaulted, oom: r.oom },
      { pages: 1, faults: 1, prezeroed: 1, hotZeroed: 0, prefaulted: 0, oom: 0 },
    );
    assert.equal(r.sysNs, PREZEROED_SYS + PTE_PAGE_PREZEROED_SYS, 'the fault and its pte page, both prezeroed');
    assert.equal(r.userNs, COLD_USER, 'a prezeroed page is cold: its line is a miss');
    assert.equal(r.wallNs, PREZEROED_SYS + PTE_PAGE_PREZEROED_SYS + COLD_USER);
    assert.equal(m.vm.faultPrezeroed, 1);
    assert.equal(m.vm.faultHotZeroed, 0);
    assert.equal(accountedPages(m), before - 2, 'exactly the page and its pte page left the free pool');
    // Both came from the zeroed pool, through the zeroed per-cpu list: its refill moved a batch
    // of 3 off the ZEROED lists (pages on a per-cpu list are not counted in zero_pages).
    assert.equal(m.zeroPagesTotal(), zeroBefore - 3, 'both from the zeroed pool');
    assert.equal(m.procs.nrPageTablePages, 1);
    assert.equal(m.procs.nrAnonPages, 1);
    assertChecked(m);
  });

  test('when scrubbing is off then a write fault zeroes its page hot', () => {
    const m = tiny();
    const { id, addr } = proc(m, 4);
    const before = accountedPages(m);
    const r = m.procs.fault(id, addr);
    assert.equal(r.faults, 1);
    assert.equal(r.hotZeroed, 1);
    assert.equal(r.prezeroed, 0);
    assert.equal(r.sysNs, HOT_SYS + PTE_PAGE_HOT_SYS, 'the fault and its pte page, both zeroed hot');
    assert.equal(r.userNs, HOT_USER, 'the CPU just zeroed the page: its line hits');
    assert.equal(m.now, HOT_SYS + PTE_PAGE_HOT_SYS + HOT_USER, 'the manual clock moved by the fault and nothing else');
    assert.equal(m.vm.faultHotZeroed, 1);
    assert.equal(m.vm.allocHotZeroed, 2, 'the page and its pte page');
    assert.equal(accountedPages(m), before - 2);
    assertChecked(m);
  });

  test('when a mapped page is touched again then it does not fault', () => {
    const m = tiny();
    const { id, addr } = proc(m, 4);
    m.procs.fault(id, addr);
    const free = accountedPages(m);
    const r = m.procs.fault(id, addr);
    assert.equal(r.faults, 0);
    assert.equal(r.pages, 1);
    assert.equal(r.sysNs, 0);
    assert.equal(m.vm.pgfault, 1);
    assert.equal(accountedPages(m), free);
    assert.equal(m.procs.nrAnonPages, 1);
    assertChecked(m);
  });
});

describe('fault: read faults and the ZERO_PAGE', () => {
  test('when an empty page is read then ZERO_PAGE is mapped and no page is allocated', () => {
    const m = tiny();
    const { id, addr } = proc(m, 4);
    const free = accountedPages(m);
    const r = m.procs.fault(id, addr, false);
    assert.equal(r.faults, 1);
    assert.equal(r.pages, 1);
    assert.equal(r.prezeroed + r.hotZeroed + r.prefaulted, 0);
    assert.equal(r.sysNs, 250 + 100 + PTE_PAGE_HOT_SYS + 40 + 60, 'trap, handler, the pte page and the two ptl sections');
    assert.equal(accountedPages(m), free - 1, 'only the pte page left the free pool');
    assert.equal(m.vm.faultZeroPage, 1);
    assert.deepEqual(ptesOf(m, id), { anon: 0, zero: 1 });
    assert.equal(m.procs.nrAnonPages, 0);
    assert.equal(m.procs.get(id).rss, 0);
    assert.equal(m.procs.fault(id, addr, false).faults, 0, 'a second read finds ZERO_PAGE mapped');
    assertChecked(m);
  });

  test('when ZERO_PAGE is written then a COW fault maps a zeroed page in its place', () => {
    const m = tiny();
    const { id, addr } = proc(m, 4);
    m.procs.fault(id, addr, false);
    const free = accountedPages(m);
    const r = m.procs.fault(id, addr, true);
    assert.equal(r.faults, 1);
    assert.equal(r.hotZeroed, 1, 'the COW takes a zeroed page (zeroed hot here: scrub is off)');
    assert.equal(r.prefaulted, 0);
    assert.equal(r.sysNs, HOT_SYS);
    assert.equal(m.vm.faultCow, 1);
    assert.equal(m.vm.pgfault, 2);
    assert.equal(accountedPages(m), free - 1);
    assert.deepEqual(ptesOf(m, id), { anon: 1, zero: 0 });
    assert.equal(m.procs.nrAnonPages, 1);
    assert.equal(m.procs.fault(id, addr, true).faults, 0);
    assertChecked(m);
  });

  test('when read-mapped pages are written with prefault on then each is its own COW fault', () => {
    const m = tiny();
    const { id, addr } = proc(m, 4);
    // Read faults map ZERO_PAGE over the predicted run too: 1 + 2 + 1 (clipped at the VMA end).
    assert.equal(m.procs.touch(id, { addr, size: 4 * PAGE, write: false }).faults, 3);
    assert.deepEqual(ptesOf(m, id), { anon: 0, zero: 4 });
    const free = accountedPages(m);
    const r = m.procs.touch(id, { addr, size: 4 * PAGE });
    assert.equal(r.faults, 4);
    assert.equal(r.prefaulted, 0);
    assert.equal(m.vm.faultCow, 4);
    assert.equal(accountedPages(m), free - 4);
    assert.deepEqual(ptesOf(m, id), { anon: 4, zero: 0 });
    assertChecked(m);
  });
});

describe('fault: munmap', () => {
  test('when the middle of a mapping is unmapped then its pages are freed and the VMA splits', () => {
    const m = tiny();
    const { id, addr } = proc(m, 16);
    const r = m.procs.touch(id, { addr, size: 16 * PAGE });
    assert.equal(r.faults, 5, 'prefault: 1 + 2 + 4 + 8 + 1 (clipped at the VMA end)');
    const free = accountedPages(m);
    assert.equal(m.procs.munmap(id, addr + 4 * PAGE, 4 * PAGE), 4);
    assert.equal(accountedPages(m), free + 4, 'exactly the four pages came back');
    assert.equal(m.procs.nrAnonPages, 12);
    assert.equal(m.procs.get(id).rss, 12);
    assert.equal(m.vm.pgfree, 4);
    assert.deepEqual(m.procs.get(id).vmas.map((v) => [(v.start - addr) / PAGE, (v.end - addr) / PAGE]), [[0, 4], [8, 16]]);
    assertChecked(m);
    assert.throws(() => m.procs.fault(id, addr + 5 * PAGE), { name: 'ModelError', code: 'KSCRUB_BAD_ADDRESS' });
    assert.throws(() => m.procs.touch(id, { addr, size: 5 * PAGE }), { code: 'KSCRUB_BAD_ADDRESS' }, 'a touch running into the hole');
    assert.equal(m.procs.touch(id, { addr, size: 4 * PAGE }).faults, 0, 'the left part is still mapped');
    assert.equal(m.procs.touch(id, { addr: addr + 8 * PAGE, size: 8 * PAGE }).faults, 0, 'so is the right part');
    assertChecked(m);
  });

  test('when a partly touched range is unmapped then only its mapped pages are freed', () => {
    const m = tiny();
    m.setSysctl('max_prealloc_order', 0);
    const { id, addr } = proc(m, 16);
    for (const p of [0, 2, 4]) m.procs.fault(id, addr + p * PAGE);
    m.procs.fault(id, addr + 6 * PAGE, false); // ZERO_PAGE: nothing to free
    m.procs.fault(id, addr + 9 * PAGE);
    const free = accountedPages(m);
    assert.equal(m.procs.munmap(id, addr, 8 * PAGE), 3);
    assert.equal(accountedPages(m), free + 3);
    assert.deepEqual(ptesOf(m, id), { anon: 1, zero: 0 });
    assert.equal(m.procs.nrAnonPages, 1);
    assert.deepEqual(m.procs.get(id).vmas.map((v) => [(v.start - addr) / PAGE, (v.end - addr) / PAGE]), [[8, 16]]);
    assert.equal(m.procs.munmap(id, addr + 12 * PAGE, 4 * PAGE), 0, 'the tail held nothing');
    assert.deepEqual(m.procs.get(id).vmas.map((v) => [(v.start - addr) / PAGE, (v.end - addr) / PAGE]), [[8, 12]]);
    assert.equal(m.procs.munmap(id, addr + 8 * PAGE, 4 * PAGE), 1);
    assert.equal(m.procs.get(id).vmas.length, 0, 'unmapping all of it removes the VMA');
    assert.equal(m.procs.nrAnonPages, 0);
    assertChecked(m);
  });
});

describe('fault: accounting', () => {
  test('when processes fault, unmap and exit then pgfault, AnonPages and the page tables add up', () => {
    const m = tiny();
    const start = accountedPages(m);
    const results: TouchResult[] = [];
    const a = proc(m, 40);
    const b = proc(m, 600); // crosses a PMD (512 ptes): two pte pages
    const step = (r: TouchResult, where: string): void => {
      results.push(r);
      assert.equal(m.vm.pgfault, sumFaults(results), `pgfault ${where}`);
      const mapped = ptesOf(m, a.id).anon + (m.procs.mms.has(b.id) ? ptesOf(m, b.id).anon : 0);
      assert.equal(m.procs.nrAnonPages, mapped, `AnonPages ${where}`);
      assertChecked(m, where);
    };
    step(m.procs.touch(a.id, { addr: a.addr, size: 40 * PAGE }), 'after a sequential touch');
    step(m.procs.touch(b.id, { addr: b.addr, size: 600 * PAGE, threads: 3, lines: 2 }), 'after three threads');
    step(m.procs.touch(b.id, { addr: b.addr, size: 600 * PAGE, write: false }), 'after a read of mapped pages');
    step(m.procs.fault(a.id, a.addr + 39 * PAGE, false), 'after a read of a mapped page');
    m.procs.munmap(b.id, b.addr + 100 * PAGE, 50 * PAGE);
    step(m.procs.touch(b.id, { addr: b.addr, size: 100 * PAGE, stride: 3 * PAGE }), 'after a munmap and a strided touch');
    assert.equal(m.procs.nrPageTablePages, 1 + 2);
    assert.equal(m.procs.nrMms, 2);
    assert.equal(m.procs.get(a.id).rss, 40);
    assert.equal(m.procs.get(b.id).rss, 550);
    assert.equal(m.procs.exit(b.id), 550);
    assert.equal(m.procs.nrAnonPages, 40);
    assert.equal(m.procs.nrPageTablePages, 1);
    assert.equal(m.procs.exit(a.id), 40);
    assert.equal(m.procs.nrAnonPages, 0);
    assert.equal(m.procs.nrPageTablePages, 0);
    assert.equal(m.procs.nrMms, 0);
    assert.equal(m.procs.mms.size, 0);
    assertChecked(m, 'after both exits');
    m.drainPcp();
    assert.equal(accountedPages(m), start, 'every page is back');
    assert.equal(m.freePagesTotal(), start);
  });
});

describe('fault: out of memory', () => {
  test('when a process touches more than the machine has then it stops at the min watermarks and exit returns everything', () => {
    const m = tiny();
    const start = m.freePagesTotal();
    const dma = zoneNamed(m, 0, 'DMA');
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const { id, addr } = proc(m, 80 * 256); // 80 MiB on a 64 MiB machine
    const r = m.procs.touch(id, { addr, size: 80 * 2 ** 20 });
    assert.equal(r.oom, 1);
    assert.equal(m.vm.faultOom, 1);
    // Every allocation checks the watermark, but a per-cpu refill (rmqueue_bulk) then moves a
    // whole batch without looking again: a zone ends at most batch - 1 pages below min.
    for (const z of [dma32, dma]) {
      const batch = z.pageset[0]![0]!.batch;
      assert.ok(z.freePages <= z.watermarkMin && z.freePages > z.watermarkMin - batch,
        `${z.name} ends within a batch (${batch}) of min: ${z.freePages} vs ${z.watermarkMin}`);
    }
    // What left the free pool is on the per-cpu lists or mapped; every 512 mapped pages (one
    // PMD) also took a pte page: 24 of them.
    const usable = start - m.freePagesTotal() - m.pcpPagesTotal();
    const ptePages = 24;
    const mapped = usable - ptePages;
    assert.equal(Math.ceil(mapped / 512), ptePages);
    assert.equal(m.procs.nrPageTablePages, ptePages);
    assert.equal(r.pages, mapped, 'every page that got mapped was touched; the rest was not reached');
    assert.equal(m.procs.nrAnonPages, mapped);
    assert.equal(m.vm.pgfault, r.faults);
    assertChecked(m, 'at OOM');
    // Another fault fails the same way and takes nothing.
    const free = m.freePagesTotal() + m.pcpPagesTotal();
    const again = m.procs.fault(id, addr + mapped * PAGE);
    assert.equal(again.oom, 1);
    assert.equal(m.procs.nrAnonPages, mapped);
    assert.equal(m.freePagesTotal() + m.pcpPagesTotal(), free);
    assertChecked(m, 'after a second OOM');
    assert.equal(m.procs.exit(id), mapped);
    m.drainPcp();
    assert.equal(m.freePagesTotal(), start);
    assert.equal(m.procs.nrAnonPages, 0);
    assertChecked(m, 'after exit');
  });
});

describe('fault: determinism', () => {
  function script(m: Machine): TouchResult[] {
    const out: TouchResult[] = [];
    m.setSysctl('scrub_stop', 1);
    m.setSysctl('scrub_start', 2);
    const a = proc(m, 300);
    out.push(m.procs.touch(a.id, { addr: a.addr, size: 300 * PAGE, threads: 3, lines: 4 }));
    m.tick(2e6);
    out.push(m.procs.touch(a.id, { addr: a.addr, size: 300 * PAGE, write: false }));
    m.procs.munmap(a.id, a.addr + 64 * PAGE, 128 * PAGE);
    const b = proc(m, 200, true);
    out.push(m.procs.touch(b.id, { addr: b.addr, size: 100 * PAGE, write: false, threads: 2 }));
    out.push(m.procs.touch(b.id, { addr: b.addr, size: 200 * PAGE, threads: 4 }));
    m.procs.exit(a.id);
    m.tick(5e8);
    out.push(m.procs.touch(b.id, { addr: b.addr, size: 200 * PAGE, stride: 2 * PAGE }));
    return out;
  }

  test('when two fresh manual machines run the same faults then results and state are identical', () => {
    const m1 = tiny();
    const m2 = tiny();
    const r1 = script(m1);
    const r2 = script(m2);
    assert.deepEqual(r1, r2);
    assert.equal(faultFingerprint(m1), faultFingerprint(m2));
    assert.ok(m1.vm.faultPrezeroed > 0 && m1.vm.faultHotZeroed > 0, 'the script exercised both kinds of fault');
    assertChecked(m1);
  });
});
