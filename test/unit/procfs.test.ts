import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createMachine, type Machine, type MachineOptions } from '../../src/model';
import { buildProcTree, type BuddyinfoFormat } from '../../src/procfs';
import {
  parseBuddyinfo, parseLoadavg, parseMeminfo, parseProcFile, parseStat, parseUptime, parseVmstat, parseZoneinfo,
} from '../../src/uapi';
import { READABLE_FILES } from '../helpers/readers';

// The rendered files, checked the way their consumers read them: the strict parsers of
// src/uapi/proc.ts (prometheus/procfs's rules), run on the real 6.18 kernel's files
// too so the parsers themselves are known to accept the kernel's format; and sums that must
// agree with the model's counters.

/** Copies of ../shared/fixtures/proc-6.18 (a real 6.18 kernel, x86_64), kept in the repo for CI. */
const FIXTURES = path.resolve(__dirname, '../../../test/golden/kernel-6.18');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'utf8');

/** Render `file` through the tree, as a reader at offset 0 would get it. */
function read(m: Machine, file: string, buddyinfo: BuddyinfoFormat = 'v6'): string {
  const tree = buildProcTree(m, { buddyinfo, syncClock: () => undefined });
  return tree.files.get(file)!.open(0).read(0, 1 << 24).toString('utf8');
}

// ---- machines ---------------------------------------------------------------------------------

/**
 * A machine with fragmentation in both classes and kscrubd caught in the middle of a block
 * (so off-list pages exist): allocations, frees that coalesce, scrub_start 5, time.
 */
function busyMachine(opts: MachineOptions = {}): Machine {
  const m = createMachine({ clock: 'manual', ...opts });
  const last = m.config.nodes - 1;
  const small = m.raw.alloc(0, false, 0, 300);
  m.raw.alloc(3, true, 0, 40);
  const big = m.raw.alloc(6, false, last, 12);
  m.raw.free(small.filter((_, i) => i % 3 !== 0));
  m.raw.free(big.slice(0, 8));
  m.setSysctl('scrub_start', 5);
  const caught = (): boolean => m.zeroPagesTotal() > 0 && m.zones.some((z) => z.scrubPages > 0);
  for (let i = 0; i < 5000 && !caught(); i++) m.tick(1e5);
  assert.ok(caught(), 'kscrubd has zeroed blocks and holds one off-list');
  return m;
}

const PRESETS = ['altix', 'x86_64'] as const;

// ---- buddyinfo --------------------------------------------------------------------------------

describe('buddyinfo', () => {
  test('when the real kernel file is parsed then the stock parser accepts it', () => {
    assert.equal(parseBuddyinfo(fixture('buddyinfo'), 'stock').length, 3);
  });

  for (const preset of PRESETS) {
    test(`when ${preset} renders v6 then both lines sum to the zone's free pages minus kscrubd's off-list pages`, () => {
      const m = busyMachine({ preset });
      const zones = parseBuddyinfo(read(m, '/buddyinfo'), 'v6');
      assert.equal(zones.length, m.zones.length);
      zones.forEach((b, i) => {
        const z = m.zones[i]!;
        assert.equal(b.node, z.node);
        assert.equal(b.zone, z.name);
        assert.equal(b.counts.length, m.maxOrder);
        const pages = (counts: readonly number[]): number => counts.reduce((s, c, order) => s + c * 2 ** order, 0);
        assert.equal(pages(b.counts) + pages(b.zeroed!), z.freePages - z.scrubPages, `${z.name} on node ${z.node}`);
        assert.equal(pages(b.zeroed!), z.zeroPages, `zeroed line = zone zero pages on node ${z.node}`);
      });
      assert.ok(zones.some((b) => b.zeroed!.some((c) => c > 0)), 'kscrubd zeroed something');
    });

    test(`when ${preset} renders stock then each line is the v6 pair summed, one line per zone`, () => {
      const m = busyMachine({ preset });
      const v6 = parseBuddyinfo(read(m, '/buddyinfo', 'v6'), 'v6');
      const stock = parseBuddyinfo(read(m, '/buddyinfo', 'stock'), 'stock');
      assert.deepEqual(
        stock,
        v6.map((b) => ({ node: b.node, zone: b.zone, counts: b.total, zeroed: null, total: b.total })),
      );
    });
  }

  test('when a fresh machine renders v6 then the first line has only not-zeroed blocks', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    const [dma] = parseBuddyinfo(read(m, '/buddyinfo'), 'v6');
    assert.ok(dma!.counts.some((c) => c > 0));
    assert.ok(dma!.zeroed!.every((c) => c === 0));
  });
});

