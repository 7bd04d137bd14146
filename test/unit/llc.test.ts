// The last-level caches (src/model/llc.ts): what hot zeroing, kscrubd's clears and the
// program's cold touches fill them with, whose lines that evicts, and what touching N cold
// lines costs. Hand-worked on tiny machines; the arithmetic is in the comments.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EPYC_COST, I386_COST, X86_64_COST, ALTIX_COST, createMachine } from '../../src/model';
import type { Machine } from '../../src/model';
import { Llc, coldLinesNs, refetchNs } from '../../src/model/llc';
import { BteZeroDriver, CpuZeroDriver, UncachedZeroDriver } from '../../src/model/zero-drivers';
import { X86_64_PINNED, assertChecked, tickUntilScrubbed, tiny } from '../helpers/model';
import { execute } from '../../src/control/execute';
import { hugetlbFiles } from '../../src/procfs/hugetlb';
import { parseCommand } from '../../src/uapi';

const PAGE = 4096;
/** A 256 KiB cache of 64-byte lines: 4096 lines. */
const SMALL_CACHE = { ...X86_64_PINNED, cacheBytes: 2 ** 18 };
const LINES = 4096;

const close = (actual: number, expected: number, what: string, eps = 1e-9): void =>
  assert.ok(Math.abs(actual - expected) <= eps * Math.max(1, Math.abs(expected)), `${what}: ${actual}, expected ${expected}`);

/** A process on the tiny machine touching `pages` fresh pages, one thread on CPU 0, one line a page. */
function touchPages(m: Machine, pages: number, lines = 1): ReturnType<Machine['procs']['touch']> {
  m.setSysctl('max_prealloc_order', 0);
  const id = m.procs.create().id;
  const { addr } = m.procs.mmap(id, pages * PAGE);
  return m.procs.touch(id, { addr, size: pages * PAGE, lines });
}

describe('llc: the replacement rule', () => {
  test('a resident line survives n lines filled with probability (1 − 1/L)^n', () => {
    const llc = new Llc(2, 1, 2 ** 18, 64);
    assert.equal(llc.lines, LINES);
    // Filling as many lines as the cache has leaves (1 − 1/4096)^4096 = 0.367834… ≈ 1/e.
    close(llc.keepAfter(2 ** 18), (1 - 1 / 4096) ** 4096, 'keep after one capacity');
    assert.ok(Math.abs(llc.keepAfter(2 ** 18) - 0.367834) < 1e-6);
    // A partial line is a whole line filled; nothing filled keeps everything.
    close(llc.keepAfter(1), 1 - 1 / 4096, 'keep after one byte');
    assert.equal(llc.keepAfter(0), 1);
  });

  test('only the working sets of the cache filled lose lines, and retouching brings back what they lost', () => {
    // Four CPUs, two to a cache (a CCX-like pair): CPU 1 shares CPU 0's cache, CPU 2 does not.
    const llc = new Llc(4, 2, 2 ** 18, 64);
    const near = llc.workingSet(1, 2 ** 17);
    const far = llc.workingSet(2, 2 ** 17);
    const huge = llc.workingSet(3, 2 ** 20);
    assert.equal(huge.resident, 2 ** 18, 'a working set larger than the cache starts with the cache full of it');
    llc.clear(0, 2 ** 18);
    // 128 KiB × (1 − 0.367834) = 82,858.7 bytes evicted from the shared cache, none from the other.
    close(near.resident, 2 ** 17 * (1 - 1 / 4096) ** 4096, 'near resident');
    assert.ok(Math.abs(near.evictedBytes - 82_858.7) < 1, `near evicted ${near.evictedBytes}`);
    assert.equal(far.resident, 2 ** 17);
    assert.equal(far.evictedBytes, 0);
    assert.deepEqual([...llc.clearedBytes], [2 ** 18, 0]);
    const missed = llc.retouch(near);
    close(missed, near.evictedBytes, 'missed on retouch');
    assert.equal(near.resident, 2 ** 17);
    assert.equal(llc.retouch(near), 0, 'a second retouch misses nothing');
    llc.release(near);
    llc.clear(0, 2 ** 18);
    assert.equal(near.resident, 2 ** 17, 'a released working set is no longer evicted');
  });
});

