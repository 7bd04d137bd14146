import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMachine } from '../../src/model';
import type { Machine, MachineOptions } from '../../src/model';
import { PtLocks } from '../../src/model/ptlock';
import { CpuZeroDriver } from '../../src/model/zero-drivers';
import { FLAT, TWO_NODES, assertChecked, faultFingerprint, zoneNamed } from '../helpers/model';

// The SMP mechanisms of the fault path (anon-fault.ts, ptlock.ts, fault-price.ts) one at a time, on tiny machines whose costs
// are pinned to round numbers so that every figure can be worked by hand.
const PAGE = 4096;

/**
 * A process with a pte page already there (task 0 faulted page 0 on CPU 0), then two tasks
 * fault pages 1 and 2 of the same PMD at once, task 0 on CPU 0 and task 1 on `cpu1`.
 */
function contend(cpu1: number, extra: MachineOptions = {}): { m: Machine; sys: number; wall: number } {
  const m = createMachine({ ...TWO_NODES, ...extra });
  m.setSysctl('max_prealloc_order', 0);
  const id = m.procs.create().id;
  const { addr } = m.procs.mmap(id, 16 * PAGE);
  m.procs.faults(id, { addrs: [addr], tasks: [0], writes: [1], cpus: [0], lines: 1 });
  const r = m.procs.faults(id, { addrs: [addr + PAGE, addr + 2 * PAGE], tasks: [0, 1], writes: [1, 1], cpus: [0, cpu1], lines: 1 });
  assert.equal(r.faults, 2);
  assertChecked(m);
  return { m, sys: r.sysNs, wall: r.wallNs };
}

