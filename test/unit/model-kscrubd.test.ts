// kscrubd: burst order, wake rule, load gate, zero drivers and their time. Hand-worked on tiny
// machines whose free lists are set up exactly: zeroEverything() first, then the test frees the
// not-zeroed blocks it wants kscrubd to find.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_ZEROED, ZEROED, createMachine } from '../../src/model';
import type { Machine } from '../../src/model';
import { ALTIX_COST, X86_64_COST } from '../../src/model';
import { BteZeroDriver, CpuZeroDriver } from '../../src/model/zero-drivers';
import { ALTIX_PINNED, Holder, X86_64_PINNED, assertChecked, perCpu, tiny, zeroEverything, zoneNamed } from '../helpers/model';

const inFlight = (m: Machine, node = 0): [number, number] | null => {
  const b = m.kscrubd[node]!.inFlight();
  return b ? [b.pfn, b.order] : null;
};

/**
 * The tiny x86_64 machine with these not-zeroed blocks and everything else zeroed:
 *   DMA    pfn 0 (order 3, a pristine section), pfn 8 (order 1, next to zeroed 10 and 12)
 *   DMA32  pfn 8452 and 8456 (order 2; 8456 is the list head), pfn 8451 (order 0)
 */
function burstMachine(): Machine {
  const m = tiny();
  const dma = zoneNamed(m, 0, 'DMA');
  const dma32 = zoneNamed(m, 0, 'DMA32');
  zeroEverything(dma);
  zeroEverything(dma32);
  const h = new Holder(m);
  assert.equal(h.take(dma, 3, ZEROED), 0);
  h.free(dma, 0, 3, NOT_ZEROED);
  assert.equal(h.take(dma, 1, ZEROED), 8);
  h.free(dma, 8, 1, NOT_ZEROED);
  assert.deepEqual([h.take(dma32, 2, ZEROED), h.take(dma32, 2, ZEROED), h.take(dma32, 2, ZEROED)], [8452, 8456, 8460]);
  h.free(dma32, 8452, 2, NOT_ZEROED);
  h.free(dma32, 8456, 2, NOT_ZEROED);
  h.free(dma32, 8460, 2, ZEROED);
  assert.equal(h.take(dma32, 0, ZEROED), 8451);
  h.free(dma32, 8451, 0, NOT_ZEROED);
  assert.deepEqual(Array.from(dma.nrFree[NOT_ZEROED]!), [0, 1, 0, 1]);
  assert.deepEqual(dma32.listEntries(2, NOT_ZEROED), [8456, 8452]);
  assertChecked(m);
  return m;
}

