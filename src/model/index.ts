// The model's public surface: procfs and control import from here, never from inner files.
export { Machine, createMachine, PCP_DRAIN_INTERVAL_NS } from './machine';
export type { AllocInfo, PageOwner, RawBlock } from './machine';
export { check } from './check';
export { ModelError } from './errors';
export type { ModelErrorCode } from './errors';
export { PRESETS, ZERO_DRIVERS, resolveConfig } from './presets';
export type { ClockMode, MachineConfig, MachineOptions, PresetName, ZeroDriverName } from './presets';
export type { CostModel } from './cost';
export { SYSCTL_NAMES, isSysctlName } from './sysctl';
export type { SysctlName, SysctlSpec } from './sysctl';
export { NOT_ZEROED, ZEROED, CLASS_NAMES } from './page';
export type { FreeClass } from './page';
export { Zone, PCP_HOT, PCP_COLD, PCP_ZEROED, PCP_NAMES } from './zone';
export type { ZoneName, PerCpuPages } from './zone';
export { Kscrubd } from './kscrubd';
export { FIXED_1, FSHIFT, LoadAvg } from './clock';
export { formatSize, parseDuration, parseSize } from './units';
