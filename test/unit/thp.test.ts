import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Machine, check, createMachine } from '../../src/model';
import { ModelError } from '../../src/uapi';
import { render as renderMeminfo } from '../../src/procfs/meminfo';
import { render as renderVmstat } from '../../src/procfs/vmstat';

// Transparent huge pages (src/model/thp.ts) on a tiny machine: x86_64, 64 MiB, 4 KiB pages,
// MAX_ORDER 11 (so order-9 blocks exist), one CPU, manual clock, no boot allocations.
// A PMD maps 2 MiB = 512 pages; mmap places every mapping PMD-aligned.

const PMD = 2 ** 21;
const HUGE_PAGES = 512;

function thpMachine(): Machine {
  const m = createMachine({ preset: 'x86_64', mem: '64M', cpus: 1, nodes: 1, clock: 'manual', bootAllocations: false });
  m.setSysctl('max_prealloc_order', 0);
  return m;
}

function vmstat(m: Machine): Map<string, number> {
  return new Map(renderVmstat(m).trim().split('\n').map((l) => {
    const [k, v] = l.split(' ');
    return [k!, Number(v)] as const;
  }));
}

function meminfoKb(m: Machine, field: string): number {
  const line = renderMeminfo(m).split('\n').find((l) => l.startsWith(`${field}:`));
  assert.ok(line, field);
  return Number(/(\d+) kB/.exec(line)![1]);
}

/** Take every free block of order ≥ 9 (raw allocations), so no huge page can be had. */
function exhaustHugeBlocks(m: Machine): void {
  for (let order = m.maxOrder - 1; order >= 9; order--) {
    for (;;) {
      try {
        m.raw.alloc(order, false, 0, 1);
      } catch (err) {
        if (err instanceof ModelError) break;
        throw err;
      }
    }
  }
}

