import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CostModel, type Machine, check, createMachine } from '../../src/model';
import { HP_FREE, HP_ZEROED, HP_ZEROING, STEP_PAGES } from '../../src/model/hugetlb';
import { hugetlbFileMode, hugetlbFiles } from '../../src/procfs/hugetlb';
import * as meminfo from '../../src/procfs/meminfo';
import { execute } from '../../src/control/execute';
import { ProcError, parseCommand, parseMeminfo } from '../../src/uapi';

// hugetlb pools, faults, khzerod and zeroable_hugepages on tiny machines with hand-worked
// numbers. Costs are pinned: a fault's trap is 100 ns and nothing else but clearing; a 4 KiB
// page clears at 4 B/ns, so a 2 MiB page cleared page at a time (every preset's kernel) takes
// 524,288 ns; a 2 MiB extent (the clearing series) at 8 B/ns, 1 GiB at 16 B/ns; the bus never
// limits one CPU.
const PINNED: Partial<CostModel> = {
  trapNs: 100, handlerNs: 0, ptlSetNs: 0, zeroBytesPerNs: 4, zeroHugeBytesPerNs: 8, zeroGiantBytesPerNs: 16,
  cacheBytes: 2 ** 20, writebackBytesPerNs: 0, fsbBytesPerNs: 1e6, remoteFactor: 1,
};
const CLEAR_2M = 512 * 4096 / 4;

/** x86_64, 256 MiB, one node, 2 CPUs, MAX_ORDER 11 (sections of 4 MiB): only the 2 MiB size. */
function tiny(): Machine {
  return createMachine({ preset: 'x86_64', mem: '256M', nodes: 1, cpus: 2, clock: 'manual', bootAllocations: false, cost: PINNED });
}

/** The machine's hugetlb file at `path` (relative, as in the mount). */
function file(m: Machine, path: string): { read: () => string; write: (text: string) => number } {
  const row = hugetlbFiles(m).find((f) => f.path === `/${path}`);
  assert.ok(row, `${path} exists`);
  return {
    read: () => row.render!(m, { buddyinfo: 'v6' }),
    write: (text) => {
      assert.ok(row.write, `${path} is writable`);
      const n = row.write(m, Buffer.from(text));
      // Work of at most STEP_PAGES pages is one step: the write is done when it returns.
      assert.equal(typeof n, 'number', `${path}: a small write finishes at once`);
      return n as number;
    },
  };
}

const kB = (m: Machine, field: string): number => parseMeminfo(meminfo.render(m)).get(field)!;
const run = (m: Machine, line: string): string => execute(m, parseCommand(line));
const value = (line: string, key: string): number => Number(new RegExp(`\\b${key}=(\\d+)`).exec(line)![1]);

