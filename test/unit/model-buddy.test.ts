// The buddy allocator on the tiny machine (see TINY in test/helpers/model.ts), through the Zone
// API: the DMA zone is 512 pristine order-3 sections of 8 pages (pfn 0…4095), nothing reserved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_ZEROED, ZEROED, createMachine } from '../../src/model';
import { ModelError } from '../../src/uapi';
import type { Machine } from '../../src/model';
import { render as renderBuddyinfo } from '../../src/procfs/buddyinfo';
import { Holder, assertChecked, tiny, zoneNamed } from '../helpers/model';

const nz = (z: { nrFree: Float64Array[] }): number[] => Array.from(z.nrFree[NOT_ZEROED]!);
const zd = (z: { nrFree: Float64Array[] }): number[] => Array.from(z.nrFree[ZEROED]!);

describe('model: buddy split and merge', () => {
  it('when the tiny machine boots then its zones, reservations and watermarks are the hand-worked ones', () => {
    const m = tiny();
    const dma = zoneNamed(m, 0, 'DMA');
    const dma32 = zoneNamed(m, 0, 'DMA32');
    assert.deepEqual(m.zones.map((z) => [z.name, z.startPfn, z.endPfn]), [['DMA', 0, 4096], ['DMA32', 4096, 16384]]);
    assert.deepEqual([dma.freePages, dma.reservedPages, nz(dma)], [4096, 0, [0, 0, 0, 512]]);
    // 4355 reserved from pfn 4096: section 1056 keeps 8451 (order 0) and 8452 (order 2) free.
    assert.deepEqual([dma32.freePages, dma32.reservedPages, nz(dma32)], [7933, 4355, [1, 0, 1, 991]]);
    assert.deepEqual(dma32.listEntries(0, NOT_ZEROED), [8451]);
    assert.deepEqual(dma32.listEntries(2, NOT_ZEROED), [8452]);
    assert.deepEqual([dma.watermarkMin, dma.watermarkLow, dma.watermarkHigh], [74, 92, 111]);
    assert.deepEqual([dma32.watermarkMin, dma32.watermarkLow, dma32.watermarkHigh], [144, 180, 216]);
    assert.equal(m.minFreeKbytes, 877);
    assert.equal(m.materializedSections(), 1); // only the partly reserved section
    assertChecked(m);
  });

  it('when order-0 is taken from a pristine section then expand lists the upper halves at orders 2, 1, 0', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    assert.equal(h.take(z, 0, NOT_ZEROED), 0);
    assert.deepEqual(nz(z), [1, 1, 1, 511]);
    assert.deepEqual([z.listEntries(2, NOT_ZEROED), z.listEntries(1, NOT_ZEROED), z.listEntries(0, NOT_ZEROED)], [[4], [2], [1]]);
    assert.equal(z.freePages, 4095);
    assert.equal(z.sections.size, 1);
    assertChecked(m);
  });

  it('when blocks of every order are taken then each comes from the smallest free block', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    assert.equal(h.take(z, 0, NOT_ZEROED), 0);
    assert.equal(h.take(z, 0, NOT_ZEROED), 1); // the order-0 half
    assert.deepEqual(nz(z), [0, 1, 1, 511]);
    assert.equal(h.take(z, 1, NOT_ZEROED), 2); // the order-1 half
    assert.equal(h.take(z, 2, NOT_ZEROED), 4); // the order-2 half
    assert.deepEqual(nz(z), [0, 0, 0, 511]);
    assert.equal(h.take(z, 1, NOT_ZEROED), 8); // splits section 1: 12 (order 2) and 10 (order 1) listed
    assert.deepEqual(nz(z), [0, 1, 1, 510]);
    assert.equal(z.freePages, 4096 - 10);
    assertChecked(m);
  });

  it('when both buddies are freed at each order then they merge up and the section becomes pristine again', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    const [p0, p1, p2, p4] = [h.take(z, 0, NOT_ZEROED), h.take(z, 0, NOT_ZEROED), h.take(z, 1, NOT_ZEROED), h.take(z, 2, NOT_ZEROED)];
    assert.deepEqual([p0, p1, p2, p4], [0, 1, 2, 4]);
    assert.equal(z.sections.size, 1);

    assert.equal(h.free(z, 0, 0, NOT_ZEROED), 0); // buddy 1 is allocated
    assert.deepEqual(nz(z), [1, 0, 0, 511]);
    assert.equal(h.free(z, 1, 0, NOT_ZEROED), 1); // merges with 0; buddy 2 allocated
    assert.deepEqual(nz(z), [0, 1, 0, 511]);
    assert.deepEqual(z.listEntries(1, NOT_ZEROED), [0]);
    assert.equal(h.free(z, 2, 1, NOT_ZEROED), 2); // merges with 0..1; buddy 4 allocated
    assert.deepEqual(nz(z), [0, 0, 1, 511]);
    assertChecked(m);
    assert.equal(h.free(z, 4, 2, NOT_ZEROED), 3); // a whole section: pristine again
    assert.deepEqual(nz(z), [0, 0, 0, 512]);
    assert.equal(z.sections.size, 0);
    assert.equal(z.freePages, 4096);
    assertChecked(m);
  });

  it('when buddies are freed in the other order then the same blocks result', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    for (const o of [0, 0, 1, 2]) h.take(z, o, NOT_ZEROED);
    assert.equal(h.free(z, 4, 2, NOT_ZEROED), 2);
    assert.equal(h.free(z, 2, 1, NOT_ZEROED), 1);
    assert.equal(h.free(z, 1, 0, NOT_ZEROED), 0);
    assert.deepEqual(nz(z), [1, 1, 1, 511]);
    assert.equal(h.free(z, 0, 0, NOT_ZEROED), 3);
    assert.deepEqual(nz(z), [0, 0, 0, 512]);
    assert.equal(z.sections.size, 0);
    assertChecked(m);
  });

  it('when a top-order block is taken and freed then the section is materialized only meanwhile', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    const pfn = h.take(z, 3, NOT_ZEROED);
    assert.equal(pfn, 0);
    assert.equal(z.sections.size, 1);
    assert.deepEqual(nz(z), [0, 0, 0, 511]);
    assert.equal(h.free(z, pfn, 3, NOT_ZEROED), 3);
    assert.equal(z.sections.size, 0);
    assert.deepEqual(nz(z), [0, 0, 0, 512]);
    assertChecked(m);
  });
});

