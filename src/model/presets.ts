import { COST_NAMES, CostModel } from './cost';
import { ALTIX_COST, ALTIX_FIGURES } from './cost-altix';
import { EPYC_COST, EPYC_FIGURES } from './cost-epyc';
import { GENOA_COST, GENOA_FIGURES } from './cost-genoa';
import { ICELAKE_X_COST, ICELAKE_X_FIGURES } from './cost-icelake-x';
import { SKYLAKE_SP_COST, SKYLAKE_SP_FIGURES } from './cost-skylake-sp';
import { i386Cost, i386Figures } from './cost-i386';
import { X86_64_COST, X86_64_FIGURES } from './cost-x86_64';
import { type Figures, followDerived } from './figures';
import type { ZoneName } from './zone';
import {
  MAX_CPUS, MAX_LINE_SIZE, MAX_MAX_ORDER, MAX_NODES, MAX_PAGES, MAX_PAGE_SIZE, MIN_LINE_SIZE, MIN_MAX_ORDER, MIN_PAGE_SIZE, ModelError,
  PRESETS, type PresetName, isPowerOfTwo, parseSize,
} from '../uapi';
import { DEFAULT_ZEROING_POLICY, type ZeroingPolicyName, parseZeroingPolicy } from '../uapi/policies';
import { DEFAULT_HUGE_CLEAR, type HugeClearMode, parseHugeClear } from '../uapi/hugetlb';
import { type CheckedMachineOptions, checkCostFigure } from '../uapi/bounds';

/**
 * kscrubd's zero drivers (V6's struct zero_driver, offered each block newest first): the SN2
 * BTE, CLZERO (AMD), non-temporal stores (movnti), and the CPU's cached `rep stos`.
 */
export const ZERO_DRIVERS = ['bte', 'clzero', 'nt', 'cpu'] as const;
export type ZeroDriverName = (typeof ZERO_DRIVERS)[number];
export type ClockMode = 'live' | 'manual';
/**
 * How physical memory is cut into zones: ia64 puts everything in ZONE_DMA; x86_64 has DMA
 * (< 16 MiB), DMA32 (< 4 GiB) and Normal; i386 has DMA, Normal (lowmem, < 896 MiB) and HighMem.
 */
export type ZoneLayout = 'ia64' | 'x86_64' | 'i386';

/**
 * The zone types of each layout, in kernel order: the length of every zone's lowmem_reserve[]
 * (zoneinfo's `protection:`), whether or not memory reaches them all (a 4 GiB x86_64 machine
 * has no Normal memory and still three entries).
 */
export const ZONE_TYPES: Readonly<Record<ZoneLayout, readonly ZoneName[]>> = {
  ia64: ['DMA'], x86_64: ['DMA', 'DMA32', 'Normal'], i386: ['DMA', 'Normal', 'HighMem'],
};

/**
 * The kernel a preset models: Lameter's 2.6.11 (altix, x86_64, i386), or today's (6.18, the
 * release of the proc samples in ../shared/fixtures/proc-6.18) on the machines of today. It
 * decides what the kernel itself has — the per-CPU lists' sizes (zone.ts), the LRU batch
 * (pagevec.ts), which files exist (src/procfs) — where a preset's costs do not.
 */
export const KERNEL_RELEASES = ['2.6.11', '6.18'] as const;
export type KernelRelease = (typeof KERNEL_RELEASES)[number];

