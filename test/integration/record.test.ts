import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createMachine } from '../../src/model';
import { fixedFilesFor } from '../../src/procfs';
import { kscrubfs, q, run, startDaemon, stopDaemon, waitForMount, withTempDir } from '../helpers/mount';

/** The rows of FILES the recorded mount (altix, kscrubd) has: a record digests those. */
const FILES = fixedFilesFor(createMachine({ clock: 'manual' }));

// mount --record FILE, then kscrubfs replay FILE: a real mount driven by real echo and cat,
// stopped by a real umount (or a signal), replayed in process and compared file by file.

type Line = { ev: string; n?: number; t?: number; path?: string; data?: string; during?: number; files?: Record<string, string> };
const lines = (file: string): Line[] => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Line);

/** A client session in bash: an mm, a mapping, a touch, sysctl writes (one refused), a tick, reads. */
function session(dir: string, tick: string): string {
  return `set -e; cd ${q(dir)}
echo 'mm new keep' > control
exec 3<>control
echo 'mmap mm=1 size=8M' >&3
read -r r <&3
addr=\${r#ok addr=}; addr=\${addr%% *}
echo "touch mm=1 addr=$addr size=4M threads=2" >&3
read -r r <&3; echo "$r"
echo 3 > sys/vm/scrub_start
echo 99999 > sys/vm/scrub_start 2>/dev/null || echo refused
cat buddyinfo meminfo > /dev/null
echo '${tick}' >&3
echo "munmap mm=1 addr=$addr size=2M" >&3
exec 3>&-
cat vmstat > /dev/null
`;
}

/** Mount with --record, run `script` as a real client, stop the daemon by `stop`; returns the record. */
async function record(tmp: string, dir: string, args: string[], script: (dir: string) => string, stop: 'umount' | 'SIGINT'): Promise<string> {
  const rec = path.join(tmp, 'session.jsonl');
  const daemon = startDaemon(dir, ['--preset', 'x86_64', '--mem', '512M', '--record', rec, ...args]);
  try {
    await waitForMount(dir, daemon);
    const client = await run('bash', ['-c', script(dir)]);
    assert.equal(client.code, 0, client.stderr);
    assert.match(client.stdout, /^ok pages=\d+ /m);
    assert.match(client.stdout, /^refused$/m);
    if (stop === 'umount') {
      const u = await kscrubfs(['umount', dir]);
      assert.equal(u.code, 0, u.stderr);
    } else {
      daemon.child.kill('SIGINT');
    }
    assert.deepEqual(await daemon.exited, { code: 0, signal: null });
  } finally {
    await stopDaemon(daemon, dir);
  }
  return rec;
}

