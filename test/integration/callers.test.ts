import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { parseVmstat } from '../../src/uapi';
import { kscrubfs, q, REPO_ROOT, run, sh, startDaemon, stopDaemon, waitForMount, withMount, withTempDir } from '../helpers/mount';

// Who sends each request, and a sender's signals (native/fuse-native.c): per-user handle caps,
// and a long command stopped when its writer is killed or interrupted, on a real mount with
// real clients (sh, python3) as root and as nobody. Nothing here is timed: each test waits
// until the writer is inside its write(2) (its /proc/PID/syscall), then signals it.

/** x86_64's syscall number of write(2), the first field of /proc/PID/syscall while it is in one. */
const SYS_WRITE = '1';

/**
 * Wait until `pid` has made `marker` (it does just before its long write), is blocked in
 * write(2) on the control file, and the daemon at DIR has begun the command (its vmstat counts
 * a fault): a writer in write(2) may still have its request queued in the kernel, where a
 * signal ends it before the daemon ever sees it.
 */
async function inWrite(pid: number, marker: string, dir: string): Promise<void> {
  const r = await pollUntil(() => {
    try {
      if (!existsSync(marker)) return undefined;
      const [nr, fd] = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ');
      return nr === SYS_WRITE && readlinkSync(`/proc/${pid}/fd/${Number(fd)}`).endsWith('/control') ? true : undefined;
    } catch {
      return 'gone' as const;
    }
  }, { timeoutMs: 30_000 });
  assert.equal(r, true, `pid ${pid} never blocked in write(2) on control (${r ?? 'timed out'})`);
  const faulting = await pollUntil(() => ((parseVmstat(readFileSync(path.join(dir, 'vmstat'), 'utf8')).get('pgfault') ?? 0) > 0 ? true : undefined), { timeoutMs: 30_000 });
  assert.equal(faulting, true, 'the daemon never began the touch');
}

/** A machine where a touch of most of its memory takes many seconds (its page tables fit the budget). */
const BIG = ['--mem', '128G', '--clock', 'manual'];
const BIG_TOUCH = '100G';

/** sh CONTROL MARKER: make a process, map BIG_TOUCH, make MARKER, then touch it all in one write; prints each result. */
const TOUCH_SCRIPT = [
  'exec 3<>"$1"',
  'echo "mm new keep" >&3; read -r r <&3; echo "$r"',
  `echo "mmap mm=1 size=${BIG_TOUCH}" >&3; read -r r <&3; echo "$r"`,
  'a=${r#*addr=}; a=${a%% *}',
  ': > "$2"',
  `echo "touch mm=1 addr=$a size=${BIG_TOUCH}" >&3`,
  'read -r r <&3; echo "$r"',
].join('\n');