describe('fault SMP: page_table_lock and mm_struct lines', () => {
  test('when two CPUs of one node fault at once then the second spins for the first section and the lines move 50 ns a time', () => {
    // Task 0: trap 100, section 1 (1000) → 1100, its release takes the line back from the copy
    // task 1 spins on (50) → 1150, zero 1 → 1151, then spins behind task 1's section 1 until
    // the grant at 2250 (+50 to pull the line back): 1149, section 2 → 2300.
    // Task 1: trap 100, down_read pulls mm_struct's line from CPU 0 (50), spins 150 → 1200
    // (1050: the release at 1150, the handoff 50), section 1 → 2200, its release (50) → 2250,
    // its per-cpu list refills under zone->lock last held by CPU 0 (50), zero 1 → 2301, takes
    // the free lock (the line from CPU 0: 50), rss's line from CPU 0 (50) → 2401.
    const { sys, wall } = contend(1);
    assert.equal(sys, (100 + 1000 + 50 + 1 + 1149) + (100 + 50 + 1050 + 1000 + 50 + 50 + 1 + 50 + 50));
    assert.equal(wall, 2401);
  });

  test('when the second CPU is on another node then every transfer costs 300 and the pair takes longer', () => {
    // Task 1 on CPU 2: down_read 300, spins 1300 (task 0 releases at 1400, the handoff 300)
    // → 1700, section 1 → 2700, its release invalidates task 0's copy (300) → 3000, its own
    // node's zone (no lock line to pull), zero → 3001, spins behind task 0's section 2 (its
    // release at 3600, the handoff 300: 899) → 3900, rss 300 → 4200.
    // Task 0: section 1 → 1100, release 300 → 1400, zero → 1401, spins until the grant at
    // 3000 + 300 (1899) → 3300, section 2, its release pays the invalidation (300) → 3600.
    const local = contend(1);
    const remote = contend(2);
    assert.equal(remote.sys, (100 + 1000 + 300 + 1 + 1899 + 300) + (100 + 300 + 1300 + 1000 + 300 + 1 + 899 + 300));
    assert.equal(remote.wall, 4200);
    assert.ok(remote.sys > local.sys && remote.wall > local.wall);
  });

  test('when update_mem_hiwater runs in the fault (2.6.11) then the second CPU also pulls hiwater_rss\'s line under the lock', () => {
    // As the first test, but task 1's section 2 stores mm->hiwater_rss (rss just grew past
    // it) on mm_struct's last line, which task 0 wrote last (its own section 2, and the first
    // fault before): one more transfer, 50 ns on the node, 300 from the other; task 1 ends
    // last, so nothing waits behind it.
    const local = contend(1, { hiwaterInFault: true });
    assert.equal(local.sys, (100 + 1000 + 50 + 1 + 1149) + (100 + 50 + 1050 + 1000 + 50 + 50 + 1 + 50 + 50 + 50));
    assert.equal(local.wall, 2401 + 50);
    const remote = contend(2, { hiwaterInFault: true });
    assert.equal(remote.sys, contend(2).sys + 300);
    assert.equal(remote.wall, 4200 + 300);
  });

  test('when update_mem_hiwater runs in the fault but one CPU faults alone then its line never moves', () => {
    const alone = (hiwaterInFault: boolean): number => {
      const m = createMachine({ ...TWO_NODES, hiwaterInFault });
      m.setSysctl('max_prealloc_order', 0);
      const id = m.procs.create().id;
      const { addr } = m.procs.mmap(id, 16 * PAGE);
      return m.procs.faults(id, { addrs: [addr, addr + PAGE, addr + 2 * PAGE], tasks: [0, 0, 0], writes: [1, 1, 1], cpus: [0, 0, 0], lines: 1 }).sysNs;
    };
    assert.equal(alone(true), alone(false));
  });

  test('when two CPUs contend and the handoff is priced by the lock line\'s queue then nothing changes: with one spinner there is no loser', () => {
    // The winner's cmpxchg is served first and pays the one transfer either way; no failed
    // cmpxchg follows it, so no release waits (on the node: 50, across: 300).
    for (const cpu1 of [1, 2]) {
      const half = contend(cpu1);
      const queue = contend(cpu1, { lockLineQueue: true });
      assert.equal(queue.sys, half.sys);
      assert.equal(queue.wall, half.wall);
    }
  });

  test('when three CPUs contend and the handoff is priced by the lock line\'s queue then each loser\'s failed cmpxchg takes the line and the holder\'s release waits for it', () => {
    // Tasks 0, 1, 2 on CPUs 0, 1 (node 0) and 2 (node 1) fault pages 1–3 from t = 1102.
    // Task 0: trap → 1202, takes the free lock, section 1 → 2202; its release invalidates the
    // spinners' copies (farthest: CPU 2, 300) → 2502.
    // Task 1: trap, down_read 50 → 1252, spins. Task 2: trap, down_read 300 → 1502, spins.
    // Release at 2502: CPU 1 (50) wins → 2552 (spun 1300); CPU 2's failed cmpxchg takes the
    // line from CPU 1 (300): the home is busy until 2852. Task 0: zero → 2503, spins.
    // Task 1: section 1 → 3552 (after 2852: no wait), release 300 → 3852; CPU 0 (50) wins →
    // 3902 (spun 1399); CPU 2 takes the line from CPU 0: busy until 4202.
    // Task 0: section 2 (0 ns; rss's line is its own) → 3902, its release waits for CPU 2's
    // cmpxchg (300) and invalidates it (300) → 4502. Sys 100 + 1000 + 300 + 1 + 1399 + 600 = 3400.
    // Task 1: zone->lock's line from CPU 0 (50), zero → 3903, spins; CPU 1 (50) wins at 4502
    // → 4552 (spun 649); CPU 2 takes the line from CPU 1: busy until 4852. Section 2: rss's
    // line from CPU 0 (50) → 4602, release waits 250 and invalidates 300 → 5152.
    // Sys 100 + 50 + 1300 + 1000 + 300 + 50 + 1 + 649 + 50 + 550 = 4050.
    // Task 2: CPU 1 → 2 (300) at 5152 → 5452 (spun 3950), section 1 → 6452, release (nobody
    // spins, the line is its own), its own node's zone, zero → 6453, section 2 with rss's
    // line from CPU 1 (300) → 6753. Sys 100 + 300 + 3950 + 1000 + 1 + 300 = 5651; wall 6753 − 1102.
    // (Half a transfer per other spinner instead: 11,901 and 5,176 — the first two handoffs
    // cost 75 each and nobody's release waits.)
    const three = (extra: MachineOptions): { sys: number; wall: number } => {
      const m = createMachine({ ...TWO_NODES, ...extra });
      m.setSysctl('max_prealloc_order', 0);
      const id = m.procs.create().id;
      const { addr } = m.procs.mmap(id, 16 * PAGE);
      m.procs.faults(id, { addrs: [addr], tasks: [0], writes: [1], cpus: [0], lines: 1 });
      const r = m.procs.faults(id, { addrs: [1, 2, 3].map((i) => addr + i * PAGE), tasks: [0, 1, 2], writes: [1, 1, 1], cpus: [0, 1, 2], lines: 1 });
      assert.equal(r.faults, 3);
      assertChecked(m);
      return { sys: r.sysNs, wall: r.wallNs };
    };
    assert.deepEqual(three({ lockLineQueue: true }), { sys: 3400 + 4050 + 5651, wall: 5651 });
    assert.deepEqual(three({}), { sys: 11_901, wall: 5176 });
  });

  test('when one CPU faults alone then nothing spins and no line moves', () => {
    const m = createMachine(TWO_NODES);
    m.setSysctl('max_prealloc_order', 0);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 16 * PAGE);
    m.procs.faults(id, { addrs: [addr], tasks: [0], writes: [1], cpus: [0], lines: 1 });
    const r = m.procs.faults(id, { addrs: [addr + PAGE], tasks: [0], writes: [1], cpus: [0], lines: 1 });
    assert.equal(r.sysNs, 100 + 1000 + 1);
  });
});

