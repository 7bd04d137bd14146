// The owners of the shared resources, each on a tiny machine whose costs are pinned to round
// numbers (helpers' FLAT: lines move 50 ns within a node, 300 between nodes) so that every
// figure is worked by hand: the spinlock, zone->lock between kscrubd, a fault and munmap,
// the node's bus between zeroing CPUs and the program, CONFIG_PREEMPT, and the CPUs' time
// accounting.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMachine, NOT_ZEROED, PCP_ZEROED, ZEROED } from '../../src/model';
import type { Machine, MachineOptions } from '../../src/model';
import { Cacheline } from '../../src/model/cacheline';
import { SpinLock } from '../../src/model/spinlock';
import { FLAT, Holder, TINY, TWO_NODES, assertChecked, perCpu, zeroEverything, zoneNamed } from '../helpers/model';

const PAGE = 4096;

/** Every free page of `node` zeroed but one dirty order-3 block in its DMA32 zone: kscrubd's only work there. */
function oneDirtyBlock(m: Machine, node: number): void {
  for (const z of m.nodeZones[node]!) zeroEverything(z);
  const z = zoneNamed(m, node, 'DMA32');
  const h = new Holder(m);
  h.free(z, h.take(z, 3, ZEROED), 3, NOT_ZEROED);
  m.setSysctl('scrub_stop', 0);
}

describe('owners: the spinlock', () => {
  test('when two CPUs of a node take it in turn then the second spins to the release and pulls the line 50 ns; from another node 300 ns', () => {
    const m = createMachine(TWO_NODES);
    const l = new SpinLock(new Cacheline());
    // CPU 0 at 0, 100 ns of work: nobody had the line, free at 100.
    assert.equal(l.hold(m.lines, 0, 0, 1, 100), 100);
    // CPU 1 at 40: spins 60 to the release, pulls the line from CPU 0 (50), works 100: 210, free at 250.
    assert.equal(l.hold(m.lines, 1, 40, 1, 100), 210);
    assert.equal(l.freeAt, 250);
    // CPU 2 (node 1) at 250: no wait, the line from node 0 (300), 100: free at 650.
    assert.equal(l.hold(m.lines, 2, 250, 1, 100), 400);
    // CPU 2 again at 1000: the line is its own.
    assert.equal(l.hold(m.lines, 2, 1000, 1, 100), 100);
    // Two lines of the last holder's (zone->lru_lock's list head and struct page), CPU 3 at 2000: 2 × 50 + 100.
    assert.equal(l.hold(m.lines, 3, 2000, 2, 100), 200);
    assert.deepEqual([l.freeAt, l.line.cpu], [2200, 3]);
  });
});