describe('model: kscrubd burst', () => {
  it('when scrub_start is written then the burst zeroes the highest order first, one block per zone per pass', () => {
    // x86_64 clear_pages at 3.2 B/ns: order 3 = 10240 ns, order 2 = 5120, order 1 = 2560; wakeup 10 µs.
    // Each block comes off its list and goes back under zone->lock: 30 ns each (buddyPerPageNs,
    // one buddy operation; the lock's line never leaves CPU 0). A block's zeroing starts 30 ns
    // after the step that takes it, and the next step first returns the last block (30 ns more).
    const m = burstMachine();
    m.setSysctl('scrub_stop', 1);
    m.setSysctl('scrub_start', 3);
    const k = m.kscrubd[0]!;
    assert.equal(k.awake, true);
    assert.equal(k.nextAt, 10_000);
    const seen: [number, [number, number] | null][] = [];
    for (const dt of [10_000, 30 + 10_240, 60 + 5_120, 60 + 2_560]) {
      m.tick(dt);
      seen.push([m.now, inFlight(m)]);
      assertChecked(m, `at ${m.now}`);
    }
    assert.deepEqual(seen, [
      [10_000, [0, 3]], // pass 1: DMA's order-3 block, zeroed 10030 … 20270
      [20_270, [8456, 2]], // pass 1: DMA32's list head (DMA's back at 20300), zeroed 20330 … 25450
      [25_450, [8, 1]], // pass 2: DMA's order-1 block, zeroed 25510 … 28070
      [28_070, [8452, 2]], // pass 2: DMA32's other order-2 block, zeroed 28130 … 33250
    ]);
    m.tick(60 + 5_120);
    // Pass 3 zeroes nothing: the burst ends at 33250 and kscrubd sleeps.
    assert.equal(k.awake, false);
    assert.equal(inFlight(m), null);
    assert.equal(k.lastBurstEnd, 33_250);
    assert.deepEqual([k.wakes, k.bursts, k.blocks, k.pages], [1, 1, 4, 18]);
    // 23040 ns of zeroing and eight 30 ns zone->lock sections.
    assert.equal(k.cpuNs, 23_040 + 8 * 30);
    assert.equal(m.cpus.systemNs(0), 23_040 + 8 * 30);
    assertChecked(m);
  });

  it('when the burst is over then zeroed blocks have merged back and the order-0 block below scrub_stop is left dirty', () => {
    const m = burstMachine();
    const dma = zoneNamed(m, 0, 'DMA');
    const dma32 = zoneNamed(m, 0, 'DMA32');
    m.setSysctl('scrub_stop', 1);
    m.setSysctl('scrub_start', 3);
    m.tick(1e6);
    assert.deepEqual(Array.from(dma.nrFree[NOT_ZEROED]!), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(dma.nrFree[ZEROED]!), [0, 0, 0, 512]);
    assert.equal(dma.zeroPages, 4096);
    assert.equal(dma.sections.size, 0);
    assert.deepEqual(Array.from(dma32.nrFree[NOT_ZEROED]!), [1, 0, 0, 0]);
    assert.equal(dma32.zeroPages, 7932);
    assertChecked(m);
  });

  it('when kscrubd holds a block then the block is off the lists but still counted free', () => {
    const m = burstMachine();
    const dma = zoneNamed(m, 0, 'DMA');
    m.setSysctl('scrub_stop', 1);
    m.setSysctl('scrub_start', 3);
    m.tick(10_001);
    assert.deepEqual(inFlight(m), [0, 3]);
    assert.equal(dma.freePages, 4096);
    assert.equal(dma.scrubPages, 8);
    assert.equal(dma.zeroPages, 4096 - 8 - 2);
    assert.equal(dma.blocks(NOT_ZEROED, 3), 0);
    assertChecked(m);
  });

  it('when scrub_stop is above every free order then the burst is one empty pass', () => {
    const m = burstMachine();
    m.setSysctl('scrub_start', 3); // scrub_stop stays 4 > MAX_ORDER − 1
    m.tick(1e6);
    const k = m.kscrubd[0]!;
    assert.deepEqual([k.awake, k.blocks, k.lastBurstEnd], [false, 0, 10_000]);
  });

  it('when the 6 GiB altix scrubs everything then it takes seconds of virtual time', () => {
    // MAX_ORDER 18, and a node is 98304 pages: no order-17 block fits, so node 0's free
    // memory, pfns 1363 … 98303 after the kernel and mem_map, lies as the biggest aligned
    // blocks: orders 0, 2, 3 (below scrub_stop 4), then 5, 7, 9, 11, 12, 13, 14, 15, 15 —
    // 9 blocks, 96928 pages. The BTE refuses 8 MiB and up, so the CPU zeroes orders 9 and
    // above: bytes / 1.56 B/ns + (bytes − 6 MiB L3) / 4 B/ns of writeback; the BTE the
    // orders 7 and 5: 2 µs setup + bytes / 0.5 B/ns.
    // Each block comes off its list under zone->lock (60 ns), each but the last goes back
    // under it before the next is taken (60 ns); the return keeps kscrubd's CPU busy 60 ns,
    // so it takes the node's other CPU for the next block, and every take but the first
    // pulls the lock's line from there (250 ns). 20000 + cpu(8, 32, 64, 128, 256, 512, 512 MiB)
    // + bte(2 MiB) + bte(512 KiB) + locks(9) = 1 406 933 703 ns.
    // Nodes 1–3 reserve only mem_map (pfns 0 … 338): an order-10 block (16 MiB) more.
    const cpu = (b: number): number => b / 1.56 + Math.max(0, b - 6 * 2 ** 20) / 4;
    const bte = (b: number): number => 2000 + b / 0.5;
    const locks = (blocks: number): number => blocks * 60 + (blocks - 1) * 60 + (blocks - 1) * 250;
    const mib = 2 ** 20;
    const node0 = 20_000 + [8, 32, 64, 128, 256, 512, 512].reduce((s, b) => s + cpu(b * mib), 0) + bte(2 * mib) + bte(mib / 2) + locks(9);
    assert.equal(Math.round(node0), 1_406_933_703);
    const m = createMachine({ clock: 'manual', cost: ALTIX_PINNED, bootAllocations: false });
    m.setSysctl('scrub_start', 10);
    m.tick(1e9);
    assert.equal(m.kscrubd.every((k) => k.awake), true, 'still zeroing after 1 s');
    assertChecked(m);
    m.tick(9e9);
    assert.deepEqual(m.kscrubd.map((k) => [k.awake, k.blocks, k.bteBlocks, k.pages, k.lastBurstEnd]), [
      [false, 9, 2, 96928, node0],
      [false, 10, 2, 97952, node0 + cpu(16 * mib) + locks(10) - locks(9)],
      [false, 10, 2, 97952, node0 + cpu(16 * mib) + locks(10) - locks(9)],
      [false, 10, 2, 97952, node0 + cpu(16 * mib) + locks(10) - locks(9)],
    ]);
    assert.equal(m.zeroPagesTotal(), 96928 + 3 * 97952);
    assertChecked(m);
  });
});