describe('llc: a cache-sensitive job running beside the clearing', () => {
  test('it fetches what each fill evicts at once, stays resident, and pays overlapped misses for it', () => {
    const llc = new Llc(2, 1, 2 ** 18, 64);
    const job = llc.workingSet(0, 2 ** 17, true);
    llc.clear(0, 2 ** 18);
    llc.clear(0, 2 ** 18);
    // Each capacity's worth of fill evicts 131,072 × (1 − 0.367834) = 82,858.7 bytes, fetched again.
    close(job.missedBytes, 2 * 2 ** 17 * (1 - (1 - 1 / 4096) ** 4096), 'missed');
    assert.ok(Math.abs(job.missedBytes - 165_717.4) < 1, `${job.missedBytes}`);
    assert.equal(job.resident, 2 ** 17, 'resident again after each fill');
    // 2590 lines on epyc: 100 + 2589 × 4.67153 = 12,194.6 ns.
    close(refetchNs(EPYC_COST, job, 64), 100 + (2589 * 100) / 21.40625, 'refetch time');
  });
});

describe('llc: the patch\'s claim, "avoids the invalidation of the cpu caches"', () => {
  test('hot zeroing in the fault evicts the program\'s working set; faults on prezeroed pages do not', () => {
    // Hot: no page is prezeroed; each of 64 faults clears its 4 KiB page with cached stores,
    // and the first clears the pte page too: 65 × 4096 = 266,240 bytes = 4160 lines filled.
    // 128 KiB resident keeps (1 − 1/4096)^4160 = 0.3621…: 83.6 KiB evicted.
    const hot = tiny({ cost: SMALL_CACHE });
    const wsHot = hot.llc.workingSet(0, 2 ** 17);
    const r1 = touchPages(hot, 64);
    assert.equal(r1.hotZeroed, 64);
    assert.equal(hot.llc.clearedBytes[0], 65 * PAGE);
    assert.equal(hot.llc.touchedBytes[0], 0, 'the program touches lines its CPU just cleared: no cold fill');
    close(wsHot.resident, 2 ** 17 * (1 - 1 / 4096) ** 4160, 'resident after hot faults');
    assert.ok(Math.abs(wsHot.resident / 2 ** 17 - 0.36214) < 1e-4, `kept ${wsHot.resident / 2 ** 17}`);

    // Prezeroed: kscrubd zeroed the free blocks first (on CPU 0, the only CPU: its cached
    // stores fill that cache — before the working set exists). Then the same 64 faults clear
    // nothing; the program's one cold line a page fills 64 × 64 B = 64 lines:
    // (1 − 1/4096)^64 = 0.98450 kept, 2.0 KiB evicted.
    const pre = tiny({ cost: SMALL_CACHE });
    pre.setSysctl('scrub_stop', 0);
    pre.setSysctl('scrub_start', 3);
    tickUntilScrubbed(pre);
    const k = pre.kscrubd[0]!;
    assert.equal(pre.llc.clearedBytes[0], k.pages * PAGE, "kscrubd's CPU clears fill the cache of the CPU they ran on");
    const before = pre.llc.clearedBytes[0]!;
    const wsPre = pre.llc.workingSet(0, 2 ** 17);
    const r2 = touchPages(pre, 64);
    assert.equal(r2.prezeroed, 64);
    assert.equal(pre.llc.clearedBytes[0], before, 'no clearing in the faults');
    assert.equal(pre.llc.touchedBytes[0], 64 * 64);
    close(wsPre.resident, 2 ** 17 * (1 - 1 / 4096) ** 64, 'resident after prezeroed faults');
    // What the program pays to touch its working set again: 83,606.8 bytes against 2,032.3 of misses.
    const hotMiss = hot.llc.retouch(wsHot);
    const preMiss = pre.llc.retouch(wsPre);
    assert.ok(Math.abs(hotMiss - 83_606.8) < 1, `hot: ${hotMiss} bytes missed`);
    assert.ok(Math.abs(preMiss - 2_032.3) < 1, `prezeroed: ${preMiss} bytes missed`);
    assertChecked(hot);
    assertChecked(pre);
  });
});

