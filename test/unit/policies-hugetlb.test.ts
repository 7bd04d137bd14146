// `kscrubfs policies … --hugetlb`: the VM scenarios on a hugetlb pool under its pre-zeroing
// policies (src/cli/policies-hugetlb.ts). What each row must say follows from the rules,
// worked out from the machine's own clearing figures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runHugetlbPolicies } from '../../src/cli/policies-hugetlb';
import { POLICY_CASES, type PolicyRow, caseMachine } from '../../src/cli/policies-run';

const OPTS = { machine: { preset: 'x86_64', mem: '256M' }, bytes: 16 * 2 ** 20, threads: 1 } as const;
const HUGE = 2 ** 21;
const PAGES = OPTS.bytes / HUGE;
/** Equal but for the last bits of floating-point sums. */
function near(actual: number, want: number, what = ''): void {
  assert.ok(Math.abs(actual - want) <= 1e-9 * Math.max(1, Math.abs(want)), `${what} ${actual} ≠ ${want}`);
}
const byName = (rows: readonly PolicyRow[]): Record<string, PolicyRow> => Object.fromEntries(rows.map((r) => [r.policy, r]));

/** One 2 MiB clear and one fault's entry and mapping on this machine, from its own figures. */
function figures(): { clear: number; overhead: number } {
  const m = caseMachine(POLICY_CASES[0]!, OPTS);
  return { clear: m.hugetlb.clearNs(HUGE, false, 1), overhead: m.cost.trapNs + m.cost.handlerNs + m.cost.ptlSetNs };
}

describe('policies --hugetlb', () => {
  it('when a VM starts on an idle machine then khzerod and the zeroable_hugepages agent leave its faults nothing to clear', () => {
    const { clear, overhead } = figures();
    const rows = byName(runHugetlbPolicies('vm-start', OPTS, HUGE));
    assert.deepEqual(Object.keys(rows), ['none', 'khzerod', 'zeroable_hugepages']);
    near(rows.none!.appCpuNs, PAGES * (overhead + clear));
    assert.equal(rows.none!.hitRate, 0);
    assert.equal(rows.none!.trafficBytes, 2 * OPTS.bytes);
    for (const name of ['khzerod', 'zeroable_hugepages']) {
      const r = rows[name]!;
      assert.equal(r.hitRate, 1, name);
      near(r.appCpuNs, PAGES * overhead, name);
      near(r.prepCpuNs, PAGES * clear, `${name}: the pool was zeroed before, once`);
      assert.equal(r.backgroundCpuNs, 0, name);
      assert.equal(r.maxFaultNs, overhead, name);
    }
  });

  it('when a VM restarts at once then the agent has no idle turn and khzerod clears beside the faults', () => {
    const { clear, overhead } = figures();
    const rows = byName(runHugetlbPolicies('restart', OPTS, HUGE));
    const { policy: _a, ...none } = rows.none!;
    const { policy: _b, ...agent } = rows.zeroable_hugepages!;
    assert.deepEqual(agent, none, 'the agent never ran: exactly the none row');
    near(rows.none!.appCpuNs, PAGES * (overhead + clear));
    const k = rows.khzerod!;
    // Every page is cleared once, by the fault or by khzerod; the faults only wait for khzerod's share.
    assert.equal(k.trafficBytes, 2 * OPTS.bytes);
    const share = k.backgroundCpuNs / clear;
    assert.ok(share >= 1 && Math.abs(share - Math.round(share)) < 1e-9, `khzerod cleared whole pages: ${share}`);
    assert.ok(k.readyNs < rows.none!.readyNs);
    near(k.appCpuNs + k.backgroundCpuNs, rows.none!.appCpuNs, 'the clearing moved, none was saved');
  });

  it('when run twice then the rows are the same, and pft is refused', () => {
    assert.deepEqual(runHugetlbPolicies('restart', OPTS, HUGE), runHugetlbPolicies('restart', OPTS, HUGE));
    assert.throws(() => runHugetlbPolicies('pft', OPTS, HUGE), /--hugetlb applies to vm-start and restart, not pft/);
    assert.throws(() => runHugetlbPolicies('vm-start', OPTS, 3 * HUGE), /no huge page size of 6291456 bytes/);
  });
  it('when the machine clears page at a time (the default) then a VM start pays a page rate per base page, and with extents an extent rate', () => {
    // One 2 MiB extent at 6.4 B/ns against 512 pages at x86_64's 3.2 B/ns a page (a bus that
    // never limits, no write-back term).
    const cost = { zeroHugeBytesPerNs: 6.4, fsbBytesPerNs: 100, writebackBytesPerNs: 0 };
    const { overhead } = figures();
    const extents = byName(runHugetlbPolicies('vm-start', { ...OPTS, machine: { ...OPTS.machine, cost, hugeClear: 'extents' } }, HUGE, ['none']));
    const pages = byName(runHugetlbPolicies('vm-start', { ...OPTS, machine: { ...OPTS.machine, cost } }, HUGE, ['none']));
    near(extents.none!.appCpuNs, PAGES * (overhead + HUGE / 6.4));
    near(pages.none!.appCpuNs, PAGES * (overhead + 512 * (4096 / 3.2)));
  });
});