describe('model: kscrubd wake rule', () => {
  /** Tiny machine, all zeroed, scrub_stop 0, scrub_start 2, kscrubd asleep again. */
  function asleep(): Machine {
    const m = tiny();
    for (const z of m.zones) zeroEverything(z);
    m.setSysctl('scrub_stop', 0);
    m.setSysctl('scrub_start', 2);
    m.tick(1e6);
    assert.equal(m.kscrubd[0]!.awake, false);
    assert.equal(m.kscrubd[0]!.wakes, 1);
    return m;
  }

  it('when a freed not-zeroed block stays below scrub_start then kscrubd sleeps on', () => {
    const m = asleep();
    const [h] = m.raw.alloc(1, false, 0, 1);
    assert.equal(m.raw.get(h!)!.pfn, 8452); // split from the zeroed order-2 block: its buddy 8454 is zeroed
    m.raw.free([h!]);
    assert.equal(zoneNamed(m, 0, 'DMA32').blocks(NOT_ZEROED, 1), 1);
    assert.equal(m.kscrubd[0]!.awake, false);
    assert.equal(m.kscrubd[0]!.wakes, 1);
  });

  it('when a freed not-zeroed block reaches scrub_start then the sleeping kscrubd wakes', () => {
    const m = asleep();
    const [h] = m.raw.alloc(2, false, 0, 1);
    m.raw.free([h!]);
    const k = m.kscrubd[0]!;
    assert.equal(k.awake, true);
    assert.equal(k.wakes, 2);
    assert.equal(k.lastBurstStart, 1e6);
    m.tick(1e6);
    assert.equal(k.awake, false);
    assert.equal(k.blocks, 1);
    assert.equal(m.zeroPagesTotal(), m.freePagesTotal());
    assertChecked(m);
  });

  it('when two order-1 buddies coalesce into order 2 then the second free wakes kscrubd', () => {
    const m = asleep();
    const [a, b] = m.raw.alloc(1, false, 0, 2);
    const pa = m.raw.get(a!)!.pfn;
    assert.equal(m.raw.get(b!)!.pfn, pa + 2);
    m.raw.free([a!]);
    assert.equal(m.kscrubd[0]!.awake, false);
    m.raw.free([b!]);
    assert.equal(m.kscrubd[0]!.awake, true);
    assert.equal(zoneNamed(m, 0, 'DMA32').isFreeHead(pa, 2, NOT_ZEROED), true);
  });

  it('when order-0 pages are freed then they wake kscrubd only when the per-cpu list drains', () => {
    const m = asleep();
    m.setSysctl('scrub_start', 0); // wakes, finds nothing, sleeps
    m.tick(1e6);
    assert.equal(m.kscrubd[0]!.awake, false);
    m.raw.free(m.raw.alloc(0, false, 0, 1));
    assert.equal(m.kscrubd[0]!.awake, false, 'the page sits on the hot list');
    // Every free page is zeroed: the hot list's refill (NOT_ZEROED only) took none, and the
    // page came by itself from the zeroed lists under zone->lock; it alone is drained.
    assert.equal(m.drainPcp(), 1, 'the page alone');
    assert.equal(m.kscrubd[0]!.awake, true);
  });

  it('when scrub_load is 0 then no free wakes kscrubd, and raising it lets the next one', () => {
    const m = asleep();
    m.setSysctl('scrub_load', 0);
    m.raw.free(m.raw.alloc(2, false, 0, 1));
    assert.equal(m.kscrubd[0]!.awake, false);
    m.setSysctl('scrub_start', m.sysctl.scrub_start);
    assert.equal(m.kscrubd[0]!.awake, false, 'a write to scrub_start goes through the same gate');
    m.setSysctl('scrub_load', 1); // load average 0.00 < 1
    m.raw.free(m.raw.alloc(2, false, 0, 1));
    assert.equal(m.kscrubd[0]!.awake, true);
  });

  it('when the 1-minute load is at or above scrub_load then a big free does not wake kscrubd', () => {
    const m = asleep();
    for (let i = 0; i < 3; i++) m.cpus.switchIn(1);
    m.tick(60e9); // twelve 5 s samples of 3 runnable tasks: load ≈ 1.9
    assert.ok(m.loadavg.one() >= 1, `load ${m.loadavg.format(0)}`);
    m.setSysctl('scrub_load', 1);
    m.raw.free(m.raw.alloc(2, false, 0, 1));
    assert.equal(m.kscrubd[0]!.awake, false);
    m.setSysctl('scrub_load', 999);
    m.raw.free(m.raw.alloc(2, false, 0, 1));
    assert.equal(m.kscrubd[0]!.awake, true);
  });

  it('when scrub_start is the default (MAX_ORDER) then frees never wake kscrubd', () => {
    const m = tiny();
    m.raw.free(m.raw.alloc(3, false, 0, 4));
    m.tick(1e9);
    assert.equal(m.kscrubd[0]!.wakes, 0);
    m.setSysctl('scrub_start', 4);
    assert.equal(m.kscrubd[0]!.awake, false);
  });

  it('when scrub_start is written below MAX_ORDER then every node wakes', () => {
    const m = createMachine({ preset: 'x86_64', mem: '256M', cpus: 2, nodes: 2, maxOrder: 4, clock: 'manual', cost: X86_64_PINNED, bootAllocations: false });
    m.setSysctl('scrub_start', 3);
    assert.deepEqual(m.kscrubd.map((k) => [k.awake, k.wakes]), [[true, 1], [true, 1]]);
    m.setSysctl('scrub_start', 2); // already awake: not woken twice
    assert.deepEqual(m.kscrubd.map((k) => k.wakes), [1, 1]);
  });
});

