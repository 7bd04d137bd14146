// The counter table (src/uapi/counters.ts): every counter is printed under one name by vmstat
// (and zoneinfo where the table says), `stats` and the node_exporter textfile; and each is
// wired to the model's event it names — a scenario per counter moves it and exactly the
// counters listed with it, so two counters swapped (pgfault_cow printing the ZERO_PAGE
// count) or one reading another's field fails here even where every golden file has 0.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalControl, execute } from '../../src/control';
import { type Machine, type MachineOptions, createMachine } from '../../src/model';
import * as buddyinfo from '../../src/procfs/buddyinfo';
import * as meminfo from '../../src/procfs/meminfo';
import * as vmstat from '../../src/procfs/vmstat';
import * as zoneinfo from '../../src/procfs/zoneinfo';
import { COUNTERS, type CounterName, STATS_KEYS, ZEROING_POLICIES, exportedMetric, parseBuddyinfo, parseMeminfo, parseResult, parseVmstat, statsKeys } from '../../src/uapi';
import { renderTextfile } from '../../src/workload/textfile';
import { TINY } from '../helpers/model';

/** vmstat as a client reads it: name → value. */
function readVmstat(m: Machine): Map<string, number> {
  return parseVmstat(vmstat.render(m));
}

/** `stats` as a client reads it: key → value. */
function readStats(m: Machine): Map<string, number> {
  const line = execute(m, { verb: 'stats' });
  assert.match(line, /^ok /);
  return new Map(Object.entries(parseResult('stats', line.slice(3))));
}

/** The textfile exporter's metrics from the machine's files: metric name → value. */
function readExporter(m: Machine): Map<string, number> {
  const sample = {
    wallMs: 0, uptimeS: 0, uptimeFirstS: 0, runnable: null, sysctl: new Map(),
    buddy: parseBuddyinfo(buddyinfo.render(m)), meminfo: parseMeminfo(meminfo.render(m)), vmstat: readVmstat(m),
  };
  const out = new Map<string, number>();
  for (const line of renderTextfile(sample).split('\n')) {
    const hit = /^([a-z_]+) (\S+)$/.exec(line);
    if (hit) out.set(hit[1]!, Number(hit[2]));
  }
  return out;
}

interface Ctx {
  readonly m: Machine;
  /** One control line; its `ok` text (a refused line fails the test). */
  run(line: string): string;
  /** mm new + mmap: sets mm and addr. */
  map(size: string, flags?: string): void;
  /** One fault `pages` pages into the mapping (write unless `read`). */
  fault(pages?: number, access?: 'read' | 'write'): void;
  mm: number;
  addr: number;
  /** Handles of the last `alloc`. */
  handles: string;
}

