// Access as a non-root user (nobody:nogroup, no supplementary groups, via setpriv) on every
// mounted file: every 0444/0644 file reads (and parses strictly, byte for byte what root reads);
// every write to a 0644 or 0444 file, and any open of `control` (0600), fails with EACCES —
// through open(2), truncate(2) and the shell alike — and nothing changes.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createMachine } from '../../src/model';
import { fixedFilesFor } from '../../src/procfs';
import { q, sh, withMount } from '../helpers/mount';
import { parseProcFile } from '../../src/uapi';
import { READABLE_FILES, snapshotFiles } from '../helpers/readers';

const MANUAL = ['--clock', 'manual'];
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Every file of the default mount (altix, kscrubd) with its mode, relative to the mount. */
const ALL = fixedFilesFor(createMachine({ clock: 'manual' })).map((f) => ({ rel: f.path.slice(1), mode: f.mode }));

/**
 * Run as nobody: for every file, each open mode (and truncate), the errno name or "ok"; for
 * files that open for reading, their text. Also the directory listings.
 */
const PROBE = String.raw`
import errno, json, os, sys
d, files = sys.argv[1], sys.argv[2:]
name = lambda e: errno.errorcode.get(e.errno, str(e.errno))
out = {'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(), 'files': {}, 'dirs': {}}
MODES = {'r': os.O_RDONLY, 'w': os.O_WRONLY, 'rw': os.O_RDWR, 'wt': os.O_WRONLY | os.O_TRUNC, 'wa': os.O_WRONLY | os.O_APPEND}
for f in files:
    p = os.path.join(d, f)
    r = {}
    for m, flags in MODES.items():
        try:
            fd = os.open(p, flags)
        except OSError as e:
            r[m] = name(e)
            continue
        try:
            if m == 'r':
                parts = []
                while True:
                    b = os.read(fd, 65536)
                    if not b:
                        break
                    parts.append(b)
                r['text'] = b''.join(parts).decode()
            else:
                os.write(fd, b'1\n')
            r[m] = 'ok'
        except OSError as e:
            r[m] = 'io:' + name(e)
        finally:
            os.close(fd)
    try:
        os.truncate(p, 0)
        r['truncate'] = 'ok'
    except OSError as e:
        r['truncate'] = name(e)
    r['access'] = [os.access(p, os.R_OK), os.access(p, os.W_OK)]
    out['files'][f] = r
for sub in ['', 'sys', 'sys/vm']:
    try:
        out['dirs'][sub] = sorted(os.listdir(os.path.join(d, sub)))
    except OSError as e:
        out['dirs'][sub] = name(e)
json.dump(out, sys.stdout)
`;

interface Probe {
  uid: number;
  gid: number;
  groups: number[];
  files: Record<string, Record<string, string | boolean[]> & { text?: string; access: boolean[] }>;
  dirs: Record<string, string[] | string>;
}

const snapshot = snapshotFiles;

describe('robust: access as a non-root user', () => {
  test('when nobody opens every file in every mode then reads of 0444/0644 work and every write or control access is EACCES', { timeout: 60_000 }, async () => {
    assert.equal(process.getuid?.(), 0, 'this test switches to nobody, so it runs as root (as CI does)');
    await withMount(MANUAL, async (dir) => {
      const before = await snapshot(dir);
      const r = await sh(`${PYTHON} -c ${q(PROBE)} ${q(dir)} ${ALL.map((f) => q(f.rel)).join(' ')}`, { asNobody: true });
      assert.equal(r.code, 0, r.stderr);
      const probe = JSON.parse(r.stdout) as Probe;
      assert.notEqual(probe.uid, 0);
      assert.deepEqual(probe.groups, []);
      assert.deepEqual(probe.dirs[''], ['buddyinfo', 'control', 'loadavg', 'meminfo', 'stat', 'sys', 'uptime', 'vmstat', 'zoneinfo']);
      // 2.6.11's hugetlb sysctl, kscrubd's three and prefault's; no other policy's, nor what later kernels added.
      assert.deepEqual(probe.dirs['sys/vm'], ['max_prealloc_order', 'nr_hugepages', 'scrub_load', 'scrub_start', 'scrub_stop']);

      const wrong: string[] = [];
      const expect = (rel: string, what: string, got: unknown, want: unknown): void => {
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${rel} ${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
      };
      for (const { rel, mode } of ALL) {
        const f = probe.files[rel]!;
        const readable = (mode & 0o004) !== 0;
        expect(rel, 'open O_RDONLY', f.r, readable ? 'ok' : 'EACCES');
        for (const m of ['w', 'rw', 'wt', 'wa']) expect(rel, `open ${m}`, f[m], 'EACCES');
        expect(rel, 'truncate', f.truncate, 'EACCES');
        expect(rel, 'access(R_OK, W_OK)', f.access, [readable, false]);
        if (readable) {
          expect(rel, 'text', f.text, before.get(rel));
          try {
            parseProcFile(rel, f.text ?? '');
          } catch (err) {
            wrong.push(`${rel}: nobody's read does not parse: ${(err as Error).message}`);
          }
        }
      }
      assert.deepEqual(wrong, []);
      assert.equal(ALL.filter((f) => (f.mode & 0o004) !== 0).length, 11, 'eleven world-readable files: 7 read-only, 4 sysctls of kscrubd and prefault');

      // The shell shows it too.
      const writes = ALL.map((f) => `{ echo 1 > ${q(path.join(dir, f.rel))}; } 2>&1; echo "${f.rel} $?"`);
      const shell = await sh([...writes, `cat ${q(path.join(dir, 'control'))} 2>&1; echo "cat control $?"`].join('\n'), { asNobody: true });
      const lines = shell.stdout.split('\n').slice(0, -1);
      assert.equal(lines.length, 2 * (ALL.length + 1), shell.stdout);
      for (let i = 0; i < lines.length; i += 2) {
        assert.match(lines[i]!, /Permission denied$/);
        assert.match(lines[i + 1]!, / [12]$/);
      }

      // Nothing nobody tried changed anything.
      assert.deepEqual(await snapshot(dir), before);
    });
  });
});
