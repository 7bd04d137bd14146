import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseMeminfo } from '../../src/uapi';
import { kscrubfs, q, sh, startDaemon, stopDaemon, waitForMount, withMount, withTempDir } from '../helpers/mount';

// What root writes for its user — the record, a trace, a plot, a sweep's rows — may be named
// in a directory others can write. A symlink planted there under that name must not aim the
// output at another file: each writer refuses it, and the target keeps its bytes. The record
// holds what the 0600 control file was told, so it is 0600 too; it has a size cap, says when
// it stops, and readers alone (live clock syncs) add nothing to it.

const PRECIOUS = 'root-owned, must survive\n';

/** A directory nobody owns (as /tmp is everyone's), with `name` in it a symlink to a root-owned file. */
function plant(tmp: string, name: string): { dir: string; link: string; target: string } {
  const dir = path.join(tmp, 'nobodys');
  mkdirSync(dir, { recursive: true });
  chmodSync(tmp, 0o755);
  chownSync(dir, 65534, 65534);
  const target = path.join(tmp, `target-${name}`);
  writeFileSync(target, PRECIOUS, { mode: 0o600 });
  const link = path.join(dir, name);
  symlinkSync(target, link);
  return { dir, link, target };
}

describe('robust: output files', () => {
  test('when --record, trace record -o, sweep --csv/-o/--plot and pft --plot name a symlink planted by another user then each refuses it and the target keeps its bytes', async () => {
    await withTempDir(async (tmp, mnt) => {
      const rec = plant(tmp, 'rec.jsonl');
      const r = await kscrubfs(['mount', mnt, '--record', rec.link]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /cannot write the record .*rec\.jsonl: .*is a symbolic link: kscrubfs writes no output through one/);
      assert.equal(readFileSync(rec.target, 'utf8'), PRECIOUS);

      const trace = plant(tmp, 'run.trace');
      const t = await kscrubfs(['trace', 'record', '-o', trace.link, '--', 'true']);
      assert.equal(t.code, 1, t.stderr);
      assert.match(t.stderr, /trace record: cannot write .*run\.trace: .*is a symbolic link/);
      assert.equal(readFileSync(trace.target, 'utf8'), PRECIOUS);

      const spec = path.join(tmp, 'one.json');
      writeFileSync(spec, JSON.stringify({ name: 'one', machine: { preset: 'x86_64', mem: '256M' }, workload: { bytes: '1M' }, plot: { x: 'bytes' } }));
      for (const [flag, name] of [['--csv', 'rows.csv'], ['-o', 'rows.jsonl'], ['--plot', 'plot.svg']] as const) {
        const p = plant(tmp, name);
        const args = flag === '--plot' ? ['-o', path.join(tmp, 'plotted.jsonl'), '--plot', p.link] : [flag, p.link];
        const s = await kscrubfs(['sweep', spec, '--jobs', '1', ...args], { cwd: tmp, timeoutMs: 60_000 });
        assert.equal(s.code, 1, `${flag}: ${s.stderr}`);
        assert.match(s.stderr, /is a symbolic link: kscrubfs writes no output through one/, flag);
        assert.doesNotMatch(s.stderr, /internal error/, flag);
        assert.equal(readFileSync(p.target, 'utf8'), PRECIOUS, flag);
      }
    });
    await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (dir) => {
      await withTempDir(async (tmp) => {
        const p = plant(tmp, 'pft.svg');
        const r = await kscrubfs(['pft', '-m', dir, '--bytes', '1M', '--plot', p.link]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /pft --plot: cannot write .*is a symbolic link/);
        assert.equal(readFileSync(p.target, 'utf8'), PRECIOUS);
      });
    });
  });

  test('when a record is written over an existing 0644 file then it is 0600, and a live mount read 300 times records no event for the reads', async () => {
    await withTempDir(async (tmp, mnt) => {
      const file = path.join(tmp, 'rec.jsonl');
      writeFileSync(file, 'old\n', { mode: 0o644 });
      chmodSync(file, 0o644);
      const daemon = startDaemon(mnt, ['--preset', 'x86_64', '--record', file]);
      try {
        await waitForMount(mnt, daemon);
        assert.equal(statSync(file).mode & 0o777, 0o600);
        const r = await sh(`for i in $(seq 300); do cat ${q(path.join(mnt, 'meminfo'))} >/dev/null; done`);
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await stopDaemon(daemon, mnt);
      }
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { ev: string });
      // header, at most one advance (the clock where the last read left it), the digest
      assert.deepEqual(lines.map((l) => l.ev).filter((e) => e !== 'advance'), ['header', 'digest']);
      assert.ok(lines.length <= 3, `${lines.length} lines`);
      const replay = await kscrubfs(['replay', file]);
      assert.equal(replay.code, 0, replay.stderr);
    });
  });

  test('when a record reaches --record-max then the daemon says so and goes on, the record ends with a cut line, and replay says why it cannot replay it', async () => {
    await withTempDir(async (tmp, mnt) => {
      const file = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(mnt, ['--preset', 'x86_64', '--clock', 'manual', '--record', file, '--record-max', '8K']);
      try {
        await waitForMount(mnt, daemon);
        const ctl = q(path.join(mnt, 'control'));
        const r = await sh(`exec 3<>${ctl}; for i in $(seq 200); do echo 'tick 1ms' >&3; head -n 1 <&3 >/dev/null; done; echo stats >&3; head -n 1 <&3`);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^ok now_ns=200000000 /, 'the mount went on past the cap');
      } finally {
        await stopDaemon(daemon, mnt);
      }
      assert.match(daemon.stderr(), /--record .*rec\.jsonl reached its cap of 8 KiB \(mount --record-max\) at virtual time \d+ ns: recording stopped, the mount goes on/);
      const text = readFileSync(file, 'utf8');
      assert.ok(Buffer.byteLength(text) <= 8192, `${Buffer.byteLength(text)} bytes`);
      assert.equal((JSON.parse(text.trimEnd().split('\n').at(-1)!) as { ev: string }).ev, 'cut');
      const replay = await kscrubfs(['replay', file]);
      assert.equal(replay.code, 1);
      assert.match(replay.stderr, /stopped at its size cap of 8 KiB \(mount --record-max\): the session went on past what it holds/);
    });
  });

  test('when a session is stopped while a touch is running then the record marks the write and the step, replay stops there and gives the same bytes, and a record without the step is refused by name', { timeout: 120_000 }, async () => {
    await withTempDir(async (tmp, mnt) => {
      const file = path.join(tmp, 'rec.jsonl');
      const daemon = startDaemon(mnt, ['--preset', 'x86_64', '--mem', '1T', '--clock', 'manual', '--record', file]);
      try {
        await waitForMount(mnt, daemon);
        const ctl = q(path.join(mnt, 'control'));
        const setup = await sh(`exec 3<>${ctl}; printf 'mm new keep\\nmmap mm=1 size=256G\\n' >&3; head -n 2 <&3`);
        const addr = /addr=(0x[0-9a-f]+)/.exec(setup.stdout)![1]!;
        const free = (): number => parseMeminfo(readFileSync(path.join(mnt, 'meminfo'), 'utf8')).get('MemFree')!;
        const before = free();
        // The writer waits for its touch in the background; the test stops the daemon once
        // the touch has visibly begun (MemFree falls), long before 256G are touched.
        void sh(`exec 3<>${ctl}; echo 'touch mm=1 addr=${addr} size=256G' >&3; cat <&3`, { timeoutMs: 100_000 }).catch(() => undefined);
        const deadline = Date.now() + 60_000;
        while (free() === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(free() < before, 'the touch began');
      } finally {
        await stopDaemon(daemon, mnt);
      }
      const text = readFileSync(file, 'utf8');
      const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { ev: string; n?: number; during?: number[]; data?: string; steps?: number });
      const stopped = lines.find((l) => l.ev === 'stopped');
      assert.ok(stopped, 'the record marks the stop');
      const write = lines.find((l) => l.ev === 'write' && l.data?.startsWith('touch'));
      assert.deepEqual(stopped.during, [write?.n]);
      assert.ok(Number.isSafeInteger(stopped.steps) && stopped.steps! > 0, 'and after how many steps');
      assert.equal(lines.at(-1)!.ev, 'digest');
      const replay = await kscrubfs(['replay', file], { timeoutMs: 100_000 });
      assert.equal(replay.code, 0, replay.stderr);
      assert.match(replay.stdout, /files identical/);
      // A record from before steps were recorded cannot say where to stop: refused, naming the write.
      const old = path.join(tmp, 'old.jsonl');
      writeFileSync(old, text.replace(/,"steps":\d+\}/, '}'));
      const refused = await kscrubfs(['replay', old]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /the session was stopped while the commands of event \d+ \("touch mm=1 addr=0x[0-9a-f]+ size=256G"\) were still running; its digests show the machine part way through them/);
    });
  });
});
