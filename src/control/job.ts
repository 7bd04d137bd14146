import type { Machine } from '../model';
import type { Command } from '../uapi/grammar';

// A command's work is a generator that yields between small steps, so whoever runs it (the
// daemon's scheduler, src/daemon/scheduler.ts) can let readers in between; the control layer
// only makes jobs and hands them to a runner.

/** A command's work: yields between steps, returns its outcome. */
export type Job<T> = Generator<void, T, void>;

/** Runs jobs one at a time, in order (the daemon's Scheduler). */
export interface JobRunner {
  /** Run `job` after the jobs before it: its value now if it finished at once, else a promise of it. */
  run<T>(job: Job<T>): T | Promise<T>;
}

/** Refuses a command before it runs (the daemon's MemoryBudget): why not, or null when it may. */
export interface CommandBudget {
  refusal(m: Machine, cmd: Command): string | null;
}

/** Run a job to the end, now, whatever it takes (tests, and callers with no readers to serve). */
export function runToEnd<T>(job: Job<T>): T {
  for (;;) {
    const r = job.next();
    if (r.done) return r.value;
  }
}
