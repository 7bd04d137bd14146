import type { AnonFault } from './anon-fault';
import { assert } from './errors';
import type { Kscrubd, KscrubdMachine } from './kscrubd';
import type { Parts } from './parts';
import type { PtLocks } from './ptlock';
import { PH_CS1, PH_INSTALL, PH_PAGE, PH_THP, type FaultScope, type Runner } from './runner';
import type { SpinLock } from './spinlock';

/** What fault-loop uses of the machine (parts.ts). */
export type FaultLoopMachine = Pick<Parts, 'advanceTo' | 'clock' | 'config' | 'cpus' | 'cpusReleased' | 'kscrubdWaiting' | 'nextBackgroundAt' | 'skipTo'> & { readonly kscrubd: readonly Kscrubd[] } & KscrubdMachine;

/**
 * A touch's runners as a discrete-event simulation on the machine's virtual clock: events
 * run in time order across threads and kscrubd, so what the kernel's threads share is
 * contended the way it would be. An event is a runner's next step (AnonFault.event), or the
 * release of a page-table lock while runners spin on it (the release hands it to one of them).
 *
 * What threads of one mm do to each other follows from that: they spin on page_table_lock
 * (system time); mmap_sem and the lock share mm_struct's first cacheline and rss is on its
 * second, so every fault pulls those lines from whichever CPU wrote them last (dearer from
 * another node); spinners keep stealing the lock's line, so a handoff costs more the more CPUs
 * spin; and CPUs of one node zeroing at once share its bus. That is why flt/cpu/s falls as
 * threads rise while fault/wsec grows far less than the thread count.
 */
export class FaultLoop {
  /**
   * When the machine's next background event (kscrubd, load sample) is due: until then,
   * catching the world up to a runner's time only moves the clock. Only advanceTo(), a free
   * (which may wake kscrubd) and handing kscrubd a CPU change it. It starts unknown (-∞), so
   * that every touch's first catch-up goes through advanceTo(): optimized code then never
   * meets that call for the first time when a background event comes due mid-run.
   */
  private bgAt = Number.NEGATIVE_INFINITY;
  /** CONFIG_PREEMPT (MachineConfig.preempt): a woken kscrubd may also take the CPU between a fault's two lock sections. */
  private readonly preempt: boolean;
  /**
   * run()'s event times by runner slot, padded with +∞ to a power of two (kept: a touch runs
   * in many slices), and a tournament over them: win[j] is the slot of the earliest event
   * under node j (leaves at size + slot, the root at 1), the lower slot on a tie. A re-key
   * replays one leaf-to-root path, log2(size) matches, instead of a scan of every slot.
   */
  private keys = new Float64Array(0);
  private win = new Int32Array(0);
  /**
   * More threads than CPUs: per CPU, the slot of the runner that keeps it through a spin on
   * page_table_lock or a section under it (-1: none), and how many of its other runners wait
   * for it (Runner.cpuWait). A holder is never preempted, so a spinner never waits on its own
   * CPU's holder; and the CPU's time goes to one runner at a time.
   */
  private readonly sharesCpus: boolean;
  private readonly cpuOwner: Int32Array;
  private readonly cpuWaiters: Int32Array;
  private runners: Runner[] = [];

  constructor(
    private readonly m: FaultLoopMachine,
    private readonly scope: FaultScope,
    private readonly fault: AnonFault,
    private readonly locks: PtLocks,
  ) {
    this.preempt = m.config.preempt;
    this.sharesCpus = !scope.spinOwnsCpu;
    this.cpuOwner = new Int32Array(this.sharesCpus ? m.config.cpus : 0).fill(-1);
    this.cpuWaiters = new Int32Array(this.sharesCpus ? m.config.cpus : 0);
  }

  /**
   * Run the events in time order until every runner is done or `budget` events have run;
   * true when every runner is done. The hot loop lives here, apart from the touch's
   * once-a-call code: optimized code for it then survives from one touch to the next.
   */
  run(runners: Runner[], budget: number): boolean {
    if (runners.length === 1) {
      // One thread: its events are the only ones (besides the background, which step() runs);
      // it never finds the lock taken.
      const r = runners[0]!;
      for (let n = 0; !r.done && n < budget; n++) this.step(r);
      if (r.done) this.leave(r);
      return r.done;
    }
    // Each runner's next event time, +∞ while done or spinning: the scan for the first event
    // reads one typed array instead of three fields of every runner. Only the runner stepped
    // and a grant's winner change, and each is re-keyed right after.
    const key = this.keyed(runners.length);
    const win = this.win;
    const size = key.length;
    this.runners = runners;
    let live = 0;
    for (let i = 0; i < runners.length; i++) {
      const x = runners[i]!;
      x.slot = i;
      key[i] = x.done || x.parked || x.cpuWait ? Number.POSITIVE_INFINITY : x.t;
      if (!x.done) live++;
    }
    for (let j = size - 1; j >= 1; j--) win[j] = this.match(2 * j, 2 * j + 1);
    const contended = this.locks.contended;
    for (let n = 0; live > 0 && n < budget; n++) {
      // The runner whose event comes first, the earliest in the list on a tie; none if all
      // are done or spinning.
      const top = win[1]!;
      const rt = key[top]!;
      const ri = rt === Number.POSITIVE_INFINITY ? -1 : top;
      // A release with spinners that comes first grants its lock (the earliest release first).
      let g: SpinLock<Runner> | null = null;
      for (let i = 0; i < contended.length; i++) {
        const l = contended[i]!;
        if (l.freeAt !== Number.POSITIVE_INFINITY && (ri < 0 || l.freeAt <= rt) && (g === null || l.freeAt < g.freeAt)) g = l;
      }
      if (g !== null) {
        const w = this.locks.grant(g);
        this.rekeyGranted(w.slot, w.t);
        continue;
      }
      if (ri < 0) assert(false, 'a runner is runnable or spinning while the touch is live');
      const r = runners[ri]!;
      this.step(r);
      this.rekey(ri, r.done || r.parked || r.cpuWait ? Number.POSITIVE_INFINITY : r.t);
      if (r.done) {
        live--;
        this.leave(r);
      }
    }
    return live === 0;
  }

