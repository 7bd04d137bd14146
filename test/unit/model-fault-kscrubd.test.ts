import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Machine } from '../../src/model';
import { assertChecked, tickUntilScrubbed, tiny } from '../helpers/model';

// Faults and kscrubd on one clock (DESIGN §1: kscrubd "progresses on the same clock,
// concurrently with faults on other CPUs, competing for a CPU when all are busy").
const PAGE = 4096;

function scrubbed(): Machine {
  const m = tiny();
  m.setSysctl('scrub_stop', 0);
  m.setSysctl('scrub_start', 3);
  tickUntilScrubbed(m);
  return m;
}

describe('fault: kscrubd and faults', () => {
  test('when a process that used prezeroed pages exits then kscrubd wakes and zero pages grow again', () => {
    const m = scrubbed();
    // Prefault off: V2's prefaulted pages are GFP_HIGHUSER, cleared in the fault, never prezeroed.
    m.setSysctl('max_prealloc_order', 0);
    const k = m.kscrubd[0]!;
    assert.equal(k.wakes, 1, 'woken once, by vm.scrub_start');
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 64 * PAGE);
    const r = m.procs.touch(id, { addr, size: 64 * PAGE });
    assert.equal(r.prezeroed, 64);
    assert.ok(!m.scrubbing(), 'faults alone do not wake kscrubd');
    const zeroBefore = m.zeroPagesTotal();
    assert.equal(m.procs.exit(id), 64);
    assert.equal(k.wakes, 2, 'a freed order-3 not-zeroed block woke it');
    assert.ok(m.scrubbing());
    assert.equal(m.zeroPagesTotal(), zeroBefore, 'nothing is zeroed at the instant of the wake');
    assertChecked(m, 'after exit');
    tickUntilScrubbed(m);
    assert.ok(m.zeroPagesTotal() > zeroBefore, `zero pages grew: ${zeroBefore} → ${m.zeroPagesTotal()}`);
    assert.equal(m.zeroPagesTotal(), m.freePagesTotal(), 'every free block is zeroed again (scrub_stop 0)');
    assert.ok(k.pages >= 64 - m.pcpPagesTotal(), 'kscrubd zeroed what came back to the buddy lists');
    assertChecked(m, 'after the burst');
  });

  test('when kscrubd and a faulting thread share the only CPU then that CPU is never busier than the clock', () => {
    const m = tiny();
    m.setSysctl('scrub_stop', 0);
    m.setSysctl('scrub_start', 3); // a burst starts now, on cpu 0: the machine's only CPU
    const id = m.procs.create().id;
    const { addr } = m.procs.mmap(id, 2000 * PAGE);
    const r = m.procs.touch(id, { addr, size: 2000 * PAGE });
    assert.ok(m.kscrubd[0]!.blocks > 0, 'kscrubd zeroed blocks during the touch');
    const busy = m.cpus.userNs(0) + m.cpus.systemNs(0);
    assert.ok(busy <= m.now + 1e-6,
      `cpu0 did ${busy} ns of user+system work in ${m.now} ns (kscrubd ${m.kscrubd[0]!.cpuNs} ns ran on the same CPU at the same time)`);
    assert.ok(r.wallNs >= r.userNs + r.sysNs);
    assertChecked(m);
  });
});
