// The zeroing policies (src/model/policies/init-on.ts) on the tiny machine, worked by hand:
// who pays for clearing, when, and how much; and that check() holds throughout.
//
// TINY (test/helpers/model.ts): 64 MiB x86_64, one CPU, MAX_ORDER 4, no boot allocations:
// 12029 free pages at boot. Pinned zeroing rate 3.2 B/ns: clear_page of 4096 bytes = 1280 ns.
// x86_64's freePageNs is 120 ns a page, buddyPerPageNs 30 ns a page drained under zone->lock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalControl, execute } from '../../src/control';
import { type Machine, check, createMachine } from '../../src/model';
import { ModelError, ZEROING_POLICIES, parseZeroingPolicy, zeroingCmdline } from '../../src/uapi';
import { FaultPricing } from '../../src/model/fault-price';
import { Runner, TouchCounts } from '../../src/model/runner';
import { TINY } from '../helpers/model';

const CLEAR_PAGE_NS = 1280;
const FREE_PAGES_AT_BOOT = 12029;

function machine(policy?: string): Machine {
  return createMachine({ ...TINY, ...(policy === undefined ? {} : { zeroingPolicy: policy }) });
}

/** A process that maps and writes 64 KiB (16 pages, one pte page), MADV_RANDOM: one page a fault. */
function run64K(m: Machine): { mm: number; touch: ReturnType<Machine['procs']['touch']> } {
  const mm = m.procs.create().id;
  const { addr } = m.procs.mmap(mm, 65536, true);
  return { mm, touch: m.procs.touch(mm, { addr, size: 65536 }) };
}

