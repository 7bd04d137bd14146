import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseVmstat } from '../../src/uapi';
import path from 'node:path';
import { describe, test } from 'node:test';
import { PUBLISHED, calibrationErrors, standingRows, withinBand } from '../../src/workload/calibration';
import type { PublishedRow } from '../../src/workload/calibration';
import { CLI, REPO_ROOT, kscrubfs, run, sh, withMount } from '../helpers/mount';
import { fittedFilePath } from '../../src/cli/fit-file';
import { I386_FITTED } from '../../src/model';

// End to end: a real mount, the real `kscrubfs pft` process talking to it through `control`.

const MANUAL = ['--clock', 'manual'];

interface Row { gb: number; rep: number; threads: number; userS: number; systemS: number; wallS: number; fltPerCpuS: number; faultPerWsec: number }

/** Parse pft's table strictly: the header, then one row of 8 numeric columns per thread count. */
function parseTable(text: string): Row[] {
  const lines = text.trimEnd().split('\n');
  // Under the rows, the line that says what the run used (prefault off by default).
  assert.match(lines.pop()!, /^ran with: altix, zero drivers [\w,]+, prefault off, (kscrubd off|scrub_start \d+, scrub_stop \d+), manual clock; \d+ cachelines? a page/);
  assert.match(lines[0]!, /^\s*Gb\s+Rep\s+Threads\s+User\s+System\s+Wall\s+flt\/cpu\/s\s+fault\/wsec$/);
  return lines.slice(1).map((line) => {
    const m = /^\s*([\d.]+)\s+(\d+)\s+(\d+)\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)s\s+([\d.]+)\s+([\d.]+)$/.exec(line);
    assert.ok(m, `pft row: ${JSON.stringify(line)}`);
    const n = m.slice(1).map(Number);
    return { gb: n[0]!, rep: n[1]!, threads: n[2]!, userS: n[3]!, systemS: n[4]!, wallS: n[5]!, fltPerCpuS: n[6]!, faultPerWsec: n[7]! };
  });
}

const vmstat = (dir: string): Map<string, number> => parseVmstat(readFileSync(path.join(dir, 'vmstat'), 'utf8'));

