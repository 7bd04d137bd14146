import { performance } from 'node:perf_hooks';
import type { Machine } from '../model';
import type { Scheduler } from './scheduler';

/** Wall time one catch-up of the live clock may take (a read waits at most about this long). */
export const CATCH_UP_MS = 10;

/**
 * The daemon's live clock. Before a file is rendered or a batch runs, the model is brought up
 * to wall time × --speed, in steps, for at most CATCH_UP_MS of work: a speed the model cannot
 * keep up with (kscrubd busy at --speed 1000000) then runs slower than asked — virtual time
 * lags the wall, it never jumps — instead of making one read simulate minutes. While a
 * command runs, the clock is the command's: readers see the machine as it stands.
 */
export class LiveClock {
  /** Catch-ups cut short since mount (the clock lagged the wall). */
  lagged = 0;

  constructor(
    private readonly machine: Machine,
    private readonly wall: () => number,
    private readonly scheduler: Scheduler,
    private readonly budgetMs = CATCH_UP_MS,
  ) {}

  /** Start virtual time at the wall's now: `uptime` counts from mount, not from the first read. */
  start(): void {
    if (this.machine.clock.mode === 'live') this.machine.clock.followWall(this.wall());
  }

  /**
   * Bring the model up to wall time × speed, for at most budgetMs of work (then re-anchor:
   * the clock lags). What procfs and control call before a render or a batch (syncClock).
   */
  readonly sync = (): void => {
    const m = this.machine;
    if (m.clock.mode !== 'live' || this.scheduler.busy()) return;
    const wall = this.wall();
    const target = m.clock.followWall(wall);
    const deadline = performance.now() + this.budgetMs;
    let step = 1e6;
    while (m.now < target) {
      m.advanceTo(Math.min(target, m.now + step));
      step *= 2;
      if (m.now < target && performance.now() >= deadline) {
        m.clock.reanchor(wall);
        this.lagged++;
        return;
      }
    }
  };
}