describe('transparent huge pages', () => {
  test('when a thp mapping is 3 MiB then its aligned first 2 MiB fault as one huge page and the tail as 4 KiB pages', () => {
    const m = thpMachine();
    const mm = m.procs.create().id;
    const { addr, size } = m.procs.mmap(mm, 3 * 2 ** 20, false, undefined, true);
    assert.equal(addr % PMD, 0);
    const r = m.procs.touch(mm, { addr, size });
    assert.equal(r.pages, 768);
    assert.equal(r.faults, 1 + 256);
    const v = vmstat(m);
    assert.equal(v.get('thp_fault_alloc'), 1);
    assert.equal(v.get('thp_fault_fallback'), 0);
    assert.equal(v.get('nr_anon_transparent_hugepages'), 1);
    assert.equal(meminfoKb(m, 'AnonHugePages'), 2048);
    assert.equal(meminfoKb(m, 'AnonPages'), 3 * 1024);
    assert.equal(check(m), null);
  });

  test('when one page in the middle of an aligned range faults then the whole PMD is mapped at once', () => {
    const m = thpMachine();
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, 2 * PMD, false, undefined, true);
    const one = m.procs.fault(mm, addr + PMD / 2);
    assert.equal(one.faults, 1);
    assert.equal(m.procs.nrAnonPages, HUGE_PAGES);
    // Every other page of that PMD is already mapped: touching it takes no fault.
    assert.equal(m.procs.touch(mm, { addr, size: PMD }).faults, 0);
    assert.equal(m.procs.touch(mm, { addr, size: 2 * PMD }).faults, 1);
    assert.equal(vmstat(m).get('thp_fault_alloc'), 2);
  });

  test('when no order-9 block is free then the fault falls back to 4 KiB pages and counts it', () => {
    const m = thpMachine();
    exhaustHugeBlocks(m);
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, PMD, false, undefined, true);
    const r = m.procs.touch(mm, { addr, size: 8 * 4096 });
    assert.equal(r.faults, 8);
    const v = vmstat(m);
    assert.equal(v.get('thp_fault_alloc'), 0);
    // Each 4 KiB fault of the empty PMD tried first; after the first, the PMD has a pte page.
    assert.equal(v.get('thp_fault_fallback'), 1);
    assert.equal(v.get('nr_anon_transparent_hugepages'), 0);
    assert.equal(check(m), null);
  });

  test('when kscrubd has zeroed order-9 blocks then a huge fault is prezeroed and saves the 2 MiB clear', () => {
    const hot = thpMachine();
    const mmHot = hot.procs.create().id;
    const a = hot.procs.mmap(mmHot, PMD, false, undefined, true);
    const rHot = hot.procs.touch(mmHot, { addr: a.addr, size: PMD });

    const pre = thpMachine();
    pre.setSysctl('scrub_stop', 0);
    pre.setSysctl('scrub_start', 9);
    pre.tick(10e9);
    assert.equal(pre.scrubbing(), false);
    const mmPre = pre.procs.create().id;
    const b = pre.procs.mmap(mmPre, PMD, false, undefined, true);
    const rPre = pre.procs.touch(mmPre, { addr: b.addr, size: PMD });

    assert.equal(rHot.hotZeroed, HUGE_PAGES);
    assert.equal(rPre.prezeroed, HUGE_PAGES);
    assert.equal(vmstat(hot).get('thp_fault_hot_zeroed'), 1);
    assert.equal(vmstat(pre).get('thp_fault_prezeroed'), 1);
    // The difference is the clear of 2 MiB (and of the deposited pte page), less the cold
    // misses the prezeroed page's lines cost the program afterwards.
    const clear = hot.cpuZero.zero(PMD, false).cpuNs + hot.cpuZero.zero(4096, false).cpuNs;
    const saved = rHot.sysNs - rPre.sysNs;
    assert.ok(Math.abs(saved - clear) / clear < 0.01, `saved ${saved} ns of ${clear}`);
    assert.ok(rPre.userNs > rHot.userNs, 'cold lines cost the program more');
  });

  test('when a huge page cleared in the fault fits the cache then its pages hit, else they miss', () => {
    const userNs = (cacheBytes: number): number => {
      const m = createMachine({ preset: 'x86_64', mem: '64M', cpus: 1, nodes: 1, clock: 'manual', bootAllocations: false, cost: { cacheBytes } });
      const mm = m.procs.create().id;
      const { addr } = m.procs.mmap(mm, PMD, false, undefined, true);
      return m.procs.touch(mm, { addr, size: PMD }).userNs;
    };
    const c = createMachine({ preset: 'x86_64', mem: '64M', clock: 'manual' }).cost;
    // 511 pages after the faulting one: each a line miss instead of a hit.
    assert.equal(Math.round(userNs(PMD / 2) - userNs(2 * PMD)), Math.round(511 * (c.lineMissNs - c.lineHitNs)));
  });

  test('when part of a huge PMD is unmapped then it splits: the rest stays mapped as 4 KiB pages', () => {
    const m = thpMachine();
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, PMD, false, undefined, true);
    m.procs.touch(mm, { addr, size: PMD });
    const free0 = m.freePagesTotal() + m.pcpPagesTotal();
    assert.equal(m.procs.munmap(mm, addr + 4096 * 10, 4096 * 2), 2);
    assert.equal(check(m), null);
    assert.equal(m.procs.nrAnonThps, 0);
    assert.equal(m.procs.nrAnonPages, HUGE_PAGES - 2);
    assert.equal(m.freePagesTotal() + m.pcpPagesTotal(), free0 + 2);
    // Pages around the hole are still mapped: no faults.
    assert.equal(m.procs.touch(mm, { addr, size: 4096 * 10 }).faults, 0);
    assert.equal(m.procs.touch(mm, { addr: addr + 4096 * 12, size: PMD - 4096 * 12 }).faults, 0);
    assert.equal(m.procs.exit(mm), HUGE_PAGES - 2);
    assert.equal(m.procs.nrAnonPages, 0);
    assert.equal(m.procs.nrPageTablePages, 0);
    assert.equal(check(m), null);
  });

  test('when the whole mapping is unmapped then the huge block and its deposited pte page go back', () => {
    const m = thpMachine();
    const before = m.freePagesTotal() + m.pcpPagesTotal();
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, PMD, false, undefined, true);
    m.procs.touch(mm, { addr, size: PMD });
    assert.equal(m.procs.nrPageTablePages, 1);
    assert.equal(m.procs.munmap(mm, addr, PMD), HUGE_PAGES);
    assert.equal(m.procs.nrPageTablePages, 0);
    assert.equal(m.freePagesTotal() + m.pcpPagesTotal(), before);
    assert.equal(check(m), null);
  });

  test('when threads share a huge range then each PMD is mapped once and nothing is lost', () => {
    const m = thpMachine();
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, 4 * PMD, false, undefined, true);
    const r = m.procs.touch(mm, { addr, size: 4 * PMD, threads: 3 });
    assert.equal(r.pages, 4 * HUGE_PAGES);
    assert.equal(m.procs.nrAnonThps, 4);
    assert.equal(m.procs.nrAnonPages, 4 * HUGE_PAGES);
    assert.equal(check(m), null);
  });

  test('when THP is asked of a machine that cannot map a huge PMD then it is refused and nothing changes', () => {
    // 16 KiB pages: a PMD maps 32 MiB, order 11 — past the top order of MAX_ORDER 11.
    const altix = createMachine({ preset: 'altix', maxOrder: 11, clock: 'manual' });
    assert.throws(() => altix.procs.mmap(altix.procs.create().id, PMD, false, undefined, true), (e: unknown) => e instanceof ModelError && /largest block/.test(e.message));
    const i386 = createMachine({ preset: 'i386', clock: 'manual' });
    assert.throws(() => i386.procs.mmap(i386.procs.create().id, PMD, false, undefined, true), (e: unknown) => e instanceof ModelError && /4-byte ptes/.test(e.message));
    const m = thpMachine();
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, PMD);
    assert.throws(() => m.procs.touch(mm, { addr, size: PMD, thp: true, threads: 0 }), ModelError);
    // The refused touch left the mapping as it was: a later plain touch faults 4 KiB pages.
    assert.equal(m.procs.touch(mm, { addr, size: PMD }).faults, HUGE_PAGES);
    assert.equal(m.procs.nrAnonThps, 0);
  });

  test('when touch is given thp then it marks the mapping and faults huge pages', () => {
    const m = thpMachine();
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, PMD);
    assert.equal(m.procs.touch(mm, { addr, size: PMD, thp: true }).faults, 1);
    assert.equal(m.procs.nrAnonThps, 1);
  });
});

