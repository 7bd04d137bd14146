// `kscrubfs policies`' runner (src/cli/policies-run.ts): one scenario under each policy on
// machines of one shape, with manual clocks. What each row must say follows from the policies'
// rules, worked out here from the machine's own figures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHURN_ROUNDS, POLICY_CASES, type PolicyRow, caseMachine, runPolicies, runTracePolicies } from '../../src/cli/policies-run';
import { formatPolicyTable, policyPanels } from '../../src/cli/policies';
import { renderPoliciesSvg } from '../../src/workload/plot';
import { readTrace } from '../../src/workload/trace-format';
import { writeFillTrace } from '../helpers/trace';
import { check } from '../../src/model';

const OPTS = { machine: { preset: 'x86_64', mem: '256M' }, bytes: 16 * 2 ** 20, threads: 1 } as const;
const PAGES = OPTS.bytes / 4096;
/** 16 MiB of 4 KiB pages needs 8 pte pages (512 ptes each). */
const PTE_PAGES = 8;

const byName = (rows: readonly PolicyRow[]): Record<string, PolicyRow> => Object.fromEntries(rows.map((r) => [r.policy, r]));

describe('policies: pft', () => {
  const rows = byName(runPolicies('pft', OPTS));
  const clearNs = caseMachine(POLICY_CASES[3]!, OPTS).policy.clearPageNs;

  it('when pft runs under each policy then every policy has its row, in table order', () => {
    assert.deepEqual(Object.keys(rows), ['none', 'kscrubd', 'init_on_alloc', 'init_on_free', 'prezero', 'idlezero']);
  });

  it('when nothing zeroes ahead then every page is cleared in its fault; with kscrubd or init_on_free none is', () => {
    assert.equal(rows.none!.hotZeroedPages, PAGES);
    assert.equal(rows.none!.hitRate, 0);
    for (const p of ['kscrubd', 'init_on_free']) {
      assert.equal(rows[p]!.prezeroedPages, PAGES, p);
      assert.equal(rows[p]!.hitRate, 1, p);
      assert.ok(rows[p]!.readyNs < rows.none!.readyNs, `${p} is ready sooner`);
      assert.ok(rows[p]!.maxFaultNs < rows.none!.maxFaultNs, `${p}'s slowest fault is faster`);
    }
  });

  it('when the program exits under init_on_free then its exit is dearer by one page clear per page freed', () => {
    const extra = rows.init_on_free!.exitNs - rows.none!.exitNs;
    // The clears, plus the per-cpu drains of a zeroed list that fills faster (30 ns a page at most).
    assert.ok(extra >= (PAGES + PTE_PAGES) * clearNs && extra <= (PAGES + PTE_PAGES) * (clearNs + 30), `${extra}`);
    // And init_on_free's boot wipe is its preparation: every free page of the machine, once.
    const m = caseMachine(POLICY_CASES[3]!, OPTS);
    assert.equal(rows.init_on_free!.prepCpuNs, m.bootWipe.ns);
    assert.equal(m.bootWipe.ns, m.bootWipe.pages * clearNs);
  });

  it('when kscrubd runs then its zeroing is background CPU, the program pays none of it', () => {
    assert.equal(rows.none!.backgroundCpuNs, 0);
    assert.ok(rows.kscrubd!.prepCpuNs > 0, 'it zeroed the idle machine first');
    assert.ok(rows.kscrubd!.backgroundCpuNs > 0, 'and the freed memory after the exit');
    assert.ok(rows.kscrubd!.appCpuNs < rows.none!.appCpuNs);
  });

  it('when init_on_alloc is the policy then anonymous faults are what they were (they were __GFP_ZERO already)', () => {
    const { policy: _a, zeroingPolicy: _b, ...alloc } = rows.init_on_alloc!;
    const { policy: _c, zeroingPolicy: _d, ...none } = rows.none!;
    assert.deepEqual(alloc, none);
  });

  it('when each clearing is counted then the bus carried two bytes per byte of the program\'s pages cleared', () => {
    // (The pte pages' clears are page-table allocations, not counted as the program's.)
    assert.equal(rows.none!.trafficBytes, PAGES * 4096 * 2);
    assert.equal(rows.init_on_free!.trafficBytes, (PAGES + PTE_PAGES) * 4096 * 2, 'init_on_free clears the pte pages it frees too');
  });
});

describe('policies: vm-start', () => {
  it('when a VM faults its memory in 2 MiB huge pages then the policies that zero ahead take the whole clear out of every fault', () => {
    const rows = byName(runPolicies('vm-start', OPTS));
    const m = caseMachine(POLICY_CASES[0]!, OPTS);
    // none: each of the 8 huge faults clears 2 MiB in the fault, at least at the 2 MiB extent's rate.
    assert.equal(rows.none!.hotZeroedPages, PAGES);
    assert.ok(rows.none!.maxFaultNs >= 2 ** 21 / m.cost.zeroHugeBytesPerNs, `${rows.none!.maxFaultNs}`);
    for (const p of ['kscrubd', 'init_on_free']) {
      assert.equal(rows[p]!.prezeroedPages, PAGES, p);
      assert.ok(rows[p]!.maxFaultNs * 20 < rows.none!.maxFaultNs, `${p}: ${rows[p]!.maxFaultNs}`);
      assert.equal(rows[p]!.exitNs, 0, 'the VM stays');
    }
  });
});

