import { ClockMode } from './presets';

/**
 * One virtual clock in nanoseconds. `manual`: time moves only when the model is told
 * (faults, `tick`). `live`: virtual time follows wall time × speed, and when simulated work
 * (a burst of faults) runs ahead of the wall, the mapping re-anchors so time never goes back.
 * The model never reads the wall itself: the caller hands it in (syncWall).
 */
export class Clock {
  private _now = 0;
  /** Virtual nanoseconds since boot; only advance() moves it (the machine's, and the event loop's through Machine.skipTo). */
  get now(): number { return this._now; }
  readonly mode: ClockMode;
  readonly speed: number;
  private wallAnchorMs: number | null = null;
  private virtAnchorNs = 0;

  constructor(mode: ClockMode, speed: number) {
    this.mode = mode;
    this.speed = speed;
  }

  /** Time moves on to t (never back: callers pass t ≥ now). */
  advance(t: number): void {
    this._now = t;
  }

  /**
   * Live mode: from wall time `wallMs` on, virtual time follows the wall from where it stands
   * now (the daemon calls this when catching up would take too long: the clock then lags).
   */
  reanchor(wallMs: number): void {
    this.wallAnchorMs = wallMs;
    this.virtAnchorNs = this.now;
  }

  /**
   * Live mode: follow wall time `wallMs`. Anchors the clock at the first call (and again when
   * simulated work ran ahead of the wall), then returns the virtual time to advance to.
   */
  followWall(wallMs: number): number {
    if (!Number.isFinite(wallMs)) return this.now;
    if (this.wallAnchorMs === null) {
      this.wallAnchorMs = wallMs;
      this.virtAnchorNs = this.now;
    }
    const target = this.virtAnchorNs + (wallMs - this.wallAnchorMs) * 1e6 * this.speed;
    if (target < this.now) {
      // Simulated work ran ahead of the wall: continue from here at wall speed.
      this.wallAnchorMs = wallMs;
      this.virtAnchorNs = this.now;
      return this.now;
    }
    return Math.floor(target);
  }
}
