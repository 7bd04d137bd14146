import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { execute } from '../../src/control';
import { parseCommand } from '../../src/uapi';
import { check } from '../../src/model';
import { readTrace, TraceWriter } from '../../src/workload/trace-format';
import { Recorder } from '../../src/workload/trace-record';
import type { TraceRecord, TraceSummary } from '../../src/workload/trace-format';
import { PageRanges } from '../../src/workload/trace-ranges';
import { tiny } from '../helpers/model';

describe('trace: page ranges', () => {
  it('when ranges are added and removed then the changed parts are returned and touching ranges merge', () => {
    const r = new PageRanges();
    assert.deepEqual(r.add(10, 20), [[10, 20]]);
    assert.deepEqual(r.add(15, 30), [[20, 30]], 'only the new part');
    assert.deepEqual(r.add(30, 32), [[30, 32]]);
    assert.deepEqual(r.ranges, [[10, 32]], 'touching ranges are one');
    assert.deepEqual(r.remove(12, 14), [[12, 14]]);
    assert.deepEqual(r.ranges, [[10, 12], [14, 32]]);
    assert.deepEqual(r.remove(0, 100), [[10, 12], [14, 32]]);
    assert.deepEqual(r.ranges, []);
    r.add(5, 6);
    r.add(8, 9);
    assert.deepEqual(r.gaps(4, 10), [[4, 5], [6, 8], [9, 10]]);
    assert.equal(r.has(5), true);
    assert.equal(r.has(6), false);
    assert.equal(r.has(8), true);
  });
});

