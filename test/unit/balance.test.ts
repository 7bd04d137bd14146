import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Balancer, SD_NODE_INIT_IA64 } from '../../src/model/balance';
import { createMachine } from '../../src/model';
import type { MachineOptions } from '../../src/model';
import { FLAT } from '../helpers/model';

// A clock of HZ 1000 (a tick is 1 ms) and NR_CPUS 1000 makes CPU_OFFSET(c) = c ticks, so
// every look below is worked by hand in milliseconds. Domain tunables are the kernel's:
// a node's CPUs 1/4 ms (busy ×64), across nodes ia64's 80/320 ms (busy ×320), both from 1 at boot.
const MS_CLOCK = { hz: 1000, nrCpus: 1000 };
const S = 1e9;
const MS = 1e6;

describe('the 2.6.10 periodic balancer in virtual time (balance.ts)', () => {
  test('when a two-thread process forks on an idle two-node machine then the other node\'s CPU pulls its thread at that CPU\'s next node-domain look, and the pull resets its interval', () => {
    // CPUs 0 and 1, one a node. CPU 1's node domain from boot (last 0, interval 1, offset 1):
    // looks at ticks 0, 2, 6, 14, 30, 62, 126, 254, 510 (interval 1→2→…→256→512: 256 < 320
    // still doubles), then every 512: 1022 + 512 m. The first at or after 10 000 is
    // 1022 + 18 × 512 = 10 238: the thread waits 238 ms.
    const b = new Balancer(2, Int32Array.from([0, 1]), SD_NODE_INIT_IA64, MS_CLOCK);
    const p1 = b.place(2, 0, 10 * S);
    assert.deepEqual(Array.from(p1.cpu), [0, 1]);
    assert.deepEqual(Array.from(p1.startNs), [10 * S, 10.238 * S]);
    // The pull: interval 80, last_balance 10 239. CPU 1 runs the thread until 10.738 s
    // (busy: 80 × 320 ms, no look), then catches up a look a tick: at 10 738 (interval → 160,
    // last 10 319), 10 739 (→ 320, last 10 479), 10 798 (320 stays, last 10 799); the next
    // look is at 10 798 + 320 = 11 118. A fork at 11 s waits 118 ms, not 238 or 512.
    b.ran(0, 10 * S, 10.738 * S);
    b.ran(1, 10.238 * S, 10.738 * S);
    const p2 = b.place(2, 0, 11 * S);
    assert.deepEqual(Array.from(p2.cpu), [0, 1]);
    assert.equal(p2.startNs[1], 11.118 * S);
  });

  test('when four threads fork on two nodes of two CPUs then the parent\'s sibling takes two at once, and the other node\'s CPUs one each at their own looks', () => {
    // CPU 1 (node 0, domain of the node's CPUs, offset 1): looks at 0, 2, then every 4 ms
    // (4 = max_interval): 2 + 4 m, so 10 002 after the fork at 10 000. Loads (× 128): CPU 0
    // has 4, CPU 1 none; the average 256; imbalance min(512 − 256, 256 − 0) = 256 → 2 tasks
    // (find_busiest_group rounds (256 + 1) / 128 down). CPU 1 runs one, the other waits there.
    // CPU 3 (offset 3) looks across nodes at 1020 + 512 m → 10 236: node 0's load 4 tasks
    // over 256 of cpu_power = 256, average 128, imbalance min(128, 128) × 256/128 = 256 → 2,
    // but the busiest queue (CPU 0, the first of two with 2) has one waiting: 1 moves.
    // CPU 2 (offset 2) at 1021 + 512 m → 10 237: node 0 has 3 (192), its own node 1 (64),
    // average 128: imbalance min(64, 64) × 2 → 1, from CPU 1, the busiest queue now.
    const b = new Balancer(4, Int32Array.from([0, 0, 1, 1]), SD_NODE_INIT_IA64, MS_CLOCK);
    const p = b.place(4, 0, 10 * S);
    assert.deepEqual(Array.from(p.cpu), [0, 1, 3, 2]);
    assert.deepEqual(Array.from(p.startNs).map((t) => Math.round((t - 10 * S) / MS)), [0, 2, 236, 237]);
  });

  test('when a task is bound to a CPU of another node then it first runs at that CPU\'s next node-domain look', () => {
    const b = new Balancer(2, Int32Array.from([0, 1]), SD_NODE_INIT_IA64, MS_CLOCK);
    assert.equal(b.firstRun(1, 0, 10 * S), 10.238 * S); // as the first test's first fork
    assert.equal(b.firstRun(0, 0, 10 * S), 10 * S); // the parent's CPU: at once
  });

  test('when the machine idles for a virtual day then placing a thread costs no more than after a second, and gives the look that day\'s timer reaches', () => {
    const b = new Balancer(2, Int32Array.from([0, 1]), SD_NODE_INIT_IA64, MS_CLOCK);
    const day = 86_400 * S;
    // The first 1022 + 512 m ≥ 86 400 000: m = 168 749 (168 749 × 512 = 86 399 488), the look at 86 400 510.
    const t0 = performance.now();
    const p = b.place(2, 0, day);
    assert.ok(performance.now() - t0 < 1000, 'a day of looks is skipped, not walked');
    assert.equal(Math.round((p.startNs[1]! - day) / MS), 510);
  });
});

describe('machines place new threads by the balance timers only when asked', () => {
  const ALTIX: MachineOptions = { preset: 'altix', mem: '256M', clock: 'manual', bootAllocations: false, cost: FLAT, hiwaterInFault: false };
  const ps = 16384;
  function firstWall(opts: MachineOptions, idleNs: number): { first: number; again: number } {
    const m = createMachine(opts);
    m.setSysctl('max_prealloc_order', 0);
    m.advanceTo(idleNs);
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 64 * ps);
    const run = (k: number): number => m.procs.faults(id, { addrs: [addr + 2 * k * ps, addr + (2 * k + 1) * ps], tasks: [0, 1], writes: [1, 1], cpus: [0, 2], lines: 1 }).wallNs;
    return { first: run(0), again: run(1) };
  }

  test('when the altix runs with balanceTimers then a thread bound for another node waits for that CPU\'s look, not the 160 ms mean, and only once', () => {
    // CPU 2 of the altix (HZ 1024, NR_CPUS 512: offset 4 ticks) never pulled since boot: its
    // node domain's interval is 512 ms, looks in lockstep with boot. After 10 s idle the wait
    // is where that timer stands: anything from 0 to 512 ms, here not the mean's 160 ms.
    const timers = firstWall({ ...ALTIX, balanceTimers: true }, 10 * S);
    const mean = firstWall(ALTIX, 10 * S);
    assert.ok(mean.first >= 160 * MS && mean.first < 161 * MS, `mean ${mean.first}`);
    assert.ok(timers.first < 512 * MS + MS, `timers ${timers.first}`);
    assert.ok(Math.abs(timers.first - mean.first) > MS, `timers ${timers.first} is the mean's`);
    assert.ok(timers.again < MS, `again ${timers.again}`);
  });
});