describe('owners: zone->lock', () => {
  /**
   * Node 0 all zeroed but one dirty order-3 block; zone->lock sections cost 1000 ns a page
   * (buddyPerPageNs), kscrubd wakes 10 µs after scrub_start and zeroes at 1 B/ns (32 µs for the
   * block). A thread on CPU 1 faults one page at 10500.
   */
  function lockRace(kscrubd: boolean): { m: Machine; sys: number; wall: number; batch: number } {
    const m = createMachine({ ...TWO_NODES, cost: { ...FLAT, buddyPerPageNs: 1000, wakeupNs: 10_000, zeroBytesPerNs: 1, zeroHugeBytesPerNs: 1 } });
    m.setSysctl('max_prealloc_order', 0);
    oneDirtyBlock(m, 0);
    if (kscrubd) m.setSysctl('scrub_start', 3);
    m.tick(10_500);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 16 * PAGE);
    const r = m.procs.faults(id, { addrs: [addr], tasks: [0], writes: [1], cpus: [1], lines: 1 });
    assert.deepEqual([r.faults, r.prezeroed, r.hotZeroed], [1, 1, 0]);
    assertChecked(m);
    const batch = zoneNamed(m, 0, 'DMA32').pageset[1]![PCP_ZEROED]!.batch;
    return { m, sys: r.sysNs, wall: r.wallNs, batch };
  }

  test('when kscrubd holds zone->lock to take its block then a fault refilling from that zone spins until it is free', () => {
    // kscrubd (node 0's most idle CPU, 0) takes the block at 10000 under zone->lock: 1000 ns, free at 11000.
    // The fault on CPU 1: trap 100 → 10600; its pte page comes from CPU 1's empty zeroed list:
    // a refill of `batch` pages under zone->lock — it spins 400 to 11000, pulls the line from
    // CPU 0 (50), moves the pages (batch × 1000); the page itself comes off that list; the
    // first lock section (ptlCheckNs 1000). Nothing else costs here.
    const { sys, wall, batch, m } = lockRace(true);
    assert.ok(batch >= 2, `a refill brings the pte page and the page (batch ${batch})`);
    assert.equal(sys, 100 + 400 + 50 + batch * 1000 + 1000);
    assert.equal(wall, sys);
    assert.equal(m.kscrubd[0]!.cpu, 0);
    // Without kscrubd the same fault finds the lock free and its line nowhere.
    const alone = lockRace(false);
    assert.equal(alone.sys, 100 + batch * 1000 + 1000);
    assert.equal(sys - alone.sys, 400 + 50);
  });

  test('when kscrubd gives a zeroed block back then it takes zone->lock again, and its CPU is busy for it', () => {
    const { m } = lockRace(true);
    m.tick(1e6);
    const k = m.kscrubd[0]!;
    assert.equal(k.blocks, 1);
    // Taken 10000 … 11000, zeroed 11000 … 43768, given back 43768 … 44768 (the fault's refill
    // left the line on CPU 1: + 50); the next pass finds nothing and kscrubd sleeps at 43768.
    assert.equal(k.lastBurstEnd, 11_000 + 32_768);
    assert.equal(k.cpuNs, 1000 + 32_768 + 50 + 1000);
    assert.equal(m.cpus.systemNs(0), k.cpuNs);
    assert.equal(zoneNamed(m, 0, 'DMA32').lock.freeAt, 11_000 + 32_768 + 1050);
  });

  /**
   * A thread on CPU 1 (node 0) writes 64 pages (refilling its per-cpu list under zone->lock,
   * so the lock's line is CPU 1's); then munmap frees them on `cpu`, whose hot list drains
   * `batch` pages to the buddy lists under the same lock each time it passes `high`.
   */
  function munmapAfterFaults(cpu: number): { sys: number; freed: number; drained: number } {
    const m = createMachine({ ...TWO_NODES, cost: { ...FLAT, buddyPerPageNs: 10, freePageNs: 7 } });
    m.setSysctl('max_prealloc_order', 0);
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, 64 * PAGE);
    m.procs.faults(id, { addrs: Array.from({ length: 64 }, (_, i) => addr + i * PAGE), tasks: Array(64).fill(0), writes: Array(64).fill(1), cpus: [1], lines: 1 });
    assert.equal(zoneNamed(m, 0, 'DMA32').lock.line.cpu, 1);
    const drained0 = m.vm.pcpDrainPages;
    const r = m.procs.munmapTimed(id, addr, size, cpu);
    assertChecked(m);
    return { sys: r.sysNs, freed: r.freed, drained: m.vm.pcpDrainPages - drained0 };
  }

  test('when munmap drains per-cpu pages after a fault storm then its zone->lock section pulls the line from the faulting CPU', () => {
    // Per page freed 7 ns; per page drained 10 ns under zone->lock, in one section a zone
    // (all 64 pages are node 0's DMA32), plus the lock's line: none from CPU 1 itself, 50 from
    // CPU 0 (same node), 300 from CPU 2 (node 1; its pageset in node 0's zone drains there).
    const own = munmapAfterFaults(1);
    const near = munmapAfterFaults(0);
    const far = munmapAfterFaults(2);
    for (const r of [own, near, far]) {
      assert.equal(r.freed, 64);
      assert.ok(r.drained > 0, 'the hot list passed high');
    }
    assert.equal(own.sys, 64 * 7 + own.drained * 10);
    assert.equal(near.sys, 64 * 7 + near.drained * 10 + 50);
    assert.equal(far.sys, 64 * 7 + far.drained * 10 + 300);
  });
});

