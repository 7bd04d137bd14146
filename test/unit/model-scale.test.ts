// Scale: a 64 TiB machine boots and runs with per-page records only where something happened.
// No timings are asserted: CI machines differ; what must hold is how much gets materialized.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_ZEROED, createMachine } from '../../src/model';
import { accountedPages, assertChecked, zoneNamed } from '../helpers/model';

describe('model: scale', () => {
  it('when a 64 TiB x86_64 machine boots, allocates, frees and scrubs then check() passes and little is materialized', () => {
    const m = createMachine({ preset: 'x86_64', mem: '64T', clock: 'manual', bootAllocations: false });
    assert.equal(m.totalPages, 2 ** 34);
    const normal = zoneNamed(m, 0, 'Normal');
    // mem_map is 1/64 of memory (64-byte struct page per 4 KiB page) plus the kernel and a few pages.
    assert.equal(normal.reservedPages, 2 ** 28 + 3 + 4096);
    assert.equal(m.materializedSections(), 1); // the one partly reserved section
    assert.equal(accountedPages(m), m.managedPagesTotal());

    const small = m.raw.alloc(0, false, 0, 2000);
    const zeroed = m.raw.alloc(3, true, 0, 300);
    const big = m.raw.alloc(10, false, 0, 8);
    assert.equal(m.raw.pages, 2000 + 300 * 8 + 8 * 1024);
    assert.ok(m.materializedSections() < 100, `${m.materializedSections()} sections materialized`);
    m.raw.free([...small.slice(0, 1500), ...zeroed.slice(100), ...big]);
    m.drainPcp();
    assert.equal(accountedPages(m), m.managedPagesTotal());

    m.setSysctl('scrub_stop', 3);
    m.setSysctl('scrub_start', 3);
    m.tick(20e6); // 20 ms: a handful of 4 MiB blocks
    const k = m.kscrubd[0]!;
    assert.ok(k.blocks > 0, 'kscrubd zeroed something');
    assert.ok(m.zeroPagesTotal() > 0);
    assert.ok(normal.blocks(NOT_ZEROED, normal.topOrder) > 2 ** 20, 'almost all of memory is still untouched');
    assert.ok(m.materializedSections() < 100, `${m.materializedSections()} sections materialized after scrubbing`);
    assert.equal(accountedPages(m), m.managedPagesTotal());
    assertChecked(m, 'after alloc, free and scrub');
  });

  it('when a 64 TiB machine on 2 nodes allocates on its far node then pfns past 2^33 stay consistent', () => {
    const m = createMachine({ preset: 'x86_64', mem: '64T', nodes: 2, cpus: 2, clock: 'manual' });
    const hs = m.raw.alloc(0, true, 1, 500);
    for (const h of hs) assert.ok(m.raw.get(h)!.pfn >= 2 ** 33);
    const big = m.raw.alloc(9, false, 1, 4);
    m.raw.free([...hs.slice(0, 250), ...big]);
    m.setSysctl('scrub_start', 9);
    m.tick(5e6);
    assert.ok(m.materializedSections() < 100, `${m.materializedSections()} sections materialized`);
    assertChecked(m);
  });
});
