// Load: 8 reader threads looping open+read+close over every file (each read parsed by the
// strict parsers), a writer changing scrub_start/scrub_stop/scrub_load (checking each value
// reads back, and that bad values are still refused), `kscrubfs pft -g 1 -t 4` run again and
// again, and a `check` every half second — for KSCRUB_LOAD_SECONDS (default 60; 30 when
// CI=true). Then: zero malformed reads, zero failed syscalls, zero daemon errors, `check` ok,
// and exact page accounting: once the workload is gone and the per-cpu lists are drained,
// MemFree is back at its (drained) start value and no page is held anywhere.
//
// The clock is live on purpose: kscrubd then runs in real time between and during the
// readers' opens (each open catches the model up with the wall clock), so renders, sysctl
// writes, kscrubd bursts, load sampling, per-cpu drains and pft's faults interleave as they
// would on a watched machine. With a manual clock the readers would only ever see the states
// between pft's commands.
import assert from 'node:assert/strict';
import { open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Rng } from '../helpers/rng';
import { kscrubfs, startDaemon, stopDaemon, waitForMount, withTempDir, type Daemon, type RunResult } from '../helpers/mount';
import { type Stats, parseMeminfo, parseResult, parseSysctl } from '../../src/uapi';
import { READABLE_FILES, startReaders, type ReaderReport } from '../helpers/readers';

const CI = process.env.CI === 'true';
const SECONDS = process.env.KSCRUB_LOAD_SECONDS !== undefined ? Number(process.env.KSCRUB_LOAD_SECONDS) : CI ? 30 : 60;
assert.ok(Number.isFinite(SECONDS) && SECONDS > 0, `KSCRUB_LOAD_SECONDS=${process.env.KSCRUB_LOAD_SECONDS} is a number of seconds`);
const READERS = 8;
/** Debug namespaces the daemon logs under (cheap: a line per control command, sysctl write, kscrubd burst). */
const DEBUG = 'kscrubfs:control,kscrubfs:model';

import { controlBatch as control } from '../../src/workload/client';

function statsOf(line: string): Stats {
  assert.match(line, /^ok /);
  return parseResult('stats', line.slice(3));
}

/** Start the daemon with DEBUG set for it alone (spawn copies the environment there and then). */
function startLoggingDaemon(dir: string, args: readonly string[]): Daemon {
  const saved = process.env.DEBUG;
  process.env.DEBUG = DEBUG;
  try {
    return startDaemon(dir, args);
  } finally {
    if (saved === undefined) delete process.env.DEBUG;
    else process.env.DEBUG = saved;
  }
}

