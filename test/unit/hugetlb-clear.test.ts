import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CostModel, type Machine, EPYC_COST, check, createMachine } from '../../src/model';
import { CpuZeroDriver, clearClockScale } from '../../src/model/zero-drivers';
import { configPairs } from '../../src/control/execute';
import { checkMachineOptions } from '../../src/uapi/bounds';
import { ModelError } from '../../src/uapi';
import { provenance } from '../../src/workload/provenance';

// How a hugetlb fault clears its page (mount --huge-clear, --preempt) and at which clock, on
// tiny machines with hand-worked numbers. Costs are pinned: the fault's trap is 100 ns and
// nothing else but clearing; a 4 KiB page clears at 4 B/ns, page after page up a gigantic page
// at 2 B/ns, an extent up to the 64 MiB cache at 8 B/ns, a larger one at 16 B/ns; one clock.
const PINNED: Partial<CostModel> = {
  trapNs: 100, handlerNs: 0, ptlSetNs: 0, zeroBytesPerNs: 4, zeroRunBytesPerNs: 2, zeroHugeBytesPerNs: 8, zeroGiantBytesPerNs: 16,
  cacheBytes: 64 * 2 ** 20, writebackBytesPerNs: 0, fsbBytesPerNs: 1e6, remoteFactor: 1,
};
const GIB = 2 ** 30;

/** x86_64 with 2 GiB on one node (MAX_ORDER 11: a 1 GiB page is gigantic), 2 CPUs. */
function tiny(opts: { hugeClear?: string; preempt?: boolean } = {}): Machine {
  return createMachine({ preset: 'x86_64', mem: '2G', nodes: 1, cpus: 2, clock: 'manual', bootAllocations: false, cost: PINNED, ...opts });
}

/** System ns of one fault on a fresh 1 GiB page (or a 2 MiB one), page not pre-zeroed. */
function faultNs(m: Machine, bytes: number): number {
  const pool = m.hugetlb.pools.find((p) => p.hs.bytes === bytes)!;
  m.hugetlb.setNrHugepages(pool, 1, 0);
  const mm = m.procs.create().id;
  const map = m.hugetlb.maps.mmap(mm, bytes, pool);
  const steps = m.hugetlb.maps.touchSteps(mm, map.addr, bytes, 1);
  let r = steps.next();
  while (!r.done) r = steps.next();
  assert.equal(r.value.faults, 1);
  assert.equal(check(m), null);
  return r.value.sysNs;
}

describe('hugetlb clear mode', () => {
  test('when a 1 GiB page is cleared page at a time then it is one stream at the run rate', () => {
    // clear_gigantic_page: 2^30 B at 2 B/ns.
    assert.equal(faultNs(tiny({ hugeClear: 'pages' }), GIB), 100 + GIB / 2);
  });

  test('when a 2 MiB page is cleared page at a time then each base page clears at the page rate', () => {
    // process_huge_page: 512 pages of 4096 B at 4 B/ns.
    assert.equal(faultNs(tiny({ hugeClear: 'pages' }), 2 ** 21), 100 + 512 * 1024);
  });

  test('when extents are cleared then the preemption model decides the extent', () => {
    // Without full preemption: 32 extents of 32 MiB, each within the cache, at 8 B/ns.
    assert.equal(faultNs(tiny({ hugeClear: 'extents', preempt: false }), GIB), 100 + 32 * (2 ** 25 / 8));
    // Fully preemptible: one clear_pages() over 1 GiB, past the cache, at 16 B/ns.
    assert.equal(faultNs(tiny({ hugeClear: 'extents', preempt: true }), GIB), 100 + GIB / 16);
  });

  test('when the mode is not the default then config and the result provenance say so', () => {
    const plain = configPairs(tiny());
    assert.equal(plain.find(([k]) => k === 'huge_clear'), undefined, 'a default machine reads as it did');
    assert.equal(plain.find(([k]) => k === 'preempt'), undefined);
    assert.equal(tiny().hugetlb.clearMode, 'pages', 'every preset models a kernel before the clearing series');
    const m = tiny({ hugeClear: 'extents', preempt: true });
    assert.equal(m.hugetlb.clearMode, 'extents');
    const pairs = Object.fromEntries(configPairs(m));
    assert.equal(pairs.huge_clear, 'extents');
    assert.equal(pairs.preempt, 'full');
    const prov = provenance(pairs, 'test', 'test');
    assert.equal(prov.machine.hugeClear, 'extents');
    assert.equal(prov.machine.preempt, 'full');
  });

  test('when the mode is not one the kernel has then the machine is refused, naming the modes', () => {
    assert.throws(() => tiny({ hugeClear: 'bytes' }), (e: unknown) => e instanceof ModelError && /huge clear: "bytes" is not one of pages, extents/.test(e.message));
    assert.throws(() => checkMachineOptions({ hugeClear: 5 }), (e: unknown) => e instanceof ModelError && /hugeClear must be a string/.test(e.message));
    assert.deepEqual(checkMachineOptions({ hugeClear: 'pages', preempt: true }), { hugeClear: 'pages', preempt: true });
  });
});

describe('the clock a clear runs at', () => {
  // Rates measured at 2 GHz; 3 GHz with every core of the node busy, 4 GHz alone.
  const cost: CostModel = { ...EPYC_COST, zeroRateGHz: 2, allCoreGHz: 3, boostGHz: 4, zeroBytesPerNs: 4, zeroRunBytesPerNs: 2, fsbBytesPerNs: 1e6 };

  test('when one core clears alone then it runs at its boost; with the node busy, at the all-core clock', () => {
    assert.equal(clearClockScale(cost, 1, 4), 2);
    assert.equal(clearClockScale(cost, 4, 4), 1.5);
    // Two of four: a third of the way from boost to all-core, 11/3 GHz.
    assert.ok(Math.abs(clearClockScale(cost, 2, 4) - 11 / 6) < 1e-12);
    const d = new CpuZeroDriver(cost, 4096, 4);
    // 4096 B at 4 B/ns × 2 alone, × 1.5 with all four clearing.
    assert.equal(d.zero(4096, false, 1).cpuNs, 512);
    assert.ok(Math.abs(d.zero(4096, false, 4).cpuNs - 4096 / 6) < 1e-9);
    // The run rate scales too: 2^30 B at 2 B/ns × 2.
    assert.equal(d.zeroRun(GIB, false, 1).cpuNs, GIB / 4);
  });

  test('when a clear elides line allocation then the memory, not the clock, sets its rate', () => {
    // Past the cache and the 2 MiB rate: the giant rate, unscaled.
    const d = new CpuZeroDriver(cost, 4096, 4);
    assert.equal(d.zero(GIB, false, 1).cpuNs, GIB / cost.zeroGiantBytesPerNs);
  });
});
