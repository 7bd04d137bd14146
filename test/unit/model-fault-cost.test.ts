import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMachine } from '../../src/model';
import type { Machine, MachineOptions, TouchResult } from '../../src/model';
import { ptePfn } from '../../src/model/pte';
import { assertChecked, tickUntilScrubbed, zoneNamed } from '../helpers/model';

// Model outputs that docs/calibration.md and DESIGN §1 (Time and cost) promise. Everything
// runs on the manual clock, so these are exact and deterministic; no wall-clock timing.
const GIB = 2 ** 30;

/** Lameter's pft setup: altix, CPU zeroing only, no anticipatory prefault. */
function pftMachine(extra: MachineOptions = {}): Machine {
  // The rows' 2.6.10 kernels, as calibrate runs them: no update_mem_hiwater in the fault.
  const m = createMachine({ preset: 'altix', zeroDrivers: ['cpu'], clock: 'manual', hiwaterInFault: false, ...extra });
  m.setSysctl('max_prealloc_order', 0);
  return m;
}

/**
 * One pft repetition: a new process maps `bytes`, its threads write one line a page, it exits.
 * pft times the process's life, so the exit (CPU 0's system time, and the clock) counts too.
 */
function pft(m: Machine, bytes: number, threads: number): TouchResult {
  const id = m.procs.create().id;
  const { addr, size } = m.procs.mmap(id, bytes);
  const r = m.procs.touch(id, { addr, size, threads, lines: 1 });
  assert.equal(r.pages, bytes / m.pageSize);
  assert.equal(r.oom, 0);
  const exit = m.procs.exitTimed(id);
  return { ...r, sysNs: r.sysNs + exit.sysNs, wallNs: r.wallNs + exit.wallNs };
}

const perFaultUs = (r: TouchResult): number => (r.userNs + r.sysNs) / r.pages / 1000;
const fltPerCpuSec = (r: TouchResult): number => r.pages / ((r.userNs + r.sysNs) / 1e9);
const faultPerWallSec = (r: TouchResult): number => r.pages / (r.wallNs / 1e9);

function within(actual: number, target: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - target) <= target * tol,
    `${what}: ${actual.toFixed(3)} is not within ±${tol * 100}% of ${target} (${(((actual - target) / target) * 100).toFixed(1)}%)`);
}

/** pft over `reps` fresh processes: summed user, system and wall ns. */
function pftReps(m: Machine, bytes: number, reps: number): { pages: number; cpuNs: number; wallNs: number; hot: number } {
  let cpuNs = 0;
  let wallNs = 0;
  let hot = 0;
  for (let i = 0; i < reps; i++) {
    const r = pft(m, bytes, 1);
    cpuNs += r.userNs + r.sysNs;
    wallNs += r.wallNs;
    hot += r.hotZeroed;
  }
  return { pages: (bytes * reps) / m.pageSize, cpuNs, wallNs, hot };
}

function settled(extra: MachineOptions = {}): Machine {
  const m = pftMachine(extra);
  m.setSysctl('scrub_start', 5);
  m.setSysctl('scrub_stop', 2);
  tickUntilScrubbed(m, 1e8);
  return m;
}

describe('fault cost: calibration rows of docs/calibration.md (altix, cpu zeroing, no prefault)', () => {
  test('when kscrubd is off (base, 4 GiB × 3) then flt/cpu/s ≈ 69,585 and every fault zeroes hot', () => {
    const r = pftReps(pftMachine(), 4 * GIB, 3);
    assert.equal(r.hot, r.pages);
    // (0.146 + 11.155) s over 786,432 pages: ≈ 14.4 µs a fault, most of it zeroing remote memory
    // (node 0 holds only 1.5 GiB of the 4 GiB).
    within(r.pages / (r.cpuNs / 1e9), 69584.896, 0.1, 'base flt/cpu/s');
    within(r.pages / (r.wallNs / 1e9), 69566.852, 0.1, 'base fault/wsec');
  });

  test('when kscrubd has settled (patched, 4 GiB × 3) then the zeroed pool runs dry partway and flt/cpu/s ≈ 268,078', () => {
    const r = pftReps(settled(), 4 * GIB, 3);
    assert.ok(r.hot > 0 && r.hot < r.pages / 4, `some faults (${r.hot}) zero hot once the pool runs dry`);
    within(r.pages / (r.cpuNs / 1e9), 268077.996, 0.1, 'patched 4 GiB flt/cpu/s');
  });

  test('when kscrubd has settled (patched, 1 GiB × 1) then a fault costs ≈ 1.9 µs', () => {
    const m = settled();
    const r = pft(m, GIB, 1);
    assert.equal(r.prezeroed, r.pages, 'every fault found a prezeroed page');
    // patched 1 GiB × 1: (0.014 + 0.110) s / 65,536 pages = 1.89 µs.
    within(perFaultUs(r), 1.9, 0.1, 'patched µs per fault');
    assertChecked(m);
  });
});

/** flt/cpu/s falls at every step up in threads. */
function assertFltPerCpuFalls(runs: readonly { threads: number; r: Parameters<typeof fltPerCpuSec>[0] }[]): void {
  for (let i = 1; i < runs.length; i++) {
    const a = runs[i - 1]!;
    const b = runs[i]!;
    assert.ok(fltPerCpuSec(b.r) < fltPerCpuSec(a.r),
      `flt/cpu/s ${b.threads} threads (${fltPerCpuSec(b.r).toFixed(0)}) < ${a.threads} (${fltPerCpuSec(a.r).toFixed(0)})`);
  }
}

