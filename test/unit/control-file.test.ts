import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { controlEntry, execute, helpText, statsPairs } from '../../src/control';
import { OUTPUT_LIMIT, STATS_KEYS, type Stats, parseResult } from '../../src/uapi';
import { Scheduler } from '../../src/daemon/scheduler';
import { MemoryBudget } from '../../src/daemon/budget';
import { type Machine, check, createMachine } from '../../src/model';
import type { FileHandle } from '../../src/procfs/types';
import { ProcError } from '../../src/uapi';

const O_RDWR = 2;

/**
 * One open file as the kernel drives it: a file position that writes and reads advance,
 * and (like bash's `read`) optional seeks back.
 */
class Client {
  pos = 0;
  constructor(readonly h: FileHandle) {}

  /**
   * write(2): the byte count, or the ProcError it failed with — its own (a line that does not
   * parse, results past the unread limit), or the one its commands ended with, which over
   * FUSE the next close(2) reports.
   */
  write(text: string | Buffer): number | ProcError {
    const data = typeof text === 'string' ? Buffer.from(text) : text;
    try {
      const n = this.h.write!(data, this.pos);
      // Every batch here is short: it completes within its first slice, at once.
      if (typeof n !== 'number' || this.h.settled!() !== null) throw new Error('write did not complete at once');
      this.pos += n;
      return this.h.takeFailure!() ?? n;
    } catch (err) {
      if (err instanceof ProcError) return err;
      throw err;
    }
  }

  /** read(2) of at most `n` bytes at the file position. */
  read(n: number): Buffer {
    const b = this.h.read(this.pos, n);
    this.pos += b.length;
    return b;
  }

  /** Read to EOF in chunks of the given sizes (cycled). */
  readAll(...chunks: number[]): string {
    const sizes = chunks.length > 0 ? chunks : [4096];
    const parts: Buffer[] = [];
    for (let i = 0; ; i++) {
      const b = this.read(sizes[i % sizes.length]!);
      if (b.length === 0) return Buffer.concat(parts).toString();
      parts.push(b);
    }
  }

  lines(): string[] {
    return this.readAll().split('\n').slice(0, -1);
  }
}

function setup(opts: Parameters<typeof createMachine>[0] = { clock: 'manual' }, wall = (): number => 0) {
  const machine = createMachine(opts);
  // Slices without end: every write here completes at once (the slicing has its own tests).
  const entry = controlEntry(machine, () => machine.syncWall(wall()), new Scheduler(Number.POSITIVE_INFINITY));
  return { machine, entry, open: () => new Client(entry.open(O_RDWR)) };
}

/** Everything a command could change, for "nothing ran" comparisons. */
function state(m: Machine): unknown {
  return { stats: statsPairs(m), raw: [...m.raw.keys()], bte: m.zeroDrivers.map((d) => JSON.stringify(d)), check: check(m) };
}

/** A `stats` line as numbers, by the result table (its keys must be STATS_KEYS, in order). */
function statsOf(line: string): Stats {
  assert.match(line, /^ok /);
  const s = parseResult('stats', line.slice(3));
  assert.deepEqual(Object.keys(s), [...STATS_KEYS]);
  return s;
}

