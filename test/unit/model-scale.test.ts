// Scale: a 64 TiB machine boots and runs with per-page records only where something happened.
// No timings are asserted: CI machines differ; what must hold is how much gets materialized.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_ZEROED, createMachine } from '../../src/model';
import { ModelError } from '../../src/uapi';
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

  it('when the altix is the largest Altix 3000 that ran these kernels (256 nodes, 512 CPUs) then 512 threads fault on every node, kscrubd runs on every node, and check() passes; more nodes or CPUs are refused', () => {
    const m = createMachine({ preset: 'altix', nodes: 256, cpus: 512, mem: '64G', clock: 'manual' });
    assert.deepEqual([m.config.nodes, m.config.cpus, m.zones.length], [256, 512, 256]);
    assert.ok(m.zones.every((z) => z.maxOrder === 18), 'CONFIG_FORCE_MAX_ZONEORDER=18 on every node');
    const before = m.zones.map((z) => z.freePages + z.pcpPages);
    const id = m.procs.create().id;
    const size = 512 * 4 * m.pageSize;
    const { addr } = m.procs.mmap(id, size, false);
    const r = m.procs.touch(id, { addr, size, threads: 512 });
    assert.equal(r.pages, 2048);
    // Each thread ends up on its own CPU, two to a node, and faults from its node's memory.
    assert.equal(m.zones.filter((z, i) => z.freePages + z.pcpPages < before[i]!).length, 256, 'pages from every node');
    m.setSysctl('scrub_stop', 2);
    m.setSysctl('scrub_start', 5);
    m.procs.exit(id);
    m.tick(1e9);
    assert.equal(m.kscrubd.filter((k) => k.blocks > 0).length, 256, 'kscrubd zeroed on every node');
    assertChecked(m, 'after 512 threads and kscrubd on 256 nodes');
    assert.throws(() => createMachine({ preset: 'altix', nodes: 257, cpus: 514 }), (e: unknown) => e instanceof ModelError && /nodes: 257 is not an integer in 1\.\.256/.test(e.message));
    assert.throws(() => createMachine({ preset: 'altix', nodes: 256, cpus: 1024, mem: '64G' }), (e: unknown) => e instanceof ModelError && e.message === "cpus: 1024 is more than the altix kernel's NR_CPUS (512, the SN2 configuration)");
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