describe('fault cost: threads of one process', () => {
  test('when threads rise 1, 2, 4, 8 with hot zeroing then flt/cpu/s falls and fault/wsec grows far less than the threads', () => {
    // Two CPUs of a node zeroing at once share its bus; more threads spin on page_table_lock
    // and pull mm_struct's lines across nodes.
    const runs = [1, 2, 4, 8].map((threads) => ({ threads, r: pft(pftMachine(), GIB, threads) }));
    assertFltPerCpuFalls(runs);
    for (let i = 1; i < runs.length; i++) {
      const a = runs[i - 1]!;
      const b = runs[i]!;
      if (b.threads <= 4) {
        assert.ok(faultPerWallSec(b.r) > faultPerWallSec(a.r),
          `fault/wsec ${b.threads} threads (${faultPerWallSec(b.r).toFixed(0)}) > ${a.threads} (${faultPerWallSec(a.r).toFixed(0)})`);
      }
    }
    const one = runs[0]!.r;
    assert.ok(Math.abs(one.wallNs - (one.userNs + one.sysNs)) < 1, 'one thread: wall time is its CPU time');
    // By eight threads page_table_lock is saturated: the rate stops growing.
    const eight = faultPerWallSec(runs[3]!.r);
    assert.ok(eight > 2 * faultPerWallSec(one) && eight < 4 * faultPerWallSec(one), `eight threads fault 2–4× as fast as one (${eight.toFixed(0)})`);
  });

  test('when threads rise on a settled machine then flt/cpu/s falls: what is left of a fault is mostly serialized', () => {
    // All threads fault at once (a kernel that balances on fork): on the altix's own kernel the
    // threads bound for other nodes start 160 ms late, after a 1 GiB settled run's first two
    // are done, and 4 threads then contend as 2 do.
    const runs = [1, 2, 4, 8].map((threads) => ({ threads, r: pft(settled({ forkBalance: true }), GIB, threads) }));
    assertFltPerCpuFalls(runs);
    assert.ok(faultPerWallSec(runs[3]!.r) < 2 * faultPerWallSec(runs[0]!.r), 'eight threads fault less than twice as fast as one');
  });

  test('when the same threaded run is repeated on a fresh machine then its figures are identical', () => {
    const a = pft(pftMachine(), GIB / 16, 4);
    const b = pft(pftMachine(), GIB / 16, 4);
    assert.deepEqual(a, b);
  });
});

describe('fault cost: NUMA', () => {
  // Two nodes of 64 MiB, one CPU each; no prefault, kscrubd off: one hot-zeroed page a fault.
  const NUMA: MachineOptions = { preset: 'x86_64', mem: '128M', nodes: 2, cpus: 2, maxOrder: 4, clock: 'manual' };

  function oneFault(m: Machine): { r: TouchResult; node: number } {
    m.setSysctl('max_prealloc_order', 0);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, m.pageSize);
    const r = m.procs.fault(id, addr);
    assert.equal(r.faults, 1);
    assert.equal(r.hotZeroed, 1);
    // The mapping starts a PMD (a pte page) apart from anything else: its page is entry 0.
    const pte = m.procs.ptePeek(m.procs.get(id), addr)![0]!;
    return { r, node: m.zoneOf(ptePfn(pte)).node };
  }

  test('when node 0 is full then a fault on cpu 0 takes a node-1 page and costs more system time', () => {
    const local = createMachine(NUMA);
    const l = oneFault(local);
    assert.equal(l.node, 0);

    const remote = createMachine(NUMA);
    // Fill node 0 down to its low watermarks with raw pages, so cpu 0's faults fall back.
    for (;;) {
      const [h] = remote.raw.alloc(0, false, 0, 1);
      if (remote.raw.get(h!)!.zone.node !== 0) {
        remote.raw.free([h!]);
        break;
      }
    }
    // A refill moves a batch past the watermark check: each zone ends within a batch of low.
    for (const z of remote.nodeZones[0]!) {
      const batch = z.pageset[0]![0]!.batch;
      assert.ok(z.freePages <= z.watermarkLow && z.freePages > z.watermarkLow - batch, `node 0 ${z.name} is at low`);
    }
    const f = oneFault(remote);
    assert.equal(f.node, 1);
    assertChecked(remote);

    // Hand-worked (x86_64 costs, remoteFactor 1.4): trap 250 + handler 100 + ptl 40 + ptl 60, and
    // two __GFP_ZERO pages (the pte page, then the page), each pcp 50 + struct page 3 × 70
    // + clear_page 1280, plus zone->lock 30 × batch when the per-cpu list is refilled. 2.6.11
    // batches: node 0's DMA32 (12,288 present pages) 3, low 6; node 1's DMA32 (16,384) 4, low 8:
    // both allocations find the list at or below low and refill. Remote: lines and zeroing × 1.4.
    // One CPU, alone on its bus: no line moves, no bus is shared.
    assert.equal(zoneNamed(local, 0, 'DMA32').pageset[0]![0]!.batch, 3);
    assert.equal(zoneNamed(remote, 1, 'DMA32').pageset[0]![0]!.batch, 4);
    const page = (remote: number, refill: number): number => 50 + 210 * remote + 30 * refill + 1280 * remote;
    assert.equal(l.r.sysNs, 250 + 100 + 40 + 60 + page(1, 3) + page(1, 3));
    assert.ok(Math.abs(f.r.sysNs - (250 + 100 + 40 + 60 + page(1.4, 4) + page(1.4, 4))) < 1e-6, `remote sys ${f.r.sysNs}`);
    assert.ok(f.r.sysNs > l.r.sysNs);
  });
});