// ---- meminfo ----------------------------------------------------------------------------------

describe('meminfo', () => {
  test('when rendered then the fields are the 6.18 kernel\'s, in order, with MemZero right after MemFree', () => {
    const kernel = [...parseMeminfo(fixture('meminfo')).keys()];
    const ours = [...parseMeminfo(read(createMachine({ clock: 'manual' }), '/meminfo')).keys()];
    const expected = [...kernel];
    expected.splice(kernel.indexOf('MemFree') + 1, 0, 'MemZero');
    assert.deepEqual(ours, expected);
  });

  for (const preset of PRESETS) {
    test(`when ${preset} is busy then MemTotal, MemFree, MemZero and MemAvailable agree with the zones`, () => {
      const m = busyMachine({ preset });
      const kB = m.pageSize / 1024;
      const mi = parseMeminfo(read(m, '/meminfo'));
      const sum = (f: (z: Machine['zones'][number]) => number): number => m.zones.reduce((s, z) => s + f(z), 0);
      assert.equal(mi.get('MemTotal'), sum((z) => z.managedPages) * kB);
      assert.equal(mi.get('MemFree'), sum((z) => z.freePages) * kB);
      assert.equal(mi.get('MemZero'), sum((z) => z.zeroPages) * kB);
      assert.ok(mi.get('MemZero')! > 0);
      assert.equal(mi.get('MemAvailable'), (sum((z) => z.freePages) - sum((z) => z.watermarkHigh)) * kB);
      assert.ok(mi.get('MemFree')! < mi.get('MemTotal')!, 'boot reservations and allocations are not free');
      assert.equal(mi.get('CommitLimit'), Math.floor(sum((z) => z.managedPages) / 2) * kB);
    });
  }

  test('when processes map pages then AnonPages, Active(anon), Committed_AS and PageTables show them', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    // 1234 pages from a PMD boundary span three 512-entry pte pages.
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, 1234 * 4096);
    m.procs.touch(id, { addr, size });
    const mi = parseMeminfo(read(m, '/meminfo'));
    for (const key of ['AnonPages', 'Active(anon)', 'Active', 'Committed_AS']) assert.equal(mi.get(key), 1234 * 4, key);
    assert.equal(mi.get('PageTables'), 3 * 4);
  });

  test('when free memory is all below the high watermarks then MemAvailable is 0, not negative', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    for (const z of m.zones) z['watermarkHigh'] = z.freePages + 100; // a state no boot leaves: set past the owner
    assert.equal(parseMeminfo(read(m, '/meminfo')).get('MemAvailable'), 0);
  });
});

// ---- vmstat -----------------------------------------------------------------------------------

const MODEL_COUNTERS = [
  'nr_zero_pages', 'nr_scrub_pages', 'nr_pcp_pages', 'pgalloc_prezeroed', 'pgalloc_hot_zeroed',
  'pgalloc_zero_wasted', 'pgalloc_fail', 'kscrubd_wakes', 'kscrubd_bursts', 'kscrubd_blocks',
  'kscrubd_pages', 'kscrubd_cpu_us', 'kscrubd_bte_blocks', 'kscrubd_bte_fallbacks',
  'pgfault_prezeroed', 'pgfault_hot_zeroed', 'pgfault_zero_page', 'pgfault_cow', 'pgfault_oom',
  'prefault_pages', 'prefault_released', 'thp_fault_prezeroed', 'thp_fault_hot_zeroed', 'pcp_refill_pages', 'pcp_drain_pages',
];