/** Is `kernel` `release` or later? Releases compare field by field ("2.6.24" < "2.6.27" < "6.18"). */
export function kernelAtLeast(kernel: KernelRelease, release: string): boolean {
  const a = kernel.split('.').map(Number);
  const b = release.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

/** What a caller may say; everything is optional and overrides the preset (defined with its checks). */
export type MachineOptions = CheckedMachineOptions;

/** A fully resolved machine description. */
export interface MachineConfig {
  readonly preset: PresetName;
  /** The kernel release modelled (KERNEL_RELEASES). */
  readonly kernel: KernelRelease;
  readonly pageSize: number;
  readonly lineSize: number;
  readonly nodes: number;
  readonly cpus: number;
  readonly memBytes: number;
  readonly maxOrder: number;
  /** Core clock the cost figures were worked out for (MHz). */
  readonly cpuMhz: number;
  /** Bytes per pte: 8 (x86_64, ia64, i386 PAE), 4 (i386 without PAE: 1024 ptes a page). */
  readonly pteBytes: number;
  readonly clock: ClockMode;
  readonly speed: number;
  readonly zeroDrivers: readonly ZeroDriverName[];
  readonly zoneLayout: ZoneLayout;
  /** Kernel image and boot allocations on node 0. */
  readonly kernelBytes: number;
  /** sizeof(struct page): mem_map costs this per page, on each node. */
  readonly structPageBytes: number;
  readonly cost: CostModel;
  readonly bootAllocations: boolean;
  /**
   * The fault path's locks as today's kernels have them: a spinlock in each pte page (split
   * ptlocks, 2.6.15 on; threads faulting different 2 MiB ranges do not contend) and rss in
   * per-CPU counters (6.2 on). False: 2.6.11's one page_table_lock per mm, beside mmap_sem
   * in mm_struct's first cacheline, and rss on its second. A fault's mmap_sem atomics stay in
   * both (a per-VMA lock's count is one line too, 6.4 on).
   */
  readonly splitPtlocks: boolean;
  /** Zeroing policies in effect (model/policies.ts), in table order. */
  readonly zeroingPolicy: readonly ZeroingPolicyName[];
  /**
   * CONFIG_PREEMPT: a woken kernel thread (kscrubd) may take a workload thread's CPU at any
   * preempt_enable outside a spinlock — in the fault path, once page_table_lock is dropped
   * to allocate — not only at the return to user mode. The SN2 kernels of the era were built
   * with it (the sn2 defconfig); the x86 distribution kernels of 2.6.11 and today's were not.
   */
  readonly preempt: boolean;
  /** How a fault clears a huge page (src/uapi/hugetlb.ts; the extent follows `preempt`). */
  readonly hugeClear: HugeClearMode;
  /**
   * The node scheduling domain's longest idle balance interval (ns) in a kernel that does not
   * balance on fork, 0 in one that does or has one node. 2.6.10/2.6.11 place a new thread on
   * its parent's CPU (wake_up_new_task; balancing on fork came with the sched-domains rework
   * of 2.6.12), and a CPU of another node pulls it only in its periodic idle balance of the node
   * domain: 2.6.10's SD_NODE_INIT has no SD_BALANCE_NEWIDLE, and an idle machine's interval has
   * doubled to max_interval or past it (include/asm-ia64/topology.h: min 80, max 320 ms). A
   * thread whose CPU is on another node than its parent's starts, on average, half that
   * interval later (Cpus.placeThreads), or where each CPU's timers stand with balanceTimers.
   */
  readonly nodeBalanceMaxNs: number;
  /**
   * Where nodeBalanceMaxNs > 0: keep each CPU's balance timers (last_balance, balance_interval
   * of its node's and the nodes' scheduling domains) in virtual time and place new threads by
   * them (src/model/balance.ts), instead of the mean wait of half the longest interval.
   */
  readonly balanceTimers?: boolean;
  /**
   * Price a contended page_table_lock's handoff by the lock line's traffic at its home
   * (ptlock.ts): the winner's cmpxchg is served first, each loser's failed one then takes the
   * line in turn, and the winner's release waits for them. Off: each other spinner delays the
   * handoff by half a transfer.
   */
  readonly lockLineQueue?: boolean;
  /**
   * CPUs that share one last-level cache (src/model/llc.ts), of cost.cacheBytes and lineSize:
   * 1 where each CPU has its own (Itanium 2's L3, the Pentium III's L2, a K8 core's L2); 8 on
   * Milan, whose eight-core CCX shares one 32 MiB L3.
   */
  readonly llcCpus: number;
  /**
   * 2.6.11's do_anonymous_page calls update_mem_hiwater() (include/linux/mm.h, "enhanced
   * Memory accounting data collection", Jan 2005) under page_table_lock on every fault: while
   * rss grows it stores mm->hiwater_rss, at the far end of mm_struct (after default_kioctx),
   * a line of its own. 2.6.12 moved the call out of the fault path; the 2.6.10 kernels of the
   * published pft rows did not have it yet; today's kernels update it only when rss shrinks.
   */
  readonly hiwaterInFault: boolean;
}

const BASE: Readonly<Record<PresetName, MachineConfig>> = {
  // The seeds' machine: 8-way SGI Altix (ia64), 4 nodes × 2 CPUs, 6 GiB, 16 KiB pages.
  // MAX_ORDER 18: arch/ia64/Kconfig's CONFIG_FORCE_MAX_ZONEORDER, unconditional on ia64 in
  // 2.6.10/2.6.11, so buddyinfo has 18 orders; an order-17 block (2 GiB) is more than a node's
  // 1.5 GiB, so a node's memory is an order-16 and an order-15 block less what boot reserves.
  altix: {
    preset: 'altix', kernel: '2.6.11', pageSize: 16384, lineSize: 128, nodes: 4, cpus: 8, memBytes: 6 * 2 ** 30,
    maxOrder: 18, cpuMhz: 1500, pteBytes: 8, clock: 'live', speed: 1, zeroDrivers: ['bte', 'cpu'], zoneLayout: 'ia64',
    kernelBytes: 16 * 2 ** 20, structPageBytes: 56, cost: ALTIX_COST, bootAllocations: true, splitPtlocks: false, zeroingPolicy: DEFAULT_ZEROING_POLICY, hugeClear: DEFAULT_HUGE_CLEAR, preempt: true, llcCpus: 1, hiwaterInFault: true, nodeBalanceMaxNs: 320e6,
  },
  x86_64: {
    preset: 'x86_64', kernel: '2.6.11', pageSize: 4096, lineSize: 64, nodes: 1, cpus: 4, memBytes: 4 * 2 ** 30,
    maxOrder: 11, cpuMhz: 2000, pteBytes: 8, clock: 'live', speed: 1, zeroDrivers: ['cpu'], zoneLayout: 'x86_64',
    kernelBytes: 16 * 2 ** 20, structPageBytes: 64, cost: X86_64_COST, bootAllocations: true, splitPtlocks: false, zeroingPolicy: DEFAULT_ZEROING_POLICY, hugeClear: DEFAULT_HUGE_CLEAR, preempt: false, llcCpus: 1, hiwaterInFault: true, nodeBalanceMaxNs: 0,
  },
  // Lameter's other machine: 2 × Pentium III 450 MHz, 384 MiB, 440BX; 2.6.11 i386 without
  // PAE (4-byte ptes), a 4 MiB kernel image, 32-byte struct page (src/model/cost-i386.ts).
  i386: {
    preset: 'i386', kernel: '2.6.11', pageSize: 4096, lineSize: 32, nodes: 1, cpus: 2, memBytes: 384 * 2 ** 20,
    maxOrder: 11, cpuMhz: 450, pteBytes: 4, clock: 'live', speed: 1, zeroDrivers: ['cpu'], zoneLayout: 'i386',
    kernelBytes: 4 * 2 ** 20, structPageBytes: 32, cost: i386Cost(450), bootAllocations: true, splitPtlocks: false, zeroingPolicy: DEFAULT_ZEROING_POLICY, hugeClear: DEFAULT_HUGE_CLEAR, preempt: false, llcCpus: 1, hiwaterInFault: true, nodeBalanceMaxNs: 0,
  },
  // A machine of today: 2-socket AMD EPYC Milan, 2 × 64 cores, 2 × 64 GiB (src/model/cost-epyc.ts).
  epyc: {
    preset: 'epyc', kernel: '6.18', pageSize: 4096, lineSize: 64, nodes: 2, cpus: 128, memBytes: 128 * 2 ** 30,
    maxOrder: 11, cpuMhz: 3000, pteBytes: 8, clock: 'live', speed: 1, zeroDrivers: ['cpu'], zoneLayout: 'x86_64',
    kernelBytes: 32 * 2 ** 20, structPageBytes: 64, cost: EPYC_COST, bootAllocations: true, splitPtlocks: true, zeroingPolicy: DEFAULT_ZEROING_POLICY, hugeClear: DEFAULT_HUGE_CLEAR, preempt: false, llcCpus: 8, hiwaterInFault: false, nodeBalanceMaxNs: 0,
  },
  // The machines of today beside it, each 2 sockets (a node each, NPS1 / SNC off) with 64 GiB
  // a socket by default (--mem for more): Genoa 2 × 96 cores, Ice Lake-SP 2 × 40, Skylake-SP
  // 2 × 28 (src/model/cost-genoa.ts, cost-icelake-x.ts, cost-skylake-sp.ts).
  // Last-level cache sharing: Genoa's 8-core CCD; one L3 for every core of an Intel socket.
  genoa: today('genoa', 192, 3500, GENOA_COST, 8),
  'icelake-x': today('icelake-x', 80, 3000, ICELAKE_X_COST, 40),
  'skylake-sp': today('skylake-sp', 56, 3000, SKYLAKE_SP_COST, 28),
};

/** A 2-socket x86_64 server of today: split ptlocks, a 32 MiB kernel, no BTE, not preemptible. */
function today(preset: PresetName, cpus: number, cpuMhz: number, cost: CostModel, llcCpus: number): MachineConfig {
  return {
    preset, kernel: '6.18', pageSize: 4096, lineSize: 64, nodes: 2, cpus, memBytes: 128 * 2 ** 30,
    maxOrder: 11, cpuMhz, pteBytes: 8, clock: 'live', speed: 1, zeroDrivers: ['cpu'], zoneLayout: 'x86_64',
    kernelBytes: 32 * 2 ** 20, structPageBytes: 64, cost, bootAllocations: true, splitPtlocks: true, zeroingPolicy: DEFAULT_ZEROING_POLICY, hugeClear: DEFAULT_HUGE_CLEAR, preempt: false, llcCpus, hiwaterInFault: false, nodeBalanceMaxNs: 0,
  };
}

/** A node is a whole number of blocks of this order (or of MAX_ORDER-1, when that is smaller). */
export const NODE_GRANULE_ORDER = 10;

/** CONFIG_NR_CPUS of the SN2 kernels the altix preset models (limits.ts: 512 CPUs in 256 nodes). */
const ALTIX_NR_CPUS = 512;

function bad(message: string): never {
  throw new ModelError('KSCRUB_BAD_OPTION', message);
}

function intIn(v: number | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) bad(`${name}: ${v} is not an integer in ${min}..${max}`);
  return v;
}