describe('robust: load', () => {
  test(`when ${READERS} readers, a sysctl writer, pft -t 4 and check run for ${SECONDS} s then every read parses and every page comes back`, { timeout: (SECONDS + 120) * 1000 }, async (t) => {
    await withTempDir(async (_tmp, dir) => {
      const daemon = startLoggingDaemon(dir, []);
      try {
        await waitForMount(dir, daemon);
        const memFree = async (): Promise<number> => parseMeminfo(await readFile(path.join(dir, 'meminfo'), 'utf8')).get('MemFree')!;
        assert.match((await control(dir, 'drain\n'))[0]!, /^ok drained_pages=\d+$/);
        const startFree = await memFree();
        const deadline = Date.now() + SECONDS * 1000;
        const failures: string[] = [];
        const fail = (what: string): void => {
          if (failures.length < 20) failures.push(what);
        };

        const readers = startReaders(dir, READERS);
        let reports: ReaderReport[] = [];
        const counts = { writes: 0, refused: 0, pft: 0, checks: 0 };
        try {
          // The sysctl writer: in-range values read back as written; a bad one now and then is still EINVAL.
          const writer = (async () => {
            const rng = new Rng(20050208);
            const names = ['scrub_start', 'scrub_stop', 'scrub_load'] as const;
            while (Date.now() < deadline) {
              const name = names[rng.int(names.length)]!;
              const file = path.join(dir, 'sys/vm', name);
              if (rng.next() < 0.1) {
                const bad = ['19', '-1', '5abc', '+5', '1001'][rng.int(5)]!;
                const err = await writeFile(file, `${bad}\n`).then(() => null, (e: NodeJS.ErrnoException) => e.code);
                const refused = name === 'scrub_load' && bad === '19' ? null : 'EINVAL';
                if (err !== refused) fail(`write ${bad} to ${name}: ${err ?? 'accepted'}`);
                if (err === null) await writeFile(file, '999\n'); // 19 is a fine scrub_load; put the default back
                counts.refused++;
              } else {
                const v = name === 'scrub_load' ? [0, 1, 2, 5, 999, 1000][rng.int(6)]! : rng.int(12);
                try {
                  await writeFile(file, `${v}\n`);
                  const back = parseSysctl(await readFile(file, 'utf8'), file);
                  if (back !== v) fail(`${name}: wrote ${v}, read ${back}`);
                } catch (err) {
                  fail(`${name}=${v}: ${(err as Error).message}`);
                }
                counts.writes++;
              }
              await sleep(10);
            }
          })();
          // pft, again and again.
          const workload = (async () => {
            while (Date.now() < deadline) {
              const r: RunResult = await kscrubfs(['pft', '-m', dir, '-g', '1', '-t', '4'], { timeoutMs: 120_000 });
              counts.pft++;
              if (r.code !== 0 || !/^ Gb Rep Threads/.test(r.stdout)) fail(`pft #${counts.pft} exited ${r.code}: ${r.stderr}`);
            }
          })();
          // check, twice a second, on its own control handle per batch.
          const checker = (async () => {
            while (Date.now() < deadline) {
              const lines = await control(dir, 'check\n').catch((e: Error) => [e.message]);
              counts.checks++;
              if (lines[0] !== 'ok') fail(`check #${counts.checks}: ${lines.join(' | ')}`);
              await sleep(500);
            }
          })();
          await Promise.all([writer, workload, checker]);
        } finally {
          reports = await readers.stop();
        }

        // The readers: many reads of every file, none torn, no syscall failed.
        const reads = reports.reduce((s, r) => s + r.reads, 0);
        const perFile = Object.fromEntries(READABLE_FILES.map((f) => [f, reports.reduce((s, r) => s + (r.perFile[f] ?? 0), 0)]));
        const malformed = reports.flatMap((r) => r.malformed);
        const errors = reports.flatMap((r) => r.errors);
        t.diagnostic(`${SECONDS} s: ${reads} reads (${Math.round(reads / SECONDS)}/s; ${Object.entries(perFile).map(([f, n]) => `${f} ${n}`).join(', ')}), `
          + `${counts.writes} sysctl writes + ${counts.refused} refused, ${counts.pft} pft runs, ${counts.checks} checks`);
        assert.equal(reports.reduce((s, r) => s + r.malformedCount, 0), 0, `malformed reads, e.g. ${JSON.stringify(malformed.slice(0, 3), null, 1)}`);
        assert.equal(reports.reduce((s, r) => s + r.errorCount, 0), 0, `failed reads, e.g. ${JSON.stringify(errors.slice(0, 3))}`);
        for (const [f, n] of Object.entries(perFile)) assert.ok(n >= 10, `${f} was read ${n} times`);
        assert.deepEqual(failures, []);
        assert.ok(counts.pft >= 1 && counts.writes >= 10 && counts.checks >= 2, JSON.stringify(counts));

        // Accounting: nothing is held once the workload is gone and the per-cpu lists are drained.
        assert.match((await control(dir, 'drain\n'))[0]!, /^ok drained_pages=\d+$/);
        assert.equal(await memFree(), startFree, 'MemFree is back at its start value');
        const [checked, statsLine] = await control(dir, 'check\nstats\n');
        assert.equal(checked, 'ok');
        const s = statsOf(statsLine!);
        assert.deepEqual([s.raw_pages, s.nr_anon_pages, s.mms, s.nr_pcp_pages], [0, 0, 0, 0], statsLine);
        // Prefault (V2, max_prealloc_order 4) maps up to a pagevec, 14 pages, a fault.
        assert.ok(s.pgfault! >= counts.pft * 65536 / 14, `pft faulted (${s.pgfault} faults)`);

        // The daemon logged commands, sysctl writes and kscrubd bursts — and no error.
        const log = daemon.stderr().split('\n').filter(Boolean);
        const bad = log.filter((l) => !/ kscrubfs:(control|model) /.test(l) || / → err|internal error|rejected|EIO|Error/.test(l));
        assert.deepEqual(bad.slice(0, 10), [], `${bad.length} daemon stderr lines are errors or not debug lines`);
        assert.ok(log.some((l) => / kscrubfs:control touch /.test(l)), 'the debug log is on (it saw pft\'s touches)');
      } finally {
        await stopDaemon(daemon, dir);
      }
    });
  });
});
