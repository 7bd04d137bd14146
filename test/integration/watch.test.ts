import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { parseBuddyinfo, parseMeminfo, parseVmstat } from '../../src/uapi';
import { CLI, REPO_ROOT, childPids, control, kscrubfs, processAlive, q, run, sysctl, withMount, withTempDir } from '../helpers/mount';

// `kscrubfs watch` against a real mount: --once frames checked number by number against the
// files (a manual clock keeps them still), the live view in a real terminal (tmux), and the
// plain stream when stdout is a pipe. The test reads the files with its own small parsers.

const MANUAL = ['--clock', 'manual'];

async function once(dir: string, ...more: string[]): Promise<string> {
  const r = await kscrubfs(['watch', dir, '--once', '--interval', '0.1', ...more]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(!r.stdout.includes('\x1b'), 'plain text: no escape codes');
  return r.stdout;
}

const file = (dir: string, name: string): string => readFileSync(path.join(dir, name), 'utf8');

/** buddyinfo's numbers: per zone "Node N, zone NAME" → the counts of its line(s). */
function buddyinfoCounts(text: string): { title: string; first: readonly number[]; zeroed: readonly number[] | null }[] {
  return parseBuddyinfo(text).map((z) => ({ title: `Node ${z.node}, zone ${z.zone}`, first: z.counts, zeroed: z.zeroed }));
}

function vmstat(dir: string): Map<string, number> {
  return parseVmstat(file(dir, 'vmstat'));
}

function meminfoKb(dir: string, field: string): number {
  return parseMeminfo(file(dir, 'meminfo')).get(field)!;
}

/**
 * The frame's zone block for `title`: per order, the two counts and the bar's cells, checked
 * against the buddyinfo line(s): counts equal, bar cells as the documented rule gives them
 * (each order's share of the zone's free pages over the bar's width, a non-empty class ≥ 1 cell).
 */
function checkZone(frame: string, zone: { title: string; first: readonly number[]; zeroed: readonly number[] | null }): void {
  const lines = frame.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${zone.title}: `));
  assert.ok(at >= 0, `${zone.title} in\n${frame}`);
  const pagesAt = (counts: readonly number[], order: number): number => counts[order]! * 2 ** order;
  const zeroed = zone.zeroed ?? zone.first.map(() => 0);
  const free = zone.first.reduce((s, _, o) => s + pagesAt(zone.first, o) + pagesAt(zeroed, o), 0);
  assert.equal(lines[at], `${zone.title}: ${free} pages free`);
  const barW = 80 - 24;
  for (let order = 0; order < zone.first.length; order++) {
    const row = lines[at + 2 + order]!;
    const m = /^ +(\d+) +(\d+) +(\d+|-) ?(#*)(=*)$/.exec(row);
    assert.ok(m, `order row: "${row}"`);
    assert.deepEqual([Number(m[1]), Number(m[2]), m[3]], [order, zone.first[order], zone.zeroed ? String(zone.zeroed[order]) : '-'], `${zone.title} order ${order}`);
    const nz = pagesAt(zone.first, order);
    const z = pagesAt(zeroed, order);
    const cells = nz + z === 0 ? 0 : Math.max(1, Math.round(((nz + z) / free) * barW));
    assert.equal(m[4]!.length + m[5]!.length, cells, `${zone.title} order ${order}: bar length`);
    if (cells >= 2) {
      assert.equal(m[4]!.length > 0, z > 0, `${zone.title} order ${order}: zeroed cells iff zeroed pages`);
      assert.equal(m[5]!.length > 0, nz > 0, `${zone.title} order ${order}: not-zeroed cells iff not-zeroed pages`);
    }
  }
}

describe('kscrubfs watch', () => {
  test('when nothing is mounted then it says so and exits 1', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['watch', dir, '--once']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `kscrubfs: nothing is mounted at ${dir} (no ${dir}/buddyinfo; start one with 'kscrubfs mount ${dir}')\n`);
    });
  });

  test('when -n is past a day (1e308) then it is a usage error (2); Node\'s timer would have fired at once with a warning', async () => {
    await withMount(['--clock', 'manual'], async (dir) => {
      for (const n of ['1e308', '86401']) {
        const r = await kscrubfs(['watch', dir, '--once', '-n', n]);
        assert.equal(r.code, 2, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, new RegExp(`argument '${n}' is invalid\\. expected at most 86400 s \\(a day\\)`));
        assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
      }
    });
  });

  test('when blocks are allocated, freed and scrubbed then --once shows the files\' numbers and kscrubd\'s state', async () => {
    await withMount(MANUAL, async (dir) => {
      await control(dir, 'alloc order=3 count=3', 'alloc order=0 count=5 node=1', 'free handles=2');
      let frame = await once(dir);
      assert.match(frame, /^kscrubd {3}off: - pages\/s, scrub_start 18 = MAX_ORDER$/m);

      // Waking every node: four kscrubds runnable (loadavg) before the clock moves.
      await sysctl(dir, 'scrub_stop', 2);
      await sysctl(dir, 'scrub_start', 9);
      frame = await once(dir);
      assert.match(file(dir, 'loadavg'), / 4\/\d+ /);
      assert.match(frame, /^kscrubd {3}awake: - pages\/s, 4\/4 runnable, 0 pages in flight$/m);

      // 5 ms in, each holds a block off-list while zeroing it.
      await control(dir, 'tick 5ms');
      frame = await once(dir);
      const inFlight = vmstat(dir).get('nr_scrub_pages')!;
      assert.ok(inFlight > 0);
      assert.match(frame, new RegExp(`^kscrubd {3}awake: - pages/s, 4/4 runnable, ${inFlight} pages in flight$`, 'm'));

      // Done: asleep, and every number as the files have it.
      await control(dir, 'tick 10s');
      frame = await once(dir);
      const v = vmstat(dir);
      assert.match(frame, /^kscrubd {3}asleep: - pages\/s$/m);
      assert.match(frame, new RegExp(`^ {10}since boot: ${v.get('kscrubd_pages')} pages zeroed in ${v.get('kscrubd_bursts')} bursts; scrub_start 9, scrub_stop 2$`, 'm'));
      const free = meminfoKb(dir, 'MemFree');
      const zero = meminfoKb(dir, 'MemZero');
      assert.ok(zero > 0);
      assert.match(frame, new RegExp(`^MemFree {3}${free} kB {3}MemZero ${zero} kB \\(${((zero / free) * 100).toFixed(1)}% of free\\)$`, 'm'));
      assert.match(frame, /^kscrubfs watch .*: up 10\.00 s \(last 0\.00 s of machine time in 0\.\d\d s\)$/m);
      const zones = buddyinfoCounts(file(dir, 'buddyinfo'));
      assert.equal(zones.length, 4);
      for (const zone of zones) checkZone(frame, zone);
      assert.ok(zones.some((z) => z.zeroed!.some((n) => n > 0) && z.first.some((n) => n > 0)), 'some zone has both classes');
    });
  });

  test('when a process faults then --once shows the faults since boot and the prezeroed share', async () => {
    await withMount(MANUAL, async (dir) => {
      await sysctl(dir, 'scrub_start', 5);
      await control(dir, 'tick 10s');
      const [, map] = await control(dir, 'mm new keep', 'mmap mm=1 size=4M');
      const addr = /addr=(0x[0-9a-f]+)/.exec(map!)![1];
      await control(dir, `touch mm=1 addr=${addr} size=4M`);
      const v = vmstat(dir);
      const pre = v.get('pgfault_prezeroed')!;
      const hot = v.get('pgfault_hot_zeroed')!;
      assert.ok(v.get('pgfault')! > 0 && pre > 0);
      const frame = await once(dir);
      assert.match(frame, new RegExp(`^ {10}since boot: ${v.get('pgfault')} faults, ${((pre / (pre + hot)) * 100).toFixed(1)}% of pages prezeroed$`, 'm'));
      assert.match(frame, /^faults {4}-\/s, - of pages prezeroed$/m, 'nothing happened between the two samples');
    });
  });

  test('when --once gives --json or --csv then the result says how the machine was made, and without the control file says why not', async () => {
    await withMount([...MANUAL, '--preset', 'x86_64', '--mem', '512M'], async (dir) => {
      await sysctl(dir, 'scrub_stop', 3);
      const json = JSON.parse(await once(dir, '--json'));
      assert.equal(json.machine.preset, 'x86_64');
      assert.equal(json.machine.memBytes, 512 * 2 ** 20);
      assert.equal(json.clock.mode, 'manual');
      assert.equal(json.sysctl.scrub_stop, 3);
      const zones = buddyinfoCounts(file(dir, 'buddyinfo'));
      assert.equal(json.rows.length, zones.length * 11, 'a row per zone and order');
      assert.equal(json.rows[0].notZeroedBlocks, zones[0]!.first[0]);
      const csv = (await once(dir, '--csv')).trimEnd().split('\n');
      assert.match(csv[0]!, /^# kscrubfs \d/);
      assert.ok(csv.some((l) => /^# machine: preset=x86_64 /.test(l)), csv.join('\n'));
      assert.ok(csv.some((l) => /^# sysctl: .*scrub_stop=3/.test(l)));
      assert.equal(csv.filter((l) => !l.startsWith('#')).length, 1 + zones.length * 11);

      // nobody may read the files but not the control file (0600): the machine is unknown, and
      // says why; the sysctls still come from their files.
      const r = await kscrubfs(['watch', dir, '--once', '--interval', '0.1', '--json'], { asNobody: true });
      assert.equal(r.code, 0, r.stderr);
      const anon = JSON.parse(r.stdout);
      assert.equal(anon.machine, null);
      assert.match(anon.unknown, /control.*EACCES/);
      assert.equal(anon.sysctl.scrub_stop, 3);
      assert.equal(anon.sysctl.scrub_start, 11);
      assert.equal(anon.rows.length, zones.length * 11);
      const c = await kscrubfs(['watch', dir, '--once', '--interval', '0.1', '--csv'], { asNobody: true });
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /^# machine: unknown \(.*EACCES.*\)\n# sysctl: max_prealloc_order=4 nr_hugepages=0 scrub_load=999 scrub_start=11 scrub_stop=3\nnode,zone,order,/m);
    });
  });

  test('when the mount uses --buddyinfo stock then the frame says there is no split and shows totals', async () => {
    await withMount([...MANUAL, '--buddyinfo', 'stock'], async (dir) => {
      await control(dir, 'alloc order=4 count=2');
      const frame = await once(dir);
      assert.match(frame, /^buddyinfo stock format: no zeroed \/ not-zeroed split, totals only \(=\)$/m);
      assert.ok(!/#/.test(frame));
      for (const zone of buddyinfoCounts(file(dir, 'buddyinfo'))) checkZone(frame, zone);
    });
  });

  test('when kscrubd zeroes on a live clock then --once gives its rate per machine second', async () => {
    // MAX_ORDER 11: altix's 18 orders give kscrubd 512 MiB blocks, none done in 0.025 s.
    await withMount(['--speed', '0.05', '--zero-drivers', 'cpu', '--max-order', '11'], async (dir) => {
      await sysctl(dir, 'scrub_stop', 2);
      await sysctl(dir, 'scrub_start', 5);
      const r = await kscrubfs(['watch', dir, '--once', '--interval', '0.5']);
      assert.equal(r.code, 0, r.stderr);
      const m = /^kscrubd {3}awake: (\d+) pages\/s \(([\d.]+) MiB\/s\), [1-4]\/4 runnable/m.exec(r.stdout);
      assert.ok(m, r.stdout);
      assert.ok(Number(m[1]) > 0);
      assert.equal(Number(m[2]), Number(((Number(m[1]) * 16) / 1024).toFixed(1)), '16 KiB pages');
      assert.match(r.stdout, /\(last 0\.0\d s of machine time in 0\.[5-9]\d s\)/, 'speed 0.05: 0.5 s of wall is 0.025 s of machine time');
    });
  });

  test('when stdout is a pipe then it prints a plain frame per refresh, and SIGINT ends it with 0', async () => {
    await withMount(MANUAL, async (dir) => {
      const child = spawn(process.execPath, [CLI, 'watch', dir, '-n', '0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const frames = await pollUntil(() => ((out.match(/^kscrubfs watch /gm)?.length ?? 0) >= 3 ? true : undefined), { timeoutMs: 10_000 });
        assert.ok(frames, out);
        child.kill('SIGINT');
        assert.equal(await exited, 0);
      } finally {
        child.kill('SIGKILL');
      }
      assert.ok(!out.includes('\x1b'));
      assert.match(out, /first sample; refresh every 0\.1 s/);
      assert.match(out, /\n\nkscrubfs watch .*last 0\.00 s of machine time/, 'a blank line between frames');
    });
  });

  test('when it runs in a terminal (tmux) then it draws, redraws as the machine moves, and Ctrl-C restores the terminal', async () => {
    const have = await run('tmux', ['-V']).catch(() => undefined);
    assert.ok(have?.code === 0, 'tmux is missing: run scripts/setup.sh --with-clients');
    // A private server on a socket of our own, removed afterwards with its directory.
    const socketDir = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-tmux-'));
    const tmux = (...args: string[]) => run('tmux', ['-S', path.join(socketDir, 'socket'), ...args]);
    const screen = async (): Promise<string> => (await tmux('capture-pane', '-p', '-t', 'w')).stdout;
    const flags = async (): Promise<string> => (await tmux('display', '-p', '-t', 'w', '#{alternate_on} #{cursor_flag}')).stdout.trim();
    await withMount(MANUAL, async (dir) => {
      try {
        const started = await tmux('new-session', '-d', '-s', 'w', '-x', '120', '-y', '60', '-c', REPO_ROOT, 'bash --norc --noprofile');
        assert.equal(started.code, 0, started.stderr);
        const shell = Number((await tmux('display', '-p', '-t', 'w', '#{pane_pid}')).stdout);
        await tmux('send-keys', '-t', 'w', `${q(process.execPath)} ${q(CLI)} watch ${q(dir)} -n 0.2; echo "watch exited $?"`, 'Enter');

        const drawn = await pollUntil(async () => ((await screen()).includes('Ctrl-C quits') ? true : undefined), { timeoutMs: 10_000 });
        let text = await screen();
        assert.ok(drawn, text);
        assert.equal(await flags(), '1 0', 'alternate screen on, cursor hidden');
        assert.match(text, /^kscrubfs watch .*: up 0\.00 s/m);
        assert.match(text, /^Node 0, zone DMA: \d+ pages free +Node 1, zone DMA: \d+ pages free$/m, 'zones side by side');
        const [watcher] = childPids(shell);
        assert.ok(watcher !== undefined && processAlive(watcher));

        await control(dir, 'tick 5s');
        const redrawn = await pollUntil(async () => (/: up 5\.00 s/.test(await screen()) ? true : undefined), { timeoutMs: 10_000 });
        text = await screen();
        assert.ok(redrawn, text);

        await tmux('send-keys', '-t', 'w', 'C-c');
        // The echoed command line holds "watch exited $?" too: wait for the line echo prints.
        const done = await pollUntil(async () => (/^watch exited \d+$/m.test(await screen()) ? true : undefined), { timeoutMs: 10_000 });
        text = await screen();
        assert.ok(done, text);
        assert.match(text, /^watch exited 0$/m);
        assert.ok(!text.includes('Ctrl-C quits'), 'back on the main screen');
        assert.equal(await flags(), '0 1', 'alternate screen off, cursor shown');
        assert.deepEqual(childPids(shell), [], 'nothing left running under the shell');
        assert.ok(!processAlive(watcher));
      } finally {
        await tmux('kill-server');
        rmSync(socketDir, { recursive: true, force: true });
      }
    });
  });
});