function context(m: Machine): Ctx {
  const local = new LocalControl(m);
  const run = (line: string): string => {
    const r = local.run(line);
    assert.match(r, /^ok/, `${line}: ${r}`);
    return r;
  };
  const c: Ctx = {
    m, run, mm: -1, addr: -1, handles: '',
    map(size, flags = '') {
      c.mm = Number(/mm=(\d+)/.exec(run('mm new'))![1]);
      c.addr = Number.parseInt(/addr=0x([0-9a-f]+)/.exec(run(`mmap mm=${c.mm} size=${size} ${flags}`))![1]!, 16);
    },
    fault(pages = 0, access = 'write') {
      run(`fault mm=${c.mm} addr=${hex(c.addr + pages * PAGE)} ${access}`);
    },
  };
  return c;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
const PAGE = 4096;

/** What a scenario does: setup (not measured), then the act whose effect on the counters is measured. */
interface Scenario {
  readonly machine?: MachineOptions;
  readonly setup?: (c: Ctx) => void;
  readonly act: (c: Ctx) => void;
  /** Every counter the act moves, and which way; all others must stay. */
  readonly moves: Partial<Record<CounterName, '+' | '-'>>;
}

/** kscrubd zeroes every free block down to order 0, then is switched off again. */
function zeroEverything({ m, run }: Ctx): void {
  m.setSysctl('scrub_stop', 0);
  m.setSysctl('scrub_start', 0);
  run('tick 10s');
  m.setSysctl('scrub_start', m.maxOrder);
}

const THP_MACHINE: MachineOptions = { ...TINY, maxOrder: 11 };
/** Every zeroing policy at once: a machine that prints every counter of the table. */
const ALL_POLICIES: MachineOptions = { ...TINY, zeroingPolicy: ['kscrubd', 'init_on_free', 'init_on_alloc'] };
const ALTIX_BTE: MachineOptions = { preset: 'altix', mem: '1G', cpus: 2, nodes: 1, maxOrder: 11, clock: 'manual', bootAllocations: false };

const S = {
  allocOrder0: { act: ({ run }) => run('alloc order=0'), moves: { nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+' } },
  allocOrder2: { act: ({ run }) => run('alloc order=2'), moves: { nr_free_pages: '-' } },
  allocZeroHot: { act: ({ run }) => run('alloc order=2 zero'), moves: { nr_free_pages: '-', pgalloc_hot_zeroed: '+' } },
  allocZeroPrezeroed: {
    setup: zeroEverything, act: ({ run }) => run('alloc order=2 zero'),
    moves: { nr_free_pages: '-', nr_zero_pages: '-', pgalloc_prezeroed: '+' },
  },
  allocWasted: {
    setup: zeroEverything, act: ({ run }) => run('alloc order=2'),
    moves: { nr_free_pages: '-', nr_zero_pages: '-', pgalloc_zero_wasted: '+' },
  },
  freeOrder2: {
    setup: (c) => { c.handles = /handles=(\S+)/.exec(c.run('alloc order=2'))![1]!; },
    act: (c) => c.run(`free handles=${c.handles}`),
    moves: { nr_free_pages: '+', pgfree: '+' },
  },
  freeOrder0: {
    setup: (c) => { c.handles = /handles=(\S+)/.exec(c.run('alloc order=0'))![1]!; },
    act: (c) => c.run(`free handles=${c.handles}`),
    moves: { nr_pcp_pages: '+', pgfree: '+' },
  },
  drain: {
    setup: ({ run }) => run(`free handles=${/handles=(\S+)/.exec(run('alloc order=0'))![1]}`),
    act: ({ run }) => run('drain'), moves: { nr_pcp_pages: '-', pcp_drain_pages: '+', nr_free_pages: '+' },
  },
  wakeWithNothingToDo: {
    setup: ({ m }) => m.setSysctl('scrub_stop', 3), act: ({ m }) => m.setSysctl('scrub_start', 3),
    moves: { kscrubd_wakes: '+', kscrubd_bursts: '+' },
  },
  firstBlockInFlight: {
    setup: ({ m }) => { m.setSysctl('scrub_stop', 3); m.setSysctl('scrub_start', 3); },
    act: ({ run }) => run('tick 30us'),
    moves: { nr_scrub_pages: '+', nr_zero_pages: '+', kscrubd_blocks: '+', kscrubd_pages: '+', kscrubd_cpu_us: '+' },
  },
  nextBlockZeroed: {
    setup: ({ m, run }) => { m.setSysctl('scrub_stop', 3); m.setSysctl('scrub_start', 3); run('tick 30us'); },
    act: ({ run }) => run('tick 1us'),
    moves: { nr_zero_pages: '+', kscrubd_blocks: '+', kscrubd_pages: '+', kscrubd_cpu_us: '+' },
  },
  bteZeroes: {
    machine: ALTIX_BTE, setup: ({ m }) => m.setSysctl('scrub_stop', 6),
    act: ({ m, run }) => { m.setSysctl('scrub_start', 6); run('tick 10s'); },
    moves: { kscrubd_wakes: '+', kscrubd_bursts: '+', kscrubd_blocks: '+', kscrubd_pages: '+', kscrubd_cpu_us: '+', nr_zero_pages: '+', kscrubd_bte_blocks: '+' },
  },
  bteFails: {
    machine: ALTIX_BTE, setup: ({ m, run }) => { m.setSysctl('scrub_stop', 6); run('bte fail=1'); },
    act: ({ m, run }) => { m.setSysctl('scrub_start', 6); run('tick 10s'); },
    moves: { kscrubd_wakes: '+', kscrubd_bursts: '+', kscrubd_blocks: '+', kscrubd_pages: '+', kscrubd_cpu_us: '+', nr_zero_pages: '+', kscrubd_bte_fallbacks: '+' },
  },
  writeFaultHot: {
    setup: (c) => c.map('64K', 'random'),
    act: (c) => c.fault(),
    moves: { pgfault: '+', pgfault_hot_zeroed: '+', pgalloc_hot_zeroed: '+', nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+' },
  },
  writeFaultPrezeroed: {
    setup: (c) => { zeroEverything(c); c.map('64K', 'random'); },
    act: (c) => c.fault(),
    moves: { pgfault: '+', pgfault_prezeroed: '+', pgalloc_prezeroed: '+', nr_zero_pages: '-', nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+' },
  },
  readFault: {
    setup: (c) => c.map('64K', 'random'),
    act: (c) => c.fault(0, 'read'),
    // The ZERO_PAGE maps no page of its own; the page-table page is the one allocated.
    moves: { pgfault: '+', pgfault_zero_page: '+', pgalloc_hot_zeroed: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+' },
  },
  writeAfterRead: {
    setup: (c) => { c.map('64K', 'random'); c.fault(0, 'read'); },
    act: (c) => c.fault(),
    moves: { pgfault: '+', pgfault_cow: '+', pgfault_hot_zeroed: '+', pgalloc_hot_zeroed: '+', nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+' },
  },
  faultWithoutMemory: {
    setup: (c) => { c.map('128M', 'random'); c.run(`touch mm=${c.mm} addr=${hex(c.addr)} size=128M`); },
    act: (c) => c.fault(127 * 2 ** 20 / PAGE),
    moves: { pgfault: '+', pgfault_oom: '+', pgalloc_fail: '+' },
  },
  secondSequentialFault: {
    setup: (c) => { c.map('64K'); c.fault(); },
    act: (c) => c.fault(1),
    moves: { pgfault: '+', prefault_pages: '+', pgfault_hot_zeroed: '+', pgalloc_hot_zeroed: '+', nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+' },
  },
  twoTasksRace: {
    machine: { ...TINY, cpus: 2 },
    setup: (c) => c.map('256K'),
    act: (c) => {
      // Task 0 prefaults pages task 1 is faulting at the same time: one of each pair goes back.
      const at = [0, 1, 2].map((p) => `0w${(c.addr + p * PAGE).toString(16)}`).concat([0, 1, 2, 3].map((p) => `1w${(c.addr + p * PAGE).toString(16)}`));
      c.run(`faults mm=${c.mm} at=${at.join(',')} cpus=0,1`);
    },
    moves: {
      pgfault: '+', prefault_pages: '+', prefault_released: '+', pgfree: '+', pgfault_hot_zeroed: '+', pgalloc_hot_zeroed: '+',
      nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+',
    },
  },
  hugeFaultHot: {
    machine: THP_MACHINE, setup: (c) => c.map('8M', 'thp'),
    act: (c) => c.fault(),
    moves: {
      pgfault: '+', thp_fault_alloc: '+', thp_fault_hot_zeroed: '+', nr_anon_transparent_hugepages: '+', pgfault_hot_zeroed: '+',
      pgalloc_hot_zeroed: '+', nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+',
    },
  },
  hugeFaultPrezeroed: {
    machine: THP_MACHINE, setup: (c) => { zeroEverything(c); c.map('8M', 'thp'); },
    act: (c) => c.fault(),
    moves: {
      pgfault: '+', thp_fault_alloc: '+', thp_fault_prezeroed: '+', nr_anon_transparent_hugepages: '+', pgfault_prezeroed: '+',
      pgalloc_prezeroed: '+', nr_zero_pages: '-', nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+',
    },
  },
  hugeFaultFallback: {
    machine: THP_MACHINE,
    setup: (c) => {
      c.map('8M', 'thp');
      // Take every huge-page-sized block: the fault must fall back to a small page.
      const local = new LocalControl(c.m);
      while (local.run('alloc order=9').startsWith('ok'));
    },
    act: (c) => c.fault(),
    moves: {
      pgfault: '+', thp_fault_fallback: '+', pgalloc_fail: '+', pgfault_hot_zeroed: '+', pgalloc_hot_zeroed: '+',
      nr_anon_pages: '+', nr_free_pages: '-', nr_pcp_pages: '+', pcp_refill_pages: '+',
    },
  },
  exitUnderInitOnFree: {
    machine: { ...TINY, zeroingPolicy: 'init_on_free' },
    setup: (c) => { c.map('64K', 'random'); c.run(`touch mm=${c.mm} addr=${hex(c.addr)} size=64K`); },
    act: (c) => c.run(`mm exit mm=${c.mm}`),
    // The freed pages are cleared and go back zeroed: the zeroed per-cpu list fills and drains.
    moves: {
      pgfree: '+', init_on_free_pages: '+', init_on_free_us: '+', nr_anon_pages: '-', nr_free_pages: '+', nr_zero_pages: '+',
      nr_pcp_pages: '+', pcp_drain_pages: '+',
    },
  },
  allocUnderInitOnAlloc: {
    machine: { ...TINY, zeroingPolicy: 'init_on_alloc' },
    act: ({ run }) => run('alloc order=2'),
    moves: { nr_free_pages: '-', init_on_alloc_pages: '+' },
  },
} satisfies Record<string, Scenario>;

/** The scenario that moves each counter (the compiler wants one for every counter of the table). */
const SCENARIO_OF: Readonly<Record<CounterName, keyof typeof S>> = {
  nr_zero_pages: 'nextBlockZeroed',
  nr_scrub_pages: 'firstBlockInFlight',
  nr_pcp_pages: 'freeOrder0',
  pgalloc_prezeroed: 'allocZeroPrezeroed',
  pgalloc_hot_zeroed: 'allocZeroHot',
  pgalloc_zero_wasted: 'allocWasted',
  pgalloc_fail: 'faultWithoutMemory',
  kscrubd_wakes: 'wakeWithNothingToDo',
  kscrubd_bursts: 'wakeWithNothingToDo',
  kscrubd_blocks: 'nextBlockZeroed',
  kscrubd_pages: 'nextBlockZeroed',
  kscrubd_cpu_us: 'nextBlockZeroed',
  kscrubd_bte_blocks: 'bteZeroes',
  kscrubd_bte_fallbacks: 'bteFails',
  pgfault_prezeroed: 'writeFaultPrezeroed',
  pgfault_hot_zeroed: 'writeFaultHot',
  pgfault_zero_page: 'readFault',
  pgfault_cow: 'writeAfterRead',
  pgfault_oom: 'faultWithoutMemory',
  prefault_pages: 'secondSequentialFault',
  prefault_released: 'twoTasksRace',
  thp_fault_prezeroed: 'hugeFaultPrezeroed',
  thp_fault_hot_zeroed: 'hugeFaultHot',
  pcp_refill_pages: 'allocOrder0',
  pcp_drain_pages: 'drain',
  nr_free_pages: 'allocOrder2',
  nr_anon_pages: 'writeFaultHot',
  nr_anon_transparent_hugepages: 'hugeFaultHot',
  pgfree: 'freeOrder2',
  pgfault: 'writeFaultHot',
  thp_fault_alloc: 'hugeFaultHot',
  thp_fault_fallback: 'hugeFaultFallback',
  init_on_free_pages: 'exitUnderInitOnFree',
  init_on_free_us: 'exitUnderInitOnFree',
  init_on_alloc_pages: 'allocUnderInitOnAlloc',
};

/** The counters the scenario's act moved, and which way, read from vmstat. */
function moved(s: Scenario): Partial<Record<string, '+' | '-'>> {
  const c = context(createMachine(s.machine ?? TINY));
  s.setup?.(c);
  const before = readVmstat(c.m);
  s.act(c);
  const after = readVmstat(c.m);
  const out: Partial<Record<string, '+' | '-'>> = {};
  for (const { name } of COUNTERS) {
    // A counter of a policy the machine does not run is not printed (the golden files keep it out).
    if (!before.has(name)) continue;
    const d = after.get(name)! - before.get(name)!;
    if (d !== 0) out[name] = d > 0 ? '+' : '-';
  }
  return out;
}

const sorted = (o: object): [string, unknown][] => Object.entries(o).sort(([a], [b]) => a.localeCompare(b));

describe('counters: one table, one name everywhere', () => {
  it('when a machine has run then every counter is in vmstat, stats and the exporter by one name and one value', () => {
    const c = context(createMachine(ALL_POLICIES));
    S.secondSequentialFault.setup(c);
    zeroEverything(c);
    const vm = readVmstat(c.m);
    const stats = readStats(c.m);
    const exported = readExporter(c.m);
    assert.deepEqual([...stats.keys()], [...statsKeys(ZEROING_POLICIES)], 'stats carries the table, in order');
    assert.equal(statsKeys(ZEROING_POLICIES).length, STATS_KEYS.length + COUNTERS.filter((x) => x.policy !== null).length);
    let nonZero = 0;
    for (const spec of COUNTERS) {
      const v = vm.get(spec.name);
      assert.notEqual(v, undefined, `vmstat prints ${spec.name}`);
      if (v !== 0) nonZero++;
      assert.equal(stats.get(spec.name), v, `stats ${spec.name} = vmstat's`);
      const { name, divisor } = exportedMetric(spec);
      assert.equal(exported.get(name), v! / divisor, `the exporter's ${name} = vmstat's ${spec.name}`);
    }
    assert.ok(nonZero >= 10, `the machine had moved ${nonZero} counters: the comparison saw values, not only zeros`);
  });

  it('when zoneinfo is read then the per-zone counters of the table are there, per zone, summing to vmstat', () => {
    const c = context(createMachine({ ...TINY, nodes: 1 }));
    zeroEverything(c);
    const text = zoneinfo.render(c.m);
    const vm = readVmstat(c.m);
    for (const spec of COUNTERS.filter((x) => x.zoneinfo)) {
      const values = [...text.matchAll(new RegExp(`^ {6}${spec.name} +(\\d+)$`, 'gm'))].map((m) => Number(m[1]));
      assert.equal(values.length, c.m.zones.length, `${spec.name} once per zone`);
      assert.equal(values.reduce((a, b) => a + b, 0), vm.get(spec.name), `${spec.name}: the zones sum to vmstat's`);
    }
  });

  it('when a machine runs only the default policy then no policy counter is printed anywhere', () => {
    const c = context(createMachine(TINY));
    const vm = readVmstat(c.m);
    const stats = readStats(c.m);
    const policyRows = COUNTERS.filter((x) => x.policy !== null);
    assert.ok(policyRows.length >= 3);
    for (const spec of policyRows) {
      assert.equal(vm.has(spec.name), false, `vmstat leaves out ${spec.name}`);
      assert.equal(stats.has(spec.name), false, `stats leaves out ${spec.name}`);
    }
    assert.deepEqual([...stats.keys()], STATS_KEYS.filter((k) => !policyRows.some((r) => r.name === k)));
  });

  it('when each scenario is listed then its own counters include the one it is for (the table below is sound)', () => {
    for (const [name, key] of Object.entries(SCENARIO_OF)) assert.ok(name in S[key].moves, `${key} lists ${name}`);
  });

  for (const spec of COUNTERS) {
    const key = SCENARIO_OF[spec.name];
    it(`when ${key} runs then ${spec.name} moves, with exactly the counters that event moves`, () => {
      assert.deepEqual(sorted(moved(S[key])), sorted(S[key].moves));
    });
  }
});