describe('zeroing policies: init_on_free', () => {
  it('when a machine boots with init_on_free then every free page is cleared once and sits on the zeroed lists', () => {
    const m = machine('init_on_free');
    assert.equal(m.freePagesTotal(), FREE_PAGES_AT_BOOT);
    assert.equal(m.zeroPagesTotal(), FREE_PAGES_AT_BOOT);
    assert.deepEqual(m.bootWipe, { pages: FREE_PAGES_AT_BOOT, ns: FREE_PAGES_AT_BOOT * CLEAR_PAGE_NS });
    // The wipe happens before the clock starts: the machine's time is still 0.
    assert.equal(m.now, 0);
    assert.equal(check(m), null);
  });

  it('when a process faults under init_on_free then no fault clears a page: the pages were zeroed when freed (at boot)', () => {
    const m = machine('init_on_free');
    const { touch } = run64K(m);
    assert.equal(touch.prezeroed, 16);
    assert.equal(touch.hotZeroed, 0);
    assert.equal(touch.zeroNs, 0);
    // The same touch on a default machine clears its 16 pages and the pte page in the
    // faults: 17 × 1280 ns.
    const base = run64K(machine()).touch;
    assert.equal(base.hotZeroed, 16);
    assert.equal(base.zeroNs, 17 * CLEAR_PAGE_NS);
    assert.equal(check(m), null);
  });

  it('when the process exits under init_on_free then the exiting CPU pays for clearing all it frees', () => {
    const m = machine('init_on_free');
    const { mm } = run64K(m);
    const before = { ...m.vm };
    const exit = m.procs.exitTimed(mm);
    // 16 anonymous pages + the pte page, each cleared at free: 17 × 1280 ns.
    assert.equal(m.vm.initOnFreePages - before.initOnFreePages, 17);
    assert.equal(m.vm.initOnFreeNs - before.initOnFreeNs, 17 * CLEAR_PAGE_NS);
    // exit = 17 frees × 120 ns + 15 pages drained × 30 ns + 17 clears × 1280 ns.
    assert.equal(m.vm.pcpDrainPages - before.pcpDrainPages, 15);
    assert.equal(exit.sysNs, 17 * 120 + 15 * 30 + 17 * CLEAR_PAGE_NS);
    assert.equal(exit.wallNs, exit.sysNs);
    // A default machine's exit frees the same pages without clearing them: 17 × 120 + 9 × 30.
    const b = machine();
    const exitBase = b.procs.exitTimed(run64K(b).mm);
    assert.equal(exitBase.sysNs, 17 * 120 + 9 * 30);
    // Everything went back zeroed: the free memory is all zero again.
    assert.equal(m.zeroPagesTotal() + m.pcpPagesTotal(), FREE_PAGES_AT_BOOT);
    assert.equal(check(m), null);
  });

  it('when a process restarts under init_on_free then the second run faults as cheaply as the first: the cost moved to the exit', () => {
    const m = machine('init_on_free');
    const first = run64K(m);
    m.procs.exitTimed(first.mm);
    const second = run64K(m).touch;
    assert.equal(second.prezeroed, 16);
    assert.equal(second.hotZeroed, 0);
    assert.equal(check(m), null);
  });

  it('when the process prefaults under init_on_free then the prefaulted pages are still cleared in the fault (V2 clears GFP_HIGHUSER pages itself)', () => {
    const m = machine('init_on_free');
    const mm = m.procs.create().id;
    const { addr } = m.procs.mmap(mm, 65536);
    const t = m.procs.touch(mm, { addr, size: 65536 });
    // The first page of each fault is __GFP_ZERO (found zero); the ones mapped ahead are not.
    assert.equal(t.prezeroed + t.hotZeroed, 16);
    assert.equal(t.hotZeroed, t.prefaulted);
    assert.ok(t.prefaulted > 0);
    assert.equal(m.vm.allocZeroWasted, t.prefaulted, 'each took a page init_on_free had cleared');
    m.procs.exitTimed(mm);
    m.drainPcp();
    assert.equal(m.zeroPagesTotal(), m.freePagesTotal(), 'after a drain every free page is on the zeroed lists');
    assert.equal(check(m), null);
  });

  it('when a fault gives back a page it took (a race lost) under init_on_free then the faulting thread pays for its clear', () => {
    for (const [policy, want] of [['init_on_free', CLEAR_PAGE_NS], [undefined, 0]] as const) {
      const m = machine(policy);
      const mm = m.procs.create();
      const p = new FaultPricing(m, m.lines, 1, new TouchCounts());
      const r = new Runner(mm.task(0), 0, 0, 0, 4096, 0, 1, { start: 0, end: 4096, random: true, thp: false }, true);
      const pfn = m.allocPages(0, true, 0, 0);
      p.release(r, pfn, 0);
      assert.equal(r.sysNs, want, `${policy ?? 'default'}: the runner's system time`);
      assert.equal(r.t, want, `${policy ?? 'default'}: its clock`);
    }
  });

  it("when two threads race for the same ptes under init_on_free then the loser's pages go back cleared and nothing it gave back is written", () => {
    const m = createMachine({ ...TINY, cpus: 2, zeroingPolicy: 'init_on_free' });
    const ctl = new LocalControl(m);
    ctl.run('mm new');
    const addr = Number.parseInt(/addr=0x([0-9a-f]+)/.exec(ctl.run('mmap mm=1 size=256K'))![1]!, 16);
    // Task 0 prefaults the pages task 1 is faulting at the same time: some of task 1's go back.
    const at = [0, 1, 2].map((p) => `0w${(addr + p * 4096).toString(16)}`).concat([0, 1, 2, 3].map((p) => `1w${(addr + p * 4096).toString(16)}`));
    assert.match(ctl.run(`faults mm=1 at=${at.join(',')} cpus=0,1`), /^ok pages=7 /);
    assert.ok(m.vm.prefaultReleased > 0);
    // Every page freed here is one a fault gave back: prefaulted ones and faulting ones that lost their pte.
    assert.ok(m.vm.pgfree > m.vm.prefaultReleased);
    assert.equal(m.vm.initOnFreeNs, m.vm.pgfree * CLEAR_PAGE_NS);
    assert.equal(check(m), null);
  });

  it('when a raw block is freed under init_on_free then its pages are cleared and merge back on the zeroed lists', () => {
    const m = machine('init_on_free');
    const ctl = new LocalControl(m);
    const h = /handles=(\S+)/.exec(ctl.run('alloc order=3'))![1]!;
    const zeroBefore = m.zeroPagesTotal();
    assert.match(ctl.run(`free handles=${h}`), /^ok freed_pages=8$/);
    assert.equal(m.zeroPagesTotal(), zeroBefore + 8);
    assert.equal(m.vm.initOnFreePages, 8);
    assert.equal(check(m), null);
  });

  it('when init_on_free runs without kscrubd then no kscrubd wakes, whatever the sysctls say', () => {
    const m = machine('init_on_free');
    m.setSysctl('scrub_stop', 0);
    m.setSysctl('scrub_start', 0);
    m.tick(1e9);
    assert.equal(m.kscrubd.reduce((s, k) => s + k.wakes, 0), 0);
    assert.equal(check(m), null);
  });
});