describe('fault SMP: the nearest spinner', () => {
  /** 32 threads, one per CPU of a 16-node altix, fault 2,048 pages: most of them spin on the mm's lock. */
  function crowd(): string {
    const m = createMachine({ preset: 'altix', nodes: 16, cpus: 32, mem: '4G', zeroDrivers: ['cpu'], clock: 'manual' });
    m.setSysctl('max_prealloc_order', 0);
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, 2048 * 16384);
    const r = m.procs.touch(id, { addr, size, threads: 32 });
    assert.equal(r.faults, 2048);
    assertChecked(m);
    return JSON.stringify(r) + faultFingerprint(m);
  }

  test('when 8 or more spin then a release finds its nearest spinner among its node\'s CPUs, the same one the walk down the list finds', () => {
    const searched = crowd();
    const min = PtLocks.nearSearchMin;
    PtLocks.nearSearchMin = Number.POSITIVE_INFINITY;
    let walked: string;
    try {
      walked = crowd();
    } finally {
      PtLocks.nearSearchMin = min;
    }
    // Every grant's winner, hence every spin time, clock and page placement, is the same.
    assert.equal(searched, walked);
  });
});

describe('fault SMP: the node bus', () => {
  test('when two CPUs of a node zero at once then each gets half the bus: every byte crosses it twice', () => {
    // x86_64: 3.2 B/ns alone; the 6.4 B/ns bus carries 2 bytes per byte zeroed, so two CPUs
    // zeroing together get 1.6 B/ns each: 16 KiB in 10,240 ns instead of 5,120.
    const cpu = new CpuZeroDriver(createMachine({ preset: 'x86_64', mem: '64M', maxOrder: 4, clock: 'manual' }).cost, PAGE);
    assert.equal(cpu.zero(16384, false, 1).cpuNs, 5_120);
    assert.equal(cpu.zero(16384, false, 2).cpuNs, 10_240);
    assert.equal(cpu.zero(16384, false, 4).cpuNs, 20_480);
  });

  test('when two threads zero hot on one node then their zeroing takes longer than on two nodes', () => {
    // The altix bus (3.84 B/ns) is not filled by one CPU's 1.56 B/ns of stores (3.12 B/ns of
    // traffic), but is by two: then each zeroes at 0.96 B/ns.
    const zeroNsPerPage = (cpus: number[]): number => {
      const m = createMachine({ preset: 'altix', mem: '1G', nodes: 2, cpus: 4, clock: 'manual', zeroDrivers: ['cpu'] });
      m.setSysctl('max_prealloc_order', 0);
      const id = m.procs.create().id;
      const { addr } = m.procs.mmap(id, 64 * 16384);
      const addrs = Array.from({ length: 64 }, (_, i) => addr + i * 16384);
      const r = m.procs.faults(id, { addrs, tasks: addrs.map((_, i) => i % 2), writes: addrs.map(() => 1 as const), cpus, lines: 1 });
      // (zeroNs includes the pte page's zeroing: one page more than hotZeroed counts.)
      return r.zeroNs / (r.hotZeroed + 1);
    };
    const shared = zeroNsPerPage([0, 1]);
    const apart = zeroNsPerPage([0, 2]);
    assert.ok(Math.abs(apart - 16384 / 1.56) < 1, `apart: ${apart}`);
    // Sharing starts when the second CPU's zeroing overlaps the first's: nearly every page.
    assert.ok(shared > apart * 1.5 && shared <= (2 * 2 * 16384) / 3.84 + 1, `shared ${shared} vs apart ${apart}`);
  });
});

