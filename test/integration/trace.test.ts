import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { readTrace } from '../../src/workload/trace-format';
import type { ReplayRow } from '../../src/workload/trace-replay';
import { findTracefs, recorderOf } from '../../src/workload/trace-tracefs';
import { CLI, kscrubfs, run, withMount } from '../helpers/mount';

// `trace record` on real programs through the host kernel's tracepoints (root, tracefs), and
// `trace replay` of what it recorded on private model machines. Not root, no tracefs or no
// tracepoints: the record fails with its reason, and so do these tests.

/** Maps 64 MiB, THP off, writes one byte per 4 KiB page; prints the mapping's address; exits 3. */
const TOUCH64_C = `
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
int main(void) {
  size_t len = 64UL << 20;
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  madvise(p, len, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < len; i += 4096) p[i] = 1;
  printf("%lx\\n", (unsigned long)p);
  return 3;
}
`;
const PAGES_64M = 16384;

/**
 * pft as a C program: argv[1] threads, each mallocs its share of 1 GiB and writes one byte a
 * 4 KiB page, then the process exits (THP off; volatile, or the compiler drops the writes).
 */
const PFTLIKE_C = `
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
static size_t share;
static void *run(void *arg) {
  volatile char *p = malloc(share);
  if (!p) { perror("malloc"); exit(1); }
  for (size_t i = 0; i < share; i += 4096) p[i] = 1;
  return arg;
}
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  pthread_t t[8];
  prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
  share = (1UL << 30) / n;
  for (int i = 0; i < n; i++) pthread_create(&t[i], 0, run, 0);
  for (int i = 0; i < n; i++) pthread_join(t[i], 0);
  return 0;
}
`;
/** How far a replayed trace of PFTLIKE_C may be from `kscrubfs pft` of the same size and threads, on every column. */
const AGREEMENT = 0.05;

/** Python building a list of a million strings; prints its own minor faults (getrusage). */
const PY_LIST = 'import resource; l = [str(i) for i in range(1_000_000)]; print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)';
/**
 * Replayed pages vs the program's ru_minflt: the replay leaves out faults on file-backed
 * memory (python's text and libraries: ~2-3 % here), read faults of anonymous memory map the
 * shared zero page (no page), and the gate shell's few faults before exec are not traced.
 */
const MINFLT_TOLERANCE = 0.1;

/** Global tracing files a recording must leave as they were (it works in its own instance). */
const GLOBAL_FILES = ['tracing_on', 'current_tracer', 'set_event', 'set_event_pid', 'trace_clock', 'buffer_size_kb', 'options/event-fork', 'options/record-tgid', 'events/exceptions/page_fault_user/enable'];

interface TracingState {
  mounts: string[];
  files: Record<string, string>;
  instances: string[];
}

/**
 * What a recording may change, as it stands: tracefs mounts, the global tracing files and the
 * instances. The global files are read through a tracefs mount of the test's own, made and
 * removed around the reading.
 */
function tracingState(): TracingState {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - tracefs /.test(l)).map((l) => l.split(' ')[4]!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-test-tracefs-'));
  const files: Record<string, string> = {};
  let instances: string[] = [];
  try {
    const m = spawnSync('mount', ['-t', 'tracefs', 'nodev', dir], { encoding: 'utf8' });
    assert.equal(m.status, 0, `mount tracefs to look at it: ${m.stderr}`);
    try {
      for (const f of GLOBAL_FILES) files[f] = fs.readFileSync(path.join(dir, f), 'utf8');
      instances = fs.readdirSync(path.join(dir, 'instances'));
    } finally {
      spawnSync('umount', [dir]);
    }
  } finally {
    fs.rmdirSync(dir);
  }
  return { mounts, files, instances };
}

/**
 * The state as recorder `pid` may have changed it: other recorders that run meanwhile (this
 * machine is shared, some in other pid namespaces) are left out by their names' pids.
 */