describe('vmstat', () => {
  test('when rendered then the names are the 6.18 kernel\'s in order, then the model\'s counters', () => {
    const kernel = [...parseVmstat(fixture('vmstat')).keys()];
    const ours = [...parseVmstat(read(createMachine({ clock: 'manual' }), '/vmstat')).keys()];
    assert.deepEqual(ours, [...kernel, ...MODEL_COUNTERS]);
  });

  for (const preset of PRESETS) {
    test(`when ${preset} is busy then the page counts agree with the zones and kscrubd`, () => {
      const m = busyMachine({ preset });
      const vm = parseVmstat(read(m, '/vmstat'));
      const sum = (f: (z: Machine['zones'][number]) => number): number => m.zones.reduce((s, z) => s + f(z), 0);
      assert.equal(vm.get('nr_free_pages'), sum((z) => z.freePages));
      assert.equal(vm.get('nr_zero_pages'), sum((z) => z.zeroPages));
      assert.equal(vm.get('nr_scrub_pages'), sum((z) => z.scrubPages));
      assert.equal(vm.get('nr_pcp_pages'), sum((z) => z.pcpPages));
      for (const name of ['DMA', 'DMA32', 'Normal']) {
        assert.equal(vm.get(`pgalloc_${name.toLowerCase()}`), sum((z) => (z.name === name ? z.pgalloc : 0)), name);
      }
      assert.ok(vm.get('pgalloc_dma')! + vm.get('pgalloc_dma32')! + vm.get('pgalloc_normal')! > 0);
      assert.equal(vm.get('pgfree'), m.vm.pgfree);
      assert.equal(vm.get('pgalloc_hot_zeroed'), m.vm.allocHotZeroed);
      assert.equal(vm.get('kscrubd_pages'), m.kscrubd.reduce((s, k) => s + k.pages, 0));
      assert.ok(vm.get('kscrubd_pages')! > 0 && vm.get('kscrubd_wakes')! > 0);
    });
  }
});

// ---- zoneinfo ---------------------------------------------------------------------------------

/** A zoneinfo block with every number replaced by N, and protection's length normalized. */
function shape(text: string): string {
  return text.replace(/protection: \([^)]*\)/g, 'protection: (…)').replace(/\d+/g, 'N');
}

/** Split zoneinfo into blocks, one per "Node N, zone NAME" header. */
function zoneBlocks(text: string): string[] {
  return text.split(/(?=^Node \d+, zone )/m);
}

describe('zoneinfo', () => {
  test('when an 8 GiB 2-CPU x86_64 machine renders then each zone has the layout of the 6.18 kernel\'s, plus nr_zero_pages', () => {
    const kernel = zoneBlocks(fixture('zoneinfo')).slice(0, 3);
    const m = createMachine({ preset: 'x86_64', mem: '8G', cpus: 2, clock: 'manual' });
    const ours = zoneBlocks(read(m, '/zoneinfo'));
    assert.equal(ours.length, 3);
    // The patch's one line, right after nr_free_pages: the zone's zeroed free pages.
    const ZERO_LINE = /\n {6}nr_zero_pages (\d+)(?=\n)/;
    ours.forEach((block, i) => {
      assert.equal(Number(ZERO_LINE.exec(block)?.[1]), m.zones[i]!.zeroPages, `zone ${i} nr_zero_pages`);
      assert.match(block, /nr_free_pages \d+\n {6}nr_zero_pages/);
      assert.equal(shape(block.replace(ZERO_LINE, '')), shape(kernel[i]!), `zone ${i}`);
    });
  });

  test('when altix renders then every node has its per-node stats under its zone and the numbers are the zone\'s', () => {
    const m = busyMachine({ preset: 'altix' });
    const blocks = zoneBlocks(read(m, '/zoneinfo'));
    assert.equal(blocks.length, m.zones.length);
    blocks.forEach((block, i) => {
      const z = m.zones[i]!;
      const value = (label: string): number => Number(new RegExp(`^ +${label} +(\\d+)$`, 'm').exec(block)![1]);
      assert.ok(block.startsWith(`Node ${z.node}, zone ${z.name.padStart(8)}\n  per-node stats\n`));
      assert.equal(value('pages free'), z.freePages);
      assert.equal(value('nr_free_pages'), z.freePages);
      assert.equal(value('min'), z.watermarkMin);
      assert.equal(value('high'), z.watermarkHigh);
      assert.equal(value('managed'), z.managedPages);
      assert.equal(value('spanned'), z.spannedPages);
      assert.equal(value('start_pfn:'), z.startPfn);
      assert.match(block, /protection: \(0\)\n/);
      const counts = [...block.matchAll(/^ +count: +(\d+)$/gm)].map((c) => Number(c[1]));
      assert.equal(counts.length, m.config.cpus);
      assert.equal(counts.reduce((s, c) => s + c, 0), z.pcpPages, 'pageset counts = all three per-cpu lists');
    });
  });
});