describe('control file: the entry and help', () => {
  it('when the entry is made then it is /control, mode 0600, writable', () => {
    const { entry } = setup();
    assert.equal(entry.path, '/control');
    assert.equal(entry.mode, 0o600);
    assert.equal(entry.writable, true);
  });

  it('when a fresh handle is read without a write then it shows the help text, then EOF', () => {
    const c = setup().open();
    const text = c.readAll();
    assert.equal(text, helpText());
    assert.match(text, /^kscrubfs control: /);
    for (const usage of [
      'tick <duration>', 'alloc order=<n> [node=<n>] [count=<n>] [zero]', 'free handles=<h1,h2,...>', 'drain', 'bte fail=<n>', 'check', 'stats',
      'mm new [keep]', 'mm list', 'mm exit mm=<id>', 'mmap mm=<id> size=<size> [addr=0x<hex>] [hugetlb=<2M|1G>] [random] [thp]', 'munmap mm=<id> addr=0x<hex> size=<size>',
      'touch mm=<id> addr=0x<hex> size=<size> [threads=<n>] [lines=<n>] [stride=<size>] [read|write] [thp]', 'fault mm=<id> addr=0x<hex> [read|write]',
      'faults mm=<id> at=<task><r|w><hex>,... [cpus=<c0,c1,...>] [lines=<n>]',
    ]) {
      assert.ok(text.includes(`\n  ${usage}\n`), usage);
    }
    assert.ok(!text.includes('Not available yet'));
    assert.equal(c.read(4096).length, 0);
  });

  it('when the help is read in 1, 5 and 17-byte chunks then the bytes are the same', () => {
    assert.equal(setup().open().readAll(1, 5, 17), helpText());
  });

  it('when a handle writes before reading then it never sees the help', () => {
    const c = setup().open();
    assert.equal(c.write('check\n'), 6);
    assert.deepEqual(c.lines(), ['ok']);
    assert.equal(c.read(100).length, 0);
  });

  it('when a handle writes after reading part of the help then the rest of the help is dropped', () => {
    const c = setup().open();
    assert.equal(c.read(10).toString(), helpText().slice(0, 10));
    c.write('check\n');
    assert.deepEqual(c.lines(), ['ok']);
  });

  it('when a write holds only comments and blank lines then it succeeds with nothing to read (no help either)', () => {
    const { machine, open } = setup();
    const c = open();
    const before = state(machine);
    const comments = '# nothing\n\n   \n\t# still nothing\n';
    assert.equal(c.write(comments), comments.length);
    assert.equal(c.read(4096).length, 0);
    assert.equal(c.write(Buffer.alloc(0)), 0);
    assert.equal(c.read(4096).length, 0);
    assert.deepEqual(state(machine), before);
  });
});