describe('thp: a THP fault clears as the kernel\'s folio_zero_user does', () => {
  /** One 2 MiB THP fault on a lone epyc core at the clock the clearing rates were measured at. */
  function clearNs(hugeClear: 'pages' | 'extents'): number {
    const m = createMachine({ preset: 'epyc', mem: '4G', nodes: 1, cpus: 4, clock: 'manual', hugeClear, cost: { boostGHz: 2.42, allCoreGHz: 2.42 } });
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, PMD, true, undefined, true);
    const r = m.procs.touch(id, { addr, size: PMD, thp: true });
    assert.equal(r.faults, 1);
    assert.ok(check(m) === null);
    return r.zeroNs;
  }

  test('when the kernel clears page at a time then a THP fault is 512 clear_page() calls at the 4 KiB rate', () => {
    // 512 × 4096 B / 13.7 B/ns (Milan's 4 KiB-chunk rate), against 2^21 / 15.1 B/ns as one
    // 2 MiB clear_pages() (the multi-page clearing series, not fully preemptible: one call);
    // both plus the deposited pte page, one more page clear.
    const page = 4096 / 13.7;
    assert.ok(Math.abs(clearNs('pages') - (512 * page + page)) < 1e-6, `${clearNs('pages')}`);
    assert.ok(Math.abs(clearNs('extents') - (2 ** 21 / 15.1 + page)) < 1e-6, `${clearNs('extents')}`);
  });

  test('when a 2.6.11 machine faults a THP then the model\'s own clears it as one extent (2.6.11 had no THP)', () => {
    const m = createMachine({ preset: 'x86_64', mem: '256M', cpus: 1, nodes: 1, clock: 'manual', hugeClear: 'pages' });
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, PMD, true, undefined, true);
    const r = m.procs.touch(id, { addr, size: PMD, thp: true });
    // One 2 MiB extent and the deposited pte page.
    assert.equal(r.zeroNs, m.cpuZero.zero(PMD, false).cpuNs + m.cpuZero.zero(4096, false).cpuNs);
  });
});
