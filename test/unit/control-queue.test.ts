import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlEntry } from '../../src/control';
import { MAX_QUEUED_WRITES, MAX_QUEUED_WRITES_PER_USER } from '../../src/control/file';
import { Scheduler } from '../../src/daemon/scheduler';
import { createMachine } from '../../src/model';
import { ProcError } from '../../src/uapi';
import type { WriteSignal } from '../../src/procfs/types';

// A control write returns once its commands are queued; what is queued at once is capped, for
// the mount and for each user other than root, and a write past it fails EAGAIN (nothing
// queued, its err line says why). In process, with the daemon's scheduler: slices of no time,
// so an hour's tick (a few steps) runs its first step at once and every one after it stays
// queued until the event loop turns.

const O_RDWR = 2;
const from = (uid: number): WriteSignal => ({ uid, pid: 1000 + uid, interrupted: () => false });

describe('queued control writes', () => {
  it('when one user queues past their share then the next write fails EAGAIN naming the cap, root still queues, and every queued write runs', async () => {
    const m = createMachine({ preset: 'x86_64', mem: '1G', clock: 'manual' });
    const entry = controlEntry(m, () => undefined, new Scheduler(0));
    const nobody = entry.open(O_RDWR);
    const other = entry.open(O_RDWR);
    const line = Buffer.from('tick 1h\n');
    for (let i = 0; i < MAX_QUEUED_WRITES_PER_USER; i++) assert.equal(nobody.write!(line, i * line.length, from(65534)), line.length);
    assert.ok(m.now < 3600e9, 'only the first tick began');
    assert.throws(() => other.write!(line, 0, from(65534)), (e: unknown) => e instanceof ProcError && e.errno === 'EAGAIN'
      && /uid 65534 has 256 writes \(2048 bytes\) of commands queued or running, at most 256 \(4194304 bytes\) a user; nothing was queued/.test(e.message));
    assert.match(other.read(0, 4096).toString(), /^err control: uid 65534 has 256 writes/);
    // Root (and the daemon's own user) meet the mount's cap only.
    // (Two handles: each write reserves room for an err line, and one handle's unread limit
    // would make the rest wait for room.)
    const roots = [entry.open(O_RDWR), entry.open(O_RDWR)];
    const rootWrites = MAX_QUEUED_WRITES - MAX_QUEUED_WRITES_PER_USER;
    for (let i = 0; i < rootWrites; i++) assert.equal(roots[i % 2]!.write!(line, Math.floor(i / 2) * line.length, from(0)), line.length);
    const root = roots[0]!;
    assert.throws(() => root.write!(line, 0, from(0)), (e: unknown) => e instanceof ProcError && e.errno === 'EAGAIN'
      && /1024 writes \(8192 bytes\) of commands are queued or running on this mount, at most 1024/.test(e.message));
    await nobody.settled!();
    for (const r of roots) await r.settled!();
    assert.equal(m.now, MAX_QUEUED_WRITES * 3600e9, 'every queued tick ran, and the refused ones did not');
    assert.equal(nobody.takeFailure!(), null);
    // The queue is empty again: the refused user queues once more.
    assert.equal(other.write!(line, 0, from(65534)), line.length);
    await other.settled!();
    assert.equal(m.now, (MAX_QUEUED_WRITES + 1) * 3600e9);
  });

  it('when a reader is interrupted while its write waits behind another file\'s command then its command never starts and close reports EINTR at once', async () => {
    const m = createMachine({ preset: 'x86_64', mem: '1G', clock: 'manual' });
    const entry = controlEntry(m, () => undefined, new Scheduler(0));
    const first = entry.open(O_RDWR);
    const second = entry.open(O_RDWR);
    first.write!(Buffer.from('tick 1h\n'), 0, from(0));
    let cancelled = false;
    const signal: WriteSignal = { uid: 0, pid: 7, interrupted: () => cancelled, cancel: () => void (cancelled = true) };
    second.write!(Buffer.from('tick 5s\n'), 0, signal);
    assert.ok(second.settled!(7) instanceof Promise, 'close waits for the queued tick');
    second.interrupt!();
    assert.equal(second.settled!(7), null, 'a cancelled command holds no close');
    assert.equal(second.takeFailure!(7)?.errno, 'EINTR');
    await first.settled!();
    await new Promise((r) => setImmediate(r));
    assert.equal(m.now, 3600e9, 'the second tick stopped before it started');
    assert.match(second.read(0, 4096).toString(), /^err tick: interrupted by a signal to its writer; nothing ran\n$/);
    assert.equal(second.takeFailure!(7), null, 'reported once');
  });
});
