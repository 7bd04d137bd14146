// Allocation policy through the Machine API: __GFP_ZERO, class fallback, per-cpu lists,
// watermarks and NUMA zonelists. Hand-worked on the tiny machine (TINY in test/helpers/model.ts)
// unless a test says otherwise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AllocResult, NOT_ZEROED, PCP_ZEROED, ZEROED, Zone, createMachine } from '../../src/model';
import { ModelError } from '../../src/uapi';
import { Holder, accountedPages, assertChecked, tiny, zeroEverything, zoneNamed } from '../helpers/model';

/** How the test's last allocPages() was served (each allocPages call below passes it). */
const served = new AllocResult();

describe('model: __GFP_ZERO and class fallback', () => {
  it('when a zeroed per-cpu list is drained then its pages go back NOT_ZEROED, as free_pages_bulk files them', () => {
    const m = tiny();
    for (const z of m.zones) zeroEverything(z);
    const h = new Holder(m);
    const pfn = m.allocPages(0, true, 0, 0, served);
    assert.equal(served.prezeroed, true);
    h.pfns.add(pfn);
    const z = served.zone!;
    const onList = z.pageset[0]![2]!.list.length; // PCP_ZEROED: the rest of the refill
    assert.ok(onList > 0, 'the zeroed refill left pages on the zeroed per-cpu list');
    const zeroBefore = z.zeroPages;
    const freeBefore = z.freePages;
    assert.equal(m.drainPcp(), onList);
    assert.equal(z.zeroPages, zeroBefore, 'no drained page counts as zeroed');
    assert.equal(z.freePages, freeBefore + onList);
    assert.equal(z.blocks(NOT_ZEROED, 0) + z.blocks(NOT_ZEROED, 1) + z.blocks(NOT_ZEROED, 2) > 0, true);
    assertChecked(m);
  });

  it('when only zeroed pages are free then a plain order-0 allocation takes one under zone->lock, page by page, and the hot list stays empty', () => {
    // The patch's rmqueue_bulk(zone, 0, batch, list, zero) takes one class and stops when it
    // runs out; buffered_rmqueue then takes a single page of the other class under zone->lock
    // (`__rmqueue(zone, order, !zero)`), so no zeroed page lands on a hot list.
    const m = tiny();
    for (const z of m.zones) zeroEverything(z);
    const h = new Holder(m);
    for (let i = 1; i <= 2; i++) {
      const pfn = m.allocPages(0, false, 0, 0, served);
      h.pfns.add(pfn);
      assert.deepEqual([served.wasted, served.prezeroed, served.hotZeroed, served.lockedPages], [true, false, false, 1], `allocation ${i}`);
      assert.deepEqual(served.zone!.pageset[0]!.map((l) => l.list.length), [0, 0, 0], 'nothing on the per-cpu lists');
    }
    assert.deepEqual([m.vm.allocZeroWasted, m.vm.pcpRefillPages], [2, 0]);
    assertChecked(m);
  });

  it('when the zone has no zeroed pages left then a __GFP_ZERO allocation clears a hot-list page, though the zeroed per-cpu list still holds one', () => {
    // The patch decides `zero` from zone->zero_pages alone (zero_pages >= 1 << order): with
    // none left it takes the hot list and clears the page (prep_zero_page).
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const h = new Holder(m);
    const kept = h.take(dma32, 0, NOT_ZEROED);
    h.pfns.delete(kept);
    dma32.setZero(kept, 1, true);
    dma32.pcpPush(dma32.pageset[0]![PCP_ZEROED]!, kept, ZEROED);
    assert.equal(dma32.zeroPages, 0);
    assertChecked(m);
    h.pfns.add(m.allocPages(0, true, 0, 0, served));
    assert.equal(served.zone, dma32);
    assert.deepEqual([served.prezeroed, served.hotZeroed], [false, true]);
    assert.deepEqual(dma32.pageset[0]![PCP_ZEROED]!.list, [kept], 'the zeroed per-cpu page stays where it was');
    assertChecked(m);
  });

  it('when a zeroed block is there then a __GFP_ZERO order-1 allocation takes it prezeroed', () => {
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const h = new Holder(m);
    h.free(dma32, h.take(dma32, 3, NOT_ZEROED), 3, ZEROED); // section 1057 (pfn 8456) becomes zeroed
    assert.equal(dma32.zeroPages, 8);
    const pfn = m.allocPages(1, true, 0, 0, served);
    assert.equal(pfn, 8456);
    assert.equal(served.zone, dma32);
    assert.equal(served.prezeroed, true);
    assert.equal(served.hotZeroed, false);
    assert.deepEqual([m.vm.allocPrezeroed, m.vm.allocHotZeroed, m.vm.allocZeroWasted], [2, 0, 0]); // counted in pages
    assert.equal(dma32.zeroPages, 6);
    assert.deepEqual(Array.from(dma32.nrFree[ZEROED]!), [0, 1, 1, 0]);
    h.pfns.add(pfn);
    assertChecked(m);
  });

  it('when no zeroed pages exist then a __GFP_ZERO allocation is hot zeroed from a dirty block', () => {
    const m = tiny();
    const pfn = m.allocPages(1, true, 0, 0, served);
    assert.equal(pfn, 8452); // no order-1 dirty block: the order-2 block at 8452 splits
    assert.equal(served.prezeroed, false);
    assert.equal(served.hotZeroed, true);
    assert.deepEqual([m.vm.allocPrezeroed, m.vm.allocHotZeroed, m.vm.allocZeroWasted], [0, 2, 0]);
  });

  it('when zero_pages is below 2^order then __GFP_ZERO does not take the zeroed block', () => {
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const h = new Holder(m);
    h.take(dma32, 0, NOT_ZEROED); // 8451
    h.free(dma32, 8451, 0, ZEROED); // one zeroed page: zero_pages 1 < 2
    m.allocPages(1, true, 0, 0, served);
    assert.equal(served.hotZeroed, true);
    assert.equal(dma32.zeroPages, 1);
  });

  it('when the zeroed lists run dry mid-refill then the zeroed per-cpu list takes only zeroed pages and each further __GFP_ZERO page is cleared on its own', () => {
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const h = new Holder(m);
    h.take(dma32, 0, NOT_ZEROED); // 8451
    h.free(dma32, 8451, 0, ZEROED); // the zone's one zeroed page
    const first = m.allocPages(0, true, 0, 0, served);
    assert.deepEqual([first, served.prezeroed], [8451, true], 'the refill found one zeroed page, not a batch');
    h.pfns.add(first);
    assert.equal(dma32.pageset[0]![2]!.list.length, 0, 'nothing dirty topped the zeroed refill up');
    for (let i = 0; i < 3; i++) {
      h.pfns.add(m.allocPages(0, true, 0, 0, served));
      assert.equal(served.hotZeroed, true, `page ${i + 2}: cleared in the allocation, page by page`);
    }
    assert.equal(m.vm.allocHotZeroed, 3);
    assertChecked(m);
  });

  it('when zero_pages is exactly 2^order then __GFP_ZERO takes the zeroed block', () => {
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const h = new Holder(m);
    // Split the order-2 block at 8452: take 8452 as order 1, give it back zeroed (8454 stays dirty).
    h.free(dma32, h.take(dma32, 1, NOT_ZEROED), 1, ZEROED);
    assert.equal(dma32.zeroPages, 2);
    const pfn = m.allocPages(1, true, 0, 0, served);
    assert.equal(pfn, 8452);
    assert.deepEqual([served.prezeroed, served.hotZeroed], [true, false]);
    assert.equal(dma32.zeroPages, 0);
    h.pfns.add(pfn);
    assertChecked(m);
  });

  it('when an order-0 __GFP_ZERO allocation finds zeroed pages then the zeroed per-cpu list is refilled from ZEROED only', () => {
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    const h = new Holder(m);
    h.free(dma32, h.take(dma32, 3, NOT_ZEROED), 3, ZEROED);
    const pfn = m.allocPages(0, true, 0, 0, served);
    assert.equal(pfn, 8456);
    assert.equal(served.prezeroed, true);
    assert.equal(served.lockedPages, 3); // DMA32's batch: 3
    assert.equal(m.vm.pcpRefillPages, 3);
    assert.equal(dma32.zeroPages, 5);
    // The dirty order-0 page at 8451 was not touched.
    assert.deepEqual(dma32.listEntries(0, NOT_ZEROED), [8451]);
  });

  it('when an order-0 __GFP_ZERO allocation finds no zeroed page then it hot zeroes a page from the hot list', () => {
    const m = tiny();
    const pfn = m.allocPages(0, true, 0, 0, served);
    assert.equal(pfn, 8451);
    assert.equal(served.hotZeroed, true);
    assert.equal(m.vm.allocHotZeroed, 1);
  });

  it('when only zeroed blocks are big enough then an ordinary allocation takes one and counts the zeroing wasted', () => {
    const m = tiny();
    const dma32 = zoneNamed(m, 0, 'DMA32');
    zeroEverything(dma32);
    assert.equal(dma32.zeroPages, 7933);
    const z0 = m.zeroPagesTotal();
    const pfn = m.allocPages(3, false, 0, 0, served);
    assert.equal(pfn, 8456);
    assert.equal(served.zone, dma32);
    assert.equal(served.prezeroed, false);
    assert.equal(served.hotZeroed, false);
    assert.deepEqual([m.vm.allocPrezeroed, m.vm.allocHotZeroed, m.vm.allocZeroWasted], [0, 0, 8]);
    assert.equal(m.zeroPagesTotal(), z0 - 8);
    assert.equal(served.wasted, true);
    const h = new Holder(m);
    h.pfns.add(pfn);
    assertChecked(m);
    // Freed, the block is dirty again: not zeroed, and it does not merge with zeroed neighbours.
    h.pfns.delete(pfn);
    m.freePages(pfn, 3, 0);
    assert.equal(dma32.blocks(NOT_ZEROED, 3), 1);
    assert.equal(dma32.zeroPages, 7933 - 8);
    assertChecked(m);
  });
  it('when only zeroed order-0 pages are left then the hot list refill falls back to them and counts the waste', () => {
    const m = tiny();
    zeroEverything(zoneNamed(m, 0, 'DMA32'));
    const pfn = m.allocPages(0, false, 0, 0, served);
    assert.equal(pfn, 8451);
    assert.deepEqual([served.prezeroed, served.hotZeroed, served.wasted], [false, false, true]);
    new Holder(m).pfns.add(pfn);
    assert.deepEqual([m.vm.allocPrezeroed, m.vm.allocHotZeroed, m.vm.allocZeroWasted], [0, 0, 1]);
    assertChecked(m);
  });

  it('when allocRaw is given a count that is not a whole number of blocks then KSCRUB_BAD_OPTION and nothing is taken', () => {
    for (const count of [1.5, -1, Number.NaN]) {
      const m = tiny();
      assert.throws(() => m.raw.alloc(0, false, 0, count), (e: unknown) => {
        assert.ok(e instanceof ModelError, `count ${count}: ${String(e)}`);
        assert.equal(e.code, 'KSCRUB_BAD_OPTION');
        assert.match(e.message, /count/);
        return true;
      }, `count ${count}`);
      assert.equal(m.raw.size, 0);
    }
  });
});