describe('control file: batches', () => {
  it('when every line is good then each command gives one line, in order, and the write returns its length', () => {
    const c = setup().open();
    const batch = '# shape memory\nalloc order=10 count=2\n\nfree handles=1\ntick 250ms\ncheck\nfree handles=2'; // last line unterminated
    assert.equal(c.write(batch), Buffer.byteLength(batch));
    assert.deepEqual(c.lines(), ['ok handles=1,2', 'ok freed_pages=1024', 'ok now_ns=250000000', 'ok'], 'the unterminated line waits for its newline');
    assert.equal(c.write('\n'), 1);
    assert.deepEqual(c.lines(), ['ok freed_pages=1024']);
  });

  it('when one line does not parse then nothing runs, every command gets an err line and the write fails EINVAL', () => {
    const { machine, open } = setup();
    const c = open();
    const before = state(machine);
    const r = c.write('alloc order=3 count=4\n# comment\ntick 1s\nalloc ordr=1\nbte fail=2\nmm new\ncheck\n');
    assert.ok(r instanceof ProcError);
    assert.equal(r.errno, 'EINVAL');
    assert.equal(r.message, 'control: line 4: alloc: unknown key "ordr" (keys: order, node, count; flags: zero)');
    assert.equal(c.pos, 0, 'a failed write does not move the file position');
    assert.deepEqual(c.lines(), [
      'err skipped: line 4 of this write was rejected',
      'err skipped: line 4 of this write was rejected',
      'err alloc: unknown key "ordr" (keys: order, node, count; flags: zero)',
      'err skipped: line 4 of this write was rejected',
      'err skipped: line 4 of this write was rejected',
      'err skipped: line 4 of this write was rejected',
    ]);
    assert.deepEqual(state(machine), before);
  });

  it('when a line is not UTF-8 or too long then the write is rejected whole with that line quoted by number', () => {
    const { machine, open } = setup();
    const c = open();
    const before = state(machine);
    const data = Buffer.concat([Buffer.from('tick 1s\n'), Buffer.from([0x73, 0x74, 0x61, 0x74, 0x73, 0xff, 0x0a]), Buffer.from(`check ${'#'.repeat(4095)}\nstats\n`)]);
    const r = c.write(data);
    assert.ok(r instanceof ProcError && r.errno === 'EINVAL');
    assert.deepEqual(c.lines(), [
      'err skipped: line 2 of this write was rejected',
      'err line is not valid UTF-8',
      'err line is 4101 bytes long (at most 4096)',
      'err skipped: line 2 of this write was rejected',
    ]);
    assert.deepEqual(state(machine), before);
  });

  it('when a command fails as it runs then the ones before it stay done, it reads err, the rest are skipped, and the write fails EINVAL', () => {
    const { machine, open } = setup();
    const c = open();
    const r = c.write('alloc order=2 count=2\nfree handles=1,7\ntick 5s\ncheck\n');
    assert.ok(r instanceof ProcError && r.errno === 'EINVAL');
    assert.equal(r.message, 'control: line 2: free: no block has handle 7');
    assert.deepEqual(c.lines(), [
      'ok handles=1,2',
      'err free: no block has handle 7',
      'err skipped: line 2 of this write failed',
      'err skipped: line 2 of this write failed',
    ]);
    assert.deepEqual([...machine.raw.keys()], [1, 2], 'the failed free freed nothing');
    assert.equal(machine.now, 0, 'the tick after it never ran');
    assert.equal(check(machine), null);
  });

  it('when an alloc runs out of memory then it keeps nothing (all or nothing) and the machine checks clean', () => {
    const { machine, open } = setup({ clock: 'manual', preset: 'x86_64', mem: '64M' });
    const c = open();
    const free = machine.freePagesTotal();
    const r = c.write('alloc order=10 count=1000\n');
    assert.ok(r instanceof ProcError && r.errno === 'ENOMEM', `out of memory is ENOMEM, as a kernel's allocation failure: ${String(r)}`);
    assert.match(c.lines()[0]!, /^err alloc: out of memory after \d+ of 1000 order-10 blocks \(nothing kept\)$/);
    assert.equal(machine.raw.size, 0);
    machine.drainPcp();
    assert.equal(machine.freePagesTotal(), free);
    assert.equal(check(machine), null);
  });

  it('when the model refuses a value the grammar allowed then the err line names the verb', () => {
    const c = setup({ maxOrder: 11 }).open();
    assert.ok(c.write('alloc order=11\n') instanceof ProcError);
    assert.deepEqual(c.lines(), ['err alloc: order=11 is out of range 0..10']);
    assert.ok(c.write('alloc order=1 node=4\n') instanceof ProcError);
    assert.deepEqual(c.lines(), ['err alloc: node=4 is out of range 0..3']);
    assert.ok(c.write('free handles=1,1\n') instanceof ProcError);
    assert.deepEqual(c.lines(), ['err free: no block has handle 1']);
  });

  it('when tick is sent to a live clock then it reads err and the write fails EINVAL', () => {
    const c = setup({ clock: 'live' }).open();
    const r = c.write('tick 1s\n');
    assert.ok(r instanceof ProcError && r.errno === 'EINVAL');
    assert.deepEqual(c.lines(), ['err tick: the clock is live (mount with --clock manual to step it)']);
  });

  it('when the clock is live then each batch first catches virtual time up with the wall', () => {
    let wall = 1_000;
    const { machine, open } = setup({ clock: 'live' }, () => wall);
    const c = open();
    c.write('stats\n');
    assert.equal(statsOf(c.lines()[0]!).now_ns, 0);
    wall += 2_500;
    c.write('stats\n');
    assert.equal(statsOf(c.lines()[0]!).now_ns, 2.5e9);
    assert.equal(machine.now, 2.5e9);
    wall += 1_000;
    assert.ok(c.write('bogus\n') instanceof ProcError);
    assert.equal(machine.now, 2.5e9, 'a rejected batch does not touch the machine');
  });

  it('when check finds a broken invariant then it reads err check: … and the write fails EIO', () => {
    const { machine, open } = setup();
    const c = open();
    machine.zones[0]!['freePages'] += 1; // corrupt on purpose: only the zone may write it
    const r = c.write('check\nstats\n');
    assert.ok(r instanceof ProcError && r.errno === 'EIO');
    const lines = c.lines();
    assert.match(lines[0]!, /^err check: zone DMA \(node 0\): free_pages is \d+ but the free blocks hold \d+$/);
    assert.equal(lines[1], 'err skipped: line 1 of this write failed');
  });

  it('when the model throws something that is not a ModelError then the line says internal error on one line and the write fails EIO', () => {
    const { machine, open } = setup();
    const c = open();
    machine.drainPcp = () => { throw new Error('boom\nsecond line'); };
    const r = c.write('drain\n');
    assert.ok(r instanceof ProcError && r.errno === 'EIO');
    assert.deepEqual(c.lines(), ['err drain: internal error: boom second line']);
  });

  it('when bte fail=N is sent then the next N transfers fall back to the CPU', () => {
    const { machine, open } = setup();
    const c = open();
    // The BTE takes 60,000 B … 8 MiB: the burst reaches such blocks after the sections (CPU).
    machine.setSysctl('scrub_start', 9);
    assert.equal(c.write('bte fail=3\ntick 2s\nstats\n'), 25);
    const lines = c.lines();
    assert.equal(lines[0], 'ok');
    assert.equal(statsOf(lines[2]!).kscrubd_bte_fallbacks, 3);
  });
});