describe('mount --record and kscrubfs replay', () => {
  test('when a manual-clock session is recorded and umounted then replay exits 0, and a record with one command changed exits 1 naming the first file that differs', async () => {
    await withTempDir(async (tmp, dir) => {
      const rec = await record(tmp, dir, ['--clock', 'manual'], (d) => session(d, 'tick 50ms'), 'umount');
      const all = lines(rec);
      assert.equal(all[0]!.ev, 'header');
      const digest = all.at(-1)!;
      assert.equal(digest.ev, 'digest');
      assert.deepEqual(Object.keys(digest.files!), FILES.map((f) => f.path));
      const writes = all.filter((l) => l.ev === 'write');
      assert.ok(writes.some((w) => w.path === '/control' && /^touch mm=1 /.test(w.data!)), 'the touch is recorded');
      assert.deepEqual(writes.filter((w) => w.path === '/sys/vm/scrub_start').map((w) => w.data), ['3\n', '99999\n']);
      assert.equal(all.filter((l) => l.ev === 'advance').length, 0, 'a manual clock never moves by itself');

      const ok = await kscrubfs(['replay', rec]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`${all.length - 2} events, ${FILES.length} files identical`));

      // One command changed: the touch faults 2 MiB instead of 4 MiB.
      const tampered = path.join(tmp, 'tampered.jsonl');
      writeFileSync(tampered, readFileSync(rec, 'utf8').replace(/(touch mm=1 addr=0x[0-9a-f]+ size=)4M/, '$12M'));
      assert.notEqual(readFileSync(tampered, 'utf8'), readFileSync(rec, 'utf8'));
      const differs = await kscrubfs(['replay', tampered]);
      assert.equal(differs.code, 1);
      assert.match(differs.stderr, /differs: \/buddyinfo /);

      // A longer tick: kscrubd scrubs for longer and the clock ends later.
      const later = path.join(tmp, 'later.jsonl');
      writeFileSync(later, readFileSync(rec, 'utf8').replace('tick 50ms', 'tick 60ms'));
      const r = await kscrubfs(['replay', later]);
      assert.equal(r.code, 1);
      const named = /differs: (\S+) /.exec(r.stderr)?.[1];
      assert.ok(named && FILES.some((f) => f.path === named), r.stderr);
      assert.match(r.stderr, /virtual time recorded (\d+) ns, replayed (\d+) ns/);
      const [, want, got] = /recorded (\d+) ns, replayed (\d+) ns/.exec(r.stderr)!;
      assert.ok(Number(got) > Number(want), r.stderr);
    });
  });

  test('when an epyc session with huge pages is recorded then replay exits 0 and names the time in whole nanoseconds', async () => {
    await withTempDir(async (tmp, dir) => {
      // epyc's costs leave fractions of a nanosecond on the clock; what replay says must not.
      const thp = (d: string): string => session(d, 'tick 50ms').replace("'mmap mm=1 size=8M'", "'mmap mm=1 size=8M thp'");
      const rec = await record(tmp, dir, ['--clock', 'manual', '--preset', 'epyc', '--mem', '4G'], thp, 'umount');
      assert.ok(lines(rec).some((l) => l.ev === 'write' && /size=8M thp/.test(l.data ?? '')), 'the THP mapping is recorded');
      const ok = await kscrubfs(['replay', rec]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, / files identical at \d+ ns\n$/);
    });
  });

  test('when a live-clock session (reads, sleeps, writes) is recorded and stopped by SIGINT then replay sees the recorded virtual times and exits 0', async () => {
    await withTempDir(async (tmp, dir) => {
      const live = (d: string): string => session(d, 'stats').replaceAll('cat buddyinfo', 'sleep 0.2; cat buddyinfo').replace('cat vmstat', 'sleep 0.1; cat vmstat');
      const rec = await record(tmp, dir, ['--clock', 'live', '--speed', '100'], live, 'SIGINT');
      const all = lines(rec);
      const advances = all.filter((l) => l.ev === 'advance');
      assert.ok(advances.some((a) => a.during === undefined), 'reads moved the clock');
      assert.ok(advances.some((a) => a.during !== undefined), 'writes synced the clock before running');
      assert.ok(all.at(-1)!.t! > 0.3e9 * 100 * 0.5, `virtual time followed the wall (${all.at(-1)!.t} ns)`);
      const ok = await kscrubfs(['replay', rec]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, / files identical at \d+ ns/);

      // Without its virtual times (every advance gone, every event at 0) the clock never moves.
      const frozen = path.join(tmp, 'frozen.jsonl');
      const body = readFileSync(rec, 'utf8').trimEnd().split('\n');
      const events = body.slice(1, -1).filter((l) => !l.includes('"ev":"advance"')).map((l) => l.replace(/"t":[0-9.e+]+/, '"t":0'));
      writeFileSync(frozen, [body[0], ...events, body.at(-1)].join('\n'));
      const r = await kscrubfs(['replay', frozen]);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /differs: \/\S+ /);
    });
  });

  test('when the record is missing, not JSON, cut before its digest or holds an unknown event then replay exits 1 with a clear error and nothing else', async () => {
    await withTempDir(async (tmp) => {
      const rec = (name: string, text: string): string => {
        const f = path.join(tmp, name);
        writeFileSync(f, text);
        return f;
      };
      const header = JSON.stringify({ ev: 'header', format: 'kscrubfs-record', version: 1, options: { preset: 'x86_64', mem: '512M', clock: 'manual' }, buddyinfo: 'v6', config: {} });
      const digest = JSON.stringify({ ev: 'digest', t: 0, files: {} });
      const cases: [string, RegExp][] = [
        [path.join(tmp, 'absent.jsonl'), /cannot read the record .*absent\.jsonl: ENOENT/],
        [rec('empty.jsonl', ''), /empty: not a kscrubfs record/],
        [rec('text.jsonl', 'hello\n'), /text\.jsonl:1: not JSON/],
        [rec('other.jsonl', '{"ev":"header","format":"other"}\n'), /other\.jsonl:1: not a kscrubfs record header/],
        [rec('cut.jsonl', `${header}\n{"ev":"tick","n":1,"t":0}\n`), /no digest line at its end: the mount did not stop cleanly/],
        [rec('event.jsonl', `${header}\n{"ev":"tick","n":1,"t":0}\n${digest}\n`), /event\.jsonl:2: unknown event "tick"/],
        [rec('ro.jsonl', `${header}\n{"ev":"write","n":1,"t":0,"path":"/meminfo","offset":0,"data":"x"}\n${digest}\n`), /ro\.jsonl:2: \/meminfo is read-only/],
        [rec('config.jsonl', `${header}\n${digest}\n`), /cannot be rebuilt: config preset was \(absent\)/],
      ];
      for (const [file, message] of cases) {
        const r = await kscrubfs(['replay', file]);
        assert.equal(r.code, 1, `${file}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
        assert.equal(r.stdout, '');
      }
    });
  });
});