describe('fault SMP: 2.6.11 per-cpu batches', () => {
  test('when the altix boots then each node zone has batch 4 (256 KiB of 16 KiB pages, / 4), hot low 8 and high 24', () => {
    const m = createMachine({ preset: 'altix', clock: 'manual' });
    const hot = zoneNamed(m, 0, 'DMA').pageset[0]![0]!;
    const cold = zoneNamed(m, 0, 'DMA').pageset[0]![1]!;
    assert.deepEqual([hot.batch, hot.low, hot.high], [4, 8, 24]);
    assert.deepEqual([cold.batch, cold.low, cold.high], [4, 0, 8]);
  });

  test('when the x86_64 boots then DMA has batch 1 and DMA32 batch 16 (256 KiB of 4 KiB pages, / 4)', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    assert.equal(zoneNamed(m, 0, 'DMA').pageset[0]![0]!.batch, 1);
    const dma32 = zoneNamed(m, 0, 'DMA32').pageset[0]![0]!;
    assert.deepEqual([dma32.batch, dma32.low, dma32.high], [16, 32, 96]);
  });
});

/**
 * Two threads on a one-node, two-CPU altix touch 256 MiB while kscrubd zeroes the 512 MiB an
 * earlier process left: every CPU of its node runs a thread. Returns the touch and how much
 * CPU time kscrubd took meanwhile.
 */
function touchWhileKscrubdWorks(): { m: Machine; r: ReturnType<Machine['procs']['touch']>; stolen: number } {
  const m = createMachine({ preset: 'altix', mem: '1G', nodes: 1, cpus: 2, clock: 'manual', zeroDrivers: ['cpu'] });
  m.setSysctl('max_prealloc_order', 0);
  m.setSysctl('scrub_stop', 2);
  const id = m.procs.create().id;
  const { addr, size } = m.procs.mmap(id, 512 * 2 ** 20);
  m.procs.touch(id, { addr, size, threads: 2 });
  m.procs.exit(id);
  m.setSysctl('scrub_start', 5); // wakes kscrubd: half the node is dirty
  const id2 = m.procs.create().id;
  const map = m.procs.mmap(id2, 256 * 2 ** 20);
  const sys0 = m.kscrubd[0]!.cpuNs;
  const r = m.procs.touch(id2, { addr: map.addr, size: map.size, threads: 2 });
  assertChecked(m);
  return { m, r, stolen: m.kscrubd[0]!.cpuNs - sys0 };
}