describe('model: two classes of free blocks', () => {
  it('when a not-zeroed page is freed next to a zeroed buddy then both stay unmerged on their own lists', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    assert.equal(h.take(z, 0, NOT_ZEROED), 0);
    assert.equal(h.take(z, 0, NOT_ZEROED), 1);
    assert.equal(h.free(z, 0, 0, ZEROED), 0);
    assert.equal(h.free(z, 1, 0, NOT_ZEROED), 0); // buddy 0 is zeroed: no merge
    assert.deepEqual(zd(z), [1, 0, 0, 0]);
    assert.deepEqual(nz(z), [1, 1, 1, 511]);
    assert.deepEqual(z.listEntries(0, ZEROED), [0]);
    assert.deepEqual(z.listEntries(0, NOT_ZEROED), [1]);
    assert.equal(z.zeroPages, 1);
    assert.equal(z.freePages, 4096);
    assert.equal(z.sections.size, 1); // fragmented for good, until one of them is allocated
    assertChecked(m);
  });

  it('when two zeroed buddies are freed then they merge with each other and not with the dirty halves', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    h.take(z, 0, NOT_ZEROED);
    h.take(z, 0, NOT_ZEROED);
    h.free(z, 0, 0, ZEROED);
    assert.equal(h.free(z, 1, 0, ZEROED), 1); // 2 (order 1) is not zeroed: stops at order 1
    assert.deepEqual(zd(z), [0, 1, 0, 0]);
    assert.deepEqual(nz(z), [0, 1, 1, 511]);
    assert.equal(z.zeroPages, 2);
    assertChecked(m);
  });

  it('when a zeroed block is taken then the split halves stay zeroed and zero_pages drops by the block', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    h.free(z, h.take(z, 3, NOT_ZEROED), 3, ZEROED); // section 0 becomes a pristine zeroed section
    assert.deepEqual(zd(z), [0, 0, 0, 1]);
    assert.equal(z.zeroPages, 8);
    assert.equal(z.sections.size, 0);
    assert.equal(h.take(z, 0, ZEROED), 0);
    assert.deepEqual(zd(z), [1, 1, 1, 0]);
    assert.equal(z.zeroPages, 7);
    assert.equal(z.freePages, 4095);
    // A not-zeroed request is not served from the zeroed lists by the zone itself.
    assert.equal(h.take(z, 0, NOT_ZEROED), 8);
    assertChecked(m);
  });

  it('when pfns pass 2^33 then buddies still pair and merge within their section', () => {
    // 64 TiB of 4 KiB pages on 2 nodes: node 1's pfns start at 2^33, past JS's 32-bit bitwise range.
    const m = createMachine({ preset: 'x86_64', mem: '64T', nodes: 2, cpus: 2, clock: 'manual' });
    const z = zoneNamed(m, 1, 'Normal');
    const h = new Holder(m);
    for (let o = 0; o < z.topOrder; o++) while (z.blocks(NOT_ZEROED, o) > 0) h.take(z, o, NOT_ZEROED);
    const sections = z.sections.size;
    const a = h.take(z, 0, NOT_ZEROED); // splits a pristine section
    const b = h.take(z, 0, NOT_ZEROED);
    assert.ok(a > 2 ** 33 && a % z.secPages === 0, `pfn ${a} heads a section past 2^33`);
    assert.equal(b, a + 1);
    assert.equal(z.sections.size, sections + 1);
    assert.equal(h.free(z, a, 0, NOT_ZEROED), 0);
    assert.equal(h.free(z, b, 0, NOT_ZEROED), z.topOrder);
    assert.equal(z.sections.size, sections);
    assertChecked(m);
  });
});