describe('model: zero drivers', () => {
  // altix, 256 MiB on 2 nodes, MAX_ORDER 4: 16 KiB pages, sections of 8 pages (128 KiB), CPUs 0,1
  // on node 0. Node 0 reserves 1055 pages (pfn 0…1054), so pristine sections start at 1056.
  // Not-zeroed blocks: 1056 (order 3, 128 KiB), 1064 (order 2, 64 KiB), 1068 (order 1, 32 KiB).
  function bteMachine(): Machine {
    const m = createMachine({ preset: 'altix', mem: '256M', nodes: 2, maxOrder: 4, clock: 'manual', cost: ALTIX_PINNED, bootAllocations: false });
    for (const z of m.zones) zeroEverything(z);
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    assert.deepEqual([h.take(z, 3, ZEROED), h.take(z, 2, ZEROED), h.take(z, 1, ZEROED)], [1056, 1064, 1068]);
    h.free(z, 1056, 3, NOT_ZEROED);
    h.free(z, 1064, 2, NOT_ZEROED);
    h.free(z, 1068, 1, NOT_ZEROED);
    m.setSysctl('scrub_stop', 0);
    return m;
  }

  it('when blocks of 128, 64 and 32 KiB are scrubbed then the BTE takes the two ≥ 60,000 bytes and the CPU the last', () => {
    // wake at 0, run at 20 µs. Each block comes off its list under zone->lock (60 ns) and goes
    // back under it (60 ns, keeping that CPU busy); the next block goes to the node's CPU free
    // soonest, which spins out the return (60 ns), pulls the lock's line over (250 ns) and
    // takes the lock (60 ns): 370 ns. BTE 2000 + 262144 ns on cpu0 from 20060, BTE 2000 +
    // 131072 ns on cpu1 from 284574, CPU 32768 / 1.56 ns on cpu0 from 418016. bte_zero
    // busy-polls: a transfer is CPU time of its CPU from start to end.
    const m = bteMachine();
    m.setSysctl('scrub_start', 3);
    const k = m.kscrubd[0]!;
    m.tick(20_000);
    assert.equal(k.cpu, 0);
    m.tick(60 + 264_144);
    assert.deepEqual(inFlight(m), [1064, 2]);
    assert.equal(k.cpu, 1);
    m.tick(370 + 133_072);
    assert.deepEqual(inFlight(m), [1068, 1]);
    assert.equal(k.cpu, 0);
    m.tick(1e6);
    assert.equal(k.awake, false);
    assert.deepEqual([k.blocks, k.bteBlocks, k.bteFallbacks, k.pages], [3, 2, 0, 14]);
    const cpuZero = 32768 / 1.56;
    assert.equal(k.lastBurstEnd, 20_000 + 60 + 264_144 + 370 + 133_072 + 370 + cpuZero);
    // Three takes (60 + 370 + 370) and three returns (60 each).
    assert.equal(k.cpuNs, 264_144 + 133_072 + cpuZero + 800 + 180);
    assert.deepEqual(perCpu(m, (c) => m.cpus.systemNs(c)), [60 + 264_144 + 60 + 370 + cpuZero + 60, 370 + 133_072 + 60, 0, 0]);
    // The BTE saved the caches, not the CPU: the burst was CPU time from start to end, and
    // each return is counted twice (its CPU's, and the next taker's spin) but the last, after the end.
    assert.equal(k.cpuNs, k.lastBurstEnd - k.lastBurstStart - 20_000 + 3 * 60);
    assert.equal(m.zeroPagesTotal(), m.freePagesTotal());
    assertChecked(m);
  });

  it('when BTE transfers fail then those blocks fall back to the CPU and no page is lost', () => {
    const m = bteMachine();
    const free0 = m.freePagesTotal();
    m.injectBteFailures(1);
    m.setSysctl('scrub_start', 3);
    m.tick(1e6);
    const k = m.kscrubd[0]!;
    assert.deepEqual([k.blocks, k.bteBlocks, k.bteFallbacks, k.pages], [3, 1, 1, 14]);
    // The order-3 block went to the CPU: 131072 / 1.56 ns instead of the BTE's 264144 (the
    // zone->lock sections as in the test above: 60 + 370 + 370).
    assert.equal(k.lastBurstEnd, 20_000 + 60 + 131072 / 1.56 + 370 + 133_072 + 370 + 32768 / 1.56);
    assert.equal(m.freePagesTotal(), free0);
    assert.equal(m.zeroPagesTotal(), free0);
    const bte = m.zeroDrivers.find((d): d is BteZeroDriver => d instanceof BteZeroDriver)!;
    assert.deepEqual([bte.failures, bte.failNext], [1, 0]);
    assertChecked(m);
  });

  it('when more failures are injected than transfers happen then the rest wait for later transfers', () => {
    const m = bteMachine();
    m.injectBteFailures(5);
    m.setSysctl('scrub_start', 3);
    m.tick(1e6);
    const k = m.kscrubd[0]!;
    assert.deepEqual([k.blocks, k.bteBlocks, k.bteFallbacks], [3, 0, 2]);
    const bte = m.zeroDrivers.find((d): d is BteZeroDriver => d instanceof BteZeroDriver)!;
    assert.equal(bte.failNext, 3);
    assertChecked(m);
  });

  it('when a workload thread holds a CPU then kscrubd runs on the other CPU of its node', () => {
    const m = bteMachine();
    m.cpus.switchIn(0);
    m.setSysctl('scrub_start', 3);
    m.tick(1e6);
    const k = m.kscrubd[0]!;
    assert.equal(k.blocks, 3);
    assert.deepEqual(perCpu(m, (c) => m.cpus.systemNs(c)), [0, k.cpuNs, 0, 0]);
  });

  it('when the CPU zeroes a block bigger than its cache then the excess pays writeback', () => {
    // x86_64: 4 MiB / 3.2 B/ns + (4 MiB − 1 MiB) / 3 B/ns = 1 310 720 + 1 048 576 ns; remote × 1.4.
    const cpu = new CpuZeroDriver({ ...X86_64_COST, ...X86_64_PINNED }, 4096);
    assert.deepEqual(cpu.zero(4 * 2 ** 20, false), { wallNs: 2_359_296, cpuNs: 2_359_296 });
    assert.deepEqual(cpu.zero(16384, false), { wallNs: 5_120, cpuNs: 5_120 });
    assert.equal(cpu.zero(16384, true).wallNs, 5_120 * X86_64_COST.remoteFactor);
    const bte = new BteZeroDriver({ ...ALTIX_COST, ...ALTIX_PINNED });
    // V6 bte_start_bzero: len < 60000 and len >= BTE_MAX_XFER (64K lines × 128 B = 8 MiB) are refused.
    assert.deepEqual([bte.accepts(59_999), bte.accepts(60_000), bte.accepts(8 * 2 ** 20 - 1), bte.accepts(8 * 2 ** 20)], [false, true, true, false]);
  });

  it('when the machine has no BTE then kscrubd zeroes with the CPU and injected failures change nothing', () => {
    const m = burstMachine();
    m.injectBteFailures(3);
    m.setSysctl('scrub_stop', 0);
    m.setSysctl('scrub_start', 3);
    m.tick(1e6);
    const k = m.kscrubd[0]!;
    assert.deepEqual([k.blocks, k.bteBlocks, k.bteFallbacks], [5, 0, 0]);
    assert.equal(m.zeroDrivers.length, 0);
  });
});