describe('fault SMP: kscrubd and busy CPUs', () => {
  test('when every CPU of its node runs a thread then kscrubd waits, and takes a CPU between faults in timeslice turns', () => {
    const { r, stolen } = touchWhileKscrubdWorks();
    // kscrubd ran during the touch (both CPUs busy): it took CPU time, and the threads' wall
    // time exceeds what each used of its CPU.
    assert.ok(stolen > 0, 'kscrubd zeroed during the touch');
    assert.ok(r.wallNs * 2 > r.userNs + r.sysNs, 'the threads waited for their CPUs');
  });

  test('when kscrubd holds one thread’s CPU for its timeslice then the other thread never waits that long for a lock', () => {
    // Before: the preempted thread ran its next fault at once, at the time kscrubd gave the
    // CPU back (up to 100 ms on), and the locks it took there (zone->lock, lru_lock) were
    // busy "until then" for the thread still running: it spun under page_table_lock, and
    // the other spun behind it, for most of a timeslice.
    const { r, stolen } = touchWhileKscrubdWorks();
    assert.ok(stolen > 100e6, 'kscrubd took at least a timeslice’s worth of a CPU');
    // Per fault, the system time besides hot zeroing stays that of two threads contending
    // (about a µs here), however long kscrubd kept a CPU: it was 54 µs with those waits.
    const rest = (r.sysNs - r.zeroNs) / r.faults;
    assert.ok(rest < 5_000, `${rest.toFixed(0)} ns of system time a fault besides zeroing`);
  });
});

describe('fault SMP: contention never makes work cheaper', () => {
  /** CPU time (user + system) of faulting `bytes` on a settled machine with `threads` threads. */
  const cpuNs = (preset: 'i386' | 'altix', bytes: number, threads: number): number => {
    const m = createMachine({ preset, clock: 'manual', zeroDrivers: ['cpu'] });
    m.setSysctl('max_prealloc_order', 0);
    m.setSysctl('scrub_stop', 2);
    m.setSysctl('scrub_start', 5);
    m.advanceTo(m.now + 30e9);
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, bytes);
    const r = m.procs.touch(id, { addr, size, threads });
    assert.equal(r.prezeroed, r.faults, 'every fault prezeroed: the runs differ only in contention');
    assertChecked(m);
    return r.userNs + r.sysNs;
  };

  // A thread that reaches spin_lock just after a release, while others spin, neither wins
  // that round nor gets the lock before it asked for it (once, it did: two threads of the
  // i386 took less CPU time than one).
  for (const [preset, bytes, threads] of [['i386', 16 * 2 ** 20, 2], ['altix', 256 * 2 ** 20, 4], ['altix', 256 * 2 ** 20, 8]] as const) {
    test(`when ${threads} threads of one mm fault on ${preset} then they take more CPU time than one thread`, () => {
      assert.ok(cpuNs(preset, bytes, threads) > cpuNs(preset, bytes, 1));
    });
  }
});