describe('model: per-cpu lists', () => {
  // x86_64, 96 MiB, MAX_ORDER 4: DMA32 has 20480 present pages, so 2.6.11's batch is
  // min(20480 / 1024, 64) / 4 = 5: hot list low 10, high 30; cold low 0, high 10; both batch 5.
  const PCP = { preset: 'x86_64', mem: '96M', cpus: 1, nodes: 1, maxOrder: 4, clock: 'manual', bootAllocations: false } as const;

  it('when the machine boots then the hot list has the 2.6.11 batch, low and high', () => {
    const m = createMachine(PCP);
    const hot = zoneNamed(m, 0, 'DMA32').pageset[0]![0]!;
    assert.deepEqual([hot.batch, hot.low, hot.high], [5, 10, 30]);
    const cold = zoneNamed(m, 0, 'DMA32').pageset[0]![1]!;
    assert.deepEqual([cold.batch, cold.low, cold.high], [5, 0, 10]);
  });

  it('when order-0 pages are allocated then the hot list refills a batch at a time while at or below low', () => {
    const m = createMachine(PCP);
    const z = zoneNamed(m, 0, 'DMA32');
    const f0 = m.freePagesTotal();
    const steps: [number, number, number][] = [];
    const holder = new Holder(m);
    for (let i = 0; i < 4; i++) {
      const pfn = m.allocPages(0, false, 0, 0, served);
      assert.ok(pfn >= 0);
      holder.pfns.add(pfn);
      steps.push([f0 - m.freePagesTotal(), z.pcpPages, served.lockedPages]);
    }
    // 0 → +5 → 4; 4 → +5 → 8; 8 → +5 → 12; 12 > 10: no refill → 11.
    assert.deepEqual(steps, [[5, 4, 5], [10, 8, 5], [15, 12, 5], [15, 11, 0]]);
    assert.equal(m.vm.pcpRefillPages, 15);
    assertChecked(m);
  });

  it('when frees push the hot list to high then a batch drains from its cold end, and drainPcp returns the rest', () => {
    const m = createMachine(PCP);
    const z = zoneNamed(m, 0, 'DMA32');
    const f0 = m.freePagesTotal();
    const handles = m.raw.alloc(0, false, 0, 30);
    // Refills at allocations 1, 2, 3, 6, 11, 16, 21, 26: 40 pages, 30 handed out, 10 left listed.
    assert.equal(m.vm.pcpRefillPages, 40);
    assert.equal(z.pcpPages, 10);
    assert.equal(m.freePagesTotal(), f0 - 40);
    const oldest = z.pageset[0]![0]!.list.slice(0, 5);
    m.raw.free(handles);
    // The 20th, 25th and 30th frees reach 30: three batches of 5 go back to the buddy lists.
    assert.equal(m.vm.pcpDrainPages, 15);
    assert.equal(z.pcpPages, 25);
    assert.equal(m.freePagesTotal(), f0 - 25);
    for (const pfn of oldest) assert.equal(z.pageset[0]![0]!.list.includes(pfn), false, `cold-end pfn ${pfn} was drained`);
    assertChecked(m);
    assert.equal(m.drainPcp(), 25);
    assert.equal(m.pcpPagesTotal(), 0);
    assert.equal(m.freePagesTotal(), f0);
    assert.equal(m.vm.pcpDrainPages, 40);
    assertChecked(m);
  });

  it('when a page is freed and allocated again then the hot list hands back the page just freed', () => {
    // 2.6.11 rmqueue_bulk adds refilled pages at the list tail (cold end) with list_add_tail;
    // the allocation takes list.next, the hot page free_hot_cold_page put at the head. Here
    // the list holds 5 (≤ low 10) after the free, so the allocation refills first.
    const m = createMachine(PCP);
    const [a] = m.raw.alloc(0, false, 0, 1);
    const pfn = m.raw.get(a!)!.pfn;
    m.raw.free([a!]);
    const [b] = m.raw.alloc(0, false, 0, 1);
    assert.equal(m.raw.get(b!)!.pfn, pfn);
  });

  it('when CPUs sit idle for minutes then their per-cpu lists keep their pages (2.6.11 has no periodic drain)', () => {
    const m = createMachine(PCP);
    m.raw.free(m.raw.alloc(0, false, 0, 3));
    const listed = m.pcpPagesTotal();
    assert.equal(listed, 15, 'three refills of 5; the 3 pages came back');
    m.tick(600e9);
    assert.equal(m.pcpPagesTotal(), listed);
    assert.equal(m.drainPcp(), listed, 'only an explicit drain returns them');
    assertChecked(m);
  });

  it('when the per-cpu lists hold pages then MemFree leaves them out and the page count still adds up', () => {
    const m = tiny();
    const managed = m.managedPagesTotal();
    assert.equal(managed, 4096 + 7933);
    m.raw.alloc(0, false, 0, 5);
    assert.equal(accountedPages(m), managed);
  });
});

