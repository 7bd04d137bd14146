// A modern kernel's watermarks on a tiny 6.18 machine, worked out by hand from its managed pages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMachine, zoneWatermarkOk } from '../../src/model';
import { ModelError } from '../../src/uapi';
import * as zoneinfo from '../../src/procfs/zoneinfo';
import * as meminfo from '../../src/procfs/meminfo';

// One node, 2 CPUs, 256 MiB of 4 KiB pages: DMA holds the first 16 MiB (4096 pages, all
// managed) and DMA32 the rest, 61440 pages less 9219 for mem_map (1024 + 3) and the 32 MiB
// kernel (8192): 52221 managed.
const TINY = { preset: 'epyc', nodes: 1, cpus: 2, mem: '256M', clock: 'manual' } as const;

function levels(m: ReturnType<typeof createMachine>): number[][] {
  return m.zones.map((z) => [z.watermarkMin, z.watermarkLow, z.watermarkHigh]);
}

describe('model: a modern kernel\'s watermarks', () => {
  it('when a tiny 6.18 machine boots then min_free_kbytes is khugepaged\'s, capped at 5 % of the buffer pages, and min/low/high follow', () => {
    const m = createMachine(TINY);
    // calculate_min_free_kbytes: int_sqrt(56317 pages × 4 kB × 16) = 1898 kB, 474 pages:
    // DMA 474 × 4096 / 56317 = 34, gap max(34/4, 4096 × 10/10000) = 8, high 50; DMA32 439,
    // gap max(109, 52), high 657. khugepaged then asks for 11 pageblocks of 512 pages per
    // zone (11264 pages) but at most (4096 − 50 + 52221 − 657) / 20 = 2780 pages: 11120 kB.
    assert.equal(m.minFreeKbytes, 11120);
    // 2780 × 4096 / 56317 = 202, gap max(50, 4); 2780 × 52221 / 56317 = 2577, gap max(644, 52).
    assert.deepEqual(levels(m), [[202, 252, 302], [2577, 3221, 3865]]);
    // lowmem_reserve: DMA keeps 52221 / 256 = 203 pages from allocations that could use DMA32.
    assert.deepEqual(m.zones.map((z) => [...z.lowmemReserve]), [[0, 203, 203], [0, 0, 0]]);
    // totalreserve_pages: min(4096, 203 + 302) + 3865.
    assert.equal(m.watermarks!.totalReservePages(), 4370);
    // zone_highsize: high_min = low / 2 CPUs, high_max = managed / 8 / 2 CPUs (at least 4 batches).
    const dma32 = m.zones[1]!.pageset[0]![0]!;
    assert.deepEqual([dma32.batch, dma32.highMin, dma32.highMax], [15, 1610, 3263]);
  });

  it('when watermark_scale_factor and min_free_kbytes are written then the watermarks and the per-cpu limits move', () => {
    const m = createMachine(TINY);
    m.setWatermarkSysctl('watermark_scale_factor', 1000);
    // gap = max(min / 4, managed × 1000 / 10000): DMA 409, DMA32 5222.
    assert.deepEqual(levels(m), [[202, 611, 1020], [2577, 7799, 13021]]);
    assert.equal(m.zones[1]!.pageset[1]![0]!.highMin, 3899);
    m.setWatermarkSysctl('min_free_kbytes', 1024);
    // 256 pages: DMA 18, DMA32 237; the scale factor's gaps stay.
    assert.deepEqual(levels(m), [[18, 427, 836], [237, 5459, 10681]]);
    assert.equal(m.minFreeKbytes, 1024);
    // boost_factor is kept and moves nothing.
    m.setWatermarkSysctl('watermark_boost_factor', 0);
    assert.equal(m.watermarks!.value('watermark_boost_factor'), 0);
    assert.deepEqual(levels(m), [[18, 427, 836], [237, 5459, 10681]]);
  });

  it('when a watermark sysctl is written out of range then KSCRUB_BAD_SYSCTL and nothing moves', () => {
    const m = createMachine(TINY);
    const before = levels(m);
    for (const [name, v] of [['watermark_scale_factor', 0], ['watermark_scale_factor', 3001], ['min_free_kbytes', -1], ['min_free_kbytes', 2 ** 31], ['watermark_boost_factor', 1.5]] as const) {
      assert.throws(() => m.setWatermarkSysctl(name, v), (e: unknown) => e instanceof ModelError && e.code === 'KSCRUB_BAD_SYSCTL' && e.message.includes(`"${v}"`));
    }
    assert.deepEqual(levels(m), before);
    assert.deepEqual([m.minFreeKbytes, m.watermarks!.value('watermark_scale_factor'), m.watermarks!.value('watermark_boost_factor')], [11120, 10, 15000]);
    // The ends of the ranges are taken.
    m.setWatermarkSysctl('watermark_scale_factor', 3000);
    m.setWatermarkSysctl('watermark_scale_factor', 1);
    assert.equal(m.watermarks!.value('watermark_scale_factor'), 1);
  });

  it('when a 2.6.11 preset boots then it keeps 2.6.11\'s watermarks and has no watermark sysctls', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    assert.equal(m.watermarks, null);
    const z = m.zones[1]!;
    assert.equal(z.watermarkLow, z.watermarkMin + Math.floor(z.watermarkMin / 4));
    assert.equal(z.allocReserve, 0);
    assert.throws(() => m.setWatermarkSysctl('min_free_kbytes', 1024), /no such sysctl/);
  });

  it('when DMA32 runs down then allocations stop at min plus the reserve, and high orders need a free block of that order', () => {
    const m = createMachine(TINY);
    const dma = m.zones[0]!;
    // DMA is untouched (4096 free): far above 202 + 203.
    assert.ok(zoneWatermarkOk(dma, 0, dma.watermarkMin));
    // 6.x checks for one free block of order ≥ the request instead of halving the mark per order.
    assert.equal(zoneWatermarkOk(dma, 10, dma.watermarkMin), dma.blocks(0, 10) + dma.blocks(1, 10) > 0);
    // Fill the machine with order-0 allocations on CPU 0. DMA is the fallback: its last check
    // passed above min + reserve (202 + 203 = 405), and the per-cpu refill after it took at
    // most 32 batches (1 page each): DMA stops between 373 and 405, not near its min of 202.
    while (m.allocPages(0, false, 0, 0) >= 0);
    const mark = dma.watermarkMin + dma.allocReserve;
    assert.equal(mark, 405);
    assert.ok(dma.freePages <= mark && dma.freePages > mark - 32 * dma.pageset[0]![0]!.batch, `DMA kept ${dma.freePages}`);
  });

  it('when zoneinfo and meminfo render a 6.18 machine then protection and MemAvailable show the reserve', () => {
    const m = createMachine(TINY);
    const text = zoneinfo.render(m);
    assert.match(text, /zone {6}DMA\n(?:.*\n)*? {8}min {6}202\n {8}low {6}252\n {8}high {5}302\n {8}promo {4}352\n(?:.*\n)*? {8}protection: \(0, 203, 203\)/);
    const free = m.freePagesTotal();
    assert.match(meminfo.render(m), new RegExp(`MemAvailable: +${(free - 4370) * 4} kB`));
  });
});
