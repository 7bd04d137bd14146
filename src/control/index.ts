// The control protocol, the daemon's side: commands run against the machine, the /control file.
export { configPairs, execute, statsPairs } from './execute';
export { controlEntry, helpText } from './file';
export { runToEnd } from './job';
export type { CommandBudget, Job, JobRunner } from './job';
export { LocalControl } from './local';