describe('control file: reading results', () => {
  const BATCH = 'alloc order=0 count=5\nstats\nfree handles=1,2,3,4,5\ncheck\n';

  function expected(): string {
    const c = setup().open();
    c.write(BATCH);
    return c.readAll();
  }

  for (const sizes of [[1], [3], [7, 2], [13, 1, 64], [65536]]) {
    it(`when results are read in chunks of ${sizes.join(', ')} bytes then they arrive whole and in order`, () => {
      const c = setup().open();
      c.write(BATCH);
      assert.equal(c.readAll(...sizes), expected());
    });
  }

  it('when every read is at offset 0 (pread) then the stream still advances and ends, it never repeats', () => {
    const { entry } = setup();
    const h = entry.open(O_RDWR);
    h.write!(Buffer.from(BATCH), 0);
    const parts: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const b = h.read(0, 5);
      if (b.length === 0) break;
      parts.push(b);
    }
    assert.equal(Buffer.concat(parts).toString(), expected());
  });

  it("when a reader seeks back inside its last read (bash's read, head -n1) then those bytes are read again", () => {
    const c = setup().open();
    c.write('check\ntick 1s\ncheck\n');
    // bash: read 4096 bytes, use the first line, lseek back over the rest.
    const first = c.read(4096).toString();
    assert.equal(first, 'ok\nok now_ns=1000000000\nok\n');
    c.pos -= first.length - 3;
    const second = c.read(4096).toString();
    assert.equal(second, 'ok now_ns=1000000000\nok\n');
    c.pos -= 3;
    assert.equal(c.read(4096).toString(), 'ok\n');
    assert.equal(c.read(4096).length, 0);
  });

  it('when a write follows a seek back then the unread results come before the new ones', () => {
    const c = setup().open();
    c.write('check\nstats\n');
    const got = c.read(4096).toString();
    c.pos -= got.length - 3; // used "ok\n" only
    c.write('tick 2s\n');
    const lines = c.lines();
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^ok now_ns=0 /);
    assert.equal(lines[1], 'ok now_ns=2000000000');
  });

  it('when an offset is before the last read (not inside it) or ahead of the position then it is ignored', () => {
    const c = setup().open();
    c.write('check\ncheck\ncheck\n');
    assert.equal(c.read(3).toString(), 'ok\n');
    c.pos = 0; // seek to the very start: the last read began there; not a read-ahead rewind
    assert.equal(c.read(3).toString(), 'ok\n');
    c.pos += 1000;
    assert.equal(c.read(3).toString(), 'ok\n');
    assert.equal(c.read(3).length, 0);
  });

  it('when two handles are open then each reads only its own results', () => {
    const { open } = setup();
    const a = open();
    const b = open();
    a.write('alloc order=1\n');
    b.write('alloc order=2\nalloc order=3\n');
    a.write('check\n');
    assert.deepEqual(a.lines(), ['ok handles=1', 'ok']);
    assert.deepEqual(b.lines(), ['ok handles=2', 'ok handles=3']);
    const fresh = open();
    assert.equal(fresh.readAll(), helpText(), 'a third open sees neither, only the help');
  });

  it('when a handle is released then its queue is gone', () => {
    const c = setup().open();
    c.write('check\n');
    c.h.release!();
    assert.equal(c.read(100).length, 0);
  });

  it(`when the results of a write would pass ${OUTPUT_LIMIT} unread bytes then it fails EBUSY without running, and works again once read`, () => {
    const { machine, open } = setup();
    const c = open();
    // Writes of 100 stats lines each until one is refused: its results might not fit.
    let writes = 0;
    let before = state(machine);
    let r: number | ProcError;
    while ((r = c.write('stats\n'.repeat(100))) === 600) {
      writes++;
      before = state(machine);
    }
    assert.ok(r instanceof ProcError && r.errno === 'EBUSY', String(r));
    assert.ok(writes >= 3, `${writes} writes of 100 stats fitted`);
    assert.deepEqual(state(machine), before, 'the refused write ran nothing');
    const lines = c.lines();
    assert.equal(lines.length, writes * 100 + 1, "the results, then the refused write's one err line");
    assert.match(lines.at(-1)!, /^err control: the results of this write could take \d+ bytes, more than the \d+ left/);
    assert.equal(c.write('tick 1s\n'), 8);
    assert.deepEqual(c.lines(), ['ok now_ns=1000000000']);
  });

  it('when one write holds 20,000 stats lines then it fails EBUSY before anything runs and queues one line, not 10 MB', () => {
    const { machine, open } = setup();
    const c = open();
    const before = state(machine);
    const r = c.write('stats\n'.repeat(20_000));
    assert.ok(r instanceof ProcError && r.errno === 'EBUSY', String(r));
    assert.deepEqual(state(machine), before);
    const lines = c.lines();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^err control: the results of this write could take \d+ bytes, more than the 1048576 left/);
  });

  it('when one alloc alone prints more than 1 MiB of handles on an empty queue then it runs, and the next write waits until they are read', () => {
    const { open } = setup({ clock: 'manual', preset: 'x86_64', mem: '4G' });
    const c = open();
    assert.equal(c.write('alloc order=0 count=200000\n'), 27);
    const r = c.write('stats\n');
    assert.ok(r instanceof ProcError && r.errno === 'EBUSY');
    assert.match(r.message, /bytes of results are unread/);
    const [line] = c.lines();
    assert.match(line!, /^ok handles=1,2,3,.*,200000$/);
  });

});