/** Resolve options against a preset; every refusal names the option and the value. */
export function resolveConfig(opts: MachineOptions = {}): MachineConfig {
  const presetName = opts.preset ?? 'altix';
  if (!(PRESETS as readonly string[]).includes(presetName)) {
    bad(`preset: "${presetName}" is not one of ${PRESETS.join(', ')}`);
  }
  const base = BASE[presetName as PresetName];
  const pageSize = opts.pageSize === undefined ? base.pageSize : parseSize(opts.pageSize, 'page size');
  if (!isPowerOfTwo(pageSize) || pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE) {
    bad(`page size: ${pageSize} must be a power of two from ${MIN_PAGE_SIZE / 1024}K to ${MAX_PAGE_SIZE / 2 ** 20}M`);
  }
  const maxOrder = intIn(opts.maxOrder, 'max order', MIN_MAX_ORDER, MAX_MAX_ORDER) ?? base.maxOrder;
  const nodes = intIn(opts.nodes, 'nodes', 1, MAX_NODES) ?? base.nodes;
  const cpus = intIn(opts.cpus, 'cpus', 1, MAX_CPUS) ?? (opts.nodes !== undefined ? nodes * Math.max(1, base.cpus / base.nodes) : base.cpus);
  // The kernel's CONFIG_NR_CPUS where the modelled configuration is known: sn2's is 512.
  if (presetName === 'altix' && cpus > ALTIX_NR_CPUS) bad(`cpus: ${cpus} is more than the altix kernel's NR_CPUS (${ALTIX_NR_CPUS}, the SN2 configuration)`);
  if (cpus < nodes) bad(`cpus: ${cpus} is fewer than nodes (${nodes}); every node needs a CPU for its kscrubd`);
  if (cpus % nodes !== 0) bad(`cpus: ${cpus} do not spread evenly over ${nodes} nodes`);
  const lineSize = intIn(opts.lineSize, 'line size', MIN_LINE_SIZE, MAX_LINE_SIZE) ?? base.lineSize;
  if (!isPowerOfTwo(lineSize) || lineSize > pageSize) bad(`line size: ${lineSize} must be a power of two ≤ the page size`);
  const memBytes = opts.mem === undefined ? base.memBytes : parseSize(opts.mem, 'mem');
  const blockBytes = pageSize * 2 ** Math.min(maxOrder - 1, NODE_GRANULE_ORDER);
  // Each node is a whole number of blocks of order min(MAX_ORDER-1, 10) — the top order of
  // MAX_ORDER 11 — and big enough to boot. (A larger MAX_ORDER's top-order block may be more
  // than a node: ia64's 18 orders on a 1.5 GiB node. The zone then ends in a partial section.)
  const perNode = Math.floor(memBytes / nodes / blockBytes) * blockBytes;
  if (perNode < 4 * blockBytes || perNode < 64 * 2 ** 20) {
    bad(`mem: ${opts.mem ?? memBytes} is too small: each of ${nodes} nodes needs at least 64 MiB and 4 blocks of ${blockBytes} bytes`);
  }
  if (memBytes / pageSize > MAX_PAGES) bad(`mem: ${opts.mem} is more pages than the model addresses (2^${Math.log2(MAX_PAGES)})`);
  // 4-byte ptes (i386 without PAE) hold a 32-bit physical address: no byte past 4 GiB exists.
  if (base.pteBytes === 4 && memBytes > 2 ** 32) bad(`mem: ${opts.mem} is more than ${presetName} without PAE addresses (4-byte ptes: 4 GiB of physical memory)`);
  const cpuMhz = intIn(opts.cpuMhz, 'cpu MHz', 50, 10_000) ?? base.cpuMhz;
  // Only i386's figures are stated in core cycles; elsewhere a clock would change nothing.
  if (opts.cpuMhz !== undefined && presetName !== 'i386') bad(`cpu MHz: the ${presetName} preset's costs are not stated in core cycles (only i386's are)`);
  const presetCost = presetName === 'i386' ? i386Cost(cpuMhz) : base.cost;
  const clock = opts.clock ?? base.clock;
  if (clock !== 'live' && clock !== 'manual') bad(`clock: "${String(clock)}" is not live or manual`);
  const speed = opts.speed ?? base.speed;
  if (!Number.isFinite(speed) || speed <= 0 || speed > 1e6) bad(`speed: ${speed} must be a number in (0, 1e6]`);
  const zeroDrivers = opts.zeroDrivers ?? base.zeroDrivers;
  for (const d of zeroDrivers) {
    if (!(ZERO_DRIVERS as readonly string[]).includes(d)) bad(`zero drivers: "${d}" is not one of ${ZERO_DRIVERS.join(', ')}`);
  }
  if (new Set(zeroDrivers).size !== zeroDrivers.length) bad(`zero drivers: "${zeroDrivers.join(',')}" names a driver twice`);
  // Figures from outside (--cost, a record, a sweep) were range-checked where they came in
  // (src/uapi/bounds.ts); hand-worked tests may set a bus that never limits.
  // A derived figure follows its source wherever that was set (a fit, a band's bound, --cost).
  const cost = followDerived({ ...presetCost, ...opts.cost }, presetFigures(presetName as PresetName, cpuMhz), opts.cost);
  // CLZERO and movnti are registered only where the CPU has them and their rate is measured
  // (0 otherwise).
  for (const d of zeroDrivers) {
    const rate = d === 'clzero' ? cost.clzeroBytesPerNs : d === 'nt' ? cost.ntBytesPerNs : 1;
    if (rate === 0) bad(`zero drivers: "${d}" is not available on ${presetName} (the CPU lacks it or its clearing rate was never measured)`);
  }
  return {
    ...base,
    pageSize, lineSize, nodes, cpus, memBytes: perNode * nodes, maxOrder, cpuMhz, clock, speed,
    zeroDrivers: zeroDrivers as readonly ZeroDriverName[],
    cost,
    bootAllocations: opts.bootAllocations ?? true,
    zeroingPolicy: opts.zeroingPolicy === undefined ? DEFAULT_ZEROING_POLICY : parseZeroingPolicy(opts.zeroingPolicy),
    preempt: opts.preempt ?? base.preempt,
    hugeClear: opts.hugeClear === undefined ? base.hugeClear : parseHugeClear(opts.hugeClear),
    hiwaterInFault: opts.hiwaterInFault ?? base.hiwaterInFault,
    nodeBalanceMaxNs: opts.forkBalance === true ? 0 : base.nodeBalanceMaxNs,
    balanceTimers: opts.balanceTimers ?? false,
    lockLineQueue: opts.lockLineQueue ?? false,
  };
}