  /** run()'s key array for n runners (n ≥ 2), its padding +∞, the tournament's leaves set. */
  private keyed(n: number): Float64Array {
    let size = 2;
    while (size < n) size *= 2;
    if (this.keys.length !== size) {
      this.keys = new Float64Array(size);
      this.win = new Int32Array(2 * size);
    }
    this.keys.fill(Number.POSITIVE_INFINITY, n);
    for (let i = 0; i < size; i++) this.win[size + i] = i;
    return this.keys;
  }

  /** The winner of tree nodes a and b (a on the left): the earlier event, the lower slot on a tie. */
  private match(a: number, b: number): number {
    const x = this.win[a]!;
    const y = this.win[b]!;
    return this.keys[y]! < this.keys[x]! ? y : x;
  }

  /** Slot i's event time is now t: replay its matches up to the root. */
  private rekey(i: number, t: number): void {
    const win = this.win;
    this.keys[i] = t;
    for (let j = (this.keys.length + i) >> 1; j >= 1; j >>= 1) win[j] = this.match(2 * j, 2 * j + 1);
  }

  /**
   * rekey() for a grant's winner, parked (+∞) until now: it stops at the first match that
   * another slot still wins, as it did before — nothing above it changes. The winner usually
   * loses within a level or two of a 64-slot tournament. (The stepped runner won every match
   * on its path, so its re-key never stops early: it keeps the plain replay.)
   */
  private rekeyGranted(i: number, t: number): void {
    const win = this.win;
    this.keys[i] = t;
    for (let j = (this.keys.length + i) >> 1; j >= 1; j >>= 1) {
      const w = this.match(2 * j, 2 * j + 1);
      if (w === win[j] && w !== i) return;
      win[j] = w;
    }
  }

  /** A runner is done: its CPU is idle from r.t (a kscrubd waiting for one takes it). */
  private leave(r: Runner): void {
    this.m.cpus.threadDone(r.cpu);
    this.m.cpusReleased(r.t);
    this.bgAt = this.m.nextBackgroundAt();
  }

  /**
   * Can a woken kernel thread take the CPU before an event of this phase? Always at the return
   * to user mode between faults (PH_PAGE); under CONFIG_PREEMPT also where the fault holds no
   * spinlock: page_table_lock was dropped to allocate, and the page (or huge block) is in hand
   * (spin_unlock's preempt_enable ran; PH_INSTALL, PH_THP).
   */
  private preemptible(phase: number): boolean {
    return phase === PH_PAGE || (this.preempt && (phase === PH_INSTALL || phase === PH_THP));
  }

  /** Run one event of runner r at r.t. */
  private step(r: Runner): void {
    const m = this.m;
    const cpus = m.cpus;
    if (this.sharesCpus) {
      const owner = this.cpuOwner[r.cpu]!;
      if (owner >= 0 && owner !== r.slot) {
        r.cpuWait = true;
        this.cpuWaiters[r.cpu]!++;
        return;
      }
    }
    // Catch the world up, then wait for the CPU if kscrubd took it meanwhile; catching up
    // again may hand it to kscrubd once more, so repeat. At a preemption point (preemptible)
    // a kscrubd that found no idle CPU on its node takes this one, when it is its turn
    // (kscrubd.ts, SCHED_TIMESLICE_NS).
    for (;;) {
      if (r.t > m.clock.now) {
        if (r.t < this.bgAt) m.skipTo(r.t); // nothing runs before r.t: advanceTo would only move the clock
        else {
          m.advanceTo(r.t);
          this.bgAt = m.nextBackgroundAt();
        }
      }
      if (m.kscrubdWaiting > 0 && this.preemptible(r.phase) && m.kscrubd[r.node]!.runOn(m, r.cpu, r.t)) {
        this.bgAt = m.nextBackgroundAt();
      }
      const free = cpus.freeAt(r.cpu);
      if (free <= r.t) break;
      r.t = free;
      // The CPU comes back later: other threads' events before then run first (its event,
      // run now, would take zone locks "in the future" that they then wait for).
      if (this.scope.shared) return;
    }
    this.fault.event(r);
    if (this.fault.woke) {
      this.fault.woke = false;
      this.bgAt = m.nextBackgroundAt();
    }
    // A runner left spinning keeps its CPU busy until the lock is granted (grant() frees it).
    if (!r.parked) cpus.busyUntil(r.cpu, r.t);
    if (this.sharesCpus) this.keepCpu(r);
  }

  /**
   * More threads than CPUs: a runner left spinning or holding page_table_lock (phase PH_CS1
   * and after) keeps its CPU; once it lets it go, the CPU's waiting runners try again from
   * when it is free.
   */
  private keepCpu(r: Runner): void {
    const c = r.cpu;
    if (!r.done && r.phase >= PH_CS1) {
      this.cpuOwner[c] = r.slot;
      return;
    }
    if (this.cpuOwner[c] !== r.slot) return;
    this.cpuOwner[c] = -1;
    if (this.cpuWaiters[c] === 0) return;
    this.cpuWaiters[c] = 0;
    const free = this.m.cpus.freeAt(c);
    for (const x of this.runners) {
      if (!x.cpuWait || x.cpu !== c) continue;
      x.cpuWait = false;
      x.t = Math.max(x.t, free);
      this.rekey(x.slot, x.t);
    }
  }
}
