import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { describe, test } from 'node:test';
import { createMachine, type Machine } from '../../src/model';
import { FILES, STAT_REUSE_MS, buildProcTree, filesFor, present, type FileEntry } from '../../src/procfs';
import { ProcError } from '../../src/uapi';

const { O_RDONLY, O_WRONLY, O_RDWR, O_TRUNC } = constants;

const READ_ONLY = ['/buddyinfo', '/meminfo', '/vmstat', '/zoneinfo', '/stat', '/loadavg', '/uptime'];
const SYSCTLS = ['/sys/vm/scrub_start', '/sys/vm/scrub_stop', '/sys/vm/scrub_load', '/sys/vm/max_prealloc_order'];
/** A modern kernel's watermark sysctls (6.18 presets only). */
const WMARK = ['min_free_kbytes', 'watermark_boost_factor', 'watermark_scale_factor'];
/** The files of the zeroed-page pool and of the idle zeroer, each on a machine booted with it. */
const PREZERO = ['/sys/kernel/mm/prezero/enabled', '/sys/kernel/mm/prezero/min_order', '/sys/kernel/mm/prezero/max_percent', '/sys/kernel/mm/prezero/batch_pages', '/sys/kernel/mm/prezero/sleep_msecs'];
const IDLEZERO = ['/sys/vm/idlezero_enable', '/sys/vm/idlezero_maxrun'];

const control: FileEntry = {
  path: '/control',
  mode: 0o600,
  writable: true,
  open: () => ({ read: () => Buffer.alloc(0), write: (data) => data.length }),
};

function manual(): Machine {
  return createMachine({ preset: 'x86_64', clock: 'manual' });
}

/** A machine of today on one node, booted with `policy`. */
function today(policy: string): Machine {
  return createMachine({ preset: 'epyc', nodes: 1, cpus: 4, mem: '4G', clock: 'manual', zeroingPolicy: policy });
}