describe('model: a modern kernel\'s per-cpu lists (the machines of today)', () => {
  it('when sized as 6.18 sizes them then batch, high_min and high_max are what its zoneinfo printed', () => {
    // A 6.18 kernel on 2 CPUs (../shared/fixtures/proc-6.18/zoneinfo): DMA32 managed 772918,
    // low 12870 → batch min(754, 256) / 4 = 64 → 2^6 - 1 = 63, high_min 12870 / 2 = 6435,
    // high_max 772918 / 8 / 2 = 48307; DMA managed 3840, low 63 → batch max(1, 2^0 - 1) = 1,
    // high_min 31, high_max 240; Normal managed 491520, low 8185 → 63, 4092, 30720.
    assert.deepEqual(Zone.modernPcpSizes(772918, 12870, 2, 4096), { batch: 63, highMin: 6435, highMax: 48307 });
    assert.deepEqual(Zone.modernPcpSizes(3840, 63, 2, 4096), { batch: 1, highMin: 31, highMax: 240 });
    assert.deepEqual(Zone.modernPcpSizes(491520, 8185, 2, 4096), { batch: 63, highMin: 4092, highMax: 30720 });
    // 2.6.11 keeps its own: 16 on a big zone of 4 KiB pages.
    assert.equal(Zone.batchSize(772918, 4096), 16);
    // The LRU batch: 6.18's 31-folio lru_add batch against 2.6.11's 14-page pagevec.
    assert.equal(createMachine({ preset: 'epyc', mem: '2G', nodes: 1, cpus: 2, clock: 'manual' }).pagevecs.size, 31);
    assert.equal(createMachine({ preset: 'x86_64', mem: '256M', clock: 'manual' }).pagevecs.size, 14);
  });

  // epyc on one node, 2 CPUs, 2 GiB: DMA32 has 503805 managed pages; vm.min_free_kbytes 1024
  // (256 pages) gives it min 256 × 503805 / 507901 = 253 and low 253 + max(63, 503) = 756
  // (model-watermarks.test.ts works the formula), so batch 63, high_min 756 / 2 = 378,
  // high_max 503805 / 8 / 2 = 31487.
  const TODAY = { preset: 'epyc', mem: '2G', cpus: 2, nodes: 1, clock: 'manual', bootAllocations: false } as const;

  it('when one CPU allocates without freeing then each refill doubles, up to what keeps the list under high', () => {
    const m = createMachine(TODAY);
    m.setWatermarkSysctl('min_free_kbytes', 1024);
    const hot = zoneNamed(m, 0, 'DMA32').pageset[0]![0]!;
    assert.deepEqual([hot.batch, hot.highMin, hot.highMax, hot.high], [63, 378, 31487, 0]);
    const refills: [number, number, number][] = [];
    const holder = new Holder(m);
    const pfns: number[] = [];
    for (let i = 0; i < 3000; i++) {
      pfns.push(m.allocPages(0, false, 0, 0, served));
      holder.pfns.add(pfns[i]!);
      if (served.lockedPages > 0) refills.push([i, served.lockedPages, hot.high]);
    }
    // nr_pcp_alloc on an empty list: batch << alloc_factor (63, 126, 252, …), and high grows
    // by that much first (378 + 63 = 441, + 126 = 567, …); each fits under high - count - batch,
    // so the factor doubles up to its cap of 5: 63 << 5 = 2016. 3969 taken, 969 left.
    assert.deepEqual(refills, [[0, 63, 441], [63, 126, 567], [189, 252, 819], [441, 504, 1323], [945, 1008, 2331], [1953, 2016, 4347]]);
    assertChecked(m);
    // CPU 1 takes 3000 as well, and CPU 0 frees all 6000 (free_frozen_page_commit): its list
    // holds 969 + i + 1 after free i; free_count stops at 63 << 5 = 2016; at high 4347 (free
    // 3377) nr_pcp_free drains the run, 2016 pages, and again 2016 frees later.
    for (let i = 0; i < 3000; i++) {
      pfns.push(m.allocPages(0, false, 0, 1, served));
      holder.pfns.add(pfns[pfns.length - 1]!);
    }
    const drains: [number, number, number][] = [];
    let before = m.vm.pcpDrainPages;
    pfns.forEach((pfn, i) => {
      holder.pfns.delete(pfn);
      m.freePages(pfn, 0, 0);
      if (m.vm.pcpDrainPages !== before) drains.push([i, m.vm.pcpDrainPages - before, hot.high]);
      before = m.vm.pcpDrainPages;
    });
    assert.deepEqual(drains, [[3377, 2016, 4347], [5393, 2016, 4347]]);
    assert.equal(hot.allocFactor, 0, 'each free halved the refill scale');
    assertChecked(m);
  });
});