describe('control file: execute and stats', () => {
  it('when stats runs then it is one ok line of integer counters in a fixed order', () => {
    const { machine } = setup();
    const s = statsOf(execute(machine, { verb: 'stats' })); // checks the keys and their order
    assert.equal(s.nr_free_pages, machine.freePagesTotal());
    assert.deepEqual([s.page_size, s.max_order, s.nodes, s.cpus], [16384, 18, 4, 8], 'the altix preset');
  });

  it('when a process is made, mapped, touched, unmapped and ended then each line is the documented one and nothing leaks', () => {
    const c = setup().open();
    const batch = 'mm new\nmmap mm=1 size=4M\n';
    assert.equal(c.write(batch), batch.length);
    const [mm, map] = c.lines();
    assert.equal(mm, 'ok mm=1');
    const m = /^ok addr=(0x[0-9a-f]+) size=4194304$/.exec(map!);
    assert.ok(m, map);
    const addr = m[1]!;
    c.write(`touch mm=1 addr=${addr} size=4M threads=2 lines=2\nfault mm=1 addr=${addr} read\ncheck\nstats\n`);
    const [touched, faulted, checked, stats] = c.lines();
    const t = /^ok pages=(\d+) faults=(\d+) prezeroed=(\d+) hot_zeroed=(\d+) prefaulted=(\d+) oom=(\d+) user_ns=(\d+) sys_ns=(\d+) wall_ns=(\d+)$/.exec(touched!);
    assert.ok(t, touched);
    assert.equal(t[1], '256', '4 MiB of 16 KiB pages');
    assert.match(faulted!, /^ok pages=1 faults=0 /, 'the page is mapped already');
    assert.equal(checked, 'ok');
    assert.equal(statsOf(stats!).mms, 1);
    c.write(`munmap mm=1 addr=${addr} size=1M\nmm exit mm=1\ncheck\n`);
    const [unmapped, exited, ok] = c.lines();
    assert.match(unmapped!, /^ok freed_pages=64 sys_ns=\d+ wall_ns=\d+$/);
    assert.match(exited!, /^ok freed_pages=192 sys_ns=\d+ wall_ns=\d+$/);
    assert.equal(ok, 'ok');
    const r = c.write('mm exit mm=1\n');
    assert.ok(r instanceof ProcError && r.errno === 'EINVAL');
    assert.deepEqual(c.lines(), ['err mm exit: no process has mm=1']);
  });

  it('when the model refuses a process command then the err line quotes it and the batch stops there', () => {
    const c = setup().open();
    const r = c.write('mm new\nmunmap mm=1 addr=0x123 size=16K\nmm exit mm=1\n');
    assert.ok(r instanceof ProcError && r.errno === 'EINVAL');
    assert.deepEqual(c.lines(), ['ok mm=1', 'err munmap: addr=0x123 is not page aligned (page size 16384)', 'err skipped: line 2 of this write failed']);
  });

  it('when the process verbs run then each prints the documented line with what the model returned', () => {
    // The same calls on a twin machine (manual clock) give the numbers to expect.
    const { open } = setup();
    const twin = createMachine({ clock: 'manual' });
    const c = open();
    const line = (r: { pages: number; faults: number; prezeroed: number; hotZeroed: number; prefaulted: number; oom: number; userNs: number; sysNs: number; wallNs: number }): string =>
      `ok pages=${r.pages} faults=${r.faults} prezeroed=${r.prezeroed} hot_zeroed=${r.hotZeroed} prefaulted=${r.prefaulted} oom=${r.oom} `
      + `user_ns=${Math.round(r.userNs)} sys_ns=${Math.round(r.sysNs)} wall_ns=${Math.round(r.wallNs)}`;
    const id = twin.procs.create().id;
    const map = twin.procs.mmap(id, 1 << 20, true);
    const addr = `0x${map.addr.toString(16)}`;
    const touched = twin.procs.touch(id, { addr: map.addr, size: 1 << 20 });
    const faulted = twin.procs.fault(id, map.addr + (1 << 20) - 16384, false);
    const unmapped = twin.procs.munmapTimed(id, map.addr, 262144);
    const exited = twin.procs.exitTimed(id);
    const zap = (z: typeof exited): string => `ok freed_pages=${z.freed} sys_ns=${Math.round(z.sysNs)} wall_ns=${Math.round(z.wallNs)}`;
    for (const batch of [
      `mm new\nmmap mm=1 size=1M random\ntouch mm=1 addr=${addr} size=1M\n`,
      `fault mm=1 addr=0x${(map.addr + (1 << 20) - 16384).toString(16)} read\nmunmap mm=1 addr=${addr} size=256K\nmm exit mm=1\n`,
    ]) assert.equal(c.write(batch), batch.length);
    assert.deepEqual(c.lines(), [
      'ok mm=1',
      `ok addr=${addr} size=1048576`,
      line(touched),
      line(faulted),
      zap(unmapped),
      zap(exited),
    ]);
    assert.equal(touched.pages, 64);
    assert.equal(unmapped.freed, 16);
    assert.ok(exited.sysNs > 0 && exited.wallNs >= exited.sysNs, 'an exit costs CPU 0 time, and the clock moves on by it');
  });
});