describe('the tree', () => {
  test('when built with a control entry then files and directories are exactly the FILES table\'s', () => {
    const m = today('kscrubd,khzerod,zeroable_hugepages');
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined, control });
    assert.deepEqual([...tree.files.keys()], filesFor(m).map((f) => f.path));
    // FILES, then the hugetlb files of this machine's sizes and nodes (procfs/hugetlb.ts).
    const hugetlb = [...tree.files.keys()].filter((p) => p.includes('hugepages'));
    assert.deepEqual([...tree.files.keys()].filter((p) => !p.includes('hugepages')).sort(), [...READ_ONLY, '/control', ...SYSCTLS, ...WMARK.map((n) => `/sys/vm/${n}`)].sort());
    assert.deepEqual(hugetlb.filter((p) => p.startsWith('/sys/vm/')), ['/sys/vm/nr_hugepages', '/sys/vm/nr_overcommit_hugepages']);
    assert.equal(hugetlb.length, 2 * 7 + 2 * 4 + 2);
    const dirs = Object.fromEntries(tree.dirs);
    assert.deepEqual(dirs['/'], ['buddyinfo', 'meminfo', 'vmstat', 'zoneinfo', 'stat', 'loadavg', 'uptime', 'control', 'sys']);
    assert.deepEqual(dirs['/sys'], ['vm', 'kernel', 'devices']);
    assert.deepEqual(dirs['/sys/vm'], ['scrub_start', 'scrub_stop', 'scrub_load', 'max_prealloc_order', ...WMARK, 'nr_hugepages', 'nr_overcommit_hugepages']);
    assert.deepEqual(dirs['/sys/kernel/mm'], ['hugepages']);
    assert.deepEqual(dirs['/sys/kernel/mm/hugepages'], ['hugepages-2048kB', 'hugepages-1048576kB']);
    assert.deepEqual(dirs['/sys/devices/system/node'], ['node0']);
    assert.equal(tree.files.get('/control'), control);
  });

  test('when a 2.6.11 machine is built with the default policy then it has 2.6.11\'s files and kscrubd\'s only', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined, control });
    const dirs = Object.fromEntries(tree.dirs);
    assert.deepEqual(dirs['/sys'], ['vm']);
    assert.deepEqual(dirs['/sys/vm'], ['scrub_start', 'scrub_stop', 'scrub_load', 'max_prealloc_order', 'nr_hugepages']);
  });

  test('when a machine boots with the pool or the idle zeroer then it has that policy\'s files and not kscrubd\'s', () => {
    const pool = buildProcTree(today('prezero'), { buddyinfo: 'v6', syncClock: () => undefined });
    assert.deepEqual(pool.dirs.get('/sys/kernel/mm/prezero'), ['enabled', 'min_order', 'max_percent', 'batch_pages', 'sleep_msecs']);
    assert.deepEqual(pool.dirs.get('/sys/vm'), ['max_prealloc_order', ...WMARK, 'nr_hugepages', 'nr_overcommit_hugepages']);
    const idle = buildProcTree(today('idlezero'), { buddyinfo: 'v6', syncClock: () => undefined });
    assert.deepEqual(idle.dirs.get('/sys/vm'), ['max_prealloc_order', ...WMARK, 'idlezero_enable', 'idlezero_maxrun', 'nr_hugepages', 'nr_overcommit_hugepages']);
    assert.deepEqual(idle.dirs.get('/sys/kernel/mm'), ['hugepages']);
  });

  test('when built without a control entry then there is no /control anywhere', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
    assert.equal(tree.files.has('/control'), false);
    assert.ok(!tree.dirs.get('/')!.includes('control'));
  });

  test('when a control entry has another path or mode then the build refuses it', () => {
    const m = manual();
    assert.throws(() => buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined, control: { ...control, mode: 0o666 } }), /mode 0600/);
    assert.throws(() => buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined, control: { ...control, path: '/ctl' } }), /\/control/);
  });

  test('when entries are listed then modes and writability follow the table', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
    for (const p of READ_ONLY) assert.deepEqual([tree.files.get(p)!.mode, tree.files.get(p)!.writable], [0o444, false], p);
    for (const p of SYSCTLS) assert.deepEqual([tree.files.get(p)!.mode, tree.files.get(p)!.writable], [0o644, true], p);
    for (const [policy, files] of [['prezero', PREZERO], ['idlezero', IDLEZERO]] as const) {
      const t = buildProcTree(today(policy), { buddyinfo: 'v6', syncClock: () => undefined });
      for (const p of files) assert.deepEqual([t.files.get(p)!.mode, t.files.get(p)!.writable], [0o644, true], p);
    }
  });
});