/**
 * `--cost trapNs=900,zeroBytesPerNs=2`: cost figures by name, each in its physical range
 * (src/uapi/bounds.ts: a bandwidth from 1 B/s to 1 TB/s, a latency from 0 to 1 s).
 */
export function parseCostOverrides(text: string): Partial<CostModel> {
  const out: Partial<Record<keyof CostModel, number>> = {};
  for (const item of text.split(',')) {
    const m = /^\s*([A-Za-z]+)\s*=\s*(\S*)\s*$/.exec(item);
    if (!m) bad(`cost: "${item}" is not name=number (names: ${COST_NAMES.join(', ')})`);
    const name = m[1] as keyof CostModel;
    // A signed number reaches the range check, which names the figure's range (-1 is a
    // number, just not a cost); only what is no number at all is refused here.
    if (!/^-?\d+(?:\.\d+)?(?:e[-+]?\d+)?$/i.test(m[2]!)) bad(`cost: ${name}="${m[2]}" is not a number`);
    const v = checkCostFigure(name, Number(m[2]));
    if (out[name] !== undefined) bad(`cost: "${name}" is given twice`);
    out[name] = v;
  }
  return out;
}

/** Where each cost figure of a preset comes from (src/model/figures.ts), at the machine's clock. */
export function presetFigures(preset: PresetName, cpuMhz?: number): Figures {
  switch (preset) {
    case 'altix': return ALTIX_FIGURES;
    case 'i386': return i386Figures(cpuMhz);
    case 'x86_64': return X86_64_FIGURES;
    case 'epyc': return EPYC_FIGURES;
    case 'genoa': return GENOA_FIGURES;
    case 'icelake-x': return ICELAKE_X_FIGURES;
    case 'skylake-sp': return SKYLAKE_SP_FIGURES;
  }
}
