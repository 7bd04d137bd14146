// Faults: the daemon SIGKILLed under a running pft (ten times on one directory), SIGTERM while
// eight readers are active, and injected BTE failures. The workload and the readers must get a
// clear error — never hang (every wait here is bounded) — the next mount on the same directory
// must work, and a failed BTE transfer must cost no page.
import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pollUntil } from '../../src/daemon/poll';
import { findMount } from '../../src/fuse/mountpoint';
import {
  type Daemon, kscrubfs, startDaemon, stopDaemon, waitForMount, withMount, withTempDir,
} from '../helpers/mount';
import { type BuddyZone, type Stats, parseBuddyinfo, parseMeminfo, parseResult, parseVmstat } from '../../src/uapi';
import { startReaders } from '../helpers/readers';

const MANUAL = ['--clock', 'manual'];
const KILLS = 10;

import { controlBatch as control, readMountFile } from '../../src/workload/client';

async function stats(dir: string): Promise<Stats> {
  const [line] = await control(dir, 'stats\n');
  assert.match(line!, /^ok /);
  return parseResult('stats', line!.slice(3));
}

/** Resolve with the promise's value, or reject after `ms` saying what hung. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pages in not-zeroed blocks of order ≥ `from` (and < `to`), and how many such blocks. */
function notZeroed(zones: BuddyZone[], from: number, to = Infinity): { pages: number; blocks: number } {
  let pages = 0;
  let blocks = 0;
  for (const z of zones) {
    z.counts.forEach((n, order) => {
      if (order >= from && order < to) {
        pages += n * 2 ** order;
        blocks += n;
      }
    });
  }
  return { pages, blocks };
}

const zeroedPages = (zones: BuddyZone[]): number =>
  zones.reduce((s, z) => s + z.zeroed!.reduce((t, n, order) => t + n * 2 ** order, 0), 0);

