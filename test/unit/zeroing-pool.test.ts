// The zeroed-page pool (Anolis's kprezerod: `--zeroing-policy prezero`) and idle-time zeroing
// (FreeBSD's vm_zeroidle: `--zeroing-policy idlezero`), on a tiny machine whose figures are
// round, so that every number below is worked out by hand: who pays, when, and how much.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Machine, NOT_ZEROED, ZEROED, Zone, check, createMachine, kscrubdTotals } from '../../src/model';
import { IdleZeroRule } from '../../src/model/policies/zero-rules';
import { render, write } from '../../src/procfs/policy-knobs';
import { ProcError } from '../../src/uapi';

// A 4 KiB page clears in exactly 1000 ns, the bus never limits, locks and wakeups cost nothing.
const ROUND = {
  zeroBytesPerNs: 4.096, zeroHugeBytesPerNs: 4.096, zeroGiantBytesPerNs: 4.096, fsbBytesPerNs: 1000,
  buddyPerPageNs: 0, wakeupNs: 0, lineBounceNs: 0, lineRemoteNs: 0, writebackBytesPerNs: 0,
};
const PAGE_NS = 1000;

/**
 * x86_64, 64 MiB, no boot allocations: node 0 is DMA (pfns 0–4095, 4 free order-10 blocks) and
 * DMA32 (4096–16383, the 16 MiB kernel image reserved: 7 free order-10 blocks and a tail of
 * 1 + 4 + 8 + … + 256 + 1024·0 pages — 7933 free pages in all). 12029 free pages on the node.
 */
function tiny(policy: string): Machine {
  return createMachine({ preset: 'x86_64', mem: '64M', clock: 'manual', zeroingPolicy: policy, bootAllocations: false, cost: ROUND });
}

const dma32 = (m: Machine): Zone => m.zones[1]!;
const zeroOf = (m: Machine): number => m.zones.reduce((n, z) => n + z.zeroPages, 0);
const freeOf = (m: Machine): number => m.zones.reduce((n, z) => n + z.freePages, 0);

describe('the zero flag across split and merge', () => {
  /** A zone of 4 sections of 4 pages (MAX_ORDER 3), its free lists in one free_area or two. */
  const zone = (mergeLosesZero: boolean): Zone => new Zone({ id: 0, node: 0, name: 'DMA', startPfn: 0, endPfn: 16, maxOrder: 3, mergeLosesZero });
  const ALLOC = 0x60; // pageFlags(KIND_ALLOC, 0, NOT_ZEROED)

  test('when a zeroed page is freed beside dirty buddies then with the flag on the block it merges and loses the flag; with two free_areas it stays apart', () => {
    for (const loses of [true, false]) {
      const z = zone(loses);
      // Splitting section 0 for one page leaves pfn 1 (order 0) and pfns 2–3 (order 1) dirty.
      assert.equal(z.takeBlock(0, NOT_ZEROED, ALLOC), 0);
      z.setZero(0, 1, true);
      const order = z.freeBlock(0, 0, ZEROED);
      if (loses) {
        // 0 + 1 → order 1 (flag lost: 1 page), + 2–3 → order 2, a whole dirty section again.
        assert.deepEqual([order, z.zeroPages, z.zeroLostOnMerge, z.nrFree[NOT_ZEROED]![2]], [2, 0, 1, 4]);
      } else {
        assert.deepEqual([order, z.zeroPages, z.nrFree[ZEROED]![0], z.nrFree[NOT_ZEROED]![0], z.nrFree[NOT_ZEROED]![1]], [0, 1, 1, 1, 1]);
      }
    }
  });

  test('when a zeroed block is split then its halves keep the flag; when a dirty page comes back then each zeroed buddy it meets loses it', () => {
    const z = zone(true);
    assert.equal(z.wipeFree(), 16);
    assert.equal(z.takeBlock(0, ZEROED, ALLOC), 0);
    // The split: pfn 1 (order 0) and pfns 2–3 (order 1) stay zeroed.
    assert.deepEqual([z.zeroPages, z.nrFree[ZEROED]![0], z.nrFree[ZEROED]![1]], [15, 1, 1]);
    z.setZero(0, 1, false); // the owner wrote it
    assert.equal(z.freeBlock(0, 0, NOT_ZEROED), 2);
    // Merging with pfn 1 drops 1 zeroed page, with 2–3 two more: 12 zeroed pages left (3 sections).
    assert.deepEqual([z.zeroPages, z.zeroLostOnMerge, z.nrFree[NOT_ZEROED]![2], z.nrFree[ZEROED]![2]], [12, 3, 1, 3]);
    // The pages' bytes are still zero, only nobody knows it.
    assert.equal(z.isZero(1), false, 'a dirty pristine section answers not zero');
  });
});