describe('trace: the file format', () => {
  it('when records are written then they read back the same, in a few bytes each', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-trace-unit-'));
    try {
      const file = path.join(dir, 't.trace');
      const w = new TraceWriter(file, { page_size: 4096, command: ['x'], kernel: 'k', host_cpus: 2, started: 'now', source: 'test' }, 1000);
      w.task(1000, 42, 42);
      w.cpu(1000, 1);
      w.range('map', 1001, 0x7f0000000, 16384);
      for (let i = 0; i < 16384; i++) w.fault(1002 + i, 0x7f0000000 + i, true, 'anon');
      w.fault(20_000, 0x400, false, 'file');
      w.task(20_001, 43, 42);
      w.fault(20_002, 0x7f0000010, false, 'unknown');
      w.range('zap', 20_003, 0x7f0000000, 2);
      w.exit(20_004, false);
      w.task(20_005, 42, 42);
      w.range('unmap', 20_006, 0x7f0000000, 16384);
      w.lost(20_007, 3);
      w.exit(20_008, true);
      const summary: TraceSummary = {
        exit_status: 3, interrupted: false, faults: { anon: 16384, file: 1, unknown: 1 }, write_faults: 16384,
        processes: 1, tasks: 2, lost_events: 3, duration_us: 19_008,
      };
      w.end(20_009, summary);
      const size = fs.statSync(file).size;
      assert.ok(size < 16384 * 4, `${size} bytes for 16,384 sequential faults`);
      const t = readTrace(file);
      assert.deepEqual(t.summary, summary);
      assert.equal(t.header.page_size, 4096);
      const recs: TraceRecord[] = [...t.records()];
      const faults = recs.filter((r) => r.type === 'fault');
      assert.equal(faults.length, 16386);
      // Times are µs since the writer's start (1000 here).
      assert.deepEqual(faults[0], { type: 'fault', t: 2, page: 0x7f0000000, write: true, cls: 'anon' });
      assert.deepEqual(faults[16383], { type: 'fault', t: 2 + 16383, page: 0x7f0000000 + 16383, write: true, cls: 'anon' });
      assert.deepEqual(faults[16384], { type: 'fault', t: 19_000, page: 0x400, write: false, cls: 'file' });
      assert.deepEqual(faults[16385], { type: 'fault', t: 19_002, page: 0x7f0000010, write: false, cls: 'unknown' });
      assert.deepEqual(recs.filter((r) => r.type !== 'fault').map((r) => r.type),
        ['task', 'cpu', 'map', 'task', 'zap', 'exit', 'task', 'unmap', 'lost', 'exit']);
      assert.deepEqual(recs.at(-1), { type: 'exit', t: 19_008, last: true });
      // Cut short (the recorder was killed): the records up to there, and no summary.
      fs.truncateSync(file, size - 40);
      assert.equal(readTrace(file).summary, null);
      fs.writeFileSync(file, 'not a trace\n');
      assert.throws(() => readTrace(file), /is not a kscrubfs trace/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('trace: the control commands replay uses', () => {
  const run = (m: ReturnType<typeof tiny>, line: string): string => execute(m, parseCommand(line));

  it('when mmap is given an address then it maps there, joins its neighbours and refuses an overlap', () => {
    const m = tiny();
    assert.equal(run(m, 'mm new'), 'ok mm=1');
    assert.equal(run(m, 'mmap mm=1 size=16K addr=0x7f0000000000'), 'ok addr=0x7f0000000000 size=16384');
    assert.equal(run(m, 'mmap mm=1 size=8K addr=0x7f0000006000'), 'ok addr=0x7f0000006000 size=8192');
    assert.equal(run(m, 'mmap mm=1 size=8K addr=0x7f0000004000'), 'ok addr=0x7f0000004000 size=8192');
    assert.match(run(m, 'mmap mm=1 size=4K addr=0x7f0000007000'), /^err mmap: 0x7f0000007000-0x7f0000008000 overlaps the mapping 0x7f0000000000-0x7f0000008000 of mm 1$/);
    assert.match(run(m, 'mmap mm=1 size=4K addr=0x7f0000000800'), /page aligned/);
    // One VMA now: a touch across the three pieces works.
    assert.match(run(m, 'touch mm=1 addr=0x7f0000000000 size=32K'), /^ok pages=8 /);
    assert.match(run(m, 'munmap mm=1 addr=0x7f0000002000 size=8K'), /^ok freed_pages=2 sys_ns=\d+ wall_ns=\d+$/);
    assert.match(run(m, 'mm exit mm=1'), /^ok freed_pages=6 sys_ns=\d+ wall_ns=\d+$/);
    assert.equal(check(m), null);
  });

  it('when faults lists accesses of two tasks then each runs in order on its own task, overlapping, and a bad entry runs nothing', () => {
    const m = tiny({ cpus: 2 });
    m.setSysctl('max_prealloc_order', 0); // one page a fault: the counts below are the list's
    run(m, 'mm new');
    run(m, 'mmap mm=1 size=64K addr=0x10000');
    const before = m.now;
    assert.match(run(m, 'faults mm=1 at=0w10000,0w18000,0w11000 lines=1'), /^ok pages=3 faults=3 prezeroed=0 hot_zeroed=3 prefaulted=0 oom=0 .* zero_ns=\d+$/);
    const serial = m.now - before;
    // The same three faults' worth on two tasks (CPUs 0 and 1): they overlap, so less wall time.
    const t0 = m.now;
    const two = run(m, 'faults mm=1 at=0w12000,1w1a000,0w13000,1w1b000 cpus=0,1');
    assert.match(two, /^ok pages=4 faults=4 /);
    const wall = Number(/wall_ns=(\d+)/.exec(two)![1]);
    const sys = Number(/sys_ns=(\d+)/.exec(two)![1]);
    assert.ok(wall < sys, `two tasks overlap: wall ${wall} < cpu ${sys}`);
    assert.ok(m.now - t0 <= serial * 2, 'four faults on two CPUs take no longer than twice three on one');
    // A read maps ZERO_PAGE; a write there later is a COW fault; an access to a mapped page is no fault.
    assert.match(run(m, 'faults mm=1 at=0r14000,0w14000,0w10000'), /^ok pages=3 faults=2 /);
    const free = m.freePagesTotal();
    assert.match(run(m, 'faults mm=1 at=0w15000,0w90000'), /^err faults: addr=0x90000 is not mapped in mm 1$/);
    assert.match(run(m, 'faults mm=1 at=0w15000 cpus=5'), /^err faults: cpu 5 of task 0 must be 0\.\.1$/);
    assert.equal(m.freePagesTotal(), free, 'a refused list changed nothing');
    assert.throws(() => parseCommand('faults mm=1 at=0x15000'), /entry "0x15000" is not <task><r\|w><hex address>/);
    run(m, 'mm exit mm=1');
    assert.equal(check(m), null);
  });
});

describe('trace: the recorder reading trace_pipe text', () => {
  // Lines as this host's 6.18 kernel prints them (see the README's record section). The pids
  // are above pid_max, so /proc/<pid>/maps is never there and nothing real leaks in.
  const P = 4194900;
  const C = P + 1;
  const T = P + 2;
  const V = P + 3;
  let us = 0;
  const line = (tid: number, text: string): string => {
    us += 10;
    return `           prog-${tid}     [001] .....  ${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}: ${text}`;
  };
  const call = (tid: number, name: string, args: string, ret: string): string[] => [
    line(tid, `sys_${name}(${args})`), line(tid, `sys_${name} -> ${ret}`),
  ];

  it('when a process maps, faults, forks, spawns a thread and a vfork child and exits then the trace says so', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-trace-unit-'));
    try {
      const file = path.join(dir, 't.trace');
      const w = new TraceWriter(file, { page_size: 4096, command: ['x'], kernel: 'k', host_cpus: 2, started: 'now', source: 'test' }, -1);
      const rec = new Recorder(w, 4096, P);
      const lines = [
        line(P, 'page_fault_user: address=0x55550000 ip=0x1 error_code=0x6'), // the gate shell's: dropped
        line(P, `sched_process_exec: filename=/bin/prog pid=${P} old_pid=${P}`),
        ...call(P, 'brk', 'brk: 0', '0x1000000'),
        ...call(P, 'brk', 'brk: 0x1004000', '0x1004000'),
        ...call(P, 'mmap', 'addr: 0, len: 0x10000, prot: 3, flags: 0x22, fd: 0xffffffff, off: 0', '0x7f0000000000'),
        ...call(P, 'mmap', 'addr: 0, len: 0x2000, prot: 1, flags: 2, fd: 3, off: 0', '0x7f0000100000'),
        ...call(P, 'mmap', 'addr: 0, len: 0x2000, prot: 3, flags: 0x22, fd: 0xffffffff, off: 0', '0xfffffffffffffff4'), // ENOMEM
        line(P, 'page_fault_user: address=0x7f0000000010 ip=0x1 error_code=0x6'),
        line(P, 'page_fault_user: address=0x7f0000100000 ip=0x1 error_code=0x4'),
        line(P, 'page_fault_user: address=0x1001000 ip=0x1 error_code=0x6'),
        line(P, 'page_fault_user: address=0x5000000 ip=0x1 error_code=0x4'),
        ...call(P, 'madvise', 'start: 0x7f0000000000, len_in: 0x2000, behavior: 4', '0x0'),
        ...call(P, 'mremap', 'addr: 0x7f0000000000, old_len: 0x10000, new_len: 0x20000, flags: 1, new_addr: 0', '0x7f0000200000'),
        ...call(P, 'munmap', 'addr: 0x7f0000200000, len: 0x1000', '0x0'),
        line(P, `task_newtask: pid=${C} comm=prog clone_flags=1200000 oom_score_adj=0`),
        line(P, `task_newtask: pid=${T} comm=prog clone_flags=3d0f00 oom_score_adj=0`),
        line(T, 'page_fault_user: address=0x7f0000201000 ip=0x1 error_code=0x6'),
        line(P, `task_newtask: pid=${V} comm=prog clone_flags=4111 oom_score_adj=0`),
        line(V, `sched_process_exec: filename=/bin/other pid=${V} old_pid=${V}`),
        line(C, 'page_fault_user: address=0x1002000 ip=0x1 error_code=0x6'),
        line(C, `sched_process_exit: comm=prog pid=${C} prio=120 group_dead=true`),
        line(T, `sched_process_exit: comm=prog pid=${T} prio=120 group_dead=false`),
        line(P, `sched_process_exit: comm=prog pid=${P} prio=120 group_dead=true`),
        line(4242, 'page_fault_user: address=0x1000 ip=0x1 error_code=0x6'), // not ours
        'CPU:1 [LOST 7 EVENTS]',
      ];
      for (const l of lines) rec.line(l);
      w.end(rec.nowUs, { exit_status: 0, interrupted: false, faults: rec.counts, write_faults: rec.writeFaults, processes: rec.processes, tasks: rec.taskCount, lost_events: rec.lost, duration_us: 0 });
      assert.deepEqual(rec.counts, { anon: 4, file: 1, unknown: 1 });
      assert.equal(rec.processes, 3, 'the program, its fork child, its vfork child once it execs');
      assert.equal(rec.lost, 7);
      const got = [...readTrace(file).records()].filter((r) => r.type !== 'cpu').map((r) => {
        const { t: _t, ...rest } = r;
        return rest;
      });
      const pg = (a: number): number => a / 4096;
      assert.deepEqual(got, [
        { type: 'task', tid: P, process: P },
        { type: 'map', page: pg(0x1000000), pages: 4 }, // brk grew the heap
        { type: 'map', page: pg(0x7f0000000000), pages: 16 }, // anonymous mmap; the file one is no MAP
        { type: 'fault', page: pg(0x7f0000000000), write: true, cls: 'anon' },
        { type: 'fault', page: pg(0x7f0000100000), write: false, cls: 'file' },
        { type: 'fault', page: pg(0x1001000), write: true, cls: 'anon' },
        { type: 'fault', page: pg(0x5000000), write: false, cls: 'unknown' },
        { type: 'zap', page: pg(0x7f0000000000), pages: 2 }, // MADV_DONTNEED
        { type: 'unmap', page: pg(0x7f0000000000), pages: 16 }, // mremap moved it
        { type: 'map', page: pg(0x7f0000200000), pages: 32 },
        { type: 'unmap', page: pg(0x7f0000200000), pages: 1 },
        { type: 'task', tid: C, process: C }, // fork: the child gets a copy of the mappings
        { type: 'map', page: pg(0x1000000), pages: 4 },
        { type: 'map', page: pg(0x7f0000201000), pages: 31 },
        { type: 'task', tid: P, process: P },
        { type: 'task', tid: T, process: P }, // a thread faults in its process's mm
        { type: 'fault', page: pg(0x7f0000201000), write: true, cls: 'anon' },
        { type: 'task', tid: V, process: V }, // the vfork child execs: a process of its own
        { type: 'task', tid: C, process: C },
        { type: 'fault', page: pg(0x1002000), write: true, cls: 'anon' },
        { type: 'exit', last: true },
        { type: 'task', tid: T, process: P },
        { type: 'exit', last: false },
        { type: 'task', tid: P, process: P },
        { type: 'exit', last: true }, // the vfork child left this mm when it exec'd
        { type: 'lost', count: 7 },
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
