import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { q, sh, withMount, withTempDir } from '../helpers/mount';

// What the control file reserves for results is what results can take, read from each verb's
// result template, not a round 512 bytes a line: a file of 30,000 short commands sent with
// `cat cmds.txt >&3` runs whole, and its results are all there to read.

describe('robust: result reservations', () => {
  test('when 30,000 lines of tick 1ns are sent with cat cmds.txt >&3 then every one runs and 30,000 ok lines come back', { timeout: 120_000 }, async () => {
    await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (dir) => {
      await withTempDir(async (tmp) => {
        const cmds = path.join(tmp, 'cmds.txt');
        writeFileSync(cmds, 'tick 1ns\n'.repeat(30_000));
        const r = await sh(`exec 3<>${q(path.join(dir, 'control'))}; cat ${q(cmds)} >&3 || exit 9; echo stats >&3; head -n 30001 <&3`, { timeoutMs: 100_000 });
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.trimEnd().split('\n');
        assert.equal(lines.length, 30_001);
        assert.ok(lines.slice(0, 30_000).every((l, i) => l === `ok now_ns=${i + 1}`), lines.find((l, i) => l !== `ok now_ns=${i + 1}`));
        assert.match(lines[30_000]!, /^ok now_ns=30000 /);
      });
    });
  });
});
