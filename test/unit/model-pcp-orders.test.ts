// A modern kernel's high-order per-cpu lists on a tiny 6.18 machine, traced by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AllocResult, check, createMachine, pcpCount } from '../../src/model';
import * as zoneinfo from '../../src/procfs/zoneinfo';

// One node of 256 MiB: DMA32 has 52221 managed pages, low watermark 3221 (model-watermarks
// test), so zone_batchsize 15, high_max 52221 / 8 / CPUs. CPU 1 has not allocated yet (boot
// allocates on CPU 0): its lists are empty, high 0, free_count 0.
const machine = (cpus: number) => createMachine({ preset: 'epyc', nodes: 1, cpus, mem: '256M', clock: 'manual' });

describe('model: high-order per-cpu lists (5.13 on)', () => {
  it('when THP blocks are allocated and freed on one CPU then they come from and go to its list, and a drain returns the oldest', () => {
    const m = machine(2);
    const z = m.zones[1]!;
    const hot = z.pageset[1]![0]!;
    assert.deepEqual(hot.orders!.orders, [1, 2, 3, 9]);
    assert.deepEqual([hot.batch, hot.highMin, hot.highMax], [15, 1610, 3263]);
    const served = new AllocResult();
    const zonePcp = z.pcpPages; // (boot's allocations left a few pages on CPU 0's lists)
    // nr_pcp_alloc(order 9): high = clamp(0) = 1610, + a batch = 1625; refill max(15 >> 9, 2) = 2 blocks.
    const b1 = m.allocPages(9, false, 0, 1, served);
    assert.deepEqual([served.lockedPages, hot.high, pcpCount(hot), z.pcpPages - zonePcp], [2, 1625, 512, 512]);
    // The second comes off the list: no refill, no zone->lock.
    const b2 = m.allocPages(9, false, 0, 1, served);
    assert.deepEqual([served.lockedPages, pcpCount(hot)], [0, 0]);
    // Both frees stay: 512 then 1024 pages is under high 1625 (free_count 512, at its cap 15 << 5 = 480 after the first).
    const freeBefore = z.freePages;
    m.freePages(b1, 9, 1);
    m.freePages(b2, 9, 1);
    assert.deepEqual([pcpCount(hot), hot.freeCount, z.freePages - freeBefore], [1024, 512, 0]);
    assert.match(zoneinfo.render(m), /zone {4}DMA32\n(?:.*\n)*? {4}cpu: 1\n {14}count: {4}1024\n/);
    // The list's head is the block freed last.
    assert.equal(m.allocPages(9, false, 0, 1, served), b2);
    // Three more: b1 off the list, then a refill of 2 (high 1640). free_count halves each time: 32.
    const held = [b2, m.allocPages(9, false, 0, 1, served), m.allocPages(9, false, 0, 1, served), m.allocPages(9, false, 0, 1, served)];
    assert.equal(held[1], b1);
    assert.deepEqual([hot.high, hot.freeCount, pcpCount(hot)], [1640, 32, 0]);
    // Freed in turn: the fourth makes 2048 ≥ 1640, and nr_pcp_free drains max(free_count 544, 15)
    // pages — two whole blocks, the oldest first (b2, then b1) — leaving 1024.
    const drained: number[] = [];
    const freeHeld = z.freePages;
    let before = m.vm.pcpDrainPages;
    for (const pfn of held) {
      m.freePages(pfn, 9, 1);
      drained.push(m.vm.pcpDrainPages - before);
      before = m.vm.pcpDrainPages;
    }
    assert.deepEqual(drained, [0, 0, 0, 1024]);
    assert.deepEqual(hot.orders!.lists[9], [held[2], held[3]]);
    assert.equal(z.freePages - freeHeld, 1024);
    assert.equal(check(m), null);
  });

  it('when a CPU frees a long run of order-1 blocks then free_high drains its lists, keeping less than a batch', () => {
    // 16 CPUs: high_min = max(3221 / 16, 4 × 15) = 201, high_max 407; the CPU's share of its
    // 32 MiB L3 (8 cores) is 1024 pages, more than 3 batches (PCPF_FREE_HIGH_BATCH).
    const m = machine(16);
    const hot = m.zones[1]!.pageset[1]![0]!;
    assert.deepEqual([hot.batch, hot.highMin, hot.highMax, hot.orders!.freeHighBatch], [15, 201, 407, true]);
    // 100 order-1 allocations: refills of 15 >> 1 = 7 blocks, 15 of them (105 blocks), 5 left.
    const served = new AllocResult();
    const held: number[] = [];
    let refills = 0;
    for (let i = 0; i < 100; i++) {
      held.push(m.allocPages(1, false, 0, 1, served));
      if (served.lockedPages > 0) refills += served.lockedPages;
    }
    assert.deepEqual([refills, pcpCount(hot), hot.freeCount], [105, 10, 0]);
    // Free k sees free_count 2(k − 1): the 59th is the first with ≥ 15 + 201 / 2 = 115 after an
    // order-1 free, and the lists hold 10 + 118 = 128 ≥ a batch: free_high drains all 128 and
    // drops high to high_min. From then on each free is free_high again once the lists hold a
    // batch: every 8th free drains 16 pages.
    const drains: [number, number][] = [];
    let before = m.vm.pcpDrainPages;
    held.forEach((pfn, i) => {
      m.freePages(pfn, 1, 1);
      if (m.vm.pcpDrainPages !== before) drains.push([i + 1, m.vm.pcpDrainPages - before]);
      before = m.vm.pcpDrainPages;
    });
    assert.deepEqual(drains, [[59, 128], [67, 16], [75, 16], [83, 16], [91, 16], [99, 16]]);
    assert.equal(hot.high, 201);
    assert.equal(check(m), null);
  });

  it('when every per-cpu list is drained then the high-order blocks go back to the buddy lists too', () => {
    const m = machine(2);
    const z = m.zones[1]!;
    m.freePages(m.allocPages(2, false, 0, 1), 2, 1);
    // The refill's 3 blocks (15 >> 2) are all on CPU 1's order-2 list again.
    assert.equal(z.pageset[1]![0]!.orders!.pages, 12);
    m.drainPcp();
    assert.equal(z.pcpPages, 0);
    assert.equal(check(m), null);
  });

  it('when memory runs out while another CPU holds THP blocks on its lists then the slow path drains them and allocates on', () => {
    const m = machine(2);
    const z = m.zones[1]!;
    const hot = z.pageset[1]![0]!;
    // CPU 1 faults and frees one THP: its refill's 2 blocks (1024 pages) wait on its list (high 1625).
    m.freePages(m.allocPages(9, false, 0, 1), 9, 1);
    assert.equal(pcpCount(hot), 1024);
    const drained = m.vm.pcpDrainPages;
    // CPU 0 (the control file's) takes single pages until the zones are at their watermarks.
    let got = 0;
    for (;;) {
      try {
        m.raw.alloc(0, false, 0, 1);
        got++;
      } catch {
        break;
      }
    }
    // Before refusing, __alloc_pages_direct_reclaim drained every CPU's lists: CPU 1's blocks
    // went back to the buddy lists and were handed out page by page.
    assert.equal(pcpCount(hot), 0);
    assert.ok(m.vm.pcpDrainPages - drained >= 1024, `drained ${m.vm.pcpDrainPages - drained}`);
    assert.ok(got > 50000, `got ${got}`);
    assert.equal(check(m), null);
  });

  it('when a 2.6.11 preset allocates order 1 then no per-cpu list is involved', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    const z = m.zones[1]!;
    assert.equal(z.pageset[0]![0]!.orders, null);
    const pcp = z.pcpPages;
    m.allocPages(1, false, 0, 0);
    assert.equal(z.pcpPages, pcp);
  });
});
