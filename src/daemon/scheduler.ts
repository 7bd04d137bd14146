import { performance } from 'node:perf_hooks';
import debugFactory from 'debug';
import type { Job, JobRunner } from '../control/job';

const log = debugFactory('kscrubfs:control');

// DESIGN §5: the daemon is one JavaScript thread, and a command may simulate seconds of
// machine time. Commands are generators that yield between small steps; the scheduler runs
// one command at a time, a slice of SLICE_MS of steps, then lets the event loop answer every
// FUSE request that arrived meanwhile (setImmediate runs after pending I/O callbacks), and
// goes on. Commands never interleave: the second waits for the first, so each is all or
// nothing and the model sees the same calls in the same order however they were sliced.

/** Wall time one slice may hold the thread (readers wait at most about this long). */
export const SLICE_MS = 8;

interface Queued {
  readonly job: Job<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

export class Scheduler implements JobRunner {
  private readonly queue: Queued[] = [];
  private pumping = false;
  private stopped = false;
  /** Slices run so far: the machine may have changed when this moves (ProcTreeOptions.generation). */
  slices = 0;
  /**
   * Steps (job.next() calls) run so far, counted as each starts. Steps are counted in work,
   * never in wall time, so the same commands take the same steps on every run: a record names
   * where a session stopped, or where a signal stopped a command, by this count (record.ts).
   */
  steps = 0;
  /** Run no step past this count (haltAt): a replay stops where the recorded session did. */
  private limit = Number.POSITIVE_INFINITY;
  private haltReason = '';

  constructor(private readonly sliceMs = SLICE_MS) {}

  /** Is a command in progress or waiting? (The live clock stands still meanwhile.) */
  busy(): boolean {
    return this.queue.length > 0;
  }

  /**
   * Run `job` after the commands before it. A job that completes within its first slice on an
   * idle scheduler returns its value at once (no event-loop turn: short commands stay fast);
   * otherwise a promise of it.
   */
  run<T>(job: Job<T>): T | Promise<T> {
    if (this.stopped) throw new Error('the daemon is stopping');
    if (this.queue.length === 0) {
      const first = this.slice(job);
      if (first.done) return first.value;
      if (this.stopped) throw new Error(this.haltReason);
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /**
   * Stop once `steps` steps have run, as stop(reason) would then: the command in progress is
   * left part way, where a recorded session's daemon stopped.
   */
  haltAt(steps: number, reason: string): void {
    this.limit = steps;
    this.haltReason = reason;
  }

  /** Stop: every command not yet complete fails with `reason` (the daemon is shutting down). */
  stop(reason: string): void {
    this.stopped = true;
    for (const q of this.queue.splice(0)) q.reject(new Error(reason));
  }

  /** Steps of `job` for one slice of wall time. */
  private slice<T>(job: Job<T>): IteratorResult<void, T> {
    const end = performance.now() + this.sliceMs;
    this.slices++;
    for (;;) {
      if (this.steps >= this.limit) {
        this.stop(this.haltReason);
        return { done: false, value: undefined };
      }
      this.steps++;
      const r = job.next();
      if (r.done || performance.now() >= end) return r;
    }
  }

  private schedule(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.pumping = false;
    const head = this.queue[0];
    if (!head) return;
    try {
      const r = this.slice(head.job);
      if (this.stopped) return; // halted: stop() failed every command
      if (r.done) {
        this.queue.shift();
        head.resolve(r.value);
      }
    } catch (err) {
      this.queue.shift();
      log('a command failed: %O', err);
      head.reject(err);
    }
    if (this.queue.length > 0) this.schedule();
  }
}