describe('zeroing policies: init_on_alloc', () => {
  it('when an allocation without __GFP_ZERO is made under init_on_alloc then it is cleared and counted', () => {
    const m = machine('init_on_alloc');
    const ctl = new LocalControl(m);
    ctl.run('alloc order=2');
    assert.equal(m.vm.initOnAllocPages, 4);
    assert.equal(m.vm.allocHotZeroed, 0, '__GFP_ZERO allocations are counted apart');
    ctl.run('alloc order=2 zero');
    assert.equal(m.vm.initOnAllocPages, 4);
    assert.equal(m.vm.allocHotZeroed, 4);
    assert.equal(check(m), null);
  });

  it('when anonymous memory faults under init_on_alloc then nothing changes: those pages were __GFP_ZERO already', () => {
    assert.deepEqual(run64K(machine('init_on_alloc')).touch, run64K(machine()).touch);
  });

  it('when init_on_free is on too then init_on_alloc clears nothing (free_pages_prezeroed)', () => {
    const m = machine('init_on_alloc,init_on_free');
    new LocalControl(m).run('alloc order=2');
    assert.equal(m.vm.initOnAllocPages, 0);
    // Every free page is zero already; a request that did not want zero spends one.
    assert.equal(m.vm.allocZeroWasted, 4);
    assert.equal(check(m), null);
  });
});

describe('zeroing policies: the option and what the machine says about it', () => {
  it('when the policy list is bad then the machine is refused naming the token', () => {
    for (const [given, want] of [
      ['bogus', /"bogus" is not one of kscrubd, init_on_free, init_on_alloc, prezero, idlezero/], ['kscrubd,kscrubd', /names a policy twice/], ['', /empty name/], ['init_on_free,', /empty name/],
      ['kscrubd,prezero', /kscrubd keeps zeroed blocks apart, prezero keeps the zero flag on the block: one allocator cannot do both/],
      ['idlezero,kscrubd', /idlezero keeps the zero flag on the block/], ['prezero,idlezero', /boot one of them/],
    ] as const) {
      assert.throws(() => machine(given), (err: unknown) => err instanceof ModelError && err.code === 'KSCRUB_BAD_OPTION' && want.test(err.message), given);
    }
  });

  it('when policies are given in any order then they are kept in table order, each once', () => {
    assert.deepEqual(parseZeroingPolicy('init_on_alloc,kscrubd'), ['kscrubd', 'init_on_alloc']);
    assert.deepEqual(parseZeroingPolicy(['init_on_alloc', 'init_on_free', 'kscrubd']), ['kscrubd', 'init_on_free', 'init_on_alloc']);
    assert.deepEqual(parseZeroingPolicy(['idlezero', 'init_on_alloc', 'init_on_free']), ['init_on_free', 'init_on_alloc', 'idlezero']);
    assert.deepEqual(ZEROING_POLICIES, ['kscrubd', 'init_on_free', 'init_on_alloc', 'prezero', 'idlezero', 'khzerod', 'zeroable_hugepages']);
    assert.equal(zeroingCmdline(['kscrubd', 'init_on_free', 'init_on_alloc']), 'init_on_free=1 init_on_alloc=1');
    // The hugetlb proposals have no boot parameter: their sysfs files steer them.
    assert.equal(zeroingCmdline(['kscrubd', 'prezero', 'khzerod', 'zeroable_hugepages']), 'prezero=1');
  });

  it('when config is asked then a default machine says nothing new and another names its policies and boot wipe', () => {
    assert.doesNotMatch(execute(machine(), { verb: 'config' }), /zeroing_policy|boot_wipe/);
    const line = execute(machine('init_on_free,kscrubd'), { verb: 'config' });
    assert.match(line, / zeroing_policy=kscrubd,init_on_free boot_wipe_pages=12029 boot_wipe_ns=15397120$/);
    assert.match(execute(machine('init_on_alloc'), { verb: 'config' }), / zeroing_policy=init_on_alloc$/);
  });
});
