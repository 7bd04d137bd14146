import { Cacheline, type LineCosts } from './cacheline';
import type { FaultPricing } from './fault-price';
import type { Parts } from './parts';
import type { FaultScope, Runner } from './runner';
import { SpinLock, objectList, removeAt } from './spinlock';

/** What ptlock uses of the machine (parts.ts). */
export type PtLockMachine = Pick<Parts, 'config' | 'cpus'>;

/**
 * The page-table locks of one touch's mm, taken by its runners: 2.6.11's one
 * mm->page_table_lock, which shares mm_struct's first line with mmap_sem, or on a kernel
 * with split ptlocks (MachineConfig.splitPtlocks) the lock in each pte page's struct page,
 * on a line of its own, covering its PMD. A fault's lock sections end in events of their
 * own; a runner that finds the lock busy parks as a spinner until a release grants it.
 */
export class PtLocks {
  /**
   * Spinners from which a release looks for the nearest among its node's CPUs (nearOf) rather
   * than down the list: below it the walk is as short, and the search's extra branches cost
   * the 2–8 thread runs more than they save. (A test sets it past any list, to check that both
   * searches pick the same winner.)
   */
  static nearSearchMin = 8;
  /** The mm's one lock, and the pte pages' (split ptlocks) by their PMD's start address. */
  private readonly mmLock: SpinLock<Runner>;
  private readonly tableLocks = new Map<number, SpinLock<Runner>>();
  /** Locks with spinners: the event loop grants them at their release. */
  readonly contended: SpinLock<Runner>[] = objectList<SpinLock<Runner>>();
  /** Split ptlocks (today's kernels), else 2.6.11's mm-wide lock. */
  readonly split: boolean;
  private readonly pmdBytes: number;
  private readonly lines: LineCosts;
  /** MachineConfig.lockLineQueue: a handoff priced by the lock line's queue at its home. */
  private readonly queue: boolean;
  /**
   * Runners spinning, per node and per CPU (on any of the locks): what the nearest spinner
   * to a releasing CPU can be at best, so that the search for it stops once it meets one.
   */
  private readonly spinningOn: Int32Array;
  private readonly spinningCpu: Int32Array;
  /**
   * When every runner has a CPU of its own (FaultScope.spinOwnsCpu), the runner spinning on
   * each CPU (null: none), the CPUs of each node (nodeCpus[nodeStart[n] …]) and a count of
   * spins begun (Runner.spinSeq, the order of a lock's spinners): a release finds its nearest
   * spinner among its own node's CPUs instead of walking the whole list.
   */
  private readonly spinnerOn: (Runner | null)[];
  private readonly nodeCpus: Int32Array;
  private readonly nodeStart: Int32Array;
  private spins = 0;

  constructor(
    private readonly m: PtLockMachine,
    private readonly scope: FaultScope,
    private readonly p: FaultPricing,
    pmdBytes: number,
  ) {
    this.split = m.config.splitPtlocks;
    this.pmdBytes = pmdBytes;
    this.lines = p.lines;
    this.queue = m.config.lockLineQueue === true;
    this.mmLock = new SpinLock(scope.mm.semLine);
    this.spinningOn = new Int32Array(m.config.nodes);
    this.spinningCpu = new Int32Array(m.config.cpus);
    this.spinnerOn = objectList<Runner | null>();
    for (let c = 0; c < m.config.cpus; c++) this.spinnerOn.push(null);
    const nodeOf = this.lines.nodeOf;
    this.nodeStart = new Int32Array(m.config.nodes + 1);
    for (let c = 0; c < nodeOf.length; c++) this.nodeStart[nodeOf[c]! + 1]!++;
    for (let n = 0; n < m.config.nodes; n++) this.nodeStart[n + 1]! += this.nodeStart[n]!;
    this.nodeCpus = new Int32Array(nodeOf.length);
    const fill = this.nodeStart.slice(0, m.config.nodes);
    for (let c = 0; c < nodeOf.length; c++) this.nodeCpus[fill[nodeOf[c]!]!++] = c;
  }

  /** The page-table lock that covers `addr`: the mm's, or its pte page's (split ptlocks). */
  private lockOf(addr: number): SpinLock<Runner> {
    if (!this.split) return this.mmLock;
    const key = Math.floor(addr / this.pmdBytes);
    let l = this.tableLocks.get(key);
    if (l === undefined) {
      l = new SpinLock(new Cacheline());
      this.tableLocks.set(key, l);
    }
    return l;
  }

