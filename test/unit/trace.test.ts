import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { execute, parseCommand } from '../../src/control';
import { check } from '../../src/model';
import { readTrace, TraceWriter } from '../../src/workload/trace-format';
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