describe('hugetlb pools', () => {
  test('when nr_hugepages grows to 4 and shrinks to 1 then MemFree, the order-10 blocks and HugePages_* move by whole 2 MiB pages', () => {
    const m = tiny();
    const nr = file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages');
    const z = m.zones[m.zones.length - 1]!; // DMA32: the zone the pool allocates from first
    const free0 = kB(m, 'MemFree');
    const top0 = z.blocks(0, 10);
    const nine0 = z.blocks(0, 9);
    assert.equal(nr.write('4\n'), 2);
    assert.equal(nr.read(), '4\n');
    // Four order-9 blocks: two order-10 blocks split in two, nothing left over at order 9.
    assert.equal(kB(m, 'MemFree'), free0 - 4 * 2048);
    assert.equal(z.blocks(0, 10), top0 - 2);
    assert.equal(z.blocks(0, 9), nine0);
    assert.equal(kB(m, 'HugePages_Total'), 4);
    assert.equal(kB(m, 'HugePages_Free'), 4);
    assert.equal(kB(m, 'Hugetlb'), 8192);
    assert.equal(check(m), null);
    nr.write('1');
    // Three pages back to the buddy lists: 6 MiB, the buddies merging again where they can.
    assert.equal(kB(m, 'MemFree'), free0 - 2048);
    assert.equal(kB(m, 'HugePages_Total'), 1);
    assert.equal(file(m, 'sys/vm/nr_hugepages').read(), '1\n');
    assert.equal(file(m, 'sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages').read(), '1\n');
    assert.equal(check(m), null);
  });

  test('when a 1 GiB page is asked of node 1 then 256 whole sections leave its zone, and go back on 0', () => {
    const m = createMachine({ preset: 'x86_64', mem: '4G', nodes: 2, cpus: 2, clock: 'manual', bootAllocations: false, cost: PINNED });
    const node1 = file(m, 'sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages');
    const z = m.nodeZones[1]![0]!;
    const free0 = kB(m, 'MemFree');
    const top0 = z.blocks(0, 10);
    node1.write('2');
    // Node 1 has 2 GiB: a second gigantic page would leave nothing above its high watermark.
    assert.equal(node1.read(), '1\n');
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages').read(), '1\n');
    assert.equal(z.blocks(0, 10), top0 - 256);
    assert.equal(kB(m, 'MemFree'), free0 - 1048576);
    assert.equal(kB(m, 'Hugetlb'), 1048576);
    assert.equal(kB(m, 'HugePages_Total'), 0, 'HugePages_* are the default (2 MiB) size');
    assert.equal(check(m), null);
    node1.write('0');
    assert.equal(kB(m, 'MemFree'), free0);
    assert.equal(z.blocks(0, 10), top0);
    assert.equal(check(m), null);
  });

  test('when bad text is written to the hugetlb files then each is EINVAL and the value is kept', () => {
    const m = tiny();
    const nr = file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages');
    nr.write('2');
    for (const bad of ['abc', '-1', '0x4', '4 5', '4\n\n', ' 4', '+', '\n', '99999999999999999999']) {
      assert.throws(() => nr.write(bad), (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL', JSON.stringify(bad));
      assert.equal(nr.read(), '2\n');
    }
    assert.throws(() => file(m, 'sys/vm/nr_hugepages').write('5abc'), (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL');
    assert.throws(() => file(m, 'sys/vm/nr_hugepages').write('-3'), (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL');
    nr.write('+3\n');
    assert.equal(nr.read(), '3\n');
    const prezero = file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/prezero_enabled');
    assert.throws(() => prezero.write('2'), (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL');
    assert.equal(prezero.read(), '0\n');
  });

  test('when the files are listed then they carry the kernel names and modes', () => {
    const m = createMachine({ preset: 'x86_64', mem: '4G', nodes: 2, cpus: 2, clock: 'manual', bootAllocations: false });
    const modes = new Map(hugetlbFiles(m).map((f) => [f.path, f.mode]));
    const size = '/sys/kernel/mm/hugepages/hugepages-1048576kB';
    assert.equal(modes.get(`${size}/nr_hugepages`), 0o644);
    assert.equal(modes.get(`${size}/nr_overcommit_hugepages`), 0o644);
    for (const f of ['free_hugepages', 'resv_hugepages', 'surplus_hugepages', 'free_huge_pages_zero']) assert.equal(modes.get(`${size}/${f}`), 0o444, f);
    assert.equal(modes.get(`${size}/prezero_enabled`), 0o644);
    const node = '/sys/devices/system/node/node1/hugepages/hugepages-2048kB';
    assert.equal(modes.get(`${node}/nr_hugepages`), 0o644);
    assert.equal(modes.get(`${node}/free_hugepages`), 0o444);
    assert.equal(modes.get(`${node}/surplus_hugepages`), 0o444);
    assert.equal(modes.get(`${node}/zeroable_hugepages`), 0o644);
    assert.equal(modes.get('/sys/vm/nr_hugepages'), 0o644);
    assert.equal(modes.has('/sys/devices/system/node/node2/hugepages/hugepages-2048kB/nr_hugepages'), false);
    // A record's reader knows them by their paths' shape alone, with the same modes.
    for (const f of hugetlbFiles(m)) assert.equal(hugetlbFileMode(f.path), f.mode, f.path);
    for (const p of ['/sys/vm/scrub_start', '/sys/kernel/mm/hugepages/hugepages-2048kB/demote', '/sys/devices/system/node/node01/hugepages/hugepages-2048kB/nr_hugepages', '/sys/kernel/mm/hugepages/hugepages-2048kB/constructor']) {
      assert.equal(hugetlbFileMode(p), undefined, p);
    }
    // The kernel refuses overcommit of gigantic pages.
    assert.throws(() => hugetlbFiles(m).find((f) => f.path === `${size}/nr_overcommit_hugepages`)!.write!(m, Buffer.from('1')),
      (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL');
  });
});

describe('hugetlb faults and pre-zeroing', () => {
  test('when a fault finds the page khzerod is zeroing then it waits for the rest of that clear', () => {
    const m = tiny();
    file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages').write('2');
    run(m, 'mm new');
    const map = run(m, 'mmap mm=1 size=4M hugetlb=2M');
    const addr = map.split(' ')[1]!.slice(5);
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages').read(), '2\n');
    // khzerod starts at 0 on CPU 0 (both idle: the lowest id) with the tail page: done at 524,288.
    file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/prezero_enabled').write('1');
    run(m, 'tick 100us');
    const r = run(m, `touch mm=1 addr=${addr} size=4M`);
    // The thread waits for CPU 0 until 524,288, when khzerod's first page is done: that fault
    // takes it zeroed (100 ns). khzerod, moved to CPU 1, is zeroing the other until 1,048,576; the
    // second fault at 524,388 sleeps until then: it takes 100 + 1,048,576 − 524,388 = 524,288 ns,
    // of which only its 100 ns of entry and mapping are CPU time.
    assert.equal(value(r, 'faults'), 2);
    assert.equal(value(r, 'prezeroed'), 1);
    assert.equal(value(r, 'waited'), 1);
    assert.equal(value(r, 'hot_zeroed'), 0);
    assert.equal(value(r, 'sys_ns'), 100 + 100);
    assert.equal(value(r, 'wall_ns'), 1_048_676 - 100_000);
    assert.equal(value(r, 'max_fault_ns'), 524_288);
    assert.equal(m.cpus.systemNs(1), CLEAR_2M, 'khzerod cleared the second page on CPU 1');
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages').read(), '0\n');
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages').read(), '0\n');
    assert.equal(check(m), null);
    // munmap gives both back to the pool, dirty; khzerod zeroes them again, one after the other.
    run(m, `munmap mm=1 addr=${addr} size=4M`);
    run(m, 'tick 2ms');
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/free_huge_pages_zero').read(), '2\n');
    assert.equal(check(m), null);
  });

  test('when khzerod runs then it zeroes from the tail (the oldest free page) towards the head, and a shrink gives back a dirty page from the head', () => {
    const m = tiny();
    const dir = 'sys/kernel/mm/hugepages/hugepages-2048kB';
    file(m, `${dir}/nr_hugepages`).write('3');
    file(m, `${dir}/prezero_enabled`).write('1');
    // One clear is 524,288 ns: at 600 µs the tail page is zeroed, the next is being zeroed
    // (until 1,048,576), the head one not started.
    run(m, 'tick 600us');
    const pool = m.hugetlb.pools[0]!;
    const states = (): number[] => pool.freeLists[0]!.map((id) => pool.state(id));
    assert.deepEqual(states(), [HP_ZEROED, HP_ZEROING, HP_FREE], 'tail first, head last');
    assert.equal(file(m, `${dir}/free_huge_pages_zero`).read(), '1\n');
    // Shrinking frees the head's dirty page: the zeroed one stays in the pool.
    file(m, `${dir}/nr_hugepages`).write('2');
    assert.deepEqual(states(), [HP_ZEROED, HP_ZEROING]);
    assert.equal(file(m, `${dir}/free_huge_pages_zero`).read(), '1\n');
    run(m, 'tick 1ms');
    assert.equal(file(m, `${dir}/free_huge_pages_zero`).read(), '2\n');
    assert.equal(check(m), null);
  });

  test('when a fault clears its own page then the modelled kernel decides the extent', () => {
    const m = tiny();
    file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages').write('2');
    run(m, 'mm new');
    const addr = run(m, 'mmap mm=1 size=4M hugetlb=2M').split(' ')[1]!.slice(5);
    // Page at a time (process_huge_page), as every preset's kernel clears: 512 × 4096 B at 4 B/ns.
    const one = run(m, `touch mm=1 addr=${addr} size=2M`);
    assert.equal(value(one, 'sys_ns'), 100 + CLEAR_2M);
    // The clearing series: clear_pages() over the whole 2 MiB extent (no preemption bound
    // below 32 MiB) at 8 B/ns.
    m.hugetlb.clearMode = 'extents';
    const two = run(m, `touch mm=1 addr=0x${(Number(addr) + 2 ** 21).toString(16)} size=2M`);
    assert.equal(value(two, 'sys_ns'), 100 + 2 ** 21 / 8);
    assert.equal(value(two, 'hot_zeroed'), 1);
    assert.equal(check(m), null);
  });

  test('when N is written to zeroable_hugepages then the writer CPU spends N clears and the pages count as zeroed', () => {
    const m = tiny();
    file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages').write('3');
    const zeroable = file(m, 'sys/devices/system/node/node0/hugepages/hugepages-2048kB/zeroable_hugepages');
    assert.equal(zeroable.read(), '3\n');
    const sys0 = m.cpus.systemNs(0);
    zeroable.write('2\n');
    assert.equal(m.cpus.systemNs(0) - sys0, 2 * CLEAR_2M, 'the writer (on CPU 0) pays for both');
    assert.equal(m.cpus.systemNs(1), 0, 'nobody else does');
    assert.equal(zeroable.read(), '1\n');
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/free_huge_pages_zero').read(), '2\n');
    assert.throws(() => zeroable.write('2'), (e: unknown) => e instanceof ProcError && e.errno === 'EINVAL');
    assert.equal(zeroable.read(), '1\n', 'a refused write zeroes nothing');
    // A fault now takes a zeroed page and skips clearing.
    run(m, 'mm new');
    const addr = run(m, 'mmap mm=1 size=2M hugetlb=2M').split(' ')[1]!.slice(5);
    const r = run(m, `touch mm=1 addr=${addr} size=2M`);
    assert.equal(value(r, 'prezeroed'), 1);
    assert.equal(value(r, 'sys_ns'), 100);
    assert.equal(check(m), null);
  });

  test('when a mapping wants more pages than the pool can promise then mmap is ENOMEM and nothing is reserved', () => {
    const m = tiny();
    file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages').write('1');
    run(m, 'mm new');
    assert.match(run(m, 'mmap mm=1 size=4M hugetlb=2M'), /^err mmap: 1 more huge pages of 2048 kB wanted than the pool has free and unreserved \(nr_hugepages 1\): nr_overcommit_hugepages 0 allows 0 more surplus pages$/);
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages').read(), '0\n');
    assert.match(run(m, 'mmap mm=1 size=2M hugetlb=1G'), /^err mmap: no huge page size of 1073741824 bytes/);
    const addr = run(m, 'mmap mm=1 size=2M hugetlb=2M').split(' ')[1]!.slice(5);
    assert.match(run(m, `fault mm=1 addr=${addr}`), /^err fault: .* is in a hugetlb mapping/);
    assert.match(run(m, 'mm exit mm=1'), /^ok/);
    assert.equal(file(m, 'sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages').read(), '0\n');
    assert.equal(check(m), null);
  });

  test('when a resize and a zeroable_hugepages write run in steps then the pool is consistent at every yield, and a fault between steps takes its page', () => {
    const m = createMachine({ preset: 'x86_64', mem: '4G', nodes: 1, cpus: 2, clock: 'manual', bootAllocations: false, cost: PINNED });
    const pool = m.hugetlb.pools[0]!;
    const target = 3 * STEP_PAGES + 10;
    let yields = 0;
    for (const _ of m.hugetlb.resizeSteps(pool, target)) {
      yields++;
      assert.equal(check(m), null, `after step ${yields}`);
    }
    assert.equal(yields, 3, 'one yield every STEP_PAGES pages');
    assert.equal(pool.nr, target);
    const direct = createMachine({ preset: 'x86_64', mem: '4G', nodes: 1, cpus: 2, clock: 'manual', bootAllocations: false, cost: PINNED });
    direct.hugetlb.setNrHugepages(direct.hugetlb.pools[0]!, target);
    assert.equal(kB(m, 'MemFree'), kB(direct, 'MemFree'), 'steps give what one call gives');
    // The writer zeroes in steps; between two of them a fault takes the head page (dirty).
    run(m, 'mm new');
    const addr = run(m, 'mmap mm=1 size=2M hugetlb=2M').split(' ')[1]!.slice(5);
    const steps = m.hugetlb.zeroInWriterSteps(pool, 0, target);
    steps.next();
    assert.equal(pool.freeZero, STEP_PAGES);
    const r = run(m, `touch mm=1 addr=${addr} size=2M`);
    assert.equal(value(r, 'prezeroed'), 1, 'a zeroed page is there already: the fault takes it');
    let last = steps.next();
    while (!last.done) last = steps.next();
    // The writer zeroed every page of the pool (the fault took one of those zeroed already).
    assert.equal(pool.writerPages, target);
    assert.equal(pool.freeZero, target - 1);
    assert.equal(last.value, pool.writerPages * CLEAR_2M);
    assert.equal(check(m), null);
  });

  test('when nr_overcommit_hugepages allows then mmap makes surplus pages from the buddy allocator, and munmap gives them back', () => {
    const m = tiny();
    const dir = 'sys/kernel/mm/hugepages/hugepages-2048kB';
    file(m, `${dir}/nr_hugepages`).write('1');
    file(m, `${dir}/nr_overcommit_hugepages`).write('2');
    const free0 = kB(m, 'MemFree');
    run(m, 'mm new');
    assert.match(run(m, 'mmap mm=1 size=8M hugetlb=2M'), /^err mmap: 3 more huge pages .* nr_overcommit_hugepages 2 allows 2 more surplus pages$/);
    assert.equal(kB(m, 'MemFree'), free0, 'a refused mmap keeps nothing');
    const addr = run(m, 'mmap mm=1 size=6M hugetlb=2M').split(' ')[1]!.slice(5);
    // Two surplus pages: the pool grows to 3, MemFree falls by 4 MiB, every page reserved.
    assert.deepEqual(['nr_hugepages', 'surplus_hugepages', 'free_hugepages', 'resv_hugepages'].map((f) => file(m, `${dir}/${f}`).read()), ['3\n', '2\n', '3\n', '3\n']);
    assert.equal(kB(m, 'MemFree'), free0 - 4096);
    assert.equal(kB(m, 'HugePages_Surp'), 2);
    run(m, `touch mm=1 addr=${addr} size=2M`);
    assert.equal(check(m), null);
    // munmap: the faulted page goes to the buddy allocator (surplus), then one unfaulted
    // surplus page with its reservation; the persistent page stays.
    run(m, `munmap mm=1 addr=${addr} size=6M`);
    assert.deepEqual(['nr_hugepages', 'surplus_hugepages', 'free_hugepages', 'resv_hugepages'].map((f) => file(m, `${dir}/${f}`).read()), ['1\n', '0\n', '1\n', '0\n']);
    assert.equal(kB(m, 'MemFree'), free0);
    assert.equal(check(m), null);
  });
});