  /**
   * spin_lock(&mm->page_table_lock) in handle_mm_fault / do_anonymous_page: take it if it is
   * free and nobody spins; else spin — the runner parks until a release grants it, and its
   * next event is `then`. True: taken now.
   */
  spinLock(r: Runner, then: number): boolean {
    // A runner faults through its share a PMD at a time: the lock it took last is usually it.
    // (2.6.11's one lock is looked up without a test for a runner's first fault, which optimized
    // code would otherwise meet for the first time at every touch's start, and be recompiled.)
    const pmd = this.split ? Math.floor(r.faultAddr / this.pmdBytes) : 0;
    const l = !this.split ? this.mmLock : r.lock !== null && r.lockPmd === pmd ? r.lock : this.lockOf(r.faultAddr);
    r.lock = l;
    r.lockPmd = pmd;
    if (l.freeAt <= r.t && l.spinners.length === 0) {
      this.p.take(r, l.line);
      // Held until its release event (shared); one runner alone releases within the event.
      if (this.scope.shared) l.heldUntilRelease();
      return true;
    }
    r.phase = then;
    r.parked = true;
    r.spinFrom = r.t;
    this.spinningOn[r.node]!++;
    this.spinningCpu[r.cpu]!++;
    if (l.spinners.length === 0) this.contended.push(l);
    l.spin(r);
    r.spinSeq = this.spins++;
    if (this.scope.spinOwnsCpu) this.spinnerOn[r.cpu] = r;
    // The spinner's CPU is busy spinning, whatever else wants it (other threads of it wait: FaultLoop).
    this.m.cpus.busyUntil(r.cpu, Number.POSITIVE_INFINITY);
    return false;
  }

  /**
   * spin_unlock: the releasing store needs the line back exclusively — from another CPU that
   * wrote it meanwhile (mmap_sem), or by invalidating the copies the spinners read.
   */
  unlock(r: Runner): void {
    const l = r.lock!;
    if (l.spinners.length > 0) {
      // With lockLineQueue, the losers' failed cmpxchgs since the grant are queued at the
      // line's home ahead of this store: it waits for them, then takes the line back and
      // invalidates their copies (line.servedUntil stays 0 without).
      const queued = Math.max(0, l.line.servedUntil - r.t);
      this.p.sys(r, queued + this.farthest(r.cpu, l));
      l.line.writtenBy(r.cpu);
    } else this.p.take(r, l.line);
    l.release(r.t);
  }

  /**
   * page_table_lock held for `hold` ns within the runner's event (a huge fault's install,
   * thp.ts): spin until the last release if the lock is busy, take it, hold it. A holder whose
   * section is still to come (a granted spinner) is not waited for: an approximation, for the
   * THP path only.
   */
  lockFor(r: Runner, hold: number): void {
    const l = this.lockOf(r.addr);
    if (Number.isFinite(l.freeAt) && l.freeAt > r.t) this.p.sys(r, l.freeAt - r.t);
    this.p.take(r, l.line);
    this.p.sys(r, hold);
    if (Number.isFinite(l.freeAt)) l.release(r.t);
  }

