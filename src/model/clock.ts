import { ClockMode } from './presets';

/**
 * One virtual clock in nanoseconds. `manual`: time moves only when the model is told
 * (faults, `tick`). `live`: virtual time follows wall time × speed, and when simulated work
 * (a burst of faults) runs ahead of the wall, the mapping re-anchors so time never goes back.
 * The model never reads the wall itself: the caller hands it in (syncWall).
 */
export class Clock {
  now = 0;
  readonly mode: ClockMode;
  readonly speed: number;
  private wallAnchorMs: number | null = null;
  private virtAnchorNs = 0;

  constructor(mode: ClockMode, speed: number) {
    this.mode = mode;
    this.speed = speed;
  }

  /**
   * Live mode: from wall time `wallMs` on, virtual time follows the wall from where it stands
   * now (the daemon calls this when catching up would take too long: the clock then lags).
   */
  reanchor(wallMs: number): void {
    this.wallAnchorMs = wallMs;
    this.virtAnchorNs = this.now;
  }

  /** Virtual time that wall time `wallMs` maps to (live mode). */
  liveTarget(wallMs: number): number {
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

/** Per-CPU time accounting: what `stat` shows, and when each CPU is next free. */
export class Cpus {
  readonly count: number;
  readonly nodeOf: Int32Array;
  /** Virtual time at which the CPU is next free (a fault or a kscrubd block ends). */
  readonly freeAt: Float64Array;
  readonly userNs: Float64Array;
  readonly systemNs: Float64Array;
  /** Until when each CPU is zeroing memory (clear_page in a fault, or kscrubd's clear_pages). */
  readonly zeroUntil: Float64Array;
  /** From when kscrubd may take each CPU from its workload thread again (kscrubd.ts). */
  readonly preemptAt: Float64Array;

  constructor(count: number, nodes: number) {
    this.count = count;
    this.nodeOf = new Int32Array(count);
    const perNode = count / nodes;
    for (let c = 0; c < count; c++) this.nodeOf[c] = Math.floor(c / perNode);
    this.freeAt = new Float64Array(count);
    this.userNs = new Float64Array(count);
    this.systemNs = new Float64Array(count);
    this.zeroUntil = new Float64Array(count);
    this.preemptAt = new Float64Array(count);
  }

  /** CPUs of `node` other than `cpu` zeroing at time t: they share the node's bus with it. */
  zeroingOn(node: number, t: number, cpu: number): number {
    let n = 0;
    for (let c = 0; c < this.count; c++) if (c !== cpu && this.nodeOf[c] === node && this.zeroUntil[c]! > t) n++;
    return n;
  }

  /** Idle time at `now`: whatever was not user or system (never negative). */
  idleNs(cpu: number, now: number): number {
    return Math.max(0, now - this.userNs[cpu]! - this.systemNs[cpu]!);
  }

  /**
   * The node's most idle CPU at time t: one no workload thread is bound to, then the one free
   * soonest, then the least busy overall, then the lowest id.
   */
  mostIdle(node: number, t: number, inUse: Uint8Array): number {
    let best = -1;
    for (let c = 0; c < this.count; c++) {
      if (this.nodeOf[c] !== node) continue;
      if (best < 0) { best = c; continue; }
      if (inUse[c] !== inUse[best]) {
        if (inUse[c]! < inUse[best]!) best = c;
        continue;
      }
      const a = Math.max(t, this.freeAt[c]!);
      const b = Math.max(t, this.freeAt[best]!);
      if (a < b || (a === b && this.userNs[c]! + this.systemNs[c]! < this.userNs[best]! + this.systemNs[best]!)) best = c;
    }
    return best;
  }
}

/**
 * The load average as kernel/sched/loadavg.c computes it: every LOAD_FREQ (5 s) the number
 * of runnable tasks is folded into three exponentially decaying averages in 11-bit fixed point.
 */
export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;
const EXP = [1884, 2014, 2037] as const; // 1/exp(5s/1min), 5min, 15min in fixed point
export const LOAD_FREQ_NS = 5e9;

export class LoadAvg {
  readonly avenrun = [0, 0, 0];
  nextSample = LOAD_FREQ_NS;

  sample(active: number): void {
    const a = active * FIXED_1;
    for (let i = 0; i < 3; i++) {
      const e = EXP[i]!;
      let load = this.avenrun[i]! * e + a * (FIXED_1 - e);
      if (a >= this.avenrun[i]!) load += FIXED_1 - 1;
      this.avenrun[i] = Math.floor(load / FIXED_1);
    }
  }

  /** As the kernel prints it: "%lu.%02lu". */
  format(i: 0 | 1 | 2): string {
    const v = this.avenrun[i]!;
    const whole = v >> FSHIFT;
    const frac = Math.floor(((v & (FIXED_1 - 1)) * 100) / FIXED_1);
    return `${whole}.${String(frac).padStart(2, '0')}`;
  }

  /** The 1-minute average as a plain number (scrub_load compares against it). */
  one(): number {
    return this.avenrun[0]! / FIXED_1;
  }
}