describe('opening files', () => {
  for (const flags of [O_WRONLY, O_RDWR, O_WRONLY | O_TRUNC]) {
    test(`when a 0444 file is opened with flags 0${flags.toString(8)} then EACCES`, () => {
      const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
      for (const p of READ_ONLY) {
        assert.throws(() => tree.files.get(p)!.open(flags), (err: unknown) => err instanceof ProcError && err.errno === 'EACCES', p);
      }
    });
  }

  test('when a read-only file is opened then its handle has no write', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
    assert.equal(tree.files.get('/meminfo')!.open(O_RDONLY).write, undefined);
  });

  test('when the model changes after the first read then reads past 0 still serve the snapshot that read took', () => {
    const m = manual();
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined });
    const handle = tree.files.get('/meminfo')!.open(O_RDONLY);
    const atFirst = tree.files.get('/meminfo')!.open(O_RDONLY).read(0, 1 << 20).toString();
    const first = handle.read(0, 40).toString();
    m.raw.alloc(5, false, 0, 10);
    const rest = handle.read(40, 1 << 20).toString();
    assert.equal(first + rest, atFirst);
    assert.notEqual(tree.files.get('/meminfo')!.open(O_RDONLY).read(0, 1 << 20).toString(), atFirst);
  });

  test('when a handle is opened and held then it renders nothing until read, and lets its text go once read to the end', () => {
    const m = manual();
    let renders = 0;
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => { renders++; } });
    const held = Array.from({ length: 100 }, () => tree.files.get('/zoneinfo')!.open(O_RDONLY));
    assert.equal(renders, 0, 'an open alone renders nothing');
    const h = held[0]!;
    const buf = Buffer.alloc(1 << 20);
    const n = h.readInto!(buf, 0, buf.length);
    assert.ok(n > 0);
    assert.equal(renders as number, 1);
    assert.equal(h.readInto!(buf, n, buf.length), 0, 'EOF');
    // Read to its end, the handle holds no text: a read from 0 renders anew, as after lseek.
    assert.equal(h.readInto!(buf, 0, buf.length), n);
    assert.equal(renders as number, 2);
  });

  test('when a handle is read again from offset 0 (lseek 0, as vmstat and top do) then it renders anew, as seq_file does', () => {
    const m = manual();
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined });
    const handle = tree.files.get('/meminfo')!.open(O_RDONLY);
    const before = handle.read(0, 1 << 20).toString();
    assert.equal(handle.read(before.length, 100).length, 0);
    m.raw.alloc(5, false, 0, 10);
    const again = handle.read(0, 1 << 20).toString();
    assert.notEqual(again, before);
    assert.equal(again, tree.files.get('/meminfo')!.open(O_RDONLY).read(0, 1 << 20).toString());
  });

  test('when a snapshot is read in odd chunks then the pieces are its bytes and the end reads empty', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
    const handle = tree.files.get('/zoneinfo')!.open(O_RDONLY);
    const whole = handle.read(0, 1 << 20);
    const pieces: Buffer[] = [];
    for (let off = 0; ; off += 7) {
      const piece = handle.read(off, 7);
      if (piece.length === 0) break;
      pieces.push(piece);
    }
    assert.deepEqual(Buffer.concat(pieces), whole);
    assert.equal(handle.read(whole.length + 100, 10).length, 0);
  });

  test('when a sysctl is read past its text then it is EOF', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
    const handle = tree.files.get('/sys/vm/scrub_stop')!.open(O_RDONLY);
    assert.equal(handle.read(0, 100).toString(), '4\n');
    assert.equal(handle.read(2, 100).length, 0);
  });

  test('when the clock is live then each open catches the model up with the wall clock', () => {
    const m = createMachine({ preset: 'x86_64', clock: 'live' });
    let wall = 1_000;
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => m.syncWall(wall) });
    assert.equal(tree.files.get('/uptime')!.open(O_RDONLY).read(0, 100).toString(), '0.00 0.00\n');
    wall += 2_500;
    assert.equal(tree.files.get('/uptime')!.open(O_RDONLY).read(0, 100).toString(), '2.50 10.00\n');
  });

  test('when the buddyinfo option is stock then the file has one line per zone', () => {
    const m = manual();
    const text = buildProcTree(m, { buddyinfo: 'stock', syncClock: () => undefined }).files.get('/buddyinfo')!.open(O_RDONLY).read(0, 1 << 20).toString();
    assert.equal(text.split('\n').length - 1, m.zones.length);
    assert.ok(!text.includes('Zeroed'));
  });
});

