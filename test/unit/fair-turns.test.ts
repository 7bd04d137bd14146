import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAdapter } from '../../src/fuse/adapter';
import type { Request } from '../../src/fuse/binding';
import { buildProcTree } from '../../src/procfs';
import { createMachine } from '../../src/model';

// The adapter's turns between users, driven in process as fuse-native drives it: each op call
// with the request it serves (binding.ts's trackRequests names it to the adapter). The real
// mount's side — root's reads while nobody loops — is `npm run bench` (opens).

function tree() {
  const m = createMachine({ preset: 'x86_64', mem: '1G', clock: 'manual' });
  return buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined });
}

function request(uid: number): Request {
  return { uid, gid: uid, pid: 1000 + uid, interrupted: () => false, answered: () => undefined };
}

describe('turns between users', () => {
  it('when one user has many requests waiting and root sends one then root is answered second, not last', async () => {
    let current: Request | null = null;
    const a = createAdapter(tree(), { caller: () => current });
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      const reply = (who: string) => (code: number): void => {
        assert.equal(code, 0);
        order.push(who);
        if (order.length === 6) resolve();
      };
      for (let i = 0; i < 5; i++) {
        current = request(65534);
        a.ops.getattr!('/meminfo', reply(`nobody${i}`));
      }
      current = request(0);
      a.ops.getattr!('/meminfo', reply('root'));
      current = null;
    });
    await done;
    assert.deepEqual(order, ['nobody0', 'root', 'nobody1', 'nobody2', 'nobody3', 'nobody4']);
  });

  it('when callers are unknown (the stock binding) then requests are answered as they come, at once', () => {
    const a = createAdapter(tree());
    const order: string[] = [];
    a.ops.getattr!('/meminfo', () => order.push('first'));
    a.ops.getattr!('/vmstat', () => order.push('second'));
    assert.deepEqual(order, ['first', 'second']);
  });

  it('when a user other than root opens past their cap then EMFILE, and a release gives one back', async () => {
    let current: Request | null = request(65534);
    const a = createAdapter(tree(), { caller: () => current, maxHandlesPerUser: 2 });
    const codes: number[] = [];
    const fds: number[] = [];
    const open = (): Promise<void> => new Promise((resolve) => {
      a.ops.open!('/meminfo', 0, (code: number, fd?: number) => {
        codes.push(code);
        if (fd !== undefined) fds.push(fd);
        resolve();
      });
    });
    await open();
    await open();
    await open();
    assert.deepEqual(codes, [0, 0, -24]);
    assert.equal(a.handlesOf(65534), 2);
    await new Promise<void>((resolve) => a.ops.release!('/meminfo', fds[0]!, () => resolve()));
    assert.equal(a.handlesOf(65534), 1);
    await open();
    assert.equal(codes[3], 0);
    current = request(0);
    await open();
    assert.equal(codes[4], 0, 'root is not capped per user');
  });
});