function records(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function statsOf(line: string): Map<string, number> {
  return new Map(line.replace(/^ok /, '').split(' ').map((kv) => {
    const [k, v] = kv.split('=');
    return [k!, Number(v)];
  }));
}

describe('callers and their signals', () => {
  it('when the daemon mounts then it runs the FUSE binding built from native/ (the one that names callers)', async () => {
    await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (_dir, daemon) => {
      const maps = readFileSync(`/proc/${daemon.pid}/maps`, 'utf8');
      assert.ok(maps.includes(path.join(REPO_ROOT, 'native/build/Release/fuse.node')), 'the daemon did not load native/build/Release/fuse.node');
      assert.doesNotMatch(daemon.stderr(), /prebuild/);
    });
  });

  it('when nobody opens past --max-handles-per-user then the next opens fail EMFILE while root still opens, and closing frees them', { timeout: 60_000 }, async () => {
    assert.equal(process.getuid?.(), 0, 'this test switches to nobody, so it runs as root (as CI does)');
    await withMount(['--preset', 'x86_64', '--clock', 'manual', '--max-handles-per-user', '5'], async (dir) => {
      const opens = `const fs = require('fs'); const out = [];
        for (let i = 0; i < 7; i++) { try { fs.openSync(${JSON.stringify(path.join(dir, 'meminfo'))}, 'r'); out.push('ok'); } catch (e) { out.push(e.code); } }
        console.log(out.join(' '));`;
      const nobody = await run(process.execPath, ['-e', opens], { asNobody: true });
      assert.equal(nobody.stdout.trim(), 'ok ok ok ok ok EMFILE EMFILE', nobody.stderr);
      // Its process has exited: its handles were released, so nobody may open 5 again.
      const again = await run(process.execPath, ['-e', opens], { asNobody: true });
      assert.equal(again.stdout.trim(), 'ok ok ok ok ok EMFILE EMFILE', again.stderr);
      const root = await run(process.execPath, ['-e', opens]);
      assert.equal(root.stdout.trim(), 'ok ok ok ok ok ok ok', root.stderr);
    });
  });

  it('when a bad --max-handles-per-user is given then mount refuses it and names the option', async () => {
    for (const bad of ['0', '-3', 'many', String(2 ** 18 + 1)]) {
      const r = await kscrubfs(['mount', '/nonexistent-kscrubfs', '--max-handles-per-user', bad]);
      assert.notEqual(r.code, 0, bad);
      assert.match(r.stderr, /max-handles-per-user/, bad);
    }
  });

  it('when the writer of a long touch is killed then its write ends at the next step, the machine checks, the record marks it and replays to the same bytes', { timeout: 120_000 }, async () => {
    await withTempDir(async (tmp, dir) => {
      const rec = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(dir, [...BIG, '--record', rec]);
      try {
        await waitForMount(dir, daemon);
        const marker = path.join(tmp, 'touching');
        const client = run('sh', ['-c', TOUCH_SCRIPT, 'touch', path.join(dir, 'control'), marker], { timeoutMs: 60_000 });
        const pid = await shPid(dir);
        await inWrite(pid, marker, dir);
        process.kill(pid, 'SIGKILL');
        const r = await client;
        assert.equal(r.signal, 'SIGKILL');
        // The machine is whole, and the touch stopped short of the range.
        const out = await sh(`exec 3<>${q(path.join(dir, 'control'))}; echo stats >&3; read -r s <&3; echo "$s"; echo check >&3; read -r c <&3; echo "$c"`);
        const [stats, check] = out.stdout.trim().split('\n');
        assert.equal(check, 'ok', out.stdout);
        const s = statsOf(stats!);
        assert.ok(s.get('pgfault')! > 0, stats);
        const pages = (100 * 2 ** 30) / s.get('page_size')!;
        assert.ok(s.get('pgfault_hot_zeroed')! + s.get('pgfault_prezeroed')! < pages, `the touch ran to its end: ${stats}`);
      } finally {
        await stopDaemon(daemon, dir);
      }
      const events = records(rec);
      const touch = events.find((e) => e['ev'] === 'write' && String(e['data']).startsWith('touch'));
      const interrupt = events.find((e) => e['ev'] === 'interrupt');
      assert.ok(touch && interrupt, 'the record has the touch and its interrupt');
      assert.equal(interrupt['of'], touch['n']);
      const replay = await kscrubfs(['replay', rec], { timeoutMs: 60_000 });
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /files identical/);
    });
  });

  it('when a python client is interrupted (SIGINT) in a touch then its write is interrupted and its result line says what the touch did', { timeout: 120_000 }, async () => {
    await withMount(BIG, async (dir) => {
      const marker = path.join(path.dirname(dir), 'touching');
      const script = [
        'import os, sys',
        'fd = os.open(sys.argv[1], os.O_RDWR)',
        'def cmd(line):',
        '    os.write(fd, (line + "\\n").encode())',
        '    return os.read(fd, 4096).decode().strip()',
        'print(cmd("mm new keep"))',
        'r = cmd("mmap mm=1 size=' + BIG_TOUCH + '")',
        'print(r)',
        'addr = r.split("addr=")[1].split()[0]',
        'open(sys.argv[2], "w").close()',
        'try:',
        '    os.write(fd, ("touch mm=1 addr=%s size=' + BIG_TOUCH + '\\n" % addr).encode())',
        '    print("completed")',
        'except KeyboardInterrupt:',
        '    print("interrupted")',
        'print(os.read(fd, 4096).decode().strip())',
      ].join('\n');
      const client = run('python3', ['-c', script, path.join(dir, 'control'), marker], { timeoutMs: 60_000 });
      const pid = await childNamed('python3', dir);
      await inWrite(pid, marker, dir);
      process.kill(pid, 'SIGINT');
      const r = await client;
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[2], 'interrupted', r.stdout);
      assert.match(lines[3]!, /^err touch: interrupted by a signal to its writer; what it did stays: pages=\d+ faults=[1-9]\d* /, r.stdout);
      // What it reports is what the machine shows.
      const pages = Number(/ pages=(\d+)/.exec(lines[3]!)![1]);
      assert.ok(pages > 0 && pages < (100 * 2 ** 30) / 16384, lines[3]);
    });
  });

  it('when the daemon is stopped while a touch runs then the record replays to the same bytes (the touch stopped at the same step)', { timeout: 120_000 }, async () => {
    await withTempDir(async (tmp, dir) => {
      const rec = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(dir, [...BIG, '--record', rec]);
      let client: ReturnType<typeof run> | undefined;
      try {
        await waitForMount(dir, daemon);
        const marker = path.join(tmp, 'touching');
        client = run('sh', ['-c', TOUCH_SCRIPT, 'touch', path.join(dir, 'control'), marker], { timeoutMs: 60_000 });
        await inWrite(await shPid(dir), marker, dir);
      } finally {
        await stopDaemon(daemon, dir);
      }
      await client;
      const stopped = records(rec).find((e) => e['ev'] === 'stopped');
      assert.ok(stopped && Number.isSafeInteger(stopped['steps']), 'the record says at which step the session stopped');
      const replay = await kscrubfs(['replay', rec], { timeoutMs: 60_000 });
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /files identical/);
    });
  });
});

/** The pid of the `sh -c TOUCH_SCRIPT` writing to DIR/control. */
function shPid(dir: string): Promise<number> {
  return childNamed('sh', dir);
}

/** The pid of a process named `comm` whose command line names DIR (bounded polling). */
async function childNamed(comm: string, dir: string): Promise<number> {
  const found = await pollUntil(() => {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== comm) continue;
        if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) return Number(entry);
      } catch {
        // gone meanwhile
      }
    }
    return undefined;
  }, { timeoutMs: 30_000 });
  assert.ok(found !== undefined, `no ${comm} writing to ${dir}`);
  return found;
}