describe('llc: clearing methods and their pollution', () => {
  test('rep stos fills what it clears; the BTE, non-temporal stores and CLZERO fill nothing', () => {
    assert.equal(new CpuZeroDriver(X86_64_COST, PAGE).fills(65_536), 65_536);
    // Zen stops allocating lines for an extent past its L3 (the 1 GiB rate): no fill.
    assert.equal(new CpuZeroDriver(EPYC_COST, PAGE).fills(2 ** 30), 0);
    assert.equal(new CpuZeroDriver(EPYC_COST, PAGE).fills(2 ** 21), 2 ** 21);
    assert.equal(new BteZeroDriver(ALTIX_COST).fills(), 0);
    assert.equal(new UncachedZeroDriver('clzero', EPYC_COST).fills(), 0);
    assert.equal(new UncachedZeroDriver('nt', { ...EPYC_COST, ntBytesPerNs: 20 }).fills(), 0);
  });

  test('rep stos reads each line for ownership and writes it back, except where Zen elides the allocation', () => {
    assert.equal(new CpuZeroDriver(X86_64_COST, PAGE).busBytes(2 ** 30), 2 ** 31);
    assert.equal(new CpuZeroDriver(EPYC_COST, PAGE).busBytes(2 ** 21), 2 ** 22);
    // Past Milan's 32 MiB L3 the lines are written to memory as stored: no read before.
    assert.equal(new CpuZeroDriver(EPYC_COST, PAGE).busBytes(2 ** 30), 2 ** 30);
    // So 64 cores clearing 1 GiB each share the socket's 165 B/ns a byte once: 64 × 2^30 / 165
    // = 416,481,062 ns each, not twice that (their own rate, 2^30 / 38.1 = 28.2 ms, is far less).
    const ns = new CpuZeroDriver(EPYC_COST, PAGE).zero(2 ** 30, false, 64).wallNs;
    assert.ok(Math.abs(ns - (64 * 2 ** 30) / 165) < 1, `${ns} ns`);
  });

  test('CLZERO clears at its measured rate, each byte over the bus once', () => {
    // 4 MiB at 41.98 B/ns = 99,913.7 ns; the bus (165 B/ns, one crossing a byte) would take 25,420 ns.
    const r = new UncachedZeroDriver('clzero', EPYC_COST).zero(2 ** 22, false);
    close(r.cpuNs, 2 ** 22 / 41.98, 'clzero 4 MiB');
    // Seven CPUs sharing the bus: 7 × 4 MiB / 165 = 177,941 ns, the bus is the limit.
    close(new UncachedZeroDriver('clzero', EPYC_COST).zero(2 ** 22, false, 7).cpuNs, (7 * 2 ** 22) / 165, 'clzero shared');
  });

  const EPYC_SMALL = { preset: 'epyc', mem: '256M', nodes: 1, cpus: 8, maxOrder: 4, clock: 'manual', bootAllocations: false } as const;
  for (const [drivers, pollutes] of [[['cpu'], true], [['clzero', 'cpu'], false]] as const) {
    test(`kscrubd with zero drivers ${drivers.join(',')} ${pollutes ? 'fills' : 'fills no'} cache`, () => {
      const m = createMachine({ ...EPYC_SMALL, zeroDrivers: drivers });
      m.setSysctl('scrub_stop', 0);
      m.setSysctl('scrub_start', 3);
      tickUntilScrubbed(m);
      const k = m.kscrubd[0]!;
      assert.ok(k.pages > 0);
      const filled = m.llc.clearedBytes.reduce((s, b) => s + b, 0);
      assert.equal(filled, pollutes ? k.pages * PAGE : 0);
      assertChecked(m);
    });
  }

  test('a hugetlb fault that clears its 2 MiB page fills the faulting CPU\'s cache; khzerod fills the one it runs on', () => {
    const m = createMachine({ preset: 'x86_64', mem: '256M', nodes: 1, cpus: 2, clock: 'manual', bootAllocations: false });
    const write = (path: string, text: string): void => {
      const f = hugetlbFiles(m).find((x) => x.path === `/sys/kernel/mm/hugepages/hugepages-2048kB/${path}`)!;
      f.write!(m, Buffer.from(text));
    };
    const run = (line: string): string => execute(m, parseCommand(line));
    write('nr_hugepages', '2');
    run('mm new');
    const addr = run('mmap mm=1 size=4M hugetlb=2M').split(' ')[1]!.slice(5);
    run(`touch mm=1 addr=${addr} size=2M`);
    // The first page, cleared in the fault on CPU 0 (the thread's), with cached stores.
    assert.deepEqual([...m.llc.clearedBytes], [2 ** 21, 0]);
    // khzerod zeroes the other on the node's most idle CPU: CPU 1, which ran nothing.
    write('prezero_enabled', '1');
    assert.deepEqual([...m.llc.clearedBytes], [2 ** 21, 2 ** 21]);
  });

  test('a driver the CPU lacks, or whose rate nobody measured, is refused by name', () => {
    assert.throws(() => createMachine({ preset: 'x86_64', zeroDrivers: ['clzero', 'cpu'] }), /zero drivers: "clzero" is not available on x86_64/);
    assert.throws(() => createMachine({ preset: 'epyc', zeroDrivers: ['nt', 'cpu'] }), /zero drivers: "nt" is not available on epyc/);
    // Given a rate (--cost ntBytesPerNs=…) it is registered.
    const m = createMachine({ preset: 'x86_64', mem: '64M', clock: 'manual', zeroDrivers: ['nt', 'cpu'], cost: { ntBytesPerNs: 4 } });
    assert.deepEqual(m.zeroDrivers.map((d) => d.name), ['nt']);
  });
});