// ---- stat, loadavg, uptime ----------------------------------------------------------------------

describe('stat', () => {
  test('when the real kernel file is parsed then the parser accepts it', () => {
    assert.equal(parseStat(fixture('stat')).cpus.size, 3);
  });

  test('when kscrubd is part way through a large block then stat shows the part it has run, as the tick charges it, and the whole once it ends', () => {
    // altix's top order is 18 (a 2 MiB...512 MiB block of 16 KiB pages): one block's clear
    // takes far longer than a USER_HZ tick, so booking it at the end would make stat jump.
    const m = createMachine({ preset: 'altix', clock: 'manual', zeroDrivers: ['cpu'] });
    m.setSysctl('scrub_start', 5);
    const k = m.kscrubd[0]!;
    for (let i = 0; i < 10_000 && k.inFlight() === null; i++) m.tick(1e5);
    assert.ok(k.inFlight() !== null, 'kscrubd holds a block');
    const cpu = k.cpu;
    const sys = (): number => parseStat(read(m, '/stat')).cpus.get(`cpu${cpu}`)![2]!;
    const booked0 = m.cpus.systemNs(cpu);
    const s0 = sys();
    const left = k.nextAt - m.now;
    assert.ok(left > 5e7, `the block has more than 50 ms to go (${left} ns)`);
    m.tick(5e7);
    assert.equal(m.cpus.systemNs(cpu), booked0, 'nothing booked yet');
    assert.equal(sys() - s0, 5, 'but stat shows the 50 ms it ran (5 ticks)');
    for (let c = 0; c < m.cpus.count; c++) {
      const total = m.cpus.userNs(c) + m.cpus.systemNs(c, m.now) + m.cpus.idleNs(c, m.now);
      assert.ok(Math.abs(total - m.now) <= m.now * 1e-12, `cpu${c}: user + system + idle = elapsed`);
    }
    const blocks = k.blocks;
    for (let i = 0; i < 100_000 && k.blocks === blocks; i++) m.tick(1e6);
    assert.ok(k.blocks > blocks, 'the block ended');
    assert.ok(m.cpus.systemNs(cpu) > booked0, 'and its CPU is booked');
  });

  test('when altix has run kscrubd then cpu lines carry user/system/idle in USER_HZ and the keys follow the kernel\'s', () => {
    const m = busyMachine({ preset: 'altix', zeroDrivers: ['cpu'] });
    m.tick(2e9);
    const st = parseStat(read(m, '/stat'));
    assert.deepEqual([...st.cpus.keys()], ['cpu', ...Array.from({ length: m.config.cpus }, (_, i) => `cpu${i}`)]);
    assert.deepEqual(st.keys, parseStat(fixture('stat')).keys);
    const ticks = (ns: number): number => Math.floor(ns / 1e7);
    let system = 0;
    for (let i = 0; i < m.config.cpus; i++) {
      const cols = st.cpus.get(`cpu${i}`)!;
      assert.equal(cols[0], ticks(m.cpus.userNs(i)));
      assert.equal(cols[2], ticks(m.cpus.systemNs(i, m.now)));
      assert.equal(cols[3], ticks(m.cpus.idleNs(i, m.now)));
      system += m.cpus.systemNs(i, m.now);
    }
    assert.ok(system >= 1e7, 'kscrubd zeroing with the CPU shows as system time');
    assert.equal(st.cpus.get('cpu')![2], ticks(system));
    assert.equal(st.values.get('softirq')!.length, 11);
    assert.deepEqual(st.values.get('btime'), [1107734400]);
  });
});

