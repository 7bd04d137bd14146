import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { alloc, control, sysctl, withMount } from '../helpers/mount';
import { meminfo, parseStatCpu, readModel, requireTool, withProcfs } from './tools';

// procps (free, vmstat, top) hard-code /proc: they read the model through scripts/with-procfs.
// The altix preset: 16 KiB pages, 4 nodes × 2 CPUs, 6 GiB.
const MANUAL = ['--clock', 'manual'];
const ALTIX_PAGE = 16384;

/** `free -b`'s Mem: line → total used free shared buff/cache available (bytes). */
function freeMem(stdout: string): { total: number; free: number; available: number } {
  const m = /^Mem: +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)$/m.exec(stdout);
  assert.ok(m, `no Mem: line in free -b:\n${stdout}`);
  return { total: Number(m[1]), free: Number(m[3]), available: Number(m[6]) };
}

/** vmstat's sample lines (after the two header lines) → column name → value. */
function vmstatRows(stdout: string): Array<Record<string, number>> {
  const lines = stdout.trim().split('\n');
  const names = lines[1]?.trim().split(/ +/) ?? [];
  assert.deepEqual(names.slice(-5), ['us', 'sy', 'id', 'wa', 'st'], stdout);
  return lines.slice(2).map((line) => Object.fromEntries(line.trim().split(/ +/).map((v, i) => [names[i]!, Number(v)])));
}

describe('procps through with-procfs', () => {
  test('when free -b runs then it shows the model\'s MemTotal and MemFree, and the free column drops by what alloc takes', async () => {
    requireTool('/usr/bin/free', 'procps');
    await withMount(MANUAL, async (dir) => {
      const before = await meminfo(dir);
      const r1 = await withProcfs(dir, ['free', '-b']);
      assert.equal(r1.code, 0, r1.stderr);
      const f1 = freeMem(r1.stdout);
      assert.deepEqual(f1, { total: before.MemTotal! * 1024, free: before.MemFree! * 1024, available: before.MemAvailable! * 1024 });

      // 100 blocks of order 10 (1024 pages of 16 KiB): 1600 MiB.
      const handles = await alloc(dir, 'order=10 count=100');
      const after = await meminfo(dir);
      const f2 = freeMem((await withProcfs(dir, ['free', '-b'])).stdout);
      assert.equal(f2.total, f1.total);
      assert.equal(f1.free - f2.free, 100 * 1024 * ALTIX_PAGE);
      assert.equal(f2.free, after.MemFree! * 1024);

      await control(dir, `free handles=${handles}`);
      assert.equal(freeMem((await withProcfs(dir, ['free', '-b'])).stdout).free, f1.free);
    });
  });

  test('when top -b -n 1 runs then its header has the model\'s uptime, load average and KiB Mem, and follows an alloc', async () => {
    requireTool('/usr/bin/top', 'procps');
    await withMount(MANUAL, async (dir) => {
      await control(dir, 'tick 7260s');
      const top = async (): Promise<string> => {
        const r = await withProcfs(dir, ['top', '-b', '-n', '1', '-E', 'k'], { env: { ...process.env, TERM: 'dumb', COLUMNS: '200' } });
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const mem = await meminfo(dir);
      const load = (await readModel(dir, 'loadavg')).split(' ').slice(0, 3).join(', ');
      const t1 = await top();
      // 7260 s: "up  2:01"; the host has been up for some other time.
      assert.match(t1, new RegExp(`^top - [\\d:]+ up +2:01, .* load average: ${load.replaceAll('.', '\\.')}\\n`));
      assert.match(t1, new RegExp(`^KiB Mem : +${mem.MemTotal} total, +${mem.MemFree} free,`, 'm'));

      await alloc(dir, 'order=10 count=10');
      const t2 = await top();
      assert.match(t2, new RegExp(`^KiB Mem : +${mem.MemTotal} total, +${mem.MemFree! - 10 * 1024 * 16} free,`, 'm'));
    });
  });

  test('when kscrubd zeroes with the CPU driver then vmstat 1 shows its time under sy, and 0 before and after the burst', async () => {
    requireTool('/usr/bin/vmstat', 'procps');
    // A live clock at a quarter of wall speed: zeroing the 6 GiB takes kscrubd (one per node,
    // 4 of the 8 CPUs) about 1.3 virtual seconds, ~5 wall seconds — longer than vmstat 1 3.
    // altix's 18 orders give kscrubd 512 MiB blocks (0.43 virtual s each), longer than a
    // vmstat interval here: stat shows each block's time as it runs, as the tick charges it.
    await withMount(['--zero-drivers', 'cpu', '--speed', '0.25'], async (dir) => {
      // Memory that was used and freed: dirty, not zeroed, nobody scrubs it (scrub_start is off).
      await control(dir, `free handles=${await alloc(dir, 'order=10 count=200')}`);
      const idle = await withProcfs(dir, ['vmstat', '1', '2']);
      assert.equal(idle.code, 0, idle.stderr);
      const quiet = vmstatRows(idle.stdout)[1]!;
      assert.deepEqual([quiet.us, quiet.sy, quiet.id], [0, 0, 100], idle.stdout);
      assert.equal(quiet.free, (await meminfo(dir)).MemFree);

      const sys0 = parseStatCpu(await readModel(dir, 'stat')).system;
      await sysctl(dir, 'scrub_stop', 0);
      await sysctl(dir, 'scrub_start', 1);
      // Our own look at stat first: kscrubd's time shows as system time.
      const started = await pollUntil(async () => (parseStatCpu(await readModel(dir, 'stat')).system > sys0 ? true : undefined), { timeoutMs: 5000 });
      assert.ok(started, 'kscrubd put no system time in stat within 5 s');

      const busy = await withProcfs(dir, ['vmstat', '1', '3']);
      assert.equal(busy.code, 0, busy.stderr);
      const stillScrubbing = /^procs_running [1-9]/m.test(await readModel(dir, 'stat'));
      const rows = vmstatRows(busy.stdout);
      // Rows 2 and 3 are the 1-second intervals (row 1 is since boot). 4 of 8 CPUs zeroing: ~50.
      assert.ok(stillScrubbing, 'the burst ended before vmstat did: the test proves less than it says');
      for (const row of rows.slice(1)) {
        assert.equal(row.us, 0, busy.stdout);
        assert.ok(row.sy! >= 25 && row.sy! <= 75, `sy ${row.sy} in\n${busy.stdout}`);
      }

      // The burst ends once every free page is zeroed; then the CPUs are idle again.
      const done = await pollUntil(async () => {
        const m = await meminfo(dir);
        const asleep = /^procs_running 0$/m.test(await readModel(dir, 'stat'));
        return asleep && m.MemZero === m.MemFree ? true : undefined;
      }, { timeoutMs: 20_000, intervalMs: 200 });
      assert.ok(done, 'kscrubd did not finish zeroing within 20 s');
      const after = vmstatRows((await withProcfs(dir, ['vmstat', '1', '2'])).stdout)[1]!;
      assert.deepEqual([after.us, after.sy, after.id], [0, 0, 100]);
    });
  });
});
