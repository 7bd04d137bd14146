// What crosses the mount, as Linux keeps include/uapi: the error base and its codes, units,
// limits. A leaf: it imports nothing else of kscrubfs, so a client that loads it loads no
// part of the daemon (the model, procfs, control).
export { KscrubError, MODEL_ERRNO, ModelError, ProcError } from './errors';
export type { ModelErrorCode, ProcErrno, ProcErrorCode } from './errors';
export { formatSize, isPowerOfTwo, parseDuration, parseSize } from './units';
export * from './limits';
export { ControlSyntaxError, MAX_COUNT, MAX_LINE_BYTES, MAX_TICK_NS, formatCommand, parseCommand } from './grammar';
export type { Access, Command, CommandOf, Verb } from './grammar';
export { KSCRUBD_ON, KSCRUBD_ON_TEXT, PRESETS, describeKscrubd, kscrubdSysctls } from './presets';
export type { KscrubdMode, PresetName } from './presets';
export { COUNTERS, counterValue, exportedMetric } from './counters';
export type { CounterName, CounterSpec } from './counters';
export { ControlResultError, RESULT_KEYS, STATS_KEYS, STATS_STATE_KEYS, parseResult, statsKeys } from './results';
export type { ConfigResult, FaultCounts, Result, Stats, StatsKey } from './results';
export { DEFAULT_ZEROING_POLICY, ZEROING_POLICIES, formatZeroingPolicy, isDefaultZeroingPolicy, parseZeroingPolicy, zeroingCmdline } from './policies';
export type { ZeroingPolicyName } from './policies';
export { parseKstrtoul, parseSysctlInt, parseSysctlWrite } from './sysctl';
export type { SysctlWrite } from './sysctl';
export { DEFAULT_HUGE_CLEAR, HUGE_CLEAR_MODES, PREEMPT_MODELS, parseHugeClear } from './hugetlb';
export type { HugeClearMode, PreemptModel } from './hugetlb';
export {
  ProcFormatError, ZEROED_LABEL, parseBuddyinfo, parseLoadavg, parseMeminfo, parseProcFile, parseStat, parseSysctl, parseSysfsUint, parseUptime,
  parseVmstat, parseZoneinfo,
} from './proc';
export type { BuddyZone, BuddyinfoLayout, Loadavg, Stat, ZoneinfoZone } from './proc';
export { PREFAULT_VARIANTS, PREFAULT_VARIANT_NAMES, prefaultVariantOrder } from './prefault';
export type { PrefaultVariant } from './prefault';