describe('loadavg and uptime', () => {
  test('when 1.5 s have passed then uptime reads 1.50 and idle is summed over the CPUs', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    m.tick(1.5e9);
    assert.equal(read(m, '/uptime'), '1.50 6.00\n');
  });

  test('when kscrubd is in a burst then loadavg counts it as running, and the format is the kernel\'s', () => {
    const m = createMachine({ preset: 'altix', clock: 'manual' });
    m.setSysctl('scrub_start', 5);
    assert.match(fixture('loadavg'), /^\d+\.\d\d \d+\.\d\d \d+\.\d\d \d+\/\d+ \d+\n$/);
    assert.equal(read(m, '/loadavg'), '0.00 0.00 0.00 4/5 1\n');
  });

  test('when the load average has samples then loadavg prints the model\'s own formatting', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    for (let i = 0; i < 3; i++) m.cpus.switchIn(0);
    m.tick(60e9);
    const [one, five, fifteen] = read(m, '/loadavg').split(' ');
    assert.deepEqual([one, five, fifteen], [m.loadavg.format(0), m.loadavg.format(1), m.loadavg.format(2)]);
    assert.notEqual(one, '0.00');
  });
});

// ---- the strict parsers themselves (src/uapi/proc.ts) ---------------------------------------------

describe('strict parsers', () => {
  test('when the real kernel\'s zoneinfo, loadavg and uptime are parsed then the strict parsers accept them', () => {
    const zones = parseZoneinfo(fixture('zoneinfo'));
    assert.deepEqual(zones.map((z) => z.zone), ['DMA', 'DMA32', 'Normal', 'Movable', 'Device']);
    assert.deepEqual(zones.map((z) => z.pagesets.length), [2, 2, 2, 0, 0]);
    assert.equal(parseLoadavg(fixture('loadavg')).threads, 78);
    assert.equal(parseUptime(fixture('uptime')).uptime, 1685.14);
  });

  for (const preset of PRESETS) {
    test(`when ${preset} is busy then every file it renders passes its strict parser`, () => {
      const m = busyMachine({ preset });
      for (const rel of READABLE_FILES) assert.doesNotThrow(() => parseProcFile(rel, read(m, `/${rel}`)), rel);
      const zones = parseZoneinfo(read(m, '/zoneinfo'));
      assert.equal(zones.length, m.zones.length);
      assert.ok(zones.every((z) => z.pagesets.length === m.config.cpus));
    });
  }

  test('when a file is torn (a line cut, a blank line, a bucket missing, no kB) then its parser refuses it', () => {
    const m = busyMachine({ preset: 'x86_64' });
    const buddy = read(m, '/buddyinfo');
    const meminfo = read(m, '/meminfo');
    const zoneinfo = read(m, '/zoneinfo');
    const torn: [string, string][] = [
      ['buddyinfo', buddy.slice(0, buddy.length - 9)],
      ['buddyinfo', buddy.replace(/ +\d+ \n/, ' \n')],
      ['buddyinfo', `${buddy}\n`],
      ['meminfo', meminfo.replace('MemFree:', 'MemFree: ')],
      ['meminfo', meminfo.replace(/(MemTotal: +\d+) kB/, '$1')],
      ['meminfo', meminfo.slice(0, meminfo.indexOf('\n', 200))],
      ['zoneinfo', zoneinfo.slice(0, zoneinfo.indexOf('  pagesets'))],
      ['zoneinfo', zoneinfo.replace('        min ', '        min')],
      ['stat', read(m, '/stat').replace('cpu0 ', 'cpu0  ')],
      ['loadavg', read(m, '/loadavg').replace(' ', '  ')],
      ['uptime', '1.5 6.00\n'],
      ['sys/vm/scrub_start', '011\n'],
      ['sys/vm/scrub_start', ''],
    ];
    for (const [rel, text] of torn) assert.throws(() => parseProcFile(rel, text), { name: 'ProcFormatError', code: 'KSCRUB_PROC_FORMAT' }, `${rel}: ${JSON.stringify(text.slice(-60))}`);
  });
});
