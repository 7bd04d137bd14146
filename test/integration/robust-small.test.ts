import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { findMount } from '../../src/fuse/mountpoint';
import { kscrubfs, run, startDaemon, stopDaemon, waitForMount, withMount, withTempDir } from '../helpers/mount';

// The smaller holes: each gets a clear message or the behaviour a user expects.

describe('robust: umount from the wrong side', () => {
  test('when nobody runs kscrubfs umount on root\'s mount then it is refused with a clear message and no stack, and the mount still answers', async () => {
    await withMount(['--preset', 'x86_64', '--clock', 'manual'], async (dir) => {
      const r = await kscrubfs(['umount', dir], { asNobody: true });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^kscrubfs: .*mnt is served by daemon pid \d+, which runs as another user: only that user or root can stop it\n$/);
      assert.doesNotMatch(r.stderr, /internal error|EPERM|at .*\.js:\d+/);
      assert.match(readFileSync(path.join(dir, 'meminfo'), 'utf8'), /^MemTotal:/);
    });
  });

  test('when a mount is unmounted through a bind mount of it then the daemon stops, both go, and the message says the bind was unmounted after it', async () => {
    await withTempDir(async (tmp, dir) => {
      const bind = path.join(tmp, 'bind');
      mkdirSync(bind);
      const daemon = startDaemon(dir, ['--preset', 'x86_64', '--clock', 'manual']);
      try {
        await waitForMount(dir, daemon);
        execFileSync('mount', ['--bind', dir, bind]);
        const r = await kscrubfs(['umount', bind]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^kscrubfs: unmounted ${bind} \\(daemon pid ${daemon.pid} stopped; ${bind} was another mount of its files \\(a bind mount\\), unmounted after it\\)\\n$`));
        assert.equal(findMount(bind), undefined);
        assert.equal(findMount(dir), undefined);
      } finally {
        if (findMount(bind)) execFileSync('umount', ['-l', bind]);
        await stopDaemon(daemon, dir);
      }
    });
  });
});

describe('robust: watch on what is not a mount', () => {
  test('when meminfo is a FIFO or a symlink to /dev/zero then watch --once refuses it at once, naming it', async () => {
    for (const kind of ['fifo', 'zero'] as const) {
      await withTempDir(async (tmp) => {
        const dir = path.join(tmp, 'proc');
        mkdirSync(dir);
        // The rest from the real /proc, so only meminfo is wrong.
        for (const f of ['buddyinfo', 'uptime', 'vmstat', 'loadavg', 'zoneinfo']) symlinkSync(`/proc/${f}`, path.join(dir, f));
        if (kind === 'fifo') execFileSync('mkfifo', [path.join(dir, 'meminfo')]);
        else symlinkSync('/dev/zero', path.join(dir, 'meminfo'));
        const r = await kscrubfs(['watch', dir, '--once'], { timeoutMs: 20_000 });
        assert.equal(r.code, 1, `${kind}: ${r.stderr}`);
        assert.match(r.stderr, /meminfo is not a regular file \(a FIFO, a device or a socket\)/, kind);
      });
    }
  });

  test('when watch reads the real /proc then its files are regular and it shows a frame', async () => {
    const r = await run(process.execPath, [path.join(__dirname, '../../src/cli/main.js'), 'watch', '/proc', '--once']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /MemFree|free/i);
  });
});