describe('control file: a manual-clock scenario', () => {
  it('when echo-style writes shape memory and kscrubd zeroes it then every line is the documented one', () => {
    const { machine, open } = setup({ clock: 'manual' });
    const c = open();
    const echo = (line: string): string[] => {
      const r = c.write(`${line}\n`);
      assert.equal(r, Buffer.byteLength(line) + 1, `${line}: ${String(r)}`);
      return c.lines();
    };

    assert.deepEqual(echo('check'), ['ok']);
    const s0 = statsOf(echo('stats')[0]!);
    assert.equal(s0.now_ns, 0);
    assert.equal(s0.nr_zero_pages, 0);
    assert.equal(s0.kscrubd_awake, 0);

    assert.deepEqual(echo('alloc order=10 count=4'), ['ok handles=1,2,3,4']);
    assert.deepEqual(echo('alloc order=0 zero count=3 node=1'), ['ok handles=5,6,7']);
    const s1 = statsOf(echo('stats')[0]!);
    assert.equal(s1.raw_pages, 4 * 1024 + 3);
    assert.equal(s1.pgalloc_hot_zeroed, 3, 'nothing was prezeroed yet');
    assert.equal(s1.nr_free_pages, s0.nr_free_pages - s1.raw_pages - s1.nr_pcp_pages);

    // The sysctl file's job; here straight on the machine. Waking kscrubd needs scrub_start < MAX_ORDER.
    machine.setSysctl('scrub_start', 9);
    assert.deepEqual(echo('free handles=1,2'), ['ok freed_pages=2048']);
    assert.deepEqual(echo('tick 1s'), ['ok now_ns=1000000000']); // its first block is 512 MiB: 0.4 s
    const s2 = statsOf(echo('stats')[0]!);
    assert.ok(s2.kscrubd_pages > 0, 'kscrubd zeroed something');
    assert.equal(s2.nr_zero_pages + s2.nr_scrub_pages <= s2.nr_free_pages, true);
    assert.deepEqual(echo('check'), ['ok']);

    assert.deepEqual(echo('tick 60s'), ['ok now_ns=61000000000']);
    const s3 = statsOf(echo('stats')[0]!);
    assert.equal(s3.kscrubd_awake, 0, 'the burst ended');
    assert.ok(s3.nr_zero_pages > s2.nr_zero_pages);

    assert.deepEqual(echo('alloc order=0 zero'), ['ok handles=8']);
    const s4 = statsOf(echo('stats')[0]!);
    assert.equal(s4.pgalloc_prezeroed, s3.pgalloc_prezeroed + 1, 'now a zeroed page was waiting');

    assert.deepEqual(echo('free handles=3,4,5,6,7,8'), ['ok freed_pages=2052']);
    assert.match(echo('drain')[0]!, /^ok drained_pages=\d+$/);
    assert.deepEqual(echo('check'), ['ok']);
    const s5 = statsOf(echo('stats')[0]!);
    assert.equal(s5.raw_pages, 0);
    assert.equal(s5.nr_pcp_pages, 0);
    assert.equal(check(machine), null);
  });
});

