import { type Machine, type MachineOptions, type WorkingSet, createMachine, kscrubdTotals, refetchNs } from '../model';
import { render as renderBuddyinfo } from '../procfs/buddyinfo';
import { writeSysctlValue } from '../procfs/sysctl';
import { type KscrubdMode, ModelError, type ZeroingPolicyName, formatZeroingPolicy, kscrubdSysctls, parseBuddyinfo, parseZeroingPolicy } from '../uapi';
import { LocalControl } from '../control';
import { LocalClient } from '../workload/client';
import type { Trace } from '../workload/trace-format';
import { replayOn } from '../workload/trace-replay';

// One scenario under each zeroing policy, each on a fresh machine of the same shape with a
// manual clock: the same scenario and machine give the same rows, byte for byte. The machine
// is driven in this process (as sweep does), because the slowest fault is the fault path's
// own figure and not on any result line.

export const SCENARIOS = ['pft', 'restart', 'vm-start', 'churn', 'trace'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
/** The scenarios that run from the options alone (trace needs its recording: runTracePolicies). */
export type BuiltinScenario = Exclude<ScenarioName, 'trace'>;

/**
 * churn: rounds of a program that maps and writes its memory and exits, with the machine idle
 * between rounds (what background zeroing can use): a steady churn of allocations.
 */
export const CHURN_ROUNDS = 8;
export const CHURN_GAP_NS = 50e6;

/** A policy (or a combination) as the comparison runs it: the machine's boot policies and kscrubd's sysctls. */
export interface PolicyCase {
  readonly name: string;
  readonly policy: readonly ZeroingPolicyName[];
  readonly kscrubd: KscrubdMode;
  readonly what: string;
}

export const POLICY_CASES: readonly PolicyCase[] = [
  { name: 'none', policy: ['kscrubd'], kscrubd: 'off', what: 'every page cleared in its fault (kscrubd off, no init_on_*)' },
  { name: 'kscrubd', policy: ['kscrubd'], kscrubd: 'on', what: "Lameter's kscrubd on: free blocks zeroed in the background" },
  { name: 'init_on_alloc', policy: ['init_on_alloc'], kscrubd: 'off', what: 'init_on_alloc=1: every allocation cleared' },
  { name: 'init_on_free', policy: ['init_on_free'], kscrubd: 'off', what: 'init_on_free=1: pages cleared as they are freed, and once at boot' },
  { name: 'prezero', policy: ['prezero'], kscrubd: 'off', what: "Anolis's zeroed-page pool: kprezerod keeps up to half of each order ≥ 9 zeroed, 4096 pages a second; the flag is lost on merge" },
  { name: 'idlezero', policy: ['idlezero'], kscrubd: 'off', what: 'idle-time zeroing (FreeBSD vm_zeroidle): an idle-priority thread keeps 2/3 to 4/5 of free pages zeroed' },
];

/** What joins the policies of a combined row (`--only init_on_free+kscrubd`): `,` already separates rows. */
export const COMBINE = '+';

/**
 * A combination's case: the machine boots with all of `policy` (mount --zeroing-policy with
 * the same names), kscrubd steered on when it is one of them. Named in table order, as a
 * machine's `config` prints its policy list, so one set has one name.
 */
export function comboCase(policy: readonly ZeroingPolicyName[]): PolicyCase {
  return { name: policy.join(COMBINE), policy, kscrubd: policy.includes('kscrubd') ? 'on' : 'off', what: `booted with ${formatZeroingPolicy(policy)}` };
}

/** The policies a row name stands for: a policy's own case, or a combination's. */
export function caseNamed(name: string): PolicyCase {
  return POLICY_CASES.find((c) => c.name === name) ?? comboCase(parseZeroingPolicy(name.split(COMBINE)));
}

/** Is `name` a combined row (several policies)? */
export function isCombo(name: string): boolean {
  return name.includes(COMBINE);
}

export interface ScenarioOptions {
  readonly machine: MachineOptions;
  /** Bytes the program maps and writes. */
  readonly bytes: number;
  readonly threads: number;
}

/** One policy's row. Times in ns of the simulated machine. */
export interface PolicyRow {
  readonly policy: string;
  readonly zeroingPolicy: string;
  readonly kscrubd: KscrubdMode;
  /** From the scenario's start until the program has written all its memory. */
  readonly readyNs: number;
  /** The program's CPU time (user + system), its exit included. */
  readonly appCpuNs: number;
  /** Of that, the exit (or munmap) that freed its memory. */
  readonly exitNs: number;
  /** kscrubd's CPU time from the scenario's start until it sleeps again afterwards. */
  readonly backgroundCpuNs: number;
  /** Work the policy did before the scenario: kscrubd's zeroing while the machine was idle, init_on_free's boot wipe. */
  readonly prepCpuNs: number;
  /** Bytes the clearing moved over the memory bus: each page cleared is read for ownership and written back. */
  readonly trafficBytes: number;
  readonly prezeroedPages: number;
  readonly hotZeroedPages: number;
  /** prezeroed ÷ (prezeroed + hot-zeroed) of the pages the program's faults mapped. */
  readonly hitRate: number;
  readonly maxFaultNs: number;
  /** The order whose fragmentation is reported: a 2 MiB page's, or the largest the machine has. */
  readonly fragOrder: number;
  /** The unusable free space index at fragOrder (the kernel's extfrag unusable_index): free memory in blocks too small, 0 … 1. */
  readonly unusable: number;
  /**
   * What a cache-sensitive job running beside the scenario lost to the clearing: one job on
   * each last-level cache, its working set half the cache, running from the scenario's start
   * until kscrubd sleeps after it; the time their refetches of evicted lines cost them, summed
   * over the jobs, as background CPU is (src/model/llc.ts).
   */
  readonly corunNs: number;
}

/** One running cache-sensitive job on each last-level cache of `m`, half the cache each. */
export function coRunners(m: Machine): WorkingSet[] {
  const llc = m.llc;
  const jobs: WorkingSet[] = [];
  for (let cpu = 0; cpu < m.config.cpus; cpu += m.config.llcCpus) jobs.push(llc.workingSet(cpu, llc.capacity / 2, true));
  return jobs;
}

/** How long kscrubd may keep the machine busy before the run gives up on it sleeping. */
const SETTLE_LIMIT_NS = 3600e9;
const SETTLE_STEP_NS = 10e6;

/**
 * Run the clock until background zeroing has nothing left to do (as an idle machine would
 * give it the time): no thread in a burst, and kprezerod's last wake zeroed nothing.
 */
export function settle(m: Machine): void {
  const limit = m.now + SETTLE_LIMIT_NS;
  const mark = m.zeroingBursts();
  while (!m.zeroingSettled(mark)) {
    if (m.now >= limit) throw new ModelError('KSCRUB_BAD_OPTION', `policies: background zeroing was still going after ${SETTLE_LIMIT_NS / 1e9} s of machine time`);
    m.tick(SETTLE_STEP_NS);
  }
}

/** The pages every kind of clearing has cleared so far. */
export function clearedPages(m: Machine): number {
  return m.vm.faultHotZeroed + m.vm.initOnFreePages + m.vm.initOnAllocPages + kscrubdTotals(m.kscrubd).pages;
}

/** The unusable free space index at `order`, over all zones, from buddyinfo as a client reads it. */
export function unusableIndex(m: Machine, order: number): number {
  let free = 0;
  let usable = 0;
  for (const z of parseBuddyinfo(renderBuddyinfo(m))) {
    z.total.forEach((blocks, o) => {
      free += blocks * 2 ** o;
      if (o >= order) usable += blocks * 2 ** o;
    });
  }
  return free === 0 ? 0 : (free - usable) / free;
}

/** A process that maps `bytes` (MADV_HUGEPAGE when `thp`) and writes them with `threads` threads. */
function faultIn(m: Machine, o: ScenarioOptions, thp = false): { mm: number; touch: ReturnType<Machine['procs']['touch']> } {
  const mm = m.procs.create().id;
  const { addr, size } = m.procs.mmap(mm, o.bytes, false, undefined, thp);
  return { mm, touch: m.procs.touch(mm, { addr, size, threads: o.threads }) };
}

/** The machine one case runs on. */
export function caseMachine(c: PolicyCase, o: ScenarioOptions): Machine {
  const m = createMachine({ ...o.machine, clock: 'manual', zeroingPolicy: c.policy });
  for (const [name, value] of kscrubdSysctls(c.kscrubd, m.maxOrder)) writeSysctlValue(m, name, value);
  // Today's kernels fault anonymous memory a page at a time: no 2004 anticipatory prefault,
  // whose pages are cleared in the fault whatever the policy.
  writeSysctlValue(m, 'max_prealloc_order', 0);
  return m;
}

/**
 * Run `scenario` under case `c`:
 *   pft      a fresh process maps and writes its memory, then exits (Lameter's pft).
 *   restart  a process that has written its memory exits, and a new one maps and writes as
 *            much at once (a VM restarted): what one frees the other faults, with no idle
 *            time between — where zeroing at free "shifts the overhead" to.
 *   vm-start a process maps its memory with MADV_HUGEPAGE and writes it: each 2 MiB range
 *            faults one transparent huge page, cleared whole (a VM's memory, backed by THP;
 *            hugetlb pools are not modelled yet). It stays: no exit.
 * Before the scenario the machine idles until kscrubd sleeps; after it, again.
 */
export function runCase(scenario: BuiltinScenario, c: PolicyCase, o: ScenarioOptions): PolicyRow {
  const m = caseMachine(c, o);
  const old = scenario === 'restart' ? faultIn(m, o).mm : -1;
  const before = beforeScenario(m);
  let readyNs: number;
  let appCpuNs: number;
  let exitNs: number;
  let maxFaultNs: number;
  if (scenario === 'churn') {
    ({ readyNs, appCpuNs, exitNs, maxFaultNs } = churn(m, o));
  } else if (scenario === 'pft') {
    const run = faultIn(m, o);
    const exit = m.procs.exitTimed(run.mm);
    readyNs = run.touch.wallNs;
    exitNs = exit.sysNs;
    appCpuNs = run.touch.userNs + run.touch.sysNs + exit.sysNs;
    maxFaultNs = run.touch.maxFaultNs;
  } else if (scenario === 'vm-start') {
    const run = faultIn(m, o, true);
    readyNs = run.touch.wallNs;
    exitNs = 0;
    appCpuNs = run.touch.userNs + run.touch.sysNs;
    maxFaultNs = run.touch.maxFaultNs;
  } else {
    const exit = m.procs.exitTimed(old);
    const run = faultIn(m, o);
    readyNs = exit.wallNs + run.touch.wallNs;
    exitNs = exit.sysNs;
    appCpuNs = exit.sysNs + run.touch.userNs + run.touch.sysNs;
    maxFaultNs = run.touch.maxFaultNs;
  }
  return afterScenario(m, c, before, { readyNs, appCpuNs, exitNs, maxFaultNs });
}

/** What a row counts from: taken once the machine has settled before the scenario. */
interface Before {
  readonly jobs: WorkingSet[];
  readonly bg0: number;
  readonly prepCpuNs: number;
  readonly prezeroed0: number;
  readonly hot0: number;
  readonly cleared0: number;
}

/** Settle the machine, start the co-running jobs, and note the counters the row is a difference of. */
function beforeScenario(m: Machine): Before {
  settle(m);
  const bg0 = kscrubdTotals(m.kscrubd).cpuNs;
  return {
    jobs: coRunners(m), bg0, prepCpuNs: bg0 + m.bootWipe.ns,
    prezeroed0: m.vm.faultPrezeroed, hot0: m.vm.faultHotZeroed, cleared0: clearedPages(m),
  };
}

/** The program's own figures, as each scenario measures them. */
interface ProgramTimes {
  readonly readyNs: number;
  readonly appCpuNs: number;
  readonly exitNs: number;
  readonly maxFaultNs: number;
}

/** Settle again and make the row. */
function afterScenario(m: Machine, c: PolicyCase, b: Before, t: ProgramTimes): PolicyRow {
  const prezeroed = m.vm.faultPrezeroed - b.prezeroed0;
  const hot = m.vm.faultHotZeroed - b.hot0;
  settle(m);
  const fragOrder = Math.min(Math.log2(2 ** 21 / m.pageSize), m.maxOrder - 1);
  return {
    policy: c.name,
    zeroingPolicy: formatZeroingPolicy(c.policy),
    kscrubd: c.kscrubd,
    ...t,
    backgroundCpuNs: kscrubdTotals(m.kscrubd).cpuNs - b.bg0,
    prepCpuNs: b.prepCpuNs,
    trafficBytes: (clearedPages(m) - b.cleared0) * m.pageSize * 2,
    prezeroedPages: prezeroed,
    hotZeroedPages: hot,
    hitRate: prezeroed + hot === 0 ? 0 : prezeroed / (prezeroed + hot),
    fragOrder,
    unusable: unusableIndex(m, fragOrder),
    corunNs: b.jobs.reduce((sum, ws) => sum + refetchNs(m.cost, ws, m.config.lineSize), 0),
  };
}

/**
 * churn: CHURN_ROUNDS rounds of pft (map, write, exit), the machine idle for CHURN_GAP_NS
 * after each. Ready is the rounds' time to ready summed; the slowest fault, any round's.
 */
function churn(m: Machine, o: ScenarioOptions): ProgramTimes {
  let readyNs = 0;
  let appCpuNs = 0;
  let exitNs = 0;
  let maxFaultNs = 0;
  for (let round = 0; round < CHURN_ROUNDS; round++) {
    const run = faultIn(m, o);
    const exit = m.procs.exitTimed(run.mm);
    readyNs += run.touch.wallNs;
    exitNs += exit.sysNs;
    appCpuNs += run.touch.userNs + run.touch.sysNs + exit.sysNs;
    maxFaultNs = Math.max(maxFaultNs, run.touch.maxFaultNs);
    m.tick(CHURN_GAP_NS);
  }
  return { readyNs, appCpuNs, exitNs, maxFaultNs };
}

/** Every case (or the named ones: the single policies in table order, then the combinations as given) under one scenario. */
export function runPolicies(scenario: BuiltinScenario, o: ScenarioOptions, names?: readonly string[]): PolicyRow[] {
  return casesNamed(names).map((c) => runCase(scenario, c, o));
}

function casesNamed(names?: readonly string[]): readonly PolicyCase[] {
  if (names === undefined) return POLICY_CASES;
  return [...POLICY_CASES.filter((c) => names.includes(c.name)), ...names.filter(isCombo).map(caseNamed)];
}

/**
 * trace: a recorded program's anonymous faults replayed (kscrubfs trace replay, back to back,
 * each thread on its own CPU), under each case. Ready is the replay's wall time, app cpu its
 * user + system time (its exits included: exit ms is 0); the slowest fault is the machine's.
 */
export async function runTracePolicies(trace: Trace, o: ScenarioOptions, names?: readonly string[]): Promise<PolicyRow[]> {
  const rows: PolicyRow[] = [];
  for (const c of casesNamed(names)) {
    const m = caseMachine(c, o);
    const before = beforeScenario(m);
    m.slowestFaultNs = 0;
    const { rows: [r] } = await replayOn(new LocalClient(new LocalControl(m)), trace, { sides: [c.kscrubd], lines: 1, threadsAsCpus: true });
    rows.push(afterScenario(m, c, before, { readyNs: r!.wallS * 1e9, appCpuNs: (r!.userS + r!.systemS) * 1e9, exitNs: 0, maxFaultNs: m.slowestFaultNs }));
  }
  return rows;
}
