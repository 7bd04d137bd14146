import { type HugeTouchResult, type HugetlbPool, type Machine, refetchNs } from '../model';
import { ModelError, formatZeroingPolicy } from '../uapi';
import { POLICY_CASES, type PolicyRow, type ScenarioName, type ScenarioOptions, caseMachine, coRunners, unusableIndex } from './policies-run';

// The vm-start and restart scenarios on a hugetlb pool (`kscrubfs policies … --hugetlb 2M|1G`):
// the VM's memory is MAP_HUGETLB from a pool sized to it at boot, and the policies are the
// pool's own pre-zeroing proposals. kscrubd and init_on_* do not reach pool pages (they never
// go back to the buddy allocator while the pool holds them), so the machine runs without them.

/** A hugetlb pre-zeroing policy as the comparison runs it. */
export interface HugetlbCase {
  readonly name: string;
  readonly what: string;
}

export const HUGETLB_CASES: readonly HugetlbCase[] = [
  { name: 'none', what: 'every huge page cleared in its fault (folio_zero_user)' },
  { name: 'khzerod', what: "van der Linden's khzerod: prezero_enabled=1, free pages zeroed in the background, tail first" },
  { name: 'zeroable_hugepages', what: "Li Zhe's zeroable_hugepages: a user-space agent writes the count to each node whenever the machine is idle, and pays for it" },
];

export const HUGETLB_SCENARIOS: readonly ScenarioName[] = ['vm-start', 'restart'];

/** How long khzerod may keep the machine busy before the run gives up on it sleeping. */
const SETTLE_LIMIT_NS = 3600e9;

/** Run the clock until every khzerod sleeps (an idle machine gives it the time). */
function settle(m: Machine): void {
  const limit = m.now + SETTLE_LIMIT_NS;
  for (let at = m.hugetlb.nextAt(); at !== Number.POSITIVE_INFINITY; at = m.hugetlb.nextAt()) {
    if (at > limit) throw new ModelError('KSCRUB_BAD_OPTION', `policies: khzerod was still zeroing after ${SETTLE_LIMIT_NS / 1e9} s of machine time`);
    m.advanceTo(at);
  }
}

/**
 * The zeroable_hugepages agent's turn: one writer per node writes that node's count, all at
 * once; the machine idles until the last write returns.
 */
function agent(m: Machine, pool: HugetlbPool): void {
  let longest = 0;
  for (let n = 0; n < m.config.nodes; n++) {
    const count = m.hugetlb.zeroable(pool, n);
    if (count > 0) longest = Math.max(longest, m.hugetlb.zeroInWriter(pool, n, count));
  }
  m.advanceTo(m.now + longest);
}

/** What the pool's pre-zeroing has spent and cleared so far. */
function zeroing(pool: HugetlbPool): { ns: number; pages: number } {
  return { ns: pool.khzerodNs + pool.writerNs, pages: pool.khzerodPages + pool.writerPages + pool.faultCleared };
}

/** A process that maps `bytes` of hugetlb memory and writes it with `threads` threads. */
function faultIn(m: Machine, pool: HugetlbPool, o: ScenarioOptions): { mm: number; touch: HugeTouchResult } {
  const mm = m.procs.create().id;
  const { addr, size } = m.hugetlb.maps.mmap(mm, o.bytes, pool);
  const steps = m.hugetlb.maps.touchSteps(mm, addr, size, o.threads);
  let r = steps.next();
  while (!r.done) r = steps.next();
  return { mm, touch: r.value };
}

/**
 * Run `scenario` (vm-start or restart) under hugetlb case `c` with pages of `hugeBytes`:
 * the pool holds exactly the VM's memory (nr_hugepages at boot, interleaved over nodes).
 * Before the scenario the machine idles until khzerod sleeps and the agent has had its turn;
 * after it, again. A cache-sensitive job beside it on every last-level cache loses what the
 * clearing evicts, as in the other scenarios (policies-run.ts).
 */
export function runHugetlbCase(scenario: ScenarioName, c: HugetlbCase, o: ScenarioOptions, hugeBytes: number): PolicyRow {
  const base = POLICY_CASES.find((p) => p.name === 'none')!;
  const m = caseMachine(base, o);
  const pool = m.hugetlb.poolOf(hugeBytes, 'policies');
  const pages = Math.ceil(o.bytes / hugeBytes);
  m.hugetlb.setNrHugepages(pool, pages);
  if (pool.nr < pages) throw new ModelError('KSCRUB_NOMEM', `policies: only ${pool.nr} of ${pages} huge pages of ${pool.hs.kB} kB fit the machine`);
  const idle = (): void => {
    settle(m);
    if (c.name === 'zeroable_hugepages') agent(m, pool);
  };
  // The VM a restart stops was started before any pre-zeroing was turned on.
  const old = scenario === 'restart' ? faultIn(m, pool, o).mm : -1;
  if (c.name === 'khzerod') m.hugetlb.setPrezero(pool, true);
  idle();
  const jobs = coRunners(m);
  const before = zeroing(pool);
  const counts0 = { pre: pool.faultPrezeroed, cleared: pool.faultCleared, waited: pool.faultWaited };
  let readyNs: number;
  let appCpuNs: number;
  let exitNs = 0;
  let touch: HugeTouchResult;
  if (scenario === 'restart') {
    const exit = m.procs.exitTimed(old);
    touch = faultIn(m, pool, o).touch;
    readyNs = exit.wallNs + touch.wallNs;
    exitNs = exit.sysNs;
    appCpuNs = exit.sysNs + touch.sysNs;
  } else {
    touch = faultIn(m, pool, o).touch;
    readyNs = touch.wallNs;
    appCpuNs = touch.sysNs;
  }
  const per = hugeBytes / m.pageSize;
  const prezeroed = (pool.faultPrezeroed - counts0.pre) * per;
  const hot = (pool.faultCleared - counts0.cleared + pool.faultWaited - counts0.waited) * per;
  idle();
  const after = zeroing(pool);
  const fragOrder = Math.min(Math.log2(2 ** 21 / m.pageSize), m.maxOrder - 1);
  return {
    policy: c.name,
    zeroingPolicy: formatZeroingPolicy(m.config.zeroingPolicy),
    kscrubd: base.kscrubd,
    readyNs, appCpuNs, exitNs,
    backgroundCpuNs: after.ns - before.ns,
    prepCpuNs: before.ns,
    trafficBytes: (after.pages - before.pages) * hugeBytes * 2,
    prezeroedPages: prezeroed,
    hotZeroedPages: hot,
    hitRate: prezeroed + hot === 0 ? 0 : prezeroed / (prezeroed + hot),
    maxFaultNs: touch.maxFaultNs,
    fragOrder,
    unusable: unusableIndex(m, fragOrder),
    corunNs: jobs.reduce((sum, ws) => sum + refetchNs(m.cost, ws, m.config.lineSize), 0),
  };
}

/** Every hugetlb case (or the named ones, in table order) under one scenario. */
export function runHugetlbPolicies(scenario: ScenarioName, o: ScenarioOptions, hugeBytes: number, names?: readonly string[]): PolicyRow[] {
  if (!HUGETLB_SCENARIOS.includes(scenario)) throw new ModelError('KSCRUB_BAD_OPTION', `policies: --hugetlb applies to ${HUGETLB_SCENARIOS.join(' and ')}, not ${scenario}`);
  const cases = names === undefined ? HUGETLB_CASES : HUGETLB_CASES.filter((c) => names.includes(c.name));
  return cases.map((c) => runHugetlbCase(scenario, c, o, hugeBytes));
}
