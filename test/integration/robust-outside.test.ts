import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { findMount } from '../../src/fuse/mountpoint';
import { TRACE_MAGIC } from '../../src/workload/trace-format';
import { kscrubfs, q, sh, withMount, withTempDir, type RunResult } from '../helpers/mount';

// Numbers from outside — a --cost figure, a record's header, a sweep spec, a trace header —
// are checked by one validator (src/uapi/bounds.ts) before anything runs: each bad value
// below is refused with a message that names it, by the real CLI, and nothing of Node's own
// (a TypeError, a stack) reaches the user. What the checks let through is bounded in memory
// (the budget) and in work (the catch-up of virtual time), so each run here ends.

function refusedCleanly(r: RunResult, code: number, message: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: ${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.doesNotMatch(r.stderr, /internal error|TypeError|is not a function|is not iterable|at .*\.js:\d+/, what);
}

const CONFIG_X86 = {
  preset: 'x86_64', mem_bytes: String(2 ** 30), nodes: '1', cpus: '4', page_size: '4096', line_size: '64', max_order: '11', cpu_mhz: '2000',
  zero_drivers: 'cpu', clock: 'manual', speed: '1', now_ns: '0', 'sysctl.scrub_start': '11', 'sysctl.scrub_stop': '4', 'sysctl.scrub_load': '999',
  'sysctl.max_prealloc_order': '4',
};

function record(options: unknown, events: unknown[] = [], config: Record<string, string> = CONFIG_X86): string {
  const lines = [{ ev: 'header', format: 'kscrubfs-record', version: 1, options, buddyinfo: 'v6', config }, ...events, { ev: 'digest', t: 0, files: {} }];
  return `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
}

describe('robust: numbers from outside', () => {
  test('when --cost has a figure outside its physical range then mount refuses it (exit 2) naming the figure and the range', async () => {
    for (const [cost, message] of [
      ['zeroBytesPerNs=0.000000000000000000001', /zeroBytesPerNs=1e-21 is outside 1e-9\.\.1000 bytes\/ns \(1 B\/s to 1 TB\/s\)/],
      [`trapNs=1${'0'.repeat(308)}`, /trapNs=1e\+308 is outside 0\.\.1000000000 ns \(0 to 1 s\)/],
      // A negative figure is a number out of range, not "not name=number"; a word is no number.
      ['zeroBytesPerNs=-1', /cost: zeroBytesPerNs=-1 is outside 1e-9\.\.1000 bytes\/ns/],
      ['trapNs=abc', /cost: trapNs="abc" is not a number$/m],
    ] as const) {
      await withTempDir(async (_tmp, dir) => {
        refusedCleanly(await kscrubfs(['mount', dir, '--cost', cost]), 2, message, cost.slice(0, 30));
      });
    }
  });

  test('when --max-memory is below what the process holds or above the host\'s memory then mount, replay and sweep refuse it (exit 2) and nothing is mounted', async () => {
    // 1M: a budget under the daemon's own resident size mounted a tree whose every read failed ENOMEM.
    const hostGiB = Math.ceil(os.totalmem() / 2 ** 30);
    await withTempDir(async (tmp, dir) => {
      const small = await kscrubfs(['mount', dir, '--max-memory', '1M', '--background']);
      refusedCleanly(small, 2, /--max-memory <size>' argument '1M' is invalid\. 1 MiB is no more than this process holds already \([\d.]+ MiB\)/, 'mount 1M');
      const big = await kscrubfs(['mount', dir, '--max-memory', `${2 * hostGiB}G`, '--background']);
      refusedCleanly(big, 2, new RegExp(`${2 * hostGiB} GiB is more than this host's memory`), 'mount twice the host');
      assert.equal(findMount(dir), undefined, 'nothing mounted');
      const file = path.join(tmp, 'session.jsonl');
      writeFileSync(file, record({ preset: 'x86_64', mem: '1G', clock: 'manual' }));
      refusedCleanly(await kscrubfs(['replay', file, '--max-memory', '1M']), 2, /1 MiB is no more than this process holds already/, 'replay 1M');
      refusedCleanly(await kscrubfs(['sweep', file, '--max-memory', '0']), 2, /0 B is no more than this process holds already/, 'sweep 0');
    });
    // A budget over the process's own size still mounts and serves reads.
    await withMount(['--clock', 'manual', '--max-memory', '256M'], async (dir) => {
      assert.match(readFileSync(path.join(dir, 'meminfo'), 'utf8'), /^MemTotal: /);
    });
  });

  test('when --speed is 1e6 (the model\'s own limit) then the mount takes it, and 1e7 is refused by the model naming the range', async () => {
    await withMount(['--preset', 'x86_64', '--speed', '1e6'], async (dir) => {
      const r = await sh(`exec 3<>${q(path.join(dir, 'control'))}; echo config >&3; head -n 1 <&3`);
      assert.match(r.stdout, / speed=1000000 /);
    });
    await withTempDir(async (_tmp, dir) => {
      refusedCleanly(await kscrubfs(['mount', dir, '--speed', '1e7']), 2, /speed: 10000000 must be a number in \(0, 1e6\]/, '1e7');
    });
  });

  test('when a record header holds options of the wrong type, unknown keys or a cost out of range then replay refuses it naming the key', async () => {
    await withTempDir(async (tmp) => {
      const cases: [unknown, RegExp][] = [
        [{ preset: 'x86_64', mem: true }, /header\.options: mem must be a size/],
        [{ preset: 'x86_64', zeroDrivers: 5 }, /zeroDrivers must be a list of names, not 5/],
        [{ preset: 'x86_64', cost: { zeroBytesPerNs: -1 } }, /zeroBytesPerNs=-1 is outside 1e-9\.\.1000/],
        [{ preset: 'x86_64', cost: { trapNs: 0, zeroBytesPerNs: 0 } }, /zeroBytesPerNs=0 is outside/],
        [{ preset: 'x86_64', colour: 'blue' }, /unknown option "colour"/],
        [JSON.parse('{"preset": "x86_64", "__proto__": {"mem": "1T"}}'), /unknown option "__proto__"/],
        [{ preset: 'x86_64', mem: 5 }, /recorded machine options are refused: mem: 5 is too small/],
      ];
      for (const [i, [options, message]] of cases.entries()) {
        const file = path.join(tmp, `h${i}.jsonl`);
        writeFileSync(file, record(options));
        refusedCleanly(await kscrubfs(['replay', file]), 1, message, JSON.stringify(options));
      }
    });
  });

  test('when a small record maps and touches 1T of a 64T machine and then advances to t = 1e300 then replay ends within its budget, saying what was refused and that the jump passes a tick\'s 24 h', async () => {
    await withTempDir(async (tmp) => {
      const file = path.join(tmp, 'big.jsonl');
      writeFileSync(file, record({ preset: 'x86_64', mem: '64T', clock: 'manual' }, [
        { ev: 'open', n: 1, t: 0, fd: 1 },
        { ev: 'write', n: 2, t: 0, path: '/control', fd: 1, offset: 0, data: 'mm new\nmmap mm=1 size=1T\ntouch mm=1 addr=0x10000000 size=1T\n' },
        { ev: 'advance', n: 3, t: 1e300 },
      ], { ...CONFIG_X86, mem_bytes: String(2 ** 46) }));
      assert.ok(Buffer.byteLength(record({})) < 1024);
      const r = await kscrubfs(['replay', file, '--max-memory', '256M']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /a command was refused: could need 12 GiB more of the daemon's memory; it holds [\d.]+ MiB of its budget 256 MiB/);
      assert.match(r.stderr, /big\.jsonl: event 3 \(advance\) moves virtual time from \d+ ns to 1e\+300 ns, more than the 24 h a tick may .*nothing after it was replayed/);
      assert.doesNotMatch(r.stderr, /differs/);
    });
  });

  test('when a trace header is null, has a command that is not a list or a page_size that is no page size then trace replay refuses it before replaying', async () => {
    await withTempDir(async (tmp) => {
      const header = { page_size: 4096, command: ['sort'], kernel: '6.1', host_cpus: 2, started: 'now', source: 'test' };
      const cases: [unknown, RegExp][] = [
        [null, /its header is not a JSON object/],
        [{ ...header, command: 5 }, /its header's command must be a list of strings/],
        [{ ...header, page_size: 1 }, /page_size 1 is not a host's page size/],
        [{ ...header, page_size: 0.5 }, /page_size 0\.5 is not a host's page size/],
        [{ ...header, page_size: 1e300 }, /page_size 1e\+300 is not a host's page size/],
        [{ ...header, extra: 1 }, /unknown field "extra"/],
      ];
      for (const [i, [h, message]] of cases.entries()) {
        const file = path.join(tmp, `t${i}.trace`);
        writeFileSync(file, `${TRACE_MAGIC}${JSON.stringify(h)}\n`);
        refusedCleanly(await kscrubfs(['trace', 'replay', file, '--preset', 'x86_64']), 1, message, JSON.stringify(h));
      }
    });
  });

  test('when a sweep spec makes a billion points, or holds values of the wrong type, range or name then sweep --list refuses it before building a point', async () => {
    await withTempDir(async (tmp) => {
      const thousand = Array.from({ length: 1000 }, (_, i) => i + 1);
      const cases: [unknown, RegExp][] = [
        [{ workload: { reps: thousand, cachelines: thousand, threads: thousand } }, /its grid has 1000000000 points, more than the 10000 a sweep runs/],
        [{ machine: { mem: true } }, /machine\.mem: mem must be a size/],
        [{ machine: { cost: { zeroBytesPerNs: 0 } } }, /zeroBytesPerNs=0 is outside 1e-9\.\.1000/],
        [{ machine: { cost: { trapNs: 1e308 } } }, /trapNs=1e\+308 is outside 0\.\.1000000000/],
        [{ machine: { cost: JSON.parse('{"__proto__": 5}') } }, /"__proto__" is not a cost figure/],
        [JSON.parse('{"machine": {"__proto__": {"mem": "1T"}}}'), /machine: unknown key "__proto__"/],
        [{ workload: { bytes: 0.5 } }, /workload\.bytes: 0\.5 is not a valid value/],
        [{ workload: { scrub: 'maybe' } }, /workload\.scrub: "maybe" is not a valid value/],
      ];
      for (const [i, [spec, message]] of cases.entries()) {
        const file = path.join(tmp, `s${i}.json`);
        writeFileSync(file, JSON.stringify(spec));
        refusedCleanly(await kscrubfs(['sweep', file, '--list'], { cwd: tmp }), 1, message, JSON.stringify(spec).slice(0, 60));
      }
    });
  });

  test('when a sweep point would take a 64T machine past the budget then that point fails saying so and the sweep ends', async () => {
    await withTempDir(async (tmp) => {
      const file = path.join(tmp, 'huge.json');
      writeFileSync(file, JSON.stringify({ name: 'huge', machine: { preset: 'x86_64', mem: 2 ** 46 }, workload: { bytes: '1T' } }));
      const r = await kscrubfs(['sweep', file, '--jobs', '1', '--max-memory', '256M', '-o', 'huge.jsonl'], { cwd: tmp, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /1 failed/);
      const row = JSON.parse(readFileSync(path.join(tmp, 'huge.jsonl'), 'utf8')) as { error?: string };
      assert.match(row.error ?? '', /could need [\d.]+ GiB more of the daemon's memory; it holds [\d.]+ MiB of its budget 256 MiB/);
    });
  });
});