describe('fault SMP: split ptlocks (today’s kernels)', () => {
  /**
   * Wall of two tasks faulting at once, on CPUs 0 and 1 of one node, one page each at
   * `offsets` (bytes into a mapping whose first two PMDs already have pte pages).
   */
  const pair = (preset: 'x86_64' | 'epyc', offsets: [number, number]): number => {
    const m = createMachine({ preset, mem: '1G', nodes: 1, cpus: 2, maxOrder: 4, clock: 'manual', bootAllocations: false, cost: FLAT });
    m.setSysctl('max_prealloc_order', 0);
    const id = m.procs.create().id;
    const PMD = 512 * PAGE;
    const { addr } = m.procs.mmap(id, 4 * PMD);
    const base = Math.ceil(addr / PMD) * PMD;
    m.procs.faults(id, { addrs: [base, base + PMD], tasks: [0, 0], writes: [1, 1], cpus: [0], lines: 1 });
    const r = m.procs.faults(id, { addrs: offsets.map((o) => base + o), tasks: [0, 1], writes: [1, 1], cpus: [0, 1], lines: 1 });
    assert.equal(r.faults, 2);
    assertChecked(m);
    return r.wallNs;
  };
  const SAME: [number, number] = [PAGE, 2 * PAGE];
  const APART: [number, number] = [PAGE, 512 * PAGE + PAGE];

  test('when two threads fault in different 2 MiB ranges then each takes its own pte page lock: neither waits for the other’s section', () => {
    assert.equal(createMachine({ preset: 'epyc', mem: '1G', clock: 'manual' }).config.splitPtlocks, true);
    // The second thread's section 1 (1000) no longer queues behind the first's.
    assert.ok(pair('epyc', APART) < pair('epyc', SAME) - 900, `${pair('epyc', APART)} vs ${pair('epyc', SAME)}`);
  });

  test('when the kernel is 2.6.11 then one page_table_lock serves the whole mm, wherever the faults are', () => {
    assert.equal(createMachine({ preset: 'x86_64', mem: '1G', clock: 'manual' }).config.splitPtlocks, false);
    assert.equal(pair('x86_64', APART), pair('x86_64', SAME));
  });
});

describe('a new thread on another node waits for the balancer (no balance on fork before 2.6.12)', () => {
  // The altix's 2.6.10/2.6.11 kernel starts a thread on its parent's CPU; an idle CPU of another
  // node pulls it in its node-domain idle balance, every 320 ms on an idle machine
  // (SD_NODE_INIT max_interval): half that, 160 ms, on average.
  const ALTIX: MachineOptions = { preset: 'altix', mem: '256M', clock: 'manual', bootAllocations: false, cost: FLAT, hiwaterInFault: false };
  const SIXTEEN_K = 16384;
  function faultsOn(cpus: number[], preset: MachineOptions = ALTIX): { first: { sys: number; wall: number }; again: { sys: number; wall: number } } {
    const m = createMachine(preset);
    m.setSysctl('max_prealloc_order', 0);
    const ps = preset.preset === 'altix' ? SIXTEEN_K : PAGE;
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 64 * ps);
    const tasks = cpus.map((_, i) => i);
    const run = (k: number): { sys: number; wall: number } => {
      const r = m.procs.faults(id, { addrs: cpus.map((_, i) => addr + (k * cpus.length + i) * ps), tasks, writes: cpus.map(() => 1), cpus, lines: 1 });
      assert.equal(r.faults, cpus.length);
      return { sys: r.sysNs, wall: r.wallNs };
    };
    const first = run(0);
    const again = run(1);
    assertChecked(m);
    return { first, again };
  }

  test('when a process\'s new thread runs on another node than its parent then its first fault starts 160 ms later, as wall time, not CPU time', () => {
    const { first, again } = faultsOn([0, 2]);
    assert.ok(first.wall >= 160e6 && first.wall < 161e6, `wall ${first.wall}`);
    assert.ok(first.sys < 1e6, `sys ${first.sys}: the wait is not CPU time`);
    // Placed once, the thread stays: its next faults start at once.
    assert.ok(again.wall < 1e6, `again ${again.wall}`);
  });

  test('when the new thread runs on its parent\'s node, or the kernel balances on fork, then it starts at once', () => {
    assert.ok(faultsOn([0, 1]).first.wall < 1e6);
    assert.ok(faultsOn([0, 2], TWO_NODES).first.wall < 1e6);
    assert.ok(faultsOn([0, 2], { ...ALTIX, forkBalance: true }).first.wall < 1e6);
  });
});