describe('policies: restart', () => {
  it('when a restart runs under init_on_free then the exit that frees pays for clearing and the new process faults none', () => {
    const rows = byName(runPolicies('restart', OPTS, ['none', 'init_on_free']));
    assert.deepEqual(Object.keys(rows), ['none', 'init_on_free']);
    assert.equal(rows.init_on_free!.hotZeroedPages, 0);
    assert.ok(rows.init_on_free!.exitNs > rows.none!.exitNs + PAGES * 1000);
    assert.equal(rows.init_on_free!.readyNs, rows.init_on_free!.appCpuNs, 'one thread: ready = its exit + its faults');
  });

  it('when the same comparison runs twice then the rows are the same to the last bit', () => {
    assert.deepEqual(runPolicies('restart', OPTS), runPolicies('restart', OPTS));
  });

  it('when every case machine has run a scenario then check() holds', () => {
    for (const c of POLICY_CASES) {
      const m = caseMachine(c, OPTS);
      const mm = m.procs.create().id;
      const { addr, size } = m.procs.mmap(mm, OPTS.bytes);
      m.procs.touch(mm, { addr, size });
      m.procs.exitTimed(mm);
      m.tick(1e9);
      assert.equal(check(m), null, c.name);
    }
  });
});

describe('policies: the co-running jobs\' loss to the clearing (corun)', () => {
  it('when faults clear their pages then the jobs lose more than when kscrubd zeroed ahead; init_on_alloc clears as the faults do', () => {
    const rows = byName(runPolicies('pft', OPTS));
    assert.ok(rows.kscrubd!.corunNs > 0, 'the program\'s cold lines and kscrubd\'s clears after the exit still evict');
    // kscrubd's clears of what the exit freed still run through one CPU's cache: less, not nothing.
    assert.ok(rows.none!.corunNs > rows.kscrubd!.corunNs, `none ${rows.none!.corunNs} against kscrubd ${rows.kscrubd!.corunNs}`);
    assert.equal(rows.init_on_alloc!.corunNs, rows.none!.corunNs);
  });

  it('when kscrubd clears with CLZERO instead of rep stos then its clears evict nothing', () => {
    const machine = { preset: 'epyc', mem: '512M', nodes: 1, cpus: 16 };
    const cached = byName(runPolicies('pft', { ...OPTS, machine }, ['kscrubd']));
    const clzero = byName(runPolicies('pft', { ...OPTS, machine: { ...machine, zeroDrivers: ['clzero', 'cpu'] } }, ['kscrubd']));
    // Left with CLZERO: the program's one cold line a page, 4096 × 64 bytes into its own CCX.
    assert.ok(clzero.kscrubd!.corunNs < cached.kscrubd!.corunNs / 4, `clzero ${clzero.kscrubd!.corunNs}, rep stos ${cached.kscrubd!.corunNs}`);
    assert.ok(clzero.kscrubd!.backgroundCpuNs < cached.kscrubd!.backgroundCpuNs, 'and at 41.98 B/ns against 13.7–15.1 it takes less CPU');
  });
});

describe('policies: churn, a recorded trace, and the chart', () => {
  it('when the churn runs twice on a manual clock then every row is the same, and each round faulted the whole size', () => {
    const a = runPolicies('churn', OPTS);
    assert.deepEqual(runPolicies('churn', OPTS), a);
    const rows = byName(a);
    for (const r of a) assert.equal(r.prezeroedPages + r.hotZeroedPages, CHURN_ROUNDS * PAGES, r.policy);
    assert.deepEqual([rows.none!.hitRate, rows.kscrubd!.hitRate, rows.init_on_free!.hitRate], [0, 1, 1]);
    // init_on_free pays every round's clears in the exits; the pool pays them in the gaps.
    assert.ok(rows.init_on_free!.exitNs > rows.none!.exitNs + CHURN_ROUNDS * PAGES * 100, `${rows.init_on_free!.exitNs}`);
    assert.ok(rows.prezero!.backgroundCpuNs > 0 && rows.prezero!.readyNs < rows.none!.readyNs);
  });

  it('when a recorded trace runs under each policy then its faults are replayed the same way twice, cleared in the fault only without zeroing ahead', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-policies-trace-'));
    try {
      const file = path.join(dir, 'p.trace');
      writeFillTrace(file, 256);
      const trace = readTrace(file);
      const names = ['none', 'kscrubd', 'prezero', 'idlezero'];
      const a = await runTracePolicies(trace, OPTS, names);
      assert.deepEqual(await runTracePolicies(trace, OPTS, names), a);
      const rows = byName(a);
      assert.deepEqual([rows.none!.hotZeroedPages, rows.none!.prezeroedPages, rows.kscrubd!.prezeroedPages, rows.idlezero!.prezeroedPages], [256, 0, 256, 256]);
      assert.ok(rows.none!.maxFaultNs > rows.kscrubd!.maxFaultNs && rows.kscrubd!.maxFaultNs > 0, `${rows.none!.maxFaultNs} ${rows.kscrubd!.maxFaultNs}`);
      assert.ok(rows.none!.readyNs > rows.kscrubd!.readyNs);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when the rows are drawn then there is a panel per column of the table and a bar per policy, each titled with the table\'s text', () => {
    const rows = runPolicies('pft', OPTS, ['none', 'kscrubd']);
    const svg = renderPoliciesSvg(policyPanels(rows), { title: 't', provenance: 'p' });
    const table = formatPolicyTable('pft', 'x86_64', 256 * 2 ** 20, { size: OPTS.bytes, threads: 1 }, rows).split('\n');
    const heads = table[1]!.split(/\s{2,}/).slice(1);
    assert.deepEqual([...svg.matchAll(/<g class="panel" data-title="([^"]+)">/g)].map((m) => m[1]), heads);
    const kscrubd = table[3]!.split(/\s+/).slice(1);
    heads.forEach((h, i) => assert.ok(svg.includes(`<title>kscrubd: ${h} ${kscrubd[i]}</title>`), `${h} ${kscrubd[i]}`));
    assert.equal([...svg.matchAll(/<rect class="bar"/g)].length, heads.length * 2);
  });
});
