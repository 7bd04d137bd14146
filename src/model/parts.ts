import type { AllocResult } from './alloc-result';
import type { LineCosts } from './cacheline';
import type { Clock } from './clock';
import type { CostModel } from './cost';
import type { VmEvents } from './counters';
import type { Llc } from './llc';
import type { NodeBus } from './membw';
import type { Pagevecs } from './pagevec';
import type { PolicyKnob } from './policies/knobs';
import type { MachineConfig } from './presets';
import type { Cpus } from './sched';
import type { SysctlName } from './sysctl';
import type { CpuZeroDriver, ZeroDriver } from './zero-drivers';
import type { Zone } from './zone';

/** Something that maps pages (a process's page table): check() asks it what it holds. */
export interface PageOwner {
  readonly label: string;
  forEachPage(fn: (pfn: number) => void): void;
}

/**
 * The machine below its parts, as the parts see it: the hardware (CPUs, caches, buses, the
 * cost figures), the buddy allocator, the counters and time. Machine has all of it; each part
 * (the fault path, mm, kscrubd, hugetlb, raw blocks) declares in its own file the few members
 * it uses, as a Pick of this, and gets the Machine through that view. So no part imports
 * machine.ts, nor reaches another part through it: machine.ts alone knows every part, and
 * hands each its collaborators (as the kernel's subsystems share headers, not each other's .c).
 * Only leaves are imported here.
 */
export interface Parts {
  readonly config: MachineConfig;
  readonly cost: CostModel;
  readonly zones: readonly Zone[];
  readonly nodeZones: readonly (readonly Zone[])[];
  readonly cpus: Cpus;
  readonly lines: LineCosts;
  readonly pagevecs: Pagevecs;
  readonly bus: NodeBus;
  readonly llc: Llc;
  readonly clock: Clock;
  readonly zeroDrivers: readonly ZeroDriver[];
  readonly cpuZero: CpuZeroDriver;
  readonly sysctl: Readonly<Record<SysctlName, number>>;
  readonly knobs: Readonly<Record<PolicyKnob, number>>;
  readonly vm: VmEvents;
  readonly owners: Set<PageOwner>;
  /** Machine.slowestFaultNs: the fault path raises it. */
  slowestFaultNs: number;
  readonly kscrubdWaiting: number;
  kscrubdWaits(delta: 1 | -1): void;
  readonly now: number;
  readonly pageSize: number;
  readonly maxOrder: number;
  zoneOf(pfn: number): Zone;
  allocPages(order: number, zero: boolean, node: number, cpu: number, served?: AllocResult, cold?: boolean): number;
  freePages(pfn: number, order: number, cpu: number): void;
  /** freePages(pfn + i, 0, cpu) for each of n consecutive pfns, in order. */
  freePageRun(pfn: number, n: number, cpu: number): void;
  firstCpuOf(node: number): number;
  managedPagesTotal(): number;
  cpusReleased(t: number): void;
  advanceTo(t: number): void;
  skipTo(t: number): void;
  nextBackgroundAt(): number;
}