describe('kscrubfs pft against a mount', () => {
  test('when the kscrubfs pft process runs against a mount then it loads no module of the daemon\'s side (model, procfs, control, daemon)', async () => {
    await withMount(MANUAL, async (dir) => {
      const out = path.join(dir, '..', 'loaded.json');
      // A preload that writes the process's require.cache as it exits: every module it loaded.
      const preload = path.join(dir, '..', 'dump-loaded.js');
      writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`);
      const r = await run(process.execPath, ['-r', preload, CLI, 'pft', '-m', dir, '-g', '0.015625', '-t', '1']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\s*Gb Rep Threads/);
      const src = path.join(path.dirname(CLI), '..');
      const layers = (JSON.parse(readFileSync(out, 'utf8')) as string[])
        .filter((f) => f.startsWith(src + path.sep))
        .map((f) => path.relative(src, f));
      assert.ok(layers.includes(path.join('workload', 'pft.js')), 'the dump saw the pft client');
      assert.deepEqual(layers.filter((f) => /^(model|procfs|control|daemon)\//.test(f)), []);
    });
  });

  test('when pft runs several thread counts then each row is printed as it finishes, while the next still runs (pft.c prints per row, so | tee shows progress)', { timeout: 120_000 }, async () => {
    await withMount(MANUAL, async (dir) => {
      const child = spawn(process.execPath, [CLI, 'pft', '-m', dir, '-g', '4', '-r', '3', '-t', '1,8,8'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      // How many rows each read of the pipe brought: printed at the end, they would come at once.
      const rowsPerRead: number[] = [];
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const rows = out.split('\n').filter((l) => /^\s*[\d.]+\s+\d+\s+\d+\s/.test(l)).length;
        if (rows > (rowsPerRead.at(-1) ?? 0)) rowsPerRead.push(rows);
      });
      child.stderr.resume();
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0);
      assert.deepEqual(rowsPerRead, [1, 2, 3], 'each row reached the pipe on its own, as it finished');
      assert.deepEqual(parseTable(out).map((r) => r.threads), [1, 8, 8]);
    });
  });

  test('when pft -g 1 -r 2 -t 1,2 runs with scrubbing on then the table is pft\'s and faults were prezeroed', async () => {
    await withMount(MANUAL, async (dir) => {
      const r = await kscrubfs(['pft', '-m', dir, '-g', '1', '-r', '2', '-t', '1,2', '--scrub', 'on', '--settle', '--prealloc', '0']);
      assert.equal(r.code, 0, r.stderr);
      const rows = parseTable(r.stdout);
      assert.deepEqual(rows.map((x) => [x.gb, x.rep, x.threads]), [[1, 2, 1], [1, 2, 2]]);
      for (const row of rows) {
        const pages = (2 ** 30 * 2) / 16384;
        // flt/cpu/s = pages ÷ (User + System), to the printed precision.
        assert.ok(Math.abs(row.fltPerCpuS * (row.userS + row.systemS) - pages) < pages * 0.01, `pages from flt/cpu/s: ${JSON.stringify(row)}`);
        assert.ok(Math.abs(row.faultPerWsec * row.wallS - pages) < pages * 0.01, `pages from fault/wsec: ${JSON.stringify(row)}`);
      }
      // Published (patched, 4 GiB × 3): two threads fault no faster than one by the wall clock,
      // and spend more CPU per fault — what is left of a prezeroed fault is mostly serialized.
      assert.ok(rows[1]!.fltPerCpuS < rows[0]!.fltPerCpuS, 'two threads contend: more CPU per fault');

      const json = await kscrubfs(['pft', '-m', dir, '-b', '256M', '-t', '1', '--scrub', 'on', '--settle', '--prealloc', '0', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const result = JSON.parse(json.stdout) as {
        kscrubfs: string; machine: { preset: string; zeroDrivers: string[]; pageSize: number; costOverrides: object };
        clock: { mode: string }; sysctl: Record<string, number>;
        rows: { pages: number; faults: number; prezeroed: number; hotZeroed: number }[];
      };
      // Provenance: what made the numbers, with the sysctls the run itself set.
      assert.match(result.kscrubfs, /^\d+\.\d+\.\d+/);
      assert.deepEqual([result.machine.preset, result.machine.zeroDrivers, result.machine.pageSize, result.clock.mode], ['altix', ['bte', 'cpu'], 16384, 'manual']);
      assert.deepEqual(result.sysctl, { scrub_start: 5, scrub_stop: 2, scrub_load: 999, max_prealloc_order: 0 });
      assert.deepEqual(result.machine.costOverrides, {});
      const [row] = result.rows;
      assert.equal(row!.pages, 2 ** 28 / 16384);
      assert.equal(row!.faults, row!.pages);
      assert.ok(row!.prezeroed > 0, 'scrubbing on: some faults took prezeroed pages');
      assert.equal(row!.prezeroed + row!.hotZeroed, row!.pages);
      // pft restored the sysctls it changed.
      assert.equal(readFileSync(path.join(dir, 'sys/vm/scrub_start'), 'utf8'), '18\n');
      assert.equal(readFileSync(path.join(dir, 'sys/vm/max_prealloc_order'), 'utf8'), '4\n');
    });
  });

  test("when --prealloc mount is given then the mount's own prefault order runs (fewer faults than pages), and the line under the table says so", async () => {
    await withMount(MANUAL, async (dir) => {
      const r = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--scrub', 'off', '--prealloc', 'mount', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { sysctl: Record<string, number>; rows: { faults: number; prefaulted: number; pages: number }[] };
      assert.equal(out.sysctl.max_prealloc_order, 4);
      const row = out.rows[0]!;
      assert.ok(row.faults < row.pages && row.faults + row.prefaulted === row.pages, JSON.stringify(row));
      const t = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--prealloc', 'mount']);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout.trimEnd().split('\n').at(-1)!, /^ran with: altix, zero drivers bte,cpu, prefault order 4, kscrubd off, manual clock; 1 cacheline a page$/);
      const bad = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--prealloc', 'some']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /expected an order 0\.\.4 or one of off, v1, v2, v5, mount, got "some"/);
      // v1 by name: order 3. 1024 pages of 16 KiB: 1 + 2 + 4, then 127 faults of 8 and one of
      // the last page (the run stops at the mapping's end): 131 faults.
      const v1 = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--scrub', 'off', '--prealloc', 'v1', '--json']);
      assert.equal(v1.code, 0, v1.stderr);
      const o1 = JSON.parse(v1.stdout) as { sysctl: Record<string, number>; rows: { faults: number; prefaulted: number; pages: number }[] };
      assert.equal(o1.sysctl.max_prealloc_order, 3);
      assert.deepEqual([o1.rows[0]!.pages, o1.rows[0]!.faults, o1.rows[0]!.prefaulted], [1024, 131, 1024 - 131]);
      assert.equal(readFileSync(path.join(dir, 'sys/vm/max_prealloc_order'), 'utf8'), '4\n', 'restored');
    });
  });

  test('when scrubbing is off then no fault is prezeroed and vmstat counts every fault', async () => {
    await withMount(MANUAL, async (dir) => {
      const before = vmstat(dir);
      const r = await kscrubfs(['pft', '-m', dir, '-b', '256M', '-t', '1,2', '--scrub', 'off', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const { rows } = JSON.parse(r.stdout) as { rows: { faults: number; prezeroed: number; hotZeroed: number; prefaulted: number; pages: number }[] };
      for (const row of rows) {
        assert.equal(row.prezeroed, 0);
        assert.ok(row.hotZeroed > 0);
        // No prefault by default (as no mainline kernel prefaults anonymous memory): a fault a page.
        assert.ok(row.faults === row.pages && row.prefaulted === 0, JSON.stringify(row));
      }
      const after = vmstat(dir);
      const faults = rows.reduce((s, x) => s + x.faults, 0);
      assert.equal(after.get('pgfault')! - before.get('pgfault')!, faults);
      const check = await sh(`exec 3<>${dir}/control; echo check >&3; read -r line <&3; echo "$line"`);
      assert.equal(check.stdout.trim(), 'ok');
    });
  });

  test('when pft runs more threads than the machine has CPUs then System stays within CPUs × Wall (no CPU time counted twice)', { timeout: 120_000 }, async () => {
    // x86_64 has 4 CPUs: 16 threads take turns on them, and a spinner on page_table_lock keeps its CPU.
    await withMount([...MANUAL, '--preset', 'x86_64'], async (dir) => {
      for (const scrub of ['off', 'on']) {
        const r = await kscrubfs(['pft', '-m', dir, '-b', '256M', '-t', '16', '--scrub', scrub, '--json']);
        assert.equal(r.code, 0, r.stderr);
        const { machine, rows } = JSON.parse(r.stdout) as { machine: { cpus: number }; rows: { threads: number; systemS: number; wallS: number }[] };
        assert.equal(machine.cpus, 4);
        assert.equal(rows[0]!.threads, 16);
        for (const row of rows) assert.ok(row.systemS > 0 && row.systemS <= machine.cpus * row.wallS * (1 + 1e-6), `--scrub ${scrub}: ${JSON.stringify(row)}`);
      }
    });
  });

  test('when pft --csv runs on a mount with a cost override then the CSV starts with # provenance lines naming it, then a header row', async () => {
    await withMount([...MANUAL, '--cost', 'trapNs=900', '--zero-drivers', 'cpu'], async (dir) => {
      const r = await kscrubfs(['pft', '-m', dir, '-b', '16M', '-t', '1,2', '--csv']);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      const comments = lines.filter((l) => l.startsWith('#'));
      assert.deepEqual(lines.slice(0, comments.length), comments, 'comments first');
      assert.match(comments.join('\n'), /^# machine: preset=altix .*zeroDrivers=cpu costOverrides=\{trapNs=900\}$/m);
      assert.match(comments.join('\n'), /^# sysctl: scrub_start=18 scrub_stop=4 scrub_load=999 max_prealloc_order=0$/m);
      assert.match(comments.join('\n'), /^# clock: mode=manual speed=1 /m);
      const [header, ...rows] = lines.slice(comments.length);
      assert.equal(header!.split(',')[2], 'threads');
      assert.deepEqual(rows.map((l) => l.split(',')[2]), ['1', '2']);
      const both = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--csv', '--json']);
      assert.equal(both.code, 2, 'a usage error');
      assert.match(both.stderr, /give --json or --csv, not both/);
      // More threads than a touch takes: a usage error before any row runs (it was exit 1,
      // "touch: threads ... out of range", after the rows before it had run).
      const many = await kscrubfs(['pft', '-m', dir, '-b', '16M', '-t', '1,1025']);
      assert.equal(many.code, 2, many.stderr);
      assert.equal(many.stdout, '');
      assert.match(many.stderr, /argument '1,1025' is invalid\. expected at most 1024 threads, got "1025"/);
    });
  });

  test('when pft is given a value out of range (fixed, or past what the mounted machine takes) then it is a usage error naming the range, before any row runs, and the mount is as it was', { timeout: 120_000 }, async () => {
    await withMount(MANUAL, async (dir) => {
      // A sysctl set by hand, and kscrubd on: a pft that ran its sets before refusing would change them.
      writeFileSync(path.join(dir, 'sys/vm/max_prealloc_order'), '2');
      writeFileSync(path.join(dir, 'sys/vm/scrub_start'), '10');
      const sysctls = (): string[] => ['scrub_start', 'scrub_stop', 'scrub_load', 'max_prealloc_order'].map((n) => readFileSync(path.join(dir, 'sys/vm', n), 'utf8'));
      const was = sysctls();
      const before = vmstat(dir);
      const cases: [string[], RegExp][] = [
        // vm.max_prealloc_order's range, from the same limit the sysctl uses (was exit 1, a bare EINVAL)
        [['--prealloc', '99'], /expected an order 0\.\.4 or one of off, v1, v2, v5, mount, got "99"/],
        [['--prealloc', 'abc'], /expected an order 0\.\.4 or one of off, v1, v2, v5, mount, got "abc"/],
        [['--prealloc', '-1'], /expected an order 0\.\.4 or one of off, v1, v2, v5, mount, got "-1"/],
        // cachelines a page: past any machine, then past this one's (128-byte lines in 16 KiB pages)
        [['-c', '999999'], /expected 1\.\.131072 cachelines, got "999999"/],
        [['-c', '0'], /expected 1\.\.131072 cachelines, got "0"/],
        [['-c', '1e308'], /expected 1\.\.131072 cachelines, got "1e308"/],
        [['--prealloc', '3', '--scrub', 'off', '-c', '99999'], /pft: cachelines=99999 is out of range 1\.\.128 \(128-byte lines in this machine's 16384-byte page\)/],
        // the largest mapping (was exit 1, "mmap: size ... out of range")
        [['-g', '100000'], /expected a number of GiB > 0 and at most 65536, got "100000"/],
        [['-g', '1e308'], /expected a number of GiB > 0 and at most 65536, got "1e308"/],
        [['-g', '0'], /expected a number of GiB > 0 and at most 65536, got "0"/],
        [['-g', '0.0000000001'], /expected a number of GiB > 0 and at most 65536, got "0.0000000001"/],
        [['-b', '100T'], /expected at most 64 TiB, got "100T"/],
        [['-r', '0'], /expected 1\.\.1000000 repetitions, got "0"/],
        [['-r', '99999999'], /expected 1\.\.1000000 repetitions, got "99999999"/],
        [['--scrub', 'on', '--scrub-start', '99'], /expected 0\.\.18 as an order, got "99"/],
        [['--scrub', 'on', '--scrub-stop', 'abc'], /expected 0\.\.18 as an order, got "abc"/],
        // a stride past the page that is no multiple of it: the first touch would refuse it
        [['--prealloc', '3', '--stride', '24K'], /pft: stride=24576 must be this machine's page size \(16384\) or less, or a multiple of it/],
      ];
      for (const [args, message] of cases) {
        const r = await kscrubfs(['pft', '-m', dir, '-b', '16M', '-t', '1,2', ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '', args.join(' '));
        assert.match(r.stderr, message, args.join(' '));
      }
      assert.deepEqual(sysctls(), was, 'every sysctl kept');
      assert.equal(vmstat(dir).get('pgfault'), before.get('pgfault'), 'no row ran');
    });
  });

  test('when another user runs pft on root\'s mount then it says the control file is the mounting user\'s, not a bare EACCES', async () => {
    await withMount(['--clock', 'manual'], async (dir) => {
      const r = await kscrubfs(['pft', '-m', dir, '-b', '16M'], { asNobody: true });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `kscrubfs: open control on the kscrubfs mount at ${dir}: EACCES: control is 0600 for the user who mounted it (and root); run as that user\n`);
    });
  });

  test('when pft --stride 16K runs on 4 KiB pages then one page in four faults and pages still counts all of them, as pft.c does; a stride of a page or less writes every page', async () => {
    await withMount(['--preset', 'i386', ...MANUAL], async (dir) => {
      const json = async (extra: string[]) => {
        const r = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--prealloc', '0', '--json', ...extra]);
        assert.equal(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as { rows: { pages: number; faults: number; fltPerCpuS: number }[] }).rows[0]!;
      };
      const every = await json([]);
      const strided = await json(['--stride', '16K']);
      assert.equal(every.pages, 4096);
      assert.equal(every.faults, 4096);
      assert.equal(strided.pages, 4096, 'pft computes pages = bytes ÷ page size');
      assert.equal(strided.faults, 1024, 'one fault each 16 KiB');
      assert.ok(strided.fltPerCpuS > 3 * every.fltPerCpuS, `a quarter of the work per counted page: ${strided.fltPerCpuS} vs ${every.fltPerCpuS}`);
      // A stride of a page or less writes every page: pft drops it, and the run is the every-page run.
      for (const small of ['4K', '2K']) {
        const got = await json(['--stride', small]);
        assert.deepEqual([got.pages, got.faults], [4096, 4096], `--stride ${small} on 4 KiB pages: every page faults once`);
      }
      const bad = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--stride', '6K']);
      // Checked against the mount before any row runs: a usage error, not the first touch's refusal.
      assert.equal(bad.code, 2, bad.stderr);
      assert.equal(bad.stdout, '');
      assert.match(bad.stderr, /stride=6144 must be this machine's page size \(4096\) or less, or a multiple of it/);
    });
  });

  test('when --scrub off meets free memory that is already zeroed then pft refuses, says how to get a fresh machine, and changes nothing', async () => {
    await withMount(MANUAL, async (dir) => {
      const on = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--scrub', 'on', '--settle']);
      assert.equal(on.code, 0, on.stderr);
      const memZero = (await sh(`grep MemZero ${dir}/meminfo`)).stdout;
      assert.doesNotMatch(memZero, / 0 kB/, 'kscrubd zeroed memory');
      const before = (await sh(`cat ${dir}/sys/vm/scrub_start ${dir}/sys/vm/scrub_stop`)).stdout;
      const off = await kscrubfs(['pft', '-m', dir, '-b', '16M', '--scrub', 'off']);
      assert.equal(off.code, 1);
      assert.equal(off.stdout, '', 'no rows');
      assert.match(off.stderr, /^kscrubfs: pft --scrub off: [\d.]+ [KMG]iB of this machine's free memory is already zeroed \(MemZero\), and faults take it first: .* Run it on a fresh machine \(kscrubfs umount, then kscrubfs mount again\)\n$/);
      assert.equal((await sh(`cat ${dir}/sys/vm/scrub_start ${dir}/sys/vm/scrub_stop`)).stdout, before, 'sysctls as they were');
      assert.equal((await sh(`grep MemZero ${dir}/meminfo`)).stdout, memZero, 'no fault ran');
    });
  });

  test('when calibrate --fit names a preset without published rows then it is refused naming the presets that have them', async () => {
    const r = await kscrubfs(['calibrate', '--fit', 'epyc']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /calibrate --fit: "epyc" has no published rows \(presets with rows: altix, i386\)/);
    assert.equal(r.stdout, '');
  });

  test('when calibrate --write comes without --fit then it is refused before any row runs', async () => {
    const before = ['altix', 'i386'].map((p) => readFileSync(fittedFilePath(p), 'utf8'));
    const alone = await kscrubfs(['calibrate', '--write']);
    assert.equal(alone.code, 2, alone.stderr);
    assert.match(alone.stderr, /calibrate --write: only with --fit <preset>/);
    assert.equal(alone.stdout, '');
    assert.deepEqual(['altix', 'i386'].map((p) => readFileSync(fittedFilePath(p), 'utf8')), before, 'the fitted files are untouched');
  });

  test('when calibrate --fit i386 evaluates its start then it finds the start and the sum the generated fitted-i386.ts records, so its command reproduces it', async () => {
    const r = await kscrubfs(['calibrate', '--fit', 'i386', '--max-iterations', '0', '--json'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { params: { name: string; start: number; lo: number; hi: number }[]; startSumSq: number };
    const start = I386_FITTED.start as Readonly<Record<string, number>>;
    assert.deepEqual(got.params.map((p) => [p.name, p.start]), Object.entries(start));
    assert.deepEqual(got.params.map((p) => [p.lo, p.hi]), Object.values(I386_FITTED.bounds));
    assert.equal(Number(got.startSumSq.toPrecision(6)), I386_FITTED.startSumSq);
  });

  // The cost file is fitted with the preset's placement and handoff.
  for (const flag of ['--balance-timers', '--lock-line-queue']) {
    test(`when calibrate ${flag} comes with --write then it is refused before any row runs (the cost file is fitted with the preset's mechanisms)`, async () => {
      const before = readFileSync(fittedFilePath('altix'), 'utf8');
      const r = await kscrubfs(['calibrate', '--fit', 'altix', flag, '--write', '--max-iterations', '0']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`calibrate ${flag}: not with --write`));
      assert.equal(r.stdout, '');
      assert.equal(readFileSync(fittedFilePath('altix'), 'utf8'), before, 'the fitted file is untouched');
    });
  }

  test('when calibrate --max-iterations comes without --fit then it is refused before any row runs (it would be ignored)', async () => {
    const r = await kscrubfs(['calibrate', '--max-iterations', '2']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /calibrate --max-iterations: only with --fit <preset>/);
    assert.equal(r.stdout, '');
  });

  test('when nothing is mounted then pft says so and exits non-zero', async () => {
    const r = await kscrubfs(['pft', '-m', '/nonexistent-kscrubfs', '-b', '1M']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nothing is mounted at \/nonexistent-kscrubfs/);
  });

  test('when calibrate runs then every published row is compared on its own machine and the V1 single-thread rows are within their band', async () => {
    // Every row of the published tables (docs/calibration.md), each on a mount of the machine
    // it was measured on, on a manual clock: the numbers are deterministic. The exit code says
    // whether any target column (flt/cpu/s, fault/wsec) is outside its band.
    const r = await kscrubfs(['calibrate', '--json'], { timeoutMs: 600_000 });
    // Piped, no progress line (test/integration/progress.test.ts shows it on a terminal).
    assert.doesNotMatch(r.stderr, /[\r\x1b]/);
    const { rows, comparisons, presets } = JSON.parse(r.stdout) as {
      rows: { label: string }[];
      comparisons: { label: string; column: string; model: number; published: number; ratio: number; target: boolean; ok: boolean }[];
      presets: { preset: string; rows: number; targets: number; within: number; rmsLogError: number }[];
    };
    assert.deepEqual(rows.map((x) => x.label), PUBLISHED.map((p) => p.label));
    const columns = (p: PublishedRow): number => 2 + [p.userS, p.systemS, p.wallS].filter((v) => v !== undefined).length;
    assert.equal(comparisons.length, PUBLISHED.reduce((n, p) => n + columns(p), 0));
    for (const c of comparisons) {
      const p = PUBLISHED.find((x) => x.label === c.label)!;
      const published = c.column === 'flt/cpu/s' ? p.fltPerCpuS : c.column === 'fault/wsec' ? p.faultPerWsec : [c.published];
      assert.equal(c.ok, withinBand(c.model, published), `${c.label} ${c.column}`);
      assert.equal(c.target, c.column === 'flt/cpu/s' || c.column === 'fault/wsec');
    }
    assert.equal(r.code, comparisons.every((c) => !c.target || c.ok) ? 0 : 1, r.stderr);
    // docs/calibration.md's table of the model's columns is what calibrate finds (as it prints
    // them, to the fault): kscrubfs presets and the answers' bands read it instead of running
    // the rows, so a change of the model that moves a column must bring the table along.
    const doc = readFileSync(path.join(REPO_ROOT, 'docs/calibration.md'), 'utf8');
    const model = (label: string, column: string): number => Math.round(comparisons.find((c) => c.label === label && c.column === column)!.model);
    const found = PUBLISHED.map((p) => ({ label: p.label, fltPerCpuS: model(p.label, 'flt/cpu/s'), faultPerWsec: model(p.label, 'fault/wsec') }));
    assert.deepEqual(standingRows(doc), found, `docs/calibration.md's "Where the model stands" must have calibrate's flt/cpu/s and fault/wsec:\n${found.map((f) => `${f.label}: ${f.fltPerCpuS.toLocaleString('en')} ${f.faultPerWsec.toLocaleString('en')}`).join('\n')}`);
    const standing = calibrationErrors(standingRows(doc));
    assert.deepEqual([...standing.keys()], presets.map((p) => p.preset));
    for (const p of presets) {
      const s = standing.get(p.preset)!;
      assert.deepEqual([s.rows, s.targets, s.within, s.rms.toFixed(3)], [p.rows, p.targets, p.within, p.rmsLogError.toFixed(3)], p.preset);
    }
    const v1SingleThread = ['base 4G×3 1t', 'patched 4G×3 1t', 'patched 1G×1', 'patched 1G×1 128 lines'];
    for (const c of comparisons.filter((x) => x.target && v1SingleThread.includes(x.label))) {
      assert.ok(c.ok, `${c.label} ${c.column}: model ${c.model} vs published ${c.published} (ratio ${c.ratio.toFixed(3)})`);
    }
  });
});
