// The control protocol: parse a line → command → result line, and the /control file.
// The workload imports this module for formatCommand/parseCommand only, never the model.
export { parseCommand, formatCommand, ControlSyntaxError, MAX_LINE_BYTES, MAX_COUNT, MAX_TICK_NS } from './grammar';
export type { Access, Command, CommandOf, Verb } from './grammar';
export { configPairs, execute, statsPairs } from './execute';
export { controlEntry, helpText } from './file';
export { runToEnd } from './job';
export type { CommandBudget, Job, JobRunner } from './job';
export { LocalControl } from './local';