describe('owners: the node bus', () => {
  /** Stores clear at 8 B/ns, the node's bus carries 16 B/ns: alone, a clear is at the bus's limit. */
  const BUS = { ...FLAT, zeroBytesPerNs: 8, zeroHugeBytesPerNs: 8, zeroGiantBytesPerNs: 8, fsbBytesPerNs: 16 };

  test('when two CPUs of a node clear pages and the program misses lines there then each waits for the other’s bytes', () => {
    const m = createMachine({ ...TWO_NODES, cost: BUS });
    const bus = m.bus;
    const bytesLeft = (node: number, t: number, cpu: number): number => {
      bus.io[0] = t;
      bus.bytesLeft(node, cpu);
      return bus.io[0];
    };
    const clear = (cpu: number, t: number): number => {
      bus.io[0] = t;
      return m.cpuZero.zero(8 * PAGE, false, bus.zeroingOn(0, cpu) + 1, bytesLeft(0, t, cpu)).cpuNs;
    };
    const zeroing = (cpu: number, from: number, until: number, bytes: number): void => {
      bus.io.set([from, until, bytes]);
      bus.zeroing(cpu);
    };
    const misses = (cpu: number, t: number, bytes: number, ownNs: number): number => {
      bus.io[0] = t;
      bus.io[1] = ownNs;
      bus.misses(cpu, bytes);
      return bus.io[0];
    };
    // CPU 0 clears 32 KiB at 0, alone: stores 32768 / 8 = 4096 ns, the bus 2 × 32768 / 16 = 4096:
    // the clear moves 65536 B in 4096 ns, the whole bus.
    assert.equal(clear(0, 0), 4096);
    zeroing(0, 0, 4096, 2 * 8 * PAGE);
    // The program on CPU 1 misses a page's 64 lines at 1000 (256 ns on a bus of its own): the
    // clear moves 65536 × 256 / 4096 = 4096 B meanwhile, 4096 / 16 = 256 ns more: 512.
    // CPU 2 is on node 1's bus: 256.
    assert.equal(misses(1, 1000, PAGE, 256), 512);
    assert.equal(misses(2, 1000, PAGE, 256), 256);
    // Misses that end as the clear does (3840 … 4096) wait for its last 4096 B; after it, nothing.
    assert.equal(misses(1, 3840, PAGE, 256), 512);
    assert.equal(misses(1, 4096, PAGE, 256), 256);
    // CPU 1 clears 32 KiB at 5000 while CPU 0 clears again: two clears, 2 × 2 × 32768 / 16 = 8192
    // (CPU 1's own misses, over at 4352, are not in its way).
    zeroing(0, 5000, 9096, 2 * 8 * PAGE);
    assert.equal(bytesLeft(0, 5000, 1), 0);
    assert.equal(clear(1, 5000), 8192);
    zeroing(1, 5000, 13_192, 2 * 8 * PAGE);
    // A quiet bus at 20000: CPU 1's misses take their own 256, their reads and writebacks
    // (2 × 4096 B) on the bus until 20256.
    assert.equal(misses(1, 20_000, PAGE, 256), 256);
    // CPU 0 starts a clear halfway through them: 4096 B of the program's still to move, then
    // its own 2 × 32768: (65536 + 4096) / 16 = 4352.
    assert.equal(bytesLeft(0, 20_128, 0), PAGE);
    assert.equal(clear(0, 20_128), 4352);
  });

  /**
   * Node 0 all zeroed but one dirty order-3 block; a thread on CPU 1 writes every line (64) of
   * 8 prezeroed pages: cold lines of 4 ns latency, which overlap down to the bus's pace of
   * 2 × 64 / 16 = 8 ns a line, so each takes its 4 (256 a page) when the bus is its own. kscrubd
   * wakes 3 µs in and clears the block on CPU 0, the node's other CPU.
   */
  function busRace(kscrubd: boolean, fsbBytesPerNs: number): { user: number; kscrubdNs: number } {
    const m = createMachine({ ...TWO_NODES, cost: { ...BUS, fsbBytesPerNs, lineMissNs: 4, wakeupNs: 3000 } });
    m.setSysctl('max_prealloc_order', 0);
    oneDirtyBlock(m, 0);
    if (kscrubd) m.setSysctl('scrub_start', 3);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 16 * PAGE);
    const addrs = Array.from({ length: 8 }, (_, i) => addr + i * PAGE);
    const r = m.procs.faults(id, { addrs, tasks: addrs.map(() => 0), writes: addrs.map(() => 1), cpus: addrs.map(() => 1), lines: 64 });
    assert.deepEqual([r.faults, r.prezeroed, r.hotZeroed], [8, 8, 0]);
    m.tick(100_000);
    assertChecked(m);
    return { user: m.cpus.userNs(1), kscrubdNs: m.kscrubd[0]!.cpuNs };
  }

  test('when kscrubd clears on a CPU of the node while the program writes cold lines then both slow down', () => {
    // Alone on the bus: 8 pages × 256.
    assert.deepEqual(busRace(false, 16), { user: 8 * 256, kscrubdNs: 0 });
    // A bus that never limits: kscrubd's clear at its stores' rate.
    const free = busRace(true, 1e9);
    // The 16 B/ns bus: a page written while the block is cleared waits for the clear's bytes
    // meanwhile, at most its own time again (the clear fills the bus); the clear lets the
    // program's transfers under way through first.
    const shared = busRace(true, 16);
    assert.ok(shared.user > 8 * 256 && shared.user <= 8 * 512, `user ${shared.user} ns`);
    assert.ok(shared.kscrubdNs > free.kscrubdNs, `kscrubd ${shared.kscrubdNs} ns against ${free.kscrubdNs} on a free bus`);
  });
});