describe('prezero: the zeroed-page pool (kprezerod)', () => {
  test('when the machine idles then kprezerod zeroes batch_pages a wake, page by page, until half of the order-10 blocks are zeroed, on its own CPU time', () => {
    const m = tiny('prezero');
    write(m, 'prezero_batch_pages', Buffer.from('1024\n'));
    // 7 free order-10 blocks in DMA32 (the node's highest zone): floor(7 × 50 / 100) = 3 get zeroed.
    assert.equal(dma32(m).nrFree[NOT_ZEROED]![10], 7);
    const seen: [number, number][] = [];
    for (let s = 1; s <= 5; s++) {
      m.tick(1e9);
      seen.push([zeroOf(m), kscrubdTotals(m.kscrubd).cpuNs]);
    }
    // Wake at 1 s: one block of 1024 pages at 1000 ns a page ends at 1.001024 s; the next
    // wake is sleep_msecs after that, so each wake lands 1.024 ms later than the one before.
    assert.deepEqual(seen, [[0, 0], [1024, 1_024_000], [2048, 2_048_000], [3072, 3_072_000], [3072, 3_072_000]]);
    // The fifth wake (4.003072 s) zeroed nothing; the sixth is due a second after it.
    assert.equal(m.kscrubd[0]!.nextAt, 5e9 + 3 * 1_024_000);
    assert.equal(check(m), null);
  });

  test('when a VM faults a 2 MiB page from the pool then the fault clears nothing: the pool paid the 512 µs ahead', () => {
    const [pool, plain] = ['prezero', 'kscrubd'].map((policy) => {
      const m = tiny(policy);
      m.tick(10e9); // the pool fills (prezero); nothing happens (kscrubd is off by default)
      const mm = m.procs.create().id;
      const { addr, size } = m.procs.mmap(mm, 2 ** 21, false, undefined, true);
      return m.procs.touch(mm, { addr, size, threads: 1 });
    }) as [ReturnType<Machine['procs']['touch']>, ReturnType<Machine['procs']['touch']>];
    assert.deepEqual([pool.prezeroed, pool.hotZeroed, plain.prezeroed, plain.hotZeroed], [512, 0, 0, 512]);
    // The whole 2 MiB clear (512 pages × 1000 ns) left the fault, and so did the clear of the
    // page table the huge pmd deposits (one more page, from the pool too).
    assert.equal(Math.round(plain.sysNs - pool.sysNs), 513 * PAGE_NS);
  });

  test('when a zeroed half is freed dirty beside its zeroed buddy then the merged block loses the flag, and max_percent decides whether kprezerod makes it up', () => {
    const m = tiny('prezero');
    m.tick(10e9);
    const z = dma32(m);
    // The first wake found 0 of 7 order-10 blocks zeroed (< 3) and zeroed batch_pages (4096)
    // pages of that order: 4 blocks; the percentage is looked at only when an order is entered.
    assert.deepEqual([z.zeroPages, z.nrFree[ZEROED]![10]], [4096, 4]);
    // A zeroed 2 MiB block splits a zeroed order-10 one: its order-9 buddy stays zeroed.
    const [h] = m.raw.alloc(9, true, 0, 1);
    assert.deepEqual([z.zeroPages, z.nrFree[ZEROED]![9], z.nrFree[ZEROED]![10]], [3584, 1, 3]);
    // Freed written (dirty), it merges with that buddy: the flag of 512 pages is lost.
    m.raw.free([h!]);
    assert.deepEqual([z.zeroPages, z.zeroLostOnMerge, z.nrFree[NOT_ZEROED]![10]], [3072, 512, 4]);
    // 3 of 7 order-10 blocks zeroed is not below floor(7 × 50 / 100): the next wake zeroes nothing.
    const before = kscrubdTotals(m.kscrubd).cpuNs;
    m.tick(2e9);
    assert.equal(z.zeroPages, 3072);
    // With max_percent 100 the next wake zeroes the dirty order-9 block (0 of 1 zeroed) and the
    // 4 dirty order-10 blocks: 512 + 4096 pages at 1000 ns.
    write(m, 'prezero_max_percent', Buffer.from('100\n'));
    m.tick(2e9);
    assert.equal(z.zeroPages, 7 * 1024 + 512);
    assert.equal(kscrubdTotals(m.kscrubd).cpuNs - before, 4608 * PAGE_NS);
    assert.equal(check(m), null);
  });

  test('when enabled is written 0 then no kprezerod wakes again; sleep_msecs wakes them at once', () => {
    const m = tiny('prezero');
    write(m, 'prezero_enabled', Buffer.from('0'));
    m.tick(5e9);
    assert.deepEqual([zeroOf(m), kscrubdTotals(m.kscrubd).wakes, m.kscrubd[0]!.nextAt], [0, 0, Number.POSITIVE_INFINITY]);
    write(m, 'prezero_enabled', Buffer.from('1\n'));
    write(m, 'prezero_sleep_msecs', Buffer.from('0x3e8'));
    assert.equal(m.kscrubd[0]!.awake, true, 'a write of sleep_msecs wakes kprezerod');
    m.tick(10e6);
    assert.equal(zeroOf(m), 4096, 'batch_pages 4096: four order-10 blocks (4.096 ms) in the first burst');
  });

  test('when its files are written badly then EINVAL and the value is kept', () => {
    const m = tiny('prezero');
    for (const [knob, text] of [
      ['prezero_min_order', '11'], ['prezero_min_order', '-1'], ['prezero_min_order', ' 5'], ['prezero_min_order', '5 '],
      ['prezero_min_order', '5\n\n'], ['prezero_max_percent', '101'], ['prezero_batch_pages', '4294967296'],
      ['prezero_sleep_msecs', '\n'], ['prezero_sleep_msecs', '1e3'], ['prezero_enabled', '2'],
    ] as const) {
      const before = render(m, knob);
      assert.throws(() => write(m, knob, Buffer.from(text)), (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL', `${knob} ← ${JSON.stringify(text)}`);
      assert.equal(render(m, knob), before);
    }
    // kstrtoul base 0: hex, octal and a leading '+' are values.
    write(m, 'prezero_min_order', Buffer.from('010\n'));
    write(m, 'prezero_max_percent', Buffer.from('+0x19'));
    assert.deepEqual([render(m, 'prezero_min_order'), render(m, 'prezero_max_percent')], ['8\n', '25\n']);
  });

  test('when a machine booted without the pool is told to turn it on then EINVAL names the policy', () => {
    const m = tiny('kscrubd');
    assert.throws(() => write(m, 'prezero_enabled', Buffer.from('1')), /write sys\/kernel\/mm\/prezero\/enabled: the machine booted without the prezero policy/);
    assert.throws(() => write(m, 'idlezero_enable', Buffer.from('1')), /write vm\.idlezero_enable: the machine booted without the idlezero policy/);
    assert.deepEqual([render(m, 'prezero_enabled'), render(m, 'idlezero_enable')], ['0\n', '0\n']);
  });
});

describe('idlezero: idle-time zeroing with hysteresis (vm_zeroidle)', () => {
  test('when the machine boots then the idle zeroer zeroes the largest dirty blocks until 4/5 of free pages are zeroed, on idle CPU time', () => {
    const m = tiny('idlezero');
    m.tick(1e9);
    // ZIDLE_HI(12029) = 9623, the highest zone first (user pages come from there): all of
    // DMA32 (7933 pages: its 7 order-10 blocks and the 8 of its tail), then 2 of DMA's 4
    // order-10 blocks (7933 + 2048 = 9981 ≥ 9623): 17 blocks.
    assert.deepEqual([zeroOf(m), freeOf(m), kscrubdTotals(m.kscrubd).blocks, kscrubdTotals(m.kscrubd).cpuNs], [9981, 12029, 17, 9981 * PAGE_NS]);
    assert.deepEqual([dma32(m).zeroPages, m.zones[0]!.zeroPages], [7933, 2048]);
    assert.equal((m.kscrubd[0]!.rule as IdleZeroRule).zeroState, true);
    assert.equal(check(m), null);
  });

  test('when zeroed pages are used up then a free wakes it only below 2/3 (ZIDLE_LO), not between 2/3 and 4/5', () => {
    const m = tiny('idlezero');
    m.tick(1e9);
    const rule = m.kscrubd[0]!.rule as IdleZeroRule;
    // Booted: DMA32 all zeroed (7933), DMA 2048 of 4096. 4 zeroed order-10 blocks taken
    // (DMA32's): zero 5885, free 7933 — LO 5288 ≤ 5885 < HI 6346.
    m.raw.alloc(10, true, 0, 4);
    assert.deepEqual([zeroOf(m), freeOf(m)], [5885, 7933]);
    // A dirty order-1 block (no per-cpu list: straight back to the buddy lists) freed: the
    // wakeup test runs. DMA32 had no dirty page, so the block was a zeroed one, now dirty.
    m.raw.free(m.raw.alloc(1, false, 0, 1));
    assert.deepEqual([zeroOf(m), m.kscrubd[0]!.awake], [5881, false], 'between LO and HI with zero_state set: no wake');
    assert.equal(rule.check(m), false);
    // 6 more order-10 blocks asked zeroed: DMA32's last 3 zeroed, then DMA's 2 zeroed and 1
    // dirty (cleared in the allocation): zero 761, free 1789, LO 1192 — now a free wakes it.
    m.raw.alloc(10, true, 0, 6);
    assert.deepEqual([zeroOf(m), freeOf(m)], [761, 1789]);
    assert.equal(rule.check(m), true);
    m.raw.free(m.raw.alloc(1, false, 0, 1));
    assert.equal(m.kscrubd[0]!.awake, true);
    m.tick(1e9);
    // Highest zone first: DMA32's 4 dirty pages (765 < HI(1789) = 1431), then DMA's dirty
    // order-10 block: 1789 ≥ 1431, and it stops.
    assert.deepEqual([dma32(m).zeroPages, zeroOf(m), rule.zeroState, kscrubdTotals(m.kscrubd).pages], [765, 1789, true, 9981 + 4 + 1024]);
    assert.equal(check(m), null);
  });

  test('when an i386 has more than 896 MiB then the idle zeroer zeroes HighMem first and faults there take zeroed pages', () => {
    // 1 GiB: DMA 16 MiB, Normal to 896 MiB, HighMem the rest (32256 free pages). User pages
    // are GFP_HIGHUSER: HighMem, then Normal. Zeroing DMA and Normal first would reach 4/5 of
    // the free pages with HighMem untouched and no fault served zeroed.
    const m = createMachine({ preset: 'i386', mem: '1G', clock: 'manual', zeroingPolicy: 'idlezero' });
    m.setSysctl('max_prealloc_order', 0);
    m.tick(5e9);
    const [dma, normal, high] = m.zones;
    assert.deepEqual([dma!.name, normal!.name, high!.name], ['DMA', 'Normal', 'HighMem']);
    assert.deepEqual([high!.zeroPages, high!.freePages, dma!.zeroPages], [32256, 32256, 0]);
    // It stopped at ZIDLE_HI, with dirty pages left in Normal.
    assert.ok(zeroOf(m) >= Math.floor((freeOf(m) * 4) / 5) && normal!.zeroPages < normal!.freePages, `${zeroOf(m)} of ${freeOf(m)}`);
    // 192 MiB written: all of HighMem's pages, then Normal's zeroed ones.
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 192 * 2 ** 20, false);
    const r = m.procs.touch(id, { addr, size: 192 * 2 ** 20 });
    assert.deepEqual([r.faults, r.prezeroed, r.hotZeroed], [49152, 49152, 0]);
    assert.equal(high!.freePages < 1024, true, 'HighMem used up first');
    assert.equal(check(m), null);
  });

  test('when every CPU runs a program then the idle zeroer waits, and it clears idlezero_maxrun pages at a time', () => {
    const m = tiny('idlezero');
    write(m, 'idlezero_maxrun', Buffer.from('256\n'));
    for (let cpu = 0; cpu < m.config.cpus; cpu++) m.cpus.switchIn(cpu);
    m.tick(1e9);
    assert.deepEqual([zeroOf(m), kscrubdTotals(m.kscrubd).cpuNs, m.kscrubd[0]!.waiting], [0, 0, true]);
    assert.throws(() => write(m, 'idlezero_maxrun', Buffer.from('0')), /out of range 1\.\.2147483647/);
    assert.equal(render(m, 'idlezero_maxrun'), '256\n');
  });
});