describe('control file: the stream of writes', () => {
  it('when a line is split between two writes at any byte then it runs once, whole, when its newline arrives', () => {
    const text = 'alloc order=10 count=3\n';
    for (let cut = 1; cut < text.length; cut++) {
      const { machine, open } = setup();
      const c = open();
      assert.equal(c.write(text.slice(0, cut)), cut);
      assert.equal(machine.raw.pages, 0, `nothing ran after the first ${cut} bytes`);
      assert.equal(c.read(100).length, 0);
      assert.equal(c.write(text.slice(cut)), text.length - cut);
      assert.deepEqual(c.lines(), ['ok handles=1,2,3'], `cut at ${cut}`);
      assert.equal(machine.raw.pages, 3 * 1024);
    }
  });

  it('when 128 KiB blocks of a command file cut lines apart then the results are those of the whole file', () => {
    const cmds = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? 'alloc order=2 count=3' : i % 3 === 1 ? 'tick 1ms' : 'check')).join('\n') + '\n';
    const whole = setup();
    const w = whole.open();
    const results: string[] = [];
    for (let i = 0; i < cmds.length; i += 20_000) {
      // Each piece a batch of whole lines (so the same commands run in the same order).
      const end = cmds.lastIndexOf('\n', Math.min(cmds.length, i + 20_000) - 1) + 1;
      w.write(cmds.slice(i, end));
      results.push(...w.lines());
      i = end - 20_000;
    }
    const split = setup();
    const s = split.open();
    const got: string[] = [];
    for (let i = 0; i < cmds.length; i += 7777) {
      assert.equal(s.write(cmds.slice(i, i + 7777)), Math.min(7777, cmds.length - i));
      got.push(...s.lines());
    }
    assert.equal(got.length, 3000);
    assert.deepEqual(got, results);
    assert.deepEqual(state(split.machine), state(whole.machine));
  });

  it('when a pwrite lands inside the bytes the last read handed out then those bytes are not read again', () => {
    const { entry } = setup();
    const h = entry.open(O_RDWR);
    h.write!(Buffer.from('alloc order=1\nalloc order=2\n'), 0);
    const first = h.read(0, 4096).toString();
    assert.equal(first, 'ok handles=1\nok handles=2\n');
    // pwrite(fd, …, 5): positional; the file position stays at the end of the read.
    h.write!(Buffer.from('check\n'), 5);
    assert.equal(h.read(first.length, 4096).toString(), 'ok\n');
    assert.equal(h.read(first.length + 3, 4096).length, 0);
  });

  it("when bash's read seeks back over its read-ahead and echo writes there then the unread line comes before the new result", () => {
    const { entry } = setup();
    const h = entry.open(O_RDWR);
    h.write!(Buffer.from('alloc order=1\nalloc order=2\n'), 0);
    const got = h.read(28, 4096).toString(); // bash reads a block …
    assert.equal(got, 'ok handles=1\nok handles=2\n');
    const pos = 28 + 'ok handles=1\n'.length; // … keeps one line and lseeks back to after it
    h.write!(Buffer.from('check\n'), pos);
    assert.equal(h.read(pos + 6, 4096).toString(), 'ok handles=2\nok\n');
  });

  it('when a line grows past the line limit over several writes then it is refused whole when its newline comes, and the stream goes on', () => {
    const { machine, open } = setup();
    const c = open();
    for (let i = 0; i < 10; i++) assert.equal(c.write('#'.repeat(1000)), 1000);
    const r = c.write('\nalloc order=1\n');
    assert.ok(r instanceof ProcError && r.errno === 'EINVAL');
    const lines = c.lines();
    assert.match(lines[0]!, /^err line is \d+ bytes long \(at most 4096\)$/);
    assert.equal(machine.raw.pages, 0);
    assert.equal(c.write('alloc order=1\n'), 14);
    assert.deepEqual(c.lines(), ['ok handles=1']);
  });
});

