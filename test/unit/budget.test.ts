import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { execute } from '../../src/control';
import { commandJob, detachedSession } from '../../src/control/execute';
import { MemoryBudget } from '../../src/daemon/budget';
import { createMachine } from '../../src/model';
import { PID_MAX_DEFAULT, parseCommand } from '../../src/uapi';

// What a client can make the daemon hold is priced before it runs: processes, raw blocks,
// pages; the budget counts what the daemon already holds (its resident size), so a request
// that would fit an empty daemon is refused by a full one.

const cmd = parseCommand;

describe('budget: what a command is priced at', () => {
  test('when the daemon already holds all but a little of its budget then mm new is refused, and with room it runs', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    const full = new MemoryBudget(100e6, () => 100e6 - 1000);
    assert.match(full.refusal(m, cmd('mm new keep')) ?? '', /^could need 3 KiB more of the daemon's memory; it holds 95\.4 MiB of its budget 95\.4 MiB/);
    assert.equal(new MemoryBudget(100e6, () => 50e6).refusal(m, cmd('mm new keep')), null);
  });

  test('when mm new keep is asked again and again of a daemon whose memory grows with each then it is refused before the budget is passed', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    // Resident memory as measured: 1.4 KB a process on top of 60 MB.
    const budget = new MemoryBudget(64e6, () => 60e6 + m.procs.mms.size * 1400);
    let made = 0;
    while (budget.refusal(m, cmd('mm new keep')) === null) {
      assert.match(execute(m, cmd('mm new keep')), /^ok mm=/);
      made++;
    }
    assert.ok(60e6 + made * 1400 <= 64e6, `${made} processes`);
    assert.ok(made > 2000, `${made} processes`);
  });

  test('when raw blocks are allocated then each is priced as a block, not as its pages', () => {
    const big = createMachine({ preset: 'x86_64', mem: '64G', clock: 'manual' });
    const budget = new MemoryBudget(2 ** 40, () => 0);
    // A million order-10 blocks cannot be had on 64G (16,000-odd can): priced at what can.
    assert.ok(budget.need(big, cmd('alloc order=10 count=1000000')) < 16 * 2 ** 20, String(budget.need(big, cmd('alloc order=10 count=1000000'))));
    assert.equal(budget.need(big, cmd('alloc order=0 count=1000000')), 1_000_000 * 192);
  });

  test('when pid_max processes are alive then mm new is refused naming it, and mm list stays under the unread limit', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'manual' });
    for (let i = 0; i < PID_MAX_DEFAULT; i++) execute(m, cmd('mm new keep'));
    assert.equal(execute(m, cmd('mm new keep')), "err mm new: 32768 processes are alive, the kernel's pid_max (PID_MAX_DEFAULT); mm exit some first");
    assert.ok(execute(m, cmd('mm list')).length < 2 ** 20);
  });
});

describe('budget: a million-block alloc runs in slices', () => {
  test('when alloc order=0 count=100000 runs as a job then it yields between slices and ends as the whole alloc does', () => {
    const sliced = createMachine({ preset: 'x86_64', clock: 'manual' });
    const whole = createMachine({ preset: 'x86_64', clock: 'manual' });
    const job = commandJob(sliced, cmd('alloc order=0 count=100000'), detachedSession());
    let slices = 0;
    let r = job.next();
    for (; !r.done; r = job.next()) slices++;
    assert.ok(slices >= 20, `${slices} slices`);
    assert.equal(r.value.line, execute(whole, cmd('alloc order=0 count=100000')));
    assert.equal(execute(sliced, cmd('stats')), execute(whole, cmd('stats')));
  });
});