describe('model: watermarks', () => {
  it('when order-0 pages are allocated until refusal then each zone stops within a batch of its min', () => {
    // Each allocation checks the watermark, then a refill moves a whole batch without looking
    // again (rmqueue_bulk). DMA (batch 1) stops exactly at low 92, then min 74; DMA32 (batch 3)
    // refills from 181 to 178 in pass 1 (above low 180) and from 145 to 142 in pass 2 (above
    // min 144), and its per-cpu list keeps the 8 pages it had when the zone was refused:
    // (7933 − 142 − 8) + (4096 − 74) = 11805 pages handed out.
    const m = tiny();
    const dma = zoneNamed(m, 0, 'DMA');
    const dma32 = zoneNamed(m, 0, 'DMA32');
    let n = 0;
    let lowest = Number.POSITIVE_INFINITY;
    for (;;) {
      const pfn = m.allocPages(0, false, 0, 0, served);
      if (pfn < 0) break;
      n++;
      lowest = Math.min(lowest, dma.freePages - dma.watermarkMin, dma32.freePages - dma32.watermarkMin);
      if (n === 7747) assert.deepEqual([dma32.freePages, dma.freePages], [178, 4096]);
      if (n === 7747 + 4096 - 92) assert.deepEqual([dma32.freePages, dma.freePages], [178, 92]);
    }
    assert.equal(n, 11805);
    assert.equal(lowest, -2);
    assert.deepEqual([dma32.freePages, dma.freePages], [142, 74]);
    assert.equal(dma32.pageset[0]![0]!.list.length, 8);
    assert.equal(m.vm.allocFail, 1);
    assert.equal(m.allocPages(0, true, 0, 0, served), -1);
    assert.equal(m.vm.allocFail, 2);
  });

  it('when order-1 blocks are allocated until refusal then no zone goes below min and the refusal is counted', () => {
    // zone_watermark_ok(1): free − 1 > mark. DMA32 (odd, 7933) stops at 181 above low, 145 above
    // min; DMA (even) at 92, then 74: (7933 − 145 + 4096 − 74) / 2 = 5905 blocks.
    const m = tiny();
    const dma = zoneNamed(m, 0, 'DMA');
    const dma32 = zoneNamed(m, 0, 'DMA32');
    let n = 0;
    while (m.allocPages(1, false, 0, 0, served) >= 0) {
      n++;
      assert.ok(dma.freePages >= dma.watermarkMin && dma32.freePages >= dma32.watermarkMin, `after ${n}`);
    }
    assert.equal(n, 5905);
    assert.deepEqual([dma32.freePages, dma.freePages], [145, 74]);
    assert.equal(m.vm.allocFail, 1);
  });

  it('when allocRaw runs out part way then it keeps nothing and says how far it got', () => {
    const m = tiny();
    const f0 = accountedPages(m);
    assert.throws(() => m.raw.alloc(1, false, 0, 6000), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'KSCRUB_NOMEM');
      assert.match(e.message, /after 5905 of 6000 order-1 blocks/);
      return true;
    });
    assert.equal(m.raw.size, 0);
    assert.equal(m.raw.pages, 0);
    assert.equal(accountedPages(m), f0);
    assertChecked(m);
  });

  it('when the per-cpu batch is bigger than one then a refill may dip below min by less than a batch', () => {
    // 2.6.11 checks the watermark for the one page asked for, then rmqueue_bulk moves a batch.
    const m = createMachine({ preset: 'x86_64', mem: '96M', cpus: 1, nodes: 1, maxOrder: 4, clock: 'manual', bootAllocations: false });
    let lowest = 0;
    while (m.allocPages(0, false, 0, 0, served) >= 0) {
      for (const z of m.zones) lowest = Math.min(lowest, z.freePages - z.watermarkMin);
    }
    const batch = zoneNamed(m, 0, 'DMA32').pageset[0]![0]!.batch;
    assert.ok(lowest > -batch, `free pages went ${-lowest} below min with batch ${batch}`);
  });
});

