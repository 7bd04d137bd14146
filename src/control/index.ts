// The control protocol: parse a line → command → result line, and the /control file.
// The workload imports this module for formatCommand/parseCommand only, never the model.
export { parseCommand, formatCommand, ControlSyntaxError, MAX_LINE_BYTES, MAX_COUNT, MAX_TICK_NS } from './grammar';
export type { Access, Command, CommandOf, Verb } from './grammar';
export { configPairs, execute, statsPairs } from './execute';
export { controlEntry, helpText, OUTPUT_LIMIT } from './file';
export { LocalControl } from './local';
export { Scheduler, SLICE_MS } from './scheduler';
export { LiveClock, CATCH_UP_MS } from './live-clock';
export { MemoryBudget, defaultMaxMemory } from './budget';