describe('llc: memory-level parallelism of cold lines', () => {
  test('touching N cold lines costs one latency and then overlaps as the CPU allows', () => {
    // epyc: 100 ns, 13.7 × 100 / 64 = 21.40625 in flight → 4.67153 ns a further line (the bus,
    // 128 B / 165 B/ns = 0.776 ns, is not the limit): 64 lines = 100 + 63 × 4.67153 = 394.31 ns,
    // against 6,400 ns charged one after another, and 299 ns to clear the page at 13.7 GB/s.
    close(coldLinesNs(EPYC_COST, 64, 64, false), 100 + (63 * 100) / 21.40625, 'epyc 64 lines');
    assert.ok(Math.abs(coldLinesNs(EPYC_COST, 64, 64, false) - 394.31) < 0.01);
    // The other socket: 150 ns latency, 7.007 ns a further line.
    close(coldLinesNs(EPYC_COST, 64, 64, true), 150 + (63 * 150) / 21.40625, 'epyc remote');
    // x86_64 (K8): 8 in flight would give 8.75 ns, but DDR400's 6.4 B/ns moves a 64-byte line
    // twice in 20 ns: 70 + 63 × 20 = 1,330 ns.
    close(coldLinesNs(X86_64_COST, 64, 64, false), 1330, 'x86_64 64 lines');
    // i386: the 100 MHz bus (1.47859 B/ns fitted, counted twice a line) is the limit, not 4 misses
    // in flight (90 / 4 = 22.5 ns): 90 + 127 × 43.284 = 5,587.1 ns.
    close(coldLinesNs(I386_COST, 128, 32, false), 90 + (127 * 64) / 1.47859, 'i386 128 lines');
    // altix: a further line never costs more than a miss alone (62 ns < 66.7 on the bus).
    close(coldLinesNs(ALTIX_COST, 128, 128, false), 128 * 62, 'altix 128 lines');
    assert.equal(coldLinesNs(EPYC_COST, 1, 64, false), 100, 'one line is one latency');
    assert.equal(coldLinesNs(EPYC_COST, 0, 64, false), 0);
  });

  test('a fault on a prezeroed page charges the program the overlapped cold lines', () => {
    // Everything else costs nothing: user time is 64 pages × coldLinesNs(64 lines) exactly.
    const m = tiny({
      cost: {
        ...X86_64_PINNED, lineMissNs: 100, missesInFlight: 10, fsbBytesPerNs: 1e6, userPageNs: 0, lineHitNs: 0,
      },
    });
    m.setSysctl('scrub_stop', 0);
    m.setSysctl('scrub_start', 3);
    tickUntilScrubbed(m);
    const r = touchPages(m, 64, 64);
    assert.equal(r.prezeroed, 64);
    // 100 + 63 × 10 = 730 ns a page.
    close(r.userNs, 64 * 730, 'user time');
  });
});