describe('robust: faults', () => {
  test(`when the daemon is SIGKILLed under a running pft ${KILLS} times then pft fails clearly each time and the next mount works`, { timeout: 180_000 }, async (t) => {
    await withTempDir(async (_tmp, dir) => {
      const messages = new Set<string>();
      const started = Date.now();
      for (let i = 0; i < KILLS; i++) {
        const daemon = startDaemon(dir, MANUAL);
        try {
          await waitForMount(dir, daemon);
          // Many repetitions of 1 GiB: minutes of work, so the kill always lands mid-run.
          const pft = kscrubfs(['pft', '-m', dir, '-g', '1', '-r', '1000', '-t', '4', '--scrub', 'on'], { timeoutMs: 15_000 });
          const faulting = await pollUntil(async () => {
            const text = await readMountFile(path.join(dir, 'vmstat')).catch(() => '');
            return (parseVmstat(text || 'nr_free_pages 0\n').get('pgfault') ?? 0) > 0 ? true : undefined;
          }, { timeoutMs: 10_000, intervalMs: 10 });
          assert.ok(faulting, `pft #${i} started faulting`);
          await sleep((i * 37) % 250); // land anywhere in a repetition
          daemon.child.kill('SIGKILL');
          assert.equal((await daemon.exited).signal, 'SIGKILL');
          const r = await pft; // rejects (the test fails) if pft hangs past 15 s
          assert.notEqual(r.code, 0, `pft #${i} exited ${r.code}: ${r.stdout}`);
          assert.match(r.stderr, /^kscrubfs: .*(daemon|mount)/, `pft #${i}: ${r.stderr}`);
          assert.ok(r.stderr.includes(dir), `pft #${i} names the mount: ${r.stderr}`);
          assert.doesNotMatch(r.stderr, /internal error|\n {4}at /, `pft #${i}: no stack trace`);
          messages.add(r.stderr.trim().replace(/mm=\d+/g, 'mm=N').replace(dir, 'DIR'));
        } finally {
          await stopDaemon(daemon, dir);
        }
      }
      // The directory is still good for a mount that serves and passes check.
      const last = startDaemon(dir, MANUAL);
      try {
        await waitForMount(dir, last);
        assert.deepEqual(await control(dir, 'check\n'), ['ok']);
        assert.equal(parseMeminfo(await readMountFile(path.join(dir, 'meminfo'))).has('MemZero'), true);
      } finally {
        await stopDaemon(last, dir);
      }
      assert.equal(findMount(dir), undefined);
      t.diagnostic(`${KILLS} kills in ${Date.now() - started} ms; pft said: ${[...messages].join(' | ')}`);
    });
  });

  test('when the daemon gets SIGTERM while 8 readers are reading then it unmounts cleanly and every reader gets an error, not a hang', { timeout: 90_000 }, async (t) => {
    await withTempDir(async (_tmp, dir) => {
      const daemon: Daemon = startDaemon(dir, []);
      try {
        await waitForMount(dir, daemon);
        const readers = startReaders(dir, 8, { stopOnError: true, maxMs: 60_000 });
        try {
          const busy = await pollUntil(() => (readers.reads() >= 400 ? true : undefined), { timeoutMs: 20_000 });
          assert.ok(busy, `readers got going (${readers.reads()} reads)`);
          daemon.child.kill('SIGTERM');
          const exit = await within(daemon.exited, 10_000, 'the daemon after SIGTERM');
          assert.deepEqual(exit, { code: 0, signal: null }, daemon.stderr());
          assert.equal(findMount(dir), undefined, 'the mount is gone');
          const reports = await within(readers.done, 15_000, 'the readers after the unmount');
          const codes = new Set(reports.flatMap((r) => r.errors.map((e) => e.code)));
          for (const r of reports) {
            assert.equal(r.ended, 'error', `reader ${r.reader} ended with an error (${r.ended})`);
            assert.equal(r.malformedCount, 0, `reader ${r.reader} read torn text: ${JSON.stringify(r.malformed[0])}`);
          }
          for (const code of codes) assert.match(code, /^(ENOENT|ENOTCONN|ECONNABORTED|EIO)$/);
          assert.doesNotMatch(daemon.stderr(), /took over|error/i);
          t.diagnostic(`${reports.reduce((s, r) => s + r.reads, 0)} reads before SIGTERM; readers then got ${[...codes].join(', ')}`);
        } finally {
          await readers.stop();
        }
      } finally {
        await stopDaemon(daemon, dir);
      }
    });
  });

  test('when BTE transfers are made to fail then the CPU zeroes those blocks, no page is lost and MemZero reaches the expected total', { timeout: 90_000 }, async () => {
    await withMount(MANUAL, async (dir) => {
      const vm = async (): Promise<Map<string, number>> => parseVmstat(await readMountFile(path.join(dir, 'vmstat')));
      const mem = async (): Promise<Map<string, number>> => parseMeminfo(await readMountFile(path.join(dir, 'meminfo')));
      const buddy = async (): Promise<BuddyZone[]> => parseBuddyinfo(await readMountFile(path.join(dir, 'buddyinfo')), 'v6');
      const settle = async (): Promise<void> => {
        for (let i = 0; (await stats(dir)).kscrubd_awake! > 0; i++) {
          assert.ok(i < 600, 'kscrubd went back to sleep within 60 virtual seconds');
          assert.match((await control(dir, 'tick 100ms\n'))[0]!, /^ok now_ns=/);
        }
      };
      const kB = (await stats(dir)).page_size! / 1024;
      const free = (await mem()).get('MemFree')!;
      const start = await buddy();
      assert.equal(zeroedPages(start), 0, 'nothing is zeroed at boot');
      const big = notZeroed(start, 6);
      // The BTE takes 60,000 bytes up to BTE_MAX_XFER (8 MiB, order 9): orders 9 and 10 go to the CPU.
      const bteSized = notZeroed(start, 6, 9);
      const small = notZeroed(start, 2, 6);
      assert.ok(bteSized.blocks > 7 && small.blocks > 0, `blocks to zero: ${bteSized.blocks} of order 6..8, ${small.blocks} of order 2..5`);

      // Phase 1: 7 transfers fail; kscrubd zeroes every block of order ≥ 6 all the same.
      assert.deepEqual(await control(dir, 'bte fail=7\n'), ['ok']);
      await writeFile(path.join(dir, 'sys/vm/scrub_stop'), '6\n');
      await writeFile(path.join(dir, 'sys/vm/scrub_start'), '6\n');
      await settle();
      let s = await stats(dir);
      assert.equal(s.kscrubd_bte_fallbacks, 7);
      assert.equal(s.kscrubd_blocks, big.blocks);
      assert.equal(s.kscrubd_bte_blocks, bteSized.blocks - 7, 'every other block the BTE takes went by BTE');
      assert.equal((await vm()).get('kscrubd_bte_fallbacks'), 7);
      assert.equal((await mem()).get('MemZero'), big.pages * kB);
      assert.equal(zeroedPages(await buddy()), big.pages);
      assert.equal((await mem()).get('MemFree'), free, 'no page lost');
      assert.deepEqual(await control(dir, 'check\n'), ['ok']);

      // Phase 2: every transfer fails; orders 2..5 (all big enough for the BTE) fall back to the CPU.
      const cpuBefore = (await vm()).get('kscrubd_cpu_us')!;
      assert.deepEqual(await control(dir, 'bte fail=1000000\n'), ['ok']);
      await writeFile(path.join(dir, 'sys/vm/scrub_stop'), '2\n');
      await writeFile(path.join(dir, 'sys/vm/scrub_start'), '2\n');
      await settle();
      s = await stats(dir);
      assert.equal(s.kscrubd_bte_fallbacks, 7 + small.blocks);
      assert.equal(s.kscrubd_bte_blocks, bteSized.blocks - 7, 'no transfer succeeded');
      assert.equal(s.kscrubd_blocks, big.blocks + small.blocks);
      const v = await vm();
      assert.equal(v.get('kscrubd_bte_fallbacks'), 7 + small.blocks);
      assert.ok(v.get('kscrubd_cpu_us')! > cpuBefore, 'the CPU did the zeroing');
      assert.equal((await mem()).get('MemZero'), (big.pages + small.pages) * kB);
      assert.equal((await mem()).get('MemFree'), free, 'no page lost');
      assert.deepEqual(notZeroed(await buddy(), 2), { pages: 0, blocks: 0 }, 'nothing of order ≥ 2 is left unzeroed');
      assert.deepEqual(await control(dir, 'check\n'), ['ok']);
    });
  });
});

