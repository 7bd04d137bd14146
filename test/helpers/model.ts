// Shared helpers for the model's unit tests: tiny machines, a page owner for blocks taken
// straight from a zone, and a fingerprint of everything a run can change.
import assert from 'node:assert/strict';
import { Machine, MachineOptions, NOT_ZEROED, ZEROED, Zone, check, createMachine } from '../../src/model';
import type { CostModel, FreeClass, PageOwner } from '../../src/model';
import { KIND_ALLOC, pageFlags } from '../../src/model/page';

/** x86_64 zeroing figures the hand-worked kscrubd times use: 3.2 B/ns, 1 MiB cache, 10 µs wakeup. */
export const X86_64_PINNED: Partial<CostModel> = { zeroBytesPerNs: 3.2, cacheBytes: 2 ** 20, writebackBytesPerNs: 3, wakeupNs: 10_000 };

/** Altix zeroing figures: CPU 1.56 B/ns, 6 MiB L3; BTE 0.5 B/ns, 2 µs setup, 60,000 B minimum, 8 MiB maximum; 20 µs wakeup. */
export const ALTIX_PINNED: Partial<CostModel> = {
  zeroBytesPerNs: 1.56, cacheBytes: 6 * 2 ** 20, writebackBytesPerNs: 4, bteBytesPerNs: 0.5, bteSetupNs: 2_000,
  bteMinBytes: 60_000, bteMaxBytes: 8 * 2 ** 20, wakeupNs: 20_000, buddyPerPageNs: 60, lineBounceNs: 250,
};

/**
 * The smallest x86_64 machine worth hand-working: 64 MiB, 4 KiB pages, MAX_ORDER 4 (sections of
 * 8 pages), one node, one CPU. Zones: DMA pfn 0..4096 (512 pristine sections, nothing
 * reserved) and DMA32 pfn 4096..16384, whose first 4355 pages are reserved (mem_map 256 + 3 +
 * kernel 4096), leaving free an order-0 block at 8451 and an order-2 block at 8452 in the
 * partly reserved section 1056, then pristine sections from 1057 (pfn 8456).
 * Watermarks (min_free_kbytes = floor(sqrt(48116 kB × 16)) = 877 → 219 pages):
 * DMA min/low/high 74/92/111, DMA32 144/180/216. Per-cpu batch 1 (hot low 2, high 6).
 * The costs kscrubd's timing depends on are pinned, so hand-worked times survive recalibration.
 */
/**
 * Two nodes of 64 MiB, CPUs 0–1 on node 0 and 2–3 on node 1. Everything costs nothing but the
 * trap (100), the first lock section (1000), hot zeroing (4096 B at 4096 B/ns: 1 ns) and the
 * cacheline transfers: 50 ns between CPUs of a node, 300 ns between nodes. The node bus never limits.
 */
export const FLAT: Partial<CostModel> = {
  trapNs: 100, handlerNs: 0, ptlCheckNs: 1000, ptlSetNs: 0, pcpAllocNs: 0, structPageLines: 0, buddyPerPageNs: 0,
  lruPerPageNs: 0, lineBounceNs: 50, lineRemoteNs: 300, zeroBytesPerNs: 4096, zeroHugeBytesPerNs: 4096,
  zeroGiantBytesPerNs: 4096, fsbBytesPerNs: Number.POSITIVE_INFINITY, lineMissNs: 0, lineHitNs: 0, userPageNs: 0, freePageNs: 0,
};
export const TWO_NODES: MachineOptions = {
  preset: 'x86_64', mem: '128M', nodes: 2, cpus: 4, maxOrder: 4, clock: 'manual', bootAllocations: false, cost: FLAT,
  // Without update_mem_hiwater's line (a test of its own turns it on): the pair's hand-worked
  // figures count the lines 2.6.10 moved.
  hiwaterInFault: false,
};

export const TINY: MachineOptions = {
  preset: 'x86_64', mem: '64M', cpus: 1, nodes: 1, maxOrder: 4, clock: 'manual', cost: X86_64_PINNED, bootAllocations: false,
};

export function tiny(extra: MachineOptions = {}): Machine {
  return createMachine({ ...TINY, ...extra });
}

/** Zone of a node by name; fails the test if the machine has no such zone. */
export function zoneNamed(m: Machine, node: number, name: string): Zone {
  const z = m.nodeZones[node]?.find((x) => x.name === name);
  assert.ok(z, `node ${node} has a ${name} zone`);
  return z;
}

/** check() must pass; on failure the message says where. */
export function assertChecked(m: Machine, where = ''): void {
  const err = check(m);
  assert.equal(err, null, `check() failed${where ? ` ${where}` : ''}: ${err}`);
}

/** Allocated-block flags for a head taken directly from a zone. */
export function allocFlags(order: number): number {
  return pageFlags(KIND_ALLOC, order, NOT_ZEROED);
}

/**
 * Holds blocks taken from a zone with takeBlock, so that check() sees an owner for them
 * (a process's page table would, in the fault model).
 */
export class Holder implements PageOwner {
  readonly label = 'test holder';
  readonly pfns = new Set<number>();
  constructor(readonly m: Machine) {
    m.owners.add(this);
  }
  forEachPage(fn: (pfn: number) => void): void {
    for (const pfn of this.pfns) fn(pfn);
  }
  /** takeBlock of `order` from `cls`; fails the test if the zone has none. */
  take(z: Zone, order: number, cls: FreeClass): number {
    const pfn = z.takeBlock(order, cls, allocFlags(order));
    assert.ok(pfn >= 0, `zone ${z.name} has a free ${cls ? 'zeroed' : 'not-zeroed'} block of order ≥ ${order}`);
    this.pfns.add(pfn);
    return pfn;
  }
  /** freeBlock as `cls` (a zeroed block is cleared first, as a zero driver would); returns the coalesced order. */
  free(z: Zone, pfn: number, order: number, cls: FreeClass): number {
    assert.ok(this.pfns.delete(pfn), `the holder holds pfn ${pfn}`);
    if (cls === ZEROED) z.setZero(pfn, 2 ** order, true);
    return z.freeBlock(pfn, order, cls);
  }
}