describe('sched: a small run\'s threads spread over last-level caches', () => {
  test('when threads start on an idle machine then each gets an LLC domain of its node before two share one', () => {
    // Milan: 2 nodes × 64 CPUs, 8 CPUs a CCX (ids consecutive): threads 0 … 7 on CPUs
    // 0, 8, …, 56, the 9th back on CCX 0 (CPU 1), the 65th on the other node (CPU 64).
    const epyc = createMachine({ preset: 'epyc', mem: '4G', clock: 'manual' });
    assert.deepEqual([0, 1, 2, 7, 8, 9, 63, 64, 65].map((i) => epyc.cpus.forThread(i)), [0, 8, 16, 56, 1, 9, 63, 64, 72]);
    // Genoa: 12 CCDs of 8 a node: the 12th thread on CPU 88, the 13th on 1.
    const genoa = createMachine({ preset: 'genoa', mem: '4G', clock: 'manual' });
    assert.deepEqual([1, 11, 12].map((i) => genoa.cpus.forThread(i)), [8, 88, 1]);
    // One L3 a socket (Intel) or a cache per CPU (2005's machines): thread i on CPU i.
    for (const preset of ['skylake-sp', 'altix', 'x86_64'] as const) {
      const m = createMachine({ preset, mem: preset === 'altix' ? '6G' : '4G', clock: 'manual' });
      assert.deepEqual([0, 1, 2, 3].map((i) => m.cpus.forThread(i)), [0, 1, 2, 3], preset);
    }
  });

  test('when two threads fault on epyc then they run on two CCXs, each clearing into its own L3', () => {
    const m = createMachine({ preset: 'epyc', mem: '4G', clock: 'manual' });
    m.setSysctl('max_prealloc_order', 0);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 2 ** 24);
    m.procs.touch(id, { addr, size: 2 ** 24, threads: 2 });
    const busy = Array.from({ length: 16 }, (_, c) => m.cpus.systemNs(c) > 0);
    assert.deepEqual(busy.flatMap((b, c) => (b ? [c] : [])), [0, 8]);
    // Each CCX's L3 took what its CPU cleared: its 8 MiB and the 4 pte pages mapping them
    // (one per 2 MiB), nothing in the other CCXs'.
    assert.deepEqual([...m.llc.clearedBytes.slice(0, 3)], [2 ** 23 + 4 * 4096, 2 ** 23 + 4 * 4096, 0]);
    assertChecked(m);
  });
});