describe('rendering cost', () => {
  test('when a 64 TiB x86_64 machine renders every file then each takes well under a millisecond', () => {
    const m = createMachine({ preset: 'x86_64', mem: '64T', clock: 'manual' });
    m.raw.alloc(0, false, 0, 1000);
    m.setSysctl('scrub_start', 5);
    m.tick(1e8);
    for (const file of FILES) {
      // (A file this machine's kernel does not have is not rendered for it.)
      if (!file.render || !present(file, m)) continue;
      const times: number[] = [];
      for (let i = 0; i < 101; i++) {
        const t0 = performance.now();
        file.render(m, { buddyinfo: 'v6' });
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      assert.ok(times[50]! < 1, `${file.path}: median ${times[50]!.toFixed(3)} ms`);
    }
  });
});

describe('held snapshots', () => {
  test('when handles read one byte each and hold their text past the limit then the next read fails ENOMEM, and closing one makes room', () => {
    const m = manual();
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined, generation: () => 0 });
    const size = tree.files.get('/zoneinfo')!.open(O_RDONLY).read(0, 1 << 22).length;
    // A limit of 2.5 texts; the manual clock stands still, so reads of one instant share one
    // snapshot: a write to the machine between reads makes each read take its own.
    const small = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined, maxHeldBytes: Math.floor(size * 2.5) });
    const hs = Array.from({ length: 3 }, () => small.files.get('/zoneinfo')!.open(O_RDONLY));
    assert.equal(hs[0]!.read(0, 1).length, 1);
    m.raw.alloc(0, false, 0, 1);
    assert.equal(hs[1]!.read(0, 1).length, 1);
    m.raw.alloc(0, false, 0, 1);
    assert.throws(() => hs[2]!.read(0, 1), (e: unknown) => e instanceof ProcError && e.errno === 'ENOMEM' && /open handles already hold \d+ bytes of rendered text/.test(e.message));
    hs[0]!.release?.();
    assert.equal(hs[2]!.read(0, 1).length, 1, 'a closed handle let its text go');
  });
});

describe('st_size and the text read', () => {
  /**
   * A vmstat stat'd, then the machine moved until its text grew, then `later` ms of the test's
   * wall (the window is about a stat and its read, not how loaded the host is).
   */
  function grownAfterStat(later: number): { vmstat: FileEntry; size: number; h: ReturnType<FileEntry['open']> } {
    const m = manual();
    let generation = 0;
    let wall = 0;
    const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined, generation: () => generation, wallMs: () => wall });
    const vmstat = tree.files.get('/vmstat')!;
    const h = vmstat.open(O_RDONLY);
    const size = vmstat.size!();
    // Allocate and free enough pages that counters gain digits: the text grows.
    const pfns = Array.from({ length: 4000 }, () => m.allocPages(0, false, 0, 0));
    for (const pfn of pfns) m.freePages(pfn, 0, 0);
    generation++;
    wall += later;
    return { vmstat, size, h };
  }

  test('when the machine moves between a stat and the first read then the read serves the text the stat measured', () => {
    const { vmstat, size, h } = grownAfterStat(STAT_REUSE_MS);
    const buf = Buffer.alloc(1 << 16);
    assert.equal(h.readInto!(buf, 0, buf.length), size, 'the first read within the window serves the measured text');
    assert.notEqual(vmstat.size!(), size, 'a stat now measures the grown text');
    const again = vmstat.open(O_RDONLY);
    assert.equal(again.readInto!(buf, 0, buf.length), vmstat.size!(), 'and a read after that stat serves it');
  });

  test('when the first read comes later than the window after a stat then it serves the present text', () => {
    const { vmstat, size, h } = grownAfterStat(STAT_REUSE_MS + 1);
    const n = h.readInto!(Buffer.alloc(1 << 16), 0, 1 << 16);
    assert.notEqual(n, size, 'a stale stat no longer decides the text');
    assert.equal(n, vmstat.size!(), 'the read serves the machine as it stands');
  });

  test('when a writable file is stat\'d then it has no size (st_size 0) and its reads stay fresh after writes', () => {
    const tree = buildProcTree(manual(), { buddyinfo: 'v6', syncClock: () => undefined });
    const sysctl = tree.files.get('/sys/vm/scrub_stop')!;
    assert.equal(sysctl.size, undefined);
    const h = sysctl.open(O_RDWR);
    h.write!(Buffer.from('7\n'), 0);
    assert.equal(h.read(0, 100).toString(), '7\n');
  });
});