/**
 * Turn every not-zeroed free block of the zone into a zeroed one (as if kscrubd had run to the
 * end), so a test can then free exactly the not-zeroed blocks it wants kscrubd to see.
 */
export function zeroEverything(z: Zone): void {
  for (let o = z.topOrder; o >= 0; o--) {
    while (z.blocks(NOT_ZEROED, o) > 0) {
      const pfn = z.takeBlock(o, NOT_ZEROED, allocFlags(o));
      assert.ok(pfn >= 0);
      z.setZero(pfn, 2 ** o, true);
      z.freeBlock(pfn, o, ZEROED);
    }
  }
}

/** Everything a run can change, as one comparable string. */
export function fingerprint(m: Machine): string {
  return JSON.stringify({
    now: m.now,
    zones: m.zones.map((z) => ({
      nz: Array.from(z.nrFree[NOT_ZEROED]!), z: Array.from(z.nrFree[ZEROED]!),
      free: z.freePages, zero: z.zeroPages, scrub: z.scrubPages, pcp: z.pcpPages, pgalloc: z.pgalloc,
      sections: [...z.sections.keys()].sort((a, b) => a - b),
      pcpLists: z.pageset.map((sets) => sets.map((p) => p.list.join(','))),
    })),
    vm: { ...m.vm },
    kscrubd: m.kscrubd.map((k) => ({
      awake: k.awake, cpu: k.cpu, nextAt: k.nextAt, wakes: k.wakes, bursts: k.bursts, blocks: k.blocks, pages: k.pages,
      cpuNs: k.cpuNs, bte: k.bteBlocks, fallbacks: k.bteFallbacks, start: k.lastBurstStart, end: k.lastBurstEnd,
      inFlight: k.inFlight() ? [k.inFlight()!.pfn, k.inFlight()!.order] : null,
    })),
    cpus: { sys: perCpu(m, (c) => m.cpus.systemNs(c)), user: perCpu(m, (c) => m.cpus.userNs(c)), freeAt: perCpu(m, (c) => m.cpus.freeAt(c)) },
    load: m.loadavg.avenrun,
    raw: m.raw.keys().map((h) => [h, m.raw.get(h)!.pfn, m.raw.get(h)!.order]),
    sysctl: m.sysctl,
  });
}

/** Pages that are free, on per-cpu lists or held raw: with no other owner, all managed pages. */
export function accountedPages(m: Machine): number {
  return m.freePagesTotal() + m.pcpPagesTotal() + m.raw.pages + m.slab.pages;
}

// ---- the fault model (test/unit/model-fault*.test.ts) ----------------------------------------------

/** A process's page table, counted: anonymous pages and ZERO_PAGE ptes. */
export function ptesOf(m: Machine, id: number): { anon: number; zero: number } {
  let anon = 0;
  let zero = 0;
  for (const table of m.procs.get(id).ptes.values()) {
    for (const pte of table) {
      if (pte >= 2) anon++;
      else if (pte === 1) zero++;
    }
  }
  return { anon, zero };
}

/** One value per CPU of the machine, in CPU order. */
export function perCpu<T>(m: Machine, fn: (cpu: number) => T): T[] {
  return Array.from({ length: m.cpus.count }, (_, c) => fn(c));
}

/** fingerprint() plus the process side: mms, VMAs, prefault state, page tables, counters. */
export function faultFingerprint(m: Machine): string {
  return JSON.stringify({
    machine: fingerprint(m),
    anon: m.procs.nrAnonPages, pageTables: m.procs.nrPageTablePages, mms: m.procs.nrMms, lastPid: m.procs.lastPid,
    procs: [...m.procs.mms.values()].map((mm) => ({
      id: mm.id, rss: mm.rss, lines: [mm.semLine.cpu, mm.rssLine.cpu],
      vmas: mm.vmas.map((v) => [v.start, v.end, v.random]),
      tasks: mm.tasks.map((t) => [t.nextAddr, t.order]),
      ptes: [...mm.ptes].map(([pmd, t]) => [pmd, Array.from(t).join(',')]),
    })),
  });
}

/**
 * Follow the prefault prediction with single faults from `addr` (the first one may be a miss):
 * each fault lands where the previous one predicted. Returns the pages each fault mapped.
 */
export function prefaultRun(m: Machine, id: number, addr: number, faults: number): number[] {
  const got: number[] = [];
  let a = addr;
  for (let i = 0; i < faults; i++) {
    const r = m.procs.fault(id, a);
    assert.equal(r.faults, 1, `fault ${i} at 0x${a.toString(16)} faulted`);
    got.push(r.prefaulted + 1);
    a += (r.prefaulted + 1) * m.pageSize;
  }
  return got;
}

/** Tick (manual clock) until every kscrubd sleeps; fails the test if one never does. */
export function tickUntilScrubbed(m: Machine, stepNs = 1e7, maxSteps = 100_000): void {
  for (let i = 0; m.scrubbing(); i++) {
    assert.ok(i < maxSteps, `kscrubd still awake after ${maxSteps} ticks of ${stepNs} ns`);
    m.tick(stepNs);
  }
}