describe('owners: the scheduler', () => {
  /**
   * One CPU, everything zeroed but one dirty block (kscrubd's, 8 ns at 4096 B/ns). A thread
   * writes 16 pages: each fault is trap 100 + section 1 (1000) → the page in hand, then
   * section 2 (ptlSetNs 500): faults start at 0, 1600, 3200 …; kscrubd wakes at 10000 and
   * waits for the CPU (the thread holds it).
   */
  function preemption(preempt: boolean): { m: Machine; wall: number } {
    const opts: MachineOptions = { ...TINY, cost: { ...FLAT, ptlSetNs: 500, wakeupNs: 10_000 }, preempt };
    const m = createMachine(opts);
    m.setSysctl('max_prealloc_order', 0);
    oneDirtyBlock(m, 0);
    m.setSysctl('scrub_start', 3);
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, 16 * PAGE);
    const r = m.procs.touch(id, { addr, size });
    assert.deepEqual([r.faults, r.prezeroed], [16, 16]);
    assertChecked(m);
    return { m, wall: r.wallNs };
  }

  test('when kscrubd wakes under CONFIG_PREEMPT then it takes the faulting thread’s CPU once page_table_lock is dropped, not at the next fault', () => {
    // Preemptible: fault 6 (at 9600) has its page in hand at 10700, outside page_table_lock:
    // kscrubd zeroes there 10700 … 10708, then the thread installs the page.
    const on = preemption(true);
    assert.equal(on.m.kscrubd[0]!.lastBurstEnd, 10_708);
    // Not: kscrubd waits for the return to user mode after fault 6, at 11200.
    const off = preemption(false);
    assert.equal(off.m.kscrubd[0]!.lastBurstEnd, 11_208);
    // Either way the thread lost the CPU for those 8 ns.
    assert.equal(on.wall, 16 * 1600 + 8);
    assert.equal(off.wall, 16 * 1600 + 8);
    for (const { m } of [on, off]) assert.deepEqual([m.kscrubd[0]!.cpuNs, m.cpus.systemNs(0)], [8, 16 * 1600 + 8]);
  });

  for (const [preset, threads] of [['x86_64', 16], ['i386', 3], ['altix', 16]] as const) {
    test(`when ${threads} threads share ${preset}'s CPUs then no CPU's time is counted twice`, () => {
      // A spinner on page_table_lock keeps its CPU, as a holder keeps it until its release:
      // the CPU's other threads wait, so its spin is not also their time.
      const m = createMachine({ preset, mem: '512M', clock: 'manual' });
      m.setSysctl('scrub_start', 5);
      const id = m.procs.create().id;
      const { addr, size } = m.procs.mmap(id, 2 ** 27);
      const start = m.now;
      const r = m.procs.touch(id, { addr, size, threads });
      const cpus = new Set(Array.from({ length: threads }, (_, i) => m.procs.get(id).task(i).cpu));
      assert.ok(cpus.size < threads, `threads share CPUs: ${[...cpus].join(' ')}`);
      assert.ok(r.sysNs > 0 && r.sysNs <= m.cpus.count * r.wallNs, `System ${r.sysNs} ≤ ${m.cpus.count} CPUs × Wall ${r.wallNs}`);
      const now = m.now;
      assert.ok(now > start);
      const busy = perCpu(m, (c) => m.cpus.userNs(c) + m.cpus.systemNs(c, now));
      assert.ok(busy.every((b) => b <= now * (1 + 1e-12)), `no CPU was busy longer than ${now} ns: ${busy.join(' ')}`);
      for (let c = 0; c < m.cpus.count; c++) {
        assert.ok(Math.abs(m.cpus.userNs(c) + m.cpus.systemNs(c, now) + m.cpus.idleNs(c, now) - now) <= now * 1e-12, `cpu${c}`);
      }
    });
  }

  test('when a replayed trace puts two tasks on each CPU then no CPU is busy longer than the time elapsed', () => {
    const m = createMachine({ preset: 'x86_64', mem: '512M', clock: 'manual' });
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 2 ** 24);
    const tasks = 8;
    const addrs: number[] = [];
    const who: number[] = [];
    for (let i = 0; i < 2 ** 24 / m.pageSize; i++) {
      addrs.push(addr + i * m.pageSize);
      who.push(i % tasks);
    }
    const r = m.procs.faults(id, { addrs, tasks: who, writes: addrs.map(() => 1 as const), cpus: Array.from({ length: tasks }, (_, t) => t % 4), lines: 1 });
    assert.equal(r.faults, addrs.length);
    const now = m.now;
    assert.ok(r.sysNs <= m.cpus.count * r.wallNs, `System ${r.sysNs} ≤ ${m.cpus.count} CPUs × Wall ${r.wallNs}`);
    const busy = perCpu(m, (c) => m.cpus.userNs(c) + m.cpus.systemNs(c, now));
    assert.ok(busy.every((b) => b > 0 && b <= now * (1 + 1e-12)), `no CPU was busy longer than ${now} ns: ${busy.join(' ')}`);
  });

  test('when threads and kscrubd have run then every CPU’s user + system + idle is the time elapsed', () => {
    const m = createMachine({ preset: 'altix', mem: '1G', clock: 'manual' });
    m.setSysctl('scrub_start', 5);
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, 2 ** 26);
    m.procs.touch(id, { addr, size, threads: 6 });
    m.procs.exitTimed(id);
    m.tick(3e8);
    const now = m.now;
    assert.ok(m.kscrubd.some((k) => k.cpuNs > 0), 'kscrubd ran');
    const busy = perCpu(m, (c) => m.cpus.userNs(c) + m.cpus.systemNs(c));
    assert.ok(busy.every((b) => b > 0 && b <= now), `no CPU was busy longer than ${now} ns: ${busy.join(' ')}`);
    for (let c = 0; c < m.cpus.count; c++) {
      assert.ok(Math.abs(m.cpus.userNs(c) + m.cpus.systemNs(c) + m.cpus.idleNs(c, now) - now) <= now * 1e-12, `cpu${c}`);
    }
  });
});
