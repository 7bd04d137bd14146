import { type HugeTouchResult, type HugetlbPool, type Machine, kscrubdTotals, refetchNs } from '../model';
import { type KscrubdMode, ModelError, type ZeroingPolicyName, formatZeroingPolicy, parseZeroingPolicy } from '../uapi';
import { COMBINE, type PolicyRow, type ScenarioName, type ScenarioOptions, caseMachine, clearedPages, coRunners, isCombo, settle as settleBuddy, unusableIndex } from './policies-run';

// The vm-start and restart scenarios on a hugetlb pool (`kscrubfs policies … --hugetlb 2M|1G`):
// the VM's memory is MAP_HUGETLB from a pool sized to it at boot, and the policies are the
// pool's own pre-zeroing proposals. kscrubd and init_on_* do not reach pool pages (they never
// go back to the buddy allocator while the pool holds them), so a single proposal's machine
// runs without them; a combined row (`init_on_free+khzerod`) boots with the buddy policies
// too, and pays what they cost the rest of the machine (a boot wipe, kscrubd's zeroing).

/** A hugetlb pre-zeroing policy (or a combination) as the comparison runs it. */
export interface HugetlbCase {
  readonly name: string;
  readonly what: string;
  /** The machine's boot policies, and kscrubd's sysctls. */
  readonly policy: readonly ZeroingPolicyName[];
  readonly kscrubd: KscrubdMode;
  /** prezero_enabled=1 on the pool. */
  readonly khzerod: boolean;
  /** An agent writes zeroable_hugepages whenever the machine is idle. */
  readonly agent: boolean;
}

/** The proposals alone run on a machine of the `none` comparison's: kscrubd off, no init_on_*. */
const ALONE = { policy: ['kscrubd'], kscrubd: 'off' } as const;

export const HUGETLB_CASES: readonly HugetlbCase[] = [
  { name: 'none', what: 'every huge page cleared in its fault (folio_zero_user)', ...ALONE, khzerod: false, agent: false },
  { name: 'khzerod', what: "van der Linden's khzerod: prezero_enabled=1, free pages zeroed in the background, tail first", ...ALONE, khzerod: true, agent: false },
  { name: 'zeroable_hugepages', what: "Li Zhe's zeroable_hugepages: a user-space agent writes the count to each node whenever the machine is idle, and pays for it", ...ALONE, khzerod: false, agent: true },
];

/** The hugetlb proposals, the policies a hugetlb comparison's row must have one of. */
export const HUGETLB_POLICIES: readonly ZeroingPolicyName[] = ['khzerod', 'zeroable_hugepages'];

/** A combination's case: the machine boots with all of `policy`; each proposal named runs as alone. */
export function hugetlbComboCase(policy: readonly ZeroingPolicyName[]): HugetlbCase {
  return {
    name: policy.join(COMBINE), what: `booted with ${formatZeroingPolicy(policy)}`, policy,
    kscrubd: policy.includes('kscrubd') ? 'on' : 'off', khzerod: policy.includes('khzerod'), agent: policy.includes('zeroable_hugepages'),
  };
}

export const HUGETLB_SCENARIOS: readonly ScenarioName[] = ['vm-start', 'restart'];

/** How long khzerod may keep the machine busy before the run gives up on it sleeping. */
const SETTLE_LIMIT_NS = 3600e9;

/** Run the clock until every khzerod sleeps (an idle machine gives it the time). */
function settleHugetlb(m: Machine): void {
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

/**
 * Run the clock until khzerod and the buddy allocator's background zeroing both sleep: each
 * may wake the other's work (kscrubd's ticks let khzerod run, and the reverse), so until
 * neither has any left.
 */
function settle(m: Machine): void {
  do {
    settleHugetlb(m);
    settleBuddy(m);
  } while (m.hugetlb.nextAt() !== Number.POSITIVE_INFINITY);
}

/**
 * What pre-zeroing has spent and cleared so far: the pool's (in huge pages) and, on a machine
 * booted with buddy policies too, theirs (in base pages).
 */
function zeroing(m: Machine, pool: HugetlbPool): { ns: number; pages: number; basePages: number } {
  return { ns: pool.khzerodNs + pool.writerNs + kscrubdTotals(m.kscrubd).cpuNs, pages: pool.khzerodPages + pool.writerPages + pool.faultCleared, basePages: clearedPages(m) };
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
  const m = caseMachine(c, o);
  const pool = m.hugetlb.poolOf(hugeBytes, 'policies');
  const pages = Math.ceil(o.bytes / hugeBytes);
  m.hugetlb.setNrHugepages(pool, pages);
  if (pool.nr < pages) throw new ModelError('KSCRUB_NOMEM', `policies: only ${pool.nr} of ${pages} huge pages of ${pool.hs.kB} kB fit the machine`);
  const idle = (): void => {
    settle(m);
    if (c.agent) agent(m, pool);
  };
  // The VM a restart stops was started before any pre-zeroing was turned on.
  const old = scenario === 'restart' ? faultIn(m, pool, o).mm : -1;
  if (c.khzerod) m.hugetlb.setPrezero(pool, true);
  idle();
  const jobs = coRunners(m);
  const before = zeroing(m, pool);
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
  const after = zeroing(m, pool);
  const fragOrder = Math.min(Math.log2(2 ** 21 / m.pageSize), m.maxOrder - 1);
  return {
    policy: c.name,
    zeroingPolicy: formatZeroingPolicy(m.config.zeroingPolicy),
    kscrubd: c.kscrubd,
    readyNs, appCpuNs, exitNs,
    backgroundCpuNs: after.ns - before.ns,
    // A boot wipe (init_on_free) is work done before the scenario too.
    prepCpuNs: before.ns + m.bootWipe.ns,
    trafficBytes: ((after.pages - before.pages) * hugeBytes + (after.basePages - before.basePages) * m.pageSize) * 2,
    prezeroedPages: prezeroed,
    hotZeroedPages: hot,
    hitRate: prezeroed + hot === 0 ? 0 : prezeroed / (prezeroed + hot),
    maxFaultNs: touch.maxFaultNs,
    fragOrder,
    unusable: unusableIndex(m, fragOrder),
    corunNs: jobs.reduce((sum, ws) => sum + refetchNs(m.cost, ws, m.config.lineSize), 0),
  };
}

/** Every hugetlb case (or the named ones: the single proposals in table order, then the combinations as given) under one scenario. */
export function runHugetlbPolicies(scenario: ScenarioName, o: ScenarioOptions, hugeBytes: number, names?: readonly string[]): PolicyRow[] {
  if (!HUGETLB_SCENARIOS.includes(scenario)) throw new ModelError('KSCRUB_BAD_OPTION', `policies: --hugetlb applies to ${HUGETLB_SCENARIOS.join(' and ')}, not ${scenario}`);
  const cases = names === undefined ? HUGETLB_CASES : [...HUGETLB_CASES.filter((c) => names.includes(c.name)), ...names.filter(isCombo).map((n) => hugetlbComboCase(parseZeroingPolicy(n.split(COMBINE))))];
  return cases.map((c) => runHugetlbCase(scenario, c, o, hugeBytes));
}