function seenBy(s: TracingState, pid: number): Record<string, unknown> {
  const mine = (name: string): boolean => { const owner = recorderOf(name); return owner === null || owner === pid; };
  return { mounts: s.mounts.filter(mine).sort(), instances: s.instances.filter(mine).sort(), ...s.files };
}

/** `kscrubfs trace record ARGS` as a child: its pid (for seenBy) and how it ended. */
function record(args: readonly string[]): { pid: number; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [CLI, 'trace', 'record', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { pid: child.pid!, done };
}

describe('trace record and replay (root, the host kernel\'s tracepoints)', () => {
  let tmp = '';
  let touch64 = '';
  let pftlike = '';
  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests record real page faults: they need root');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-trace-'));
    fs.writeFileSync(path.join(tmp, 'touch64.c'), TOUCH64_C);
    touch64 = path.join(tmp, 'touch64');
    const cc = await run('gcc', ['-O1', '-o', touch64, path.join(tmp, 'touch64.c')]);
    assert.equal(cc.code, 0, `gcc (scripts/setup.sh --with-clients installs it): ${cc.stderr}`);
    fs.writeFileSync(path.join(tmp, 'pftlike.c'), PFTLIKE_C);
    pftlike = path.join(tmp, 'pftlike');
    const cc2 = await run('gcc', ['-O2', '-pthread', '-o', pftlike, path.join(tmp, 'pftlike.c')]);
    assert.equal(cc2.code, 0, `gcc: ${cc2.stderr}`);
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('when a program writes one byte per 4 KiB page of 64 MiB then the trace holds 16,384 write faults there and replay faults that many pages, prezeroed only with kscrubd on', async () => {
    const file = path.join(tmp, 'touch64.trace');
    const before = tracingState();
    const recording = record(['-o', file, '--', touch64]);
    const rec = await recording.done;
    assert.equal(rec.code, 3, `the program's exit status is passed on\n${rec.stderr}`);
    assert.deepEqual(seenBy(tracingState(), recording.pid), seenBy(before, recording.pid), 'tracing state as it was');
    const base = Number.parseInt(rec.stdout.trim(), 16) / 4096;
    assert.ok(Number.isInteger(base), `the program printed its mapping: ${rec.stdout}`);
    const t = readTrace(file);
    assert.ok(t.summary, 'the trace is complete');
    assert.equal(t.summary.exit_status, 3);
    assert.equal(t.summary.lost_events, 0);
    assert.equal(t.header.page_size, 4096);
    let inMapping = 0;
    const seen = new Set<number>();
    for (const r of t.records()) {
      if (r.type !== 'fault' || r.page < base || r.page >= base + PAGES_64M) continue;
      assert.equal(r.write, true, 'every fault in the mapping is a write');
      assert.equal(r.cls, 'anon', 'the mapping is anonymous');
      inMapping++;
      seen.add(r.page);
    }
    assert.equal(inMapping, PAGES_64M, 'one fault per page (THP off)');
    assert.equal(seen.size, PAGES_64M, 'at every page');
    assert.ok(fs.statSync(file).size < 6 * t.summary.faults.anon, `compact: ${fs.statSync(file).size} bytes`);
    assert.match(rec.stderr, /\d+ faults \(\d+ anonymous, \d+ file-backed, \d+ unknown\) from 1 process/);

    const replay = await kscrubfs(['trace', 'replay', file, '--preset', 'x86_64', '--json'], { timeoutMs: 120_000 });
    assert.equal(replay.code, 0, replay.stderr);
    const result = JSON.parse(replay.stdout) as { machine: { preset: string }; trace: { summary: { exit_status: number } }; rows: (ReplayRow & { sysctl: Record<string, number> })[] };
    assert.equal(result.machine.preset, 'x86_64', 'the result says which machine');
    assert.equal(result.trace.summary.exit_status, 3, 'and which trace');
    const [off, on] = result.rows;
    assert.ok(off && on);
    assert.equal(off.scrub, 'off');
    assert.equal(on.scrub, 'on');
    assert.equal(off.sysctl.scrub_start, 11, 'off: scrub_start = MAX_ORDER');
    assert.equal(on.sysctl.scrub_start, 5);
    for (const r of [off, on]) {
      assert.ok(r.pages >= PAGES_64M && r.pages <= PAGES_64M + 100, `${r.scrub}: ${r.pages} pages (the mapping's, and a few of the stack and libc)`);
      assert.equal(r.oom, 0);
    }
    assert.equal(off.prezeroed, 0, 'no kscrubd, no prezeroed page');
    assert.equal(off.hotZeroed, off.pages);
    assert.ok(on.prezeroed > PAGES_64M * 0.9, `kscrubd on: ${on.prezeroed} of ${on.pages} prezeroed`);
    assert.ok(on.zeroingS < off.zeroingS, 'less zeroing in the fault path');

    // The same trace on the altix model (16 KiB pages): four host pages a model page.
    const altix = await kscrubfs(['trace', 'replay', file, '--scrub', 'off'], { timeoutMs: 120_000 });
    assert.equal(altix.code, 0, altix.stderr);
    assert.match(altix.stdout, /^\S+touch64: \d+ faults traced \(4 KiB pages\), replayed on a model with 16 KiB pages and 8 CPUs\nscrub +faults +pages +User +System +Wall +flt\/cpu\/s +fault\/wsec +prezeroed +hot-zeroed +zeroing +kscrubd +fault\/wsec\+kscrubd\n/);
    const row = /^off +(\d+) +(\d+) /m.exec(altix.stdout);
    assert.ok(row, altix.stdout);
    assert.ok(Math.abs(Number(row[2]) - PAGES_64M / 4) <= 40, `${row[2]} altix pages for 64 MiB`);
    assert.match(altix.stdout, /host pages of 4 KiB on model pages of 16 KiB/);
  });

  for (const threads of [1, 2]) {
    it(`when a pft-like program with ${threads} thread(s) writing 1 GiB is traced and replayed then every column is within 5 % of kscrubfs pft, base and prezeroed`, async () => {
      // The same workload entering two ways: recorded from the host (however its scheduler
      // interleaved the threads) and replayed with each thread on its own CPU, or run by pft.
      const file = path.join(tmp, `pftlike${threads}.trace`);
      const rec = await record(['-o', file, '--', pftlike, String(threads)]).done;
      assert.equal(rec.code, 0, rec.stderr);
      const replay = await kscrubfs(['trace', 'replay', file, '--preset', 'x86_64', '--json'], { timeoutMs: 300_000 });
      assert.equal(replay.code, 0, replay.stderr);
      const rows = (JSON.parse(replay.stdout) as { rows: ReplayRow[] }).rows;
      for (const side of ['off', 'on'] as const) {
        // A fresh machine for each, as replay's private machine per side is.
        await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (dir) => {
          const pft = await kscrubfs(['pft', '-m', dir, '-g', '1', '-t', String(threads), '--scrub', side, '--settle', '--prealloc', '0', '--json'], { timeoutMs: 300_000 });
          assert.equal(pft.code, 0, pft.stderr);
          const p = (JSON.parse(pft.stdout) as { rows: { userS: number; systemS: number; wallS: number; fltPerCpuS: number; faultPerWsec: number; prezeroed: number }[] }).rows[0]!;
          const r = rows.find((x) => x.scrub === side)!;
          // A malloc'd 1 GiB is a page more (malloc's header), and the program's own few
          // anonymous pages (stacks, glibc's arenas) fault too.
          assert.ok(Math.abs(r.pages - 262144) < 262144 * 0.01, `${side}: ${r.pages} pages`);
          for (const k of ['userS', 'systemS', 'wallS', 'fltPerCpuS', 'faultPerWsec'] as const) {
            const ratio = r[k] / p[k];
            assert.ok(Math.abs(ratio - 1) <= AGREEMENT, `${threads} thread(s), kscrubd ${side}, ${k}: replay ${r[k]} vs pft ${p[k]} (${ratio.toFixed(3)})`);
          }
          assert.equal(r.prezeroed > 0, side === 'on');
        });
      }
    });
  }

  it('when a real program (python building a list) is traced then replay completes and its pages match its own minor-fault count', async () => {
    const file = path.join(tmp, 'py.trace');
    const rec = await kscrubfs(['trace', 'record', '-o', file, '--', '/usr/bin/python3', '-c', PY_LIST], { timeoutMs: 60_000 });
    assert.equal(rec.code, 0, rec.stderr);
    const minflt = Number(rec.stdout.trim());
    assert.ok(minflt > 10_000, `python reported ${rec.stdout}`);
    const replay = await kscrubfs(['trace', 'replay', file, '--preset', 'x86_64', '--json'], { timeoutMs: 120_000 });
    assert.equal(replay.code, 0, replay.stderr);
    const { rows } = JSON.parse(replay.stdout) as { rows: ReplayRow[] };
    for (const r of rows) {
      assert.ok(Math.abs(r.pages - minflt) <= MINFLT_TOLERANCE * minflt, `${r.scrub}: ${r.pages} pages vs ru_minflt ${minflt}`);
    }
    assert.ok(rows[1]!.prezeroedShare > 0.5, 'kscrubd on: most pages prezeroed');
    assert.equal(rows[0]!.idleS, 0, 'back to back without --gaps');
    // --gaps: python's own time between faults passes on the model's clock as idle time.
    const gaps = await kscrubfs(['trace', 'replay', file, '--preset', 'x86_64', '--scrub', 'on', '--gaps', '--json'], { timeoutMs: 120_000 });
    assert.equal(gaps.code, 0, gaps.stderr);
    const [g] = (JSON.parse(gaps.stdout) as { rows: ReplayRow[] }).rows;
    assert.ok(g && g.idleS > 0, `idle ${g?.idleS} s`);
    assert.equal(g.pages, rows[1]!.pages, 'the same faults');
  });

  it('when CMD runs children then each is a process of its own, and replay on a running mount gives each an mm', async () => {
    const file = path.join(tmp, 'children.trace');
    const child = "/usr/bin/python3 -c 'x = b\"a\" * (8 << 20)'";
    const rec = await kscrubfs(['trace', 'record', '-o', file, '--', 'sh', '-c', `${child}; ${child}`], { timeoutMs: 60_000 });
    assert.equal(rec.code, 0, rec.stderr);
    const t = readTrace(file);
    assert.equal(t.summary?.processes, 3, 'sh and its two pythons');
    await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (dir) => {
      const replay = await kscrubfs(['trace', 'replay', file, '-m', dir, '--scrub', 'off', '--threads-as-cpus', '--json'], { timeoutMs: 120_000 });
      assert.equal(replay.code, 0, replay.stderr);
      const { rows } = JSON.parse(replay.stdout) as { rows: ReplayRow[] };
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.processes, 3);
      assert.ok(rows[0]!.pages >= 2 * 2048, `two 8 MiB strings: ${rows[0]!.pages} pages`);
      const stats = await run('sh', ['-c', `exec 3<>${dir}/control; echo stats >&3; head -1 <&3`]);
      assert.match(stats.stdout, / mms=0 /, 'every replayed process has exited');
      assert.match(stats.stdout, / nr_anon_pages=0 /, 'and its pages are back');
    });
  });

  it('when the recorder is not root then it says so and traces nothing', async () => {
    const r = await kscrubfs(['trace', 'record', '-o', '/dev/null', '--', 'true'], { asNobody: true });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^kscrubfs: trace record needs root: it reads the kernel's tracepoints through tracefs \(run it with sudo\)\n$/);
  });

  /** The recorder's instance exists (kscrubfs-trace-<pid>-…). */
  const instanceOf = (pid: number): boolean => {
    const root = findTracefs(true);
    if (root === null) return false;
    try {
      return fs.readdirSync(path.join(root, 'instances')).some((i) => recorderOf(i) === pid);
    } catch {
      return false; // its private mount went between the two reads
    }
  };
  /** A child of `pid` runs `comm` (the recorder's children: mount, getconf, the gate, CMD). */
  const childRuns = (pid: number, comm: string): boolean => {
    let kids: string[] = [];
    try {
      kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    } catch {
      return false;
    }
    return kids.some((k) => { try { return fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === comm; } catch { return false; } });
  };
  /**
   * Ctrl-C at several moments of a recording. "its instance appears" is watched in a tight
   * loop, not a timed poll: the signal then lands while the recorder is still setting up, and
   * its handler runs once the gate shell is spawned but before it has read its "go" (a poll
   * every few ms nearly always lands after that, which is how a crash there hid).
   */
  const MOMENTS: ReadonlyArray<{ name: string; reached: ((pid: number) => boolean) | null; tight?: boolean; traced: boolean }> = [
    { name: 'as it starts', reached: null, traced: false },
    { name: 'the instant its tracing instance appears', reached: instanceOf, tight: true, traced: true },
    // The gate lives a millisecond or so before it becomes CMD: a loop that is descheduled may
    // see CMD already, which is still the moment just after the spawn.
    { name: 'the instant its gate shell is spawned', reached: (pid) => childRuns(pid, 'sh') || childRuns(pid, 'sleep'), tight: true, traced: true },
    { name: 'while CMD runs', reached: (pid) => childRuns(pid, 'sleep'), traced: true },
  ];
  for (const moment of MOMENTS) {
    it(`when a recording is interrupted ${moment.name} then it exits 130 and the tracing state is as before`, async () => {
      const file = path.join(tmp, 'sleep.trace');
      fs.rmSync(file, { force: true });
      const before = tracingState();
      const rec = record(['-o', file, '--', 'sleep', '30']);
      const reached = moment.reached;
      if (reached !== null) {
        let ok = false;
        if (moment.tight === true) {
          const end = Date.now() + 20_000;
          while (!ok && Date.now() < end) ok = reached(rec.pid);
        } else {
          ok = (await pollUntil(() => (reached(rec.pid) ? true : undefined), { timeoutMs: 20_000, intervalMs: 20 })) === true;
        }
        assert.ok(ok, `the recorder reached the moment: ${moment.name}`);
      }
      process.kill(rec.pid, 'SIGINT');
      const { code, signal, stderr } = await rec.done;
      // Killed before its handler was installed, node dies of the signal: a shell sees 130 too.
      const status = code ?? 128 + os.constants.signals[signal!];
      assert.equal(status, 130, `the recorder ends as CMD did, of SIGINT\n${stderr}`);
      assert.doesNotMatch(stderr, /Error|internal/, 'no crash');
      assert.deepEqual(seenBy(tracingState(), rec.pid), seenBy(before, rec.pid), 'tracing state as it was');
      if (moment.traced) {
        const t = readTrace(file);
        assert.ok(t.summary, 'the trace has its end record');
        assert.equal(t.summary.interrupted, true);
        assert.equal(t.summary.exit_status, 130);
      }
    });
  }
});

describe('trace replay options', () => {
  it('when trace replay --prealloc is past vm.max_prealloc_order\'s limit then it is a usage error naming 0..4, before the trace is read', async () => {
    const r = await kscrubfs(['trace', 'replay', path.join(os.tmpdir(), 'no-such-trace.json'), '--prealloc', '99']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /expected an order 0\.\.4 or one of off, v1, v2, v5, got "99"/);
    // No V3 or V4 posting changed the default, so neither is a name.
    const v3 = await kscrubfs(['trace', 'replay', path.join(os.tmpdir(), 'no-such-trace.json'), '--prealloc', 'v3']);
    assert.equal(v3.code, 2, v3.stderr);
    assert.match(v3.stderr, /got "v3"/);
  });
});