describe('control file: processes live as long as the file that made them', () => {
  it('when the control file that made an mm is closed then the mm exits and its memory is free again; a kept one lives on', () => {
    const { machine, entry, open } = setup();
    const free0 = machine.freePagesTotal();
    const a = open();
    const b = open();
    a.write('mm new\nmmap mm=1 size=4M\n');
    const [, mapped] = a.lines();
    const addr = /addr=(0x[0-9a-f]+)/.exec(mapped!)![1];
    a.write(`touch mm=1 addr=${addr} size=4M\nmm new keep\nmm list\n`);
    const lines = a.lines();
    assert.equal(lines[1], 'ok mm=2');
    assert.equal(lines[2], 'ok mms=1,2 kept=2');
    assert.ok(machine.freePagesTotal() < free0 - 200);
    b.write('mm list\n');
    assert.deepEqual(b.lines(), ['ok mms=1,2 kept=2'], 'another file sees mm 1 as tied to its maker');
    a.h.release!();
    b.write('mm list\n');
    assert.deepEqual(b.lines(), ['ok mms=2 kept=2']);
    machine.drainPcp();
    assert.equal(machine.freePagesTotal(), free0, 'every page of mm 1 came back');
    assert.equal(check(machine), null);
    void entry;
  });
});

describe('control file: errnos as a kernel gives them', () => {
  it('when the model refuses an argument then the write fails EINVAL; out of memory is ENOMEM', () => {
    const c = setup({ clock: 'manual', preset: 'x86_64', mem: '64M' }).open();
    const bad = c.write('free handles=99\n');
    assert.ok(bad instanceof ProcError && bad.errno === 'EINVAL', `a bad handle is EINVAL: ${String(bad)}`);
    assert.match(c.lines()[0]!, /^err free: /);
    const nomem = c.write('alloc order=3 count=100000\n');
    assert.ok(nomem instanceof ProcError && nomem.errno === 'ENOMEM', String(nomem));
  });
});

describe('control file: the memory budget', () => {
  it('when a touch could pass the budget then it is refused with ENOMEM before anything runs, naming the budget', () => {
    const machine = createMachine({ clock: 'manual', preset: 'x86_64', mem: '64G' });
    // The daemon "holds" 100 MB of a 200 MB budget.
    const budget = new MemoryBudget(200e6, () => 100e6);
    const c = new Client(controlEntry(machine, () => undefined, new Scheduler(Number.POSITIVE_INFINITY), budget).open(O_RDWR));
    c.write('mm new\nmmap mm=1 size=32G\n');
    const addr = /addr=(0x[0-9a-f]+)/.exec(c.lines()[1]!)![1];
    const before = state(machine);
    const r = c.write(`touch mm=1 addr=${addr} size=32G\n`);
    assert.ok(r instanceof ProcError && r.errno === 'ENOMEM', String(r));
    assert.deepEqual(state(machine), before, 'nothing ran');
    const [line] = c.lines();
    assert.match(line!, /^err touch: could need [\d.]+ ?[KMGT]i?B? more of the daemon's memory; it holds .* of its budget .* \(mount --max-memory\); nothing ran$/);
    assert.equal(c.write(`touch mm=1 addr=${addr} size=16M\n`), `touch mm=1 addr=${addr} size=16M\n`.length, 'a touch that fits runs');
    assert.match(c.lines()[0]!, /^ok pages=4096 /);
  });
});