  /**
   * The release of a lock at its freeAt with runners spinning: they all re-read the line and
   * race with cmpxchg; the one nearest the releasing CPU sees the release first and wins
   * (ties: the longest spinning). By default each loser's request queued ahead of the
   * winner's at the line's home delays it, half of them on average. With lockLineQueue, the
   * mechanism instead: the winner's cmpxchg is the first the home serves (the line comes over
   * from the releasing CPU); each loser's cmpxchg, served after it in the order they saw the
   * release, fails but takes the line away in turn (a transfer from the one before); the home
   * is busy with them until `line.servedUntil`, and the winner's release waits for that
   * (unlock). Returns the winner, runnable from its new t.
   */
  grant(l: SpinLock<Runner>): Runner {
    const spinners = l.spinners;
    const from = l.line.cpu;
    const t = l.freeAt;
    // A runner whose event began before the release may reach spin_lock after it (its trap ran
    // ahead within the event): it was not spinning at the release and cannot win this round,
    // unless nobody was; then it finds the lock free when it gets there.
    let best = -1;
    let bestCost = 0;
    const local = this.lines.localNs();
    const remote = this.lines.remoteNs();
    if (spinners.length >= PtLocks.nearSearchMin && this.scope.spinOwnsCpu && from >= 0 && 0 < local && local < remote && this.cpusOfNode(from) <= spinners.length) {
      // One runner per CPU: the nearest are the one on `from` (free) and those on its node
      // (the three prices apart, so that no tie crosses them).
      const near = this.nearOf(l, from, t);
      if (near !== null) {
        best = spinners.indexOf(near);
        bestCost = near.cpu === from ? 0 : local;
      } else {
        // None near was spinning at the release: the first of the others that was.
        for (let i = 0; i < spinners.length; i++) {
          if (spinners[i]!.spinFrom > t) continue;
          best = i;
          bestCost = remote;
          break;
        }
      }
    } else {
      // The cheapest transfer any spinner can have: none from the releasing CPU itself (or when
      // no CPU holds the line), a local one if one spins on its node, else a remote one. The
      // first spinner at that price wins (ties go to the longest spinning): the search ends there.
      let floor = remote;
      if (from < 0 || this.spinningCpu[from]! > 0) floor = 0;
      else if (this.spinningOn[this.m.cpus.nodeOf[from]!]! > 0) floor = Math.min(floor, local);
      for (let i = 0; i < spinners.length; i++) {
        const s = spinners[i]!;
        if (s.spinFrom > t) continue;
        const cost = this.lines.transfer(from, s.cpu);
        if (best < 0 || cost < bestCost) {
          best = i;
          bestCost = cost;
          if (cost <= floor) break;
        }
      }
    }
    const late = best < 0;
    // Nobody was spinning at the release: the longest spinning (the first of them on a tie).
    if (late) {
      best = 0;
      for (let i = 1; i < spinners.length; i++) if (spinners[i]!.spinFrom < spinners[best]!.spinFrom) best = i;
    }
    const w = l.unspin(best);
    if (this.scope.spinOwnsCpu) this.spinnerOn[w.cpu] = null;
    this.spinningOn[w.node]!--;
    this.spinningCpu[w.cpu]!--;
    const at = late ? w.spinFrom : t;
    const handoff = late ? this.lines.transfer(from, w.cpu) : this.queue ? bestCost : bestCost * (1 + spinners.length / 2);
    const spin = at - w.spinFrom + handoff;
    w.sysNs += spin;
    this.m.cpus.addSystem(w.cpu, spin);
    w.t = at + handoff;
    w.parked = false;
    l.line.writtenBy(w.cpu);
    if (this.queue && !late && spinners.length > 0) this.losersTake(l, w.t, from);
    // Held from now until the winner's section releases it.
    l.heldUntilRelease();
    if (spinners.length === 0) removeAt(this.contended, this.contended.indexOf(l));
    this.m.cpus.busyUntil(w.cpu, w.t);
    return w;
  }

  /**
   * The failed cmpxchgs of l's spinners that saw the release at its freeAt (by CPU `from`),
   * served after the winner's (which had the line at `t`): first those on from's node (they
   * saw it first), then the others in the order they began to spin; each pulls the line from
   * the one before. The last of them has it; the home is busy until the last has been served.
   */
  private losersTake(l: SpinLock<Runner>, t: number, from: number): void {
    const spinners = l.spinners;
    const release = l.freeAt;
    const fromNode = from < 0 ? -1 : this.lines.nodeOf[from]!;
    let owner = l.line.cpu;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < spinners.length; i++) {
        const s = spinners[i]!;
        if (s.spinFrom > release || (s.node === fromNode) !== (pass === 0)) continue;
        t += this.lines.transfer(owner, s.cpu);
        owner = s.cpu;
      }
    }
    l.line.writtenBy(owner);
    l.line.servedUntil = t;
  }

  /** How many CPUs the node of `cpu` has. */
  private cpusOfNode(cpu: number): number {
    const node = this.lines.nodeOf[cpu]!;
    return this.nodeStart[node + 1]! - this.nodeStart[node]!;
  }

  /**
   * l's nearest spinner to CPU `from` that was spinning at t, with one runner per CPU: the
   * one on `from` itself, else the one on from's node that began first; null: none.
   */
  private nearOf(l: SpinLock<Runner>, from: number, t: number): Runner | null {
    const on = this.spinnerOn;
    if (this.spinningCpu[from]! > 0) {
      const s = on[from]!;
      if (s !== null && s.lock === l && s.spinFrom <= t) return s;
    }
    const node = this.lines.nodeOf[from]!;
    if (this.spinningOn[node] === 0) return null;
    let near: Runner | null = null;
    for (let k = this.nodeStart[node]!, end = this.nodeStart[node + 1]!; k < end; k++) {
      const c = this.nodeCpus[k]!;
      if (c === from) continue;
      const s = on[c]!;
      if (s !== null && s.lock === l && s.spinFrom <= t && (near === null || s.spinSeq < near.spinSeq)) near = s;
    }
    return near;
  }

  /** The dearest transfer from `cpu` to a spinner's CPU (the invalidation waits for the last). */
  private farthest(cpu: number, l: SpinLock<Runner>): number {
    const spinners = l.spinners;
    // Many spinners (64 threads on 256 nodes) are mostly remote: the first remote one ends it.
    const dearest = this.lines.dearest();
    let worst = 0;
    for (let i = 0; i < spinners.length && worst < dearest; i++) worst = Math.max(worst, this.lines.transfer(cpu, spinners[i]!.cpu));
    return worst;
  }
}