describe('model: altix has 18 orders (CONFIG_FORCE_MAX_ZONEORDER=18)', () => {
  /** buddyinfo's columns of one v6 line: the counts after the label. */
  const columns = (line: string): number[] => line.replace(/^.*(DMA|Pages) /, '').trim().split(/\s+/).map(Number);

  it('when the altix preset boots then buddyinfo has 18 orders and each node is an order-16 and an order-15 block less what boot reserved', () => {
    const m = createMachine({ clock: 'manual', bootAllocations: false });
    assert.equal(m.maxOrder, 18);
    const lines = renderBuddyinfo(m).trimEnd().split('\n');
    assert.equal(lines.length, 8);
    // Node 1: 98304 pages, mem_map (98304 × 56 bytes = 336 pages) and 3 boot pages at pfns
    // 98304 … 98642; the rest, offsets 339 … 98303 of the zone, as the biggest aligned blocks:
    // 339 (order 0), 340 (2), 344 (3), 352 (5), 384 (7), 512 (9), 1024 (10), 2048 (11),
    // 4096 (12), 8192 (13), 16384 (14), 32768 (15), 65536 (15). No order 16 or 17.
    assert.deepEqual(columns(lines[2]!), [1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 2, 0, 0]);
    assert.deepEqual(columns(lines[3]!), new Array(18).fill(0));
    assertChecked(m);
  });

  it('when a 4 GiB node is split at order 17 and freed again then the halves merge back into a pristine order-17 block', () => {
    // One 4 GiB node: 262144 pages, two sections of 2^17. Boot reserves 1024 (kernel) + 896
    // (mem_map) + 3 = 1923 pages from pfn 0; section 0 keeps 1923 (order 0), 1924 (2),
    // 1928 (3), 1936 (4), 1952 (5), 1984 (6), 2048 (11), 4096 (12), … 65536 (16); section 1
    // (pfn 131072) is one pristine order-17 block.
    const m = createMachine({ mem: '4G', nodes: 1, cpus: 2, clock: 'manual', bootAllocations: false });
    const z = zoneNamed(m, 0, 'DMA');
    assert.deepEqual([z.startPfn, z.endPfn, z.reservedPages, z.freePages], [0, 262144, 1923, 262144 - 1923]);
    const before = [1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1];
    assert.deepEqual(columns(renderBuddyinfo(m).split('\n')[0]!), before);
    const h = new Holder(m);
    assert.equal(h.take(z, 16, NOT_ZEROED), 65536); // section 0's order-16 block
    assert.equal(h.take(z, 16, NOT_ZEROED), 131072); // splits the order-17 block: 196608 listed
    assert.deepEqual(z.listEntries(16, NOT_ZEROED), [196608]);
    assert.deepEqual([z.blocks(NOT_ZEROED, 17), z.sections.size], [0, 2]);
    assert.equal(h.take(z, 16, NOT_ZEROED), 196608); // the upper half
    assertChecked(m);
    assert.equal(h.free(z, 131072, 16, NOT_ZEROED), 16); // its buddy is held: no merge
    assert.equal(h.free(z, 196608, 16, NOT_ZEROED), 17); // 196608 ^ 2^16 = 131072: merged
    assert.deepEqual([z.blocks(NOT_ZEROED, 16), z.blocks(NOT_ZEROED, 17), z.sections.size], [0, 1, 1]);
    // Section 0's order-16 block at 65536 has its buddy at 0, reserved: it stays order 16.
    assert.equal(h.free(z, 65536, 16, NOT_ZEROED), 16);
    assert.deepEqual(columns(renderBuddyinfo(m).split('\n')[0]!), before);
    assertChecked(m);
  });
});

describe('model: limits', () => {
  it('when MAX_ORDER is at the top of the accepted range then the machine is consistent or refused naming max order', () => {
    // Page flags keep the order in 5 bits (page.ts PG_ORDER = 0x1f), and MAX_ORDER stops at ia64's 18.
    for (const [maxOrder, mem] of [[16, '1G'], [17, '2G'], [18, '4G'], [20, '8G']] as const) {
      let m: Machine;
      try {
        m = createMachine({ preset: 'x86_64', mem, nodes: 1, cpus: 1, maxOrder, clock: 'manual' });
      } catch (e) {
        assert.ok(e instanceof ModelError && e.code === 'KSCRUB_BAD_OPTION' && /max order/.test(e.message), `maxOrder ${maxOrder}: ${String(e)}`);
        continue;
      }
      assertChecked(m, `after booting with maxOrder ${maxOrder}`);
      for (const order of [maxOrder - 1, maxOrder - 2]) {
        const handles = m.raw.alloc(order, false, 0, 2);
        assertChecked(m, `after allocating order ${order} with maxOrder ${maxOrder}`);
        m.raw.free(handles);
        assertChecked(m, `after freeing order ${order} with maxOrder ${maxOrder}`);
      }
    }
  });
});
