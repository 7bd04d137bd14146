// Combined rows of `kscrubfs policies` (`--only init_on_free+khzerod`): a machine booted with
// several policies, as `mount --zeroing-policy init_on_free,khzerod` boots it. What each row
// must say follows from the kernels' rules for the combination, worked out from the rows of
// the policies alone and the machine's own figures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PolicyRow, caseMachine, caseNamed, comboCase, runPolicies } from '../../src/cli/policies-run';
import { HUGETLB_CASES, hugetlbComboCase, runHugetlbPolicies } from '../../src/cli/policies-hugetlb';
import { TINY } from '../helpers/model';

const OPTS = { machine: { preset: 'x86_64', mem: '256M' }, bytes: 16 * 2 ** 20, threads: 1 } as const;
const HUGE = 2 ** 21;
const byName = (rows: readonly PolicyRow[]): Record<string, PolicyRow> => Object.fromEntries(rows.map((r) => [r.policy, r]));
/** A row without the fields that name it. */
function figures(r: PolicyRow): Omit<PolicyRow, 'policy' | 'zeroingPolicy' | 'kscrubd'> {
  const { policy: _p, zeroingPolicy: _z, kscrubd: _k, ...rest } = r;
  return rest;
}

describe('policies: a combination is a machine booted with all of its policies', () => {
  it('when a combination is named in any order then it is one case, named in table order, kscrubd on only when it is one of them', () => {
    const c = caseNamed('init_on_free+kscrubd');
    assert.equal(c.name, 'kscrubd+init_on_free');
    assert.deepEqual(c.policy, ['kscrubd', 'init_on_free']);
    assert.equal(c.kscrubd, 'on');
    assert.equal(caseNamed('init_on_alloc+init_on_free').kscrubd, 'off');
    // A single name is the policy's own case, as before.
    assert.equal(caseNamed('kscrubd').what, "Lameter's kscrubd on: free blocks zeroed in the background");
    assert.deepEqual(comboCase(['kscrubd']).policy, caseNamed('kscrubd').policy);
    // The machine boots with the list: init_on_free's boot wipe, kscrubd's sysctls on.
    const m = caseMachine(c, OPTS);
    assert.deepEqual(m.config.zeroingPolicy, ['kscrubd', 'init_on_free']);
    assert.ok(m.bootWipe.pages > 0);
  });

  it('when the mutually exclusive are combined then the case is refused with the kernel\'s reason', () => {
    assert.throws(() => caseNamed('kscrubd+prezero'), /kscrubd keeps zeroed blocks apart, prezero keeps the zero flag on the block/);
    assert.throws(() => caseNamed('prezero+idlezero'), /prezero and idlezero are two kernels' answers/);
  });

  describe('pft on the tiny machine, by hand', () => {
    // TINY (test/helpers/model.ts) with MAX_ORDER 11, as kscrubd's sysctls (scrub_start 5) need:
    // 12029 free pages at boot, clear_page 1280 ns, a free 120 ns, a pcp drain 30 ns a page.
    // pft maps and writes 64 KiB: 16 pages and one pte page, one page a fault.
    const CLEAR = 1280;
    const rows = Object.fromEntries(runPolicies('pft', { machine: { ...TINY, maxOrder: 11 }, bytes: 65536, threads: 1 },
      ['none', 'init_on_free', 'kscrubd+init_on_free', 'init_on_free+init_on_alloc']).map((r) => [r.policy, r]));

    it('when init_on_free is combined with kscrubd or init_on_alloc then the boot wipe is the preparation and the exit clears all it frees, nothing else clears', () => {
      for (const name of ['init_on_free', 'kscrubd+init_on_free', 'init_on_free+init_on_alloc']) {
        const r = rows[name]!;
        assert.equal(r.prepCpuNs, 12029 * CLEAR, `${name}: every free page wiped once at boot, kscrubd found none dirty`);
        // 17 frees, 15 pages drained from the per-CPU list, 17 clears at free.
        assert.equal(r.exitNs, 17 * 120 + 15 * 30 + 17 * CLEAR, name);
        assert.equal(r.trafficBytes, 17 * 4096 * 2, `${name}: the 17 pages the exit cleared, read for ownership and written back`);
        assert.deepEqual([r.prezeroedPages, r.hotZeroedPages, r.backgroundCpuNs], [16, 0, 0], name);
      }
      // Without a policy the faults clear the 16 pages and the exit clears nothing: 17 frees, 9 drained.
      assert.equal(rows.none!.exitNs, 17 * 120 + 9 * 30);
      assert.equal(rows.none!.trafficBytes, 16 * 4096 * 2);
    });
  });

  describe('restart', () => {
    const rows = byName(runPolicies('restart', OPTS, ['none', 'init_on_free', 'init_on_free+init_on_alloc', 'init_on_free+kscrubd', 'kscrubd']));

    it('when combinations are asked for then they follow the single policies, in the order given', () => {
      assert.deepEqual(Object.keys(rows), ['none', 'kscrubd', 'init_on_free', 'init_on_free+init_on_alloc', 'kscrubd+init_on_free']);
      assert.equal(rows['kscrubd+init_on_free']!.zeroingPolicy, 'kscrubd,init_on_free');
    });

    it('when init_on_alloc is on beside init_on_free then it clears nothing (free_pages_prezeroed): the row is init_on_free\'s', () => {
      assert.deepEqual(figures(rows['init_on_free+init_on_alloc']!), figures(rows.init_on_free!));
    });

    it('when kscrubd runs beside init_on_free then it finds no dirty block: no background CPU, the row is init_on_free\'s', () => {
      // init_on_free clears every page as it is freed and wiped memory at boot: nothing free is
      // ever dirty, so kscrubd (on, its sysctls written) never zeroes a page.
      const k = rows['kscrubd+init_on_free']!;
      assert.equal(k.kscrubd, 'on');
      assert.equal(k.backgroundCpuNs, 0);
      assert.deepEqual(figures(k), figures(rows.init_on_free!));
      // While kscrubd alone does zero in the background.
      assert.ok(rows.kscrubd!.backgroundCpuNs > 0);
    });
  });

  describe('hugetlb', () => {
    it('when a hugetlb proposal is combined with init_on_free then its VM start is the proposal\'s, and the boot wipe is added to the preparation', () => {
      const rows = byName(runHugetlbPolicies('vm-start', OPTS, HUGE, ['khzerod', 'init_on_free+khzerod']));
      assert.deepEqual(Object.keys(rows), ['khzerod', 'init_on_free+khzerod']);
      const alone = rows.khzerod!;
      const both = rows['init_on_free+khzerod']!;
      // Pool pages never go back to the buddy allocator, so init_on_free clears none of them:
      // the faults find khzerod's zeroed pages either way.
      const wipe = caseMachine(hugetlbComboCase(['init_on_free', 'khzerod']), OPTS).bootWipe;
      assert.ok(wipe.ns > 0);
      assert.equal(both.prepCpuNs, alone.prepCpuNs + wipe.ns);
      assert.equal(both.zeroingPolicy, 'init_on_free,khzerod');
      for (const k of ['readyNs', 'appCpuNs', 'hitRate', 'maxFaultNs', 'trafficBytes', 'backgroundCpuNs'] as const) assert.equal(both[k], alone[k], k);
    });

    it('when both proposals are combined then the pool is zeroed once, by khzerod, before the agent\'s turn', () => {
      const rows = byName(runHugetlbPolicies('vm-start', OPTS, HUGE, ['khzerod', 'khzerod+zeroable_hugepages']));
      // khzerod settles first; the agent then finds nothing to zero (zeroable counts dirty pages).
      assert.deepEqual(figures(rows['khzerod+zeroable_hugepages']!), figures(rows.khzerod!));
      const c = hugetlbComboCase(['khzerod', 'zeroable_hugepages']);
      assert.deepEqual([c.khzerod, c.agent, c.kscrubd], [true, true, 'off']);
      // The single proposals' machines are unchanged: kscrubd off, no init_on_*.
      assert.deepEqual(HUGETLB_CASES.map((h) => h.policy.join(',')), ['kscrubd', 'kscrubd', 'kscrubd']);
    });

    it('when kscrubd runs beside a hugetlb proposal then its zeroing of the rest of memory is preparation too, and the VM does not see it', () => {
      const rows = byName(runHugetlbPolicies('vm-start', OPTS, HUGE, ['zeroable_hugepages', 'kscrubd+zeroable_hugepages']));
      const alone = rows.zeroable_hugepages!;
      const both = rows['kscrubd+zeroable_hugepages']!;
      assert.ok(both.prepCpuNs > alone.prepCpuNs, `${both.prepCpuNs} > ${alone.prepCpuNs}`);
      for (const k of ['readyNs', 'appCpuNs', 'hitRate', 'maxFaultNs'] as const) assert.equal(both[k], alone[k], k);
    });
  });
});