describe('model: NUMA zonelists', () => {
  // x86_64, 256 MiB, 2 nodes, MAX_ORDER 4. Node 1 is one DMA32 zone, pfn 32768…65536, with
  // 515 pages of mem_map reserved: 32253 free. min_free_kbytes 1966 → 491 pages; node 1's
  // share: min 262, low 327.
  const NUMA = { preset: 'x86_64', mem: '256M', cpus: 2, nodes: 2, maxOrder: 4, clock: 'manual', bootAllocations: false } as const;

  it('when the 2-node machine boots then each node tries its own zones first', () => {
    const m = createMachine(NUMA);
    assert.deepEqual(m.zonelists.map((l) => l.map((z) => `${z.name}@${z.node}`)), [
      ['DMA32@0', 'DMA@0', 'DMA32@1'],
      ['DMA32@1', 'DMA32@0', 'DMA@0'],
    ]);
    const z1 = zoneNamed(m, 1, 'DMA32');
    assert.deepEqual([z1.freePages, z1.watermarkMin, z1.watermarkLow], [32253, 262, 327]);
  });

  it('when node 1 runs low then its allocations fall back to node 0', () => {
    // Order 2: watermark_ok needs free − 3 > 327, so node 1 (free ≡ 1 mod 4) serves down to 329:
    // (32253 − 329) / 4 = 7981 blocks, and the 7982nd comes from node 0's DMA32.
    const m = createMachine(NUMA);
    const z1 = zoneNamed(m, 1, 'DMA32');
    let local = 0;
    for (;;) {
      const pfn = m.allocPages(2, false, 1, m.firstCpuOf(1), served);
      assert.ok(pfn >= 0);
      if (served.zone !== z1) break;
      assert.ok(pfn >= 32768 && pfn < 65536);
      local++;
    }
    assert.equal(local, 7981);
    assert.equal(z1.freePages, 329);
    const z0 = zoneNamed(m, 0, 'DMA32');
    assert.equal(served.zone, z0);
    // zone_statistics: node 1's allocations were hits and local; the one node 0 served is a
    // miss there, foreign on node 1's zone (the one preferred), and other (cpu 1 is on node 1).
    assert.deepEqual([z1.numaHit, z1.numaMiss, z1.numaForeign, z1.numaLocal, z1.numaOther], [7981, 0, 1, 7981, 0]);
    assert.deepEqual([z0.numaHit, z0.numaMiss, z0.numaForeign, z0.numaLocal, z0.numaOther], [0, 1, 0, 0, 1]);
    assert.equal(m.vm.allocFail, 0);
  });

  it('when node 0 allocates then its pages come from node 0', () => {
    const m = createMachine(NUMA);
    const [h] = m.raw.alloc(0, false, 0, 1);
    assert.equal(m.raw.get(h!)!.zone.node, 0);
    const [g] = m.raw.alloc(3, true, 1, 1);
    assert.equal(m.raw.get(g!)!.zone.node, 1);
    assertChecked(m);
  });
});
