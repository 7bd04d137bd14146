import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { mountLockPath, runtimeDir } from '../../src/daemon/mount-lock';
import { findMount, readMountInfo } from '../../src/fuse/mountpoint';
import { clearMount, kscrubfs, q, run, sh, startDaemon, stopDaemon, waitForMount, withMount, withTempDir } from '../helpers/mount';

// Files and mounts under heavy, broken and hostile use (issue 12): the errnos /proc gives,
// read after write on one fd, libfuse's debug switch, the log's place and lifetime, two
// mounts racing, umount of a spoofed mount, and the live clock starting at mount.

const MANUAL = ['--clock', 'manual'];

/**
 * python3: each operation on the mount and on the host's /proc, side by side, as errno
 * names ("OK" for success). Pairs: [mount path, /proc path]. Nothing here changes /proc: every
 * operation on it fails, or (utime) changes only a timestamp the kernel does not keep.
 */
const ERRNOS = String.raw`
import errno, json, os, sys
d = sys.argv[1]
def name(f):
    try:
        f()
        return 'OK'
    except OSError as e:
        return errno.errorcode[e.errno]
def ops(root, top, sysfile, sysdir):
    p = lambda x: os.path.join(root, x)
    return {
        'create a new name': name(lambda: os.close(os.open(p('newfile'), os.O_CREAT | os.O_WRONLY, 0o644))),
        'create O_EXCL over a file': name(lambda: os.close(os.open(p(top), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))),
        'create in sys/vm': name(lambda: os.close(os.open(p(os.path.join(sysdir, 'newfile')), os.O_CREAT | os.O_WRONLY, 0o644))),
        'mkdir a new name': name(lambda: os.mkdir(p('newdir'))),
        'mkdir over sys': name(lambda: os.mkdir(p('sys'))),
        'mknod a fifo': name(lambda: os.mknod(p('fifo'), 0o600 | 0o010000)),
        'symlink a new name': name(lambda: os.symlink(top, p('newlink'))),
        'symlink over a file': name(lambda: os.symlink('x', p(top))),
        'link a new name': name(lambda: os.link(p(top), p('newlink'))),
        'unlink a file': name(lambda: os.unlink(p(top))),
        'unlink a sysctl': name(lambda: os.unlink(p(sysfile))),
        'unlink a missing name': name(lambda: os.unlink(p('missing'))),
        'unlink a directory': name(lambda: os.unlink(p('sys'))),
        'rmdir sys': name(lambda: os.rmdir(p('sys'))),
        'rmdir sys/vm': name(lambda: os.rmdir(p(sysdir))),
        'rmdir a file': name(lambda: os.rmdir(p(top))),
        'rename to a new name': name(lambda: os.rename(p(top), p('renamed'))),
        'rename over a file': name(lambda: os.rename(p(top), p('vmstat'))),
        'chmod a sysctl': name(lambda: os.chmod(p(sysfile), 0o666)),
        'chown a sysctl': name(lambda: os.chown(p(sysfile), 1, 1)),
        'chmod sys/vm': name(lambda: os.chmod(p(sysdir), 0o777)),
        'utime a file': name(lambda: os.utime(p(top))),
        'readlink a file': name(lambda: os.readlink(p(top))),
    }
print(json.dumps({
    'mount': ops(d, 'meminfo', 'sys/vm/scrub_load', 'sys/vm'),
    'proc': ops('/proc', 'meminfo', 'sys/vm/swappiness', 'sys/vm'),
}))
`;

describe('robust: files as /proc has them', () => {
  test('when names, modes and owners are changed then each errno is the one the host /proc gives', async () => {
    await withMount(MANUAL, async (dir) => {
      const r = await run('python3', ['-c', ERRNOS, dir]);
      assert.equal(r.code, 0, r.stderr);
      const { mount, proc } = JSON.parse(r.stdout) as { mount: Record<string, string>; proc: Record<string, string> };
      assert.deepEqual(mount, proc);
      assert.equal(mount['unlink a file'], 'EPERM');
      assert.equal(mount['create a new name'], 'ENOENT');
      assert.ok(!Object.values(mount).includes('ENOSYS'), 'nothing is "Function not implemented"');
      const ls = await sh(`ls ${q(dir)}`);
      assert.doesNotMatch(ls.stdout, /newfile|newdir|fifo|newlink|renamed/);
    });
  });

  test('when a sysctl is opened O_RDWR, written and read back with pread at 0 then the read shows the new value', async () => {
    await withMount(MANUAL, async (dir) => {
      const script = `import os,sys
fd = os.open(sys.argv[1], os.O_RDWR)
before = os.pread(fd, 100, 0)
os.write(fd, b'500\\n')
print(before.decode().strip(), os.pread(fd, 100, 0).decode().strip(), os.pread(fd, 100, 0).decode().strip())`;
      const r = await run('python3', ['-c', script, path.join(dir, 'sys/vm/scrub_load')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), '999 500 500');
    });
  });

  test('when DEBUG=kscrubfs:* is set then libfuse dumps no raw requests; --fuse-debug turns the dump on', async () => {
    for (const [args, dumped] of [[[], false], [['--fuse-debug'], true]] as const) {
      await withTempDir(async (_tmp, dir) => {
        const daemon = startDaemonWithEnv(dir, [...MANUAL, ...args], { DEBUG: 'kscrubfs:*' });
        try {
          await waitForMount(dir, daemon);
          await sh(`cat ${q(path.join(dir, 'meminfo'))} > /dev/null`);
        } finally {
          await stopDaemon(daemon, dir);
        }
        const err = daemon.stderr();
        assert.match(err, /kscrubfs:fuse/, 'our own debug lines are there');
        assert.equal(/unique: \d+|opcode: /.test(err), dumped, `libfuse's dump ${dumped ? 'present' : 'absent'} with ${JSON.stringify(args)}`);
      });
    }
  });
});

function startDaemonWithEnv(dir: string, args: readonly string[], env: NodeJS.ProcessEnv): ReturnType<typeof startDaemon> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return startDaemon(dir, args);
  } finally {
    for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
}

describe('robust: mounts and logs', () => {
  test('when mount --background runs then its log is in the private runtime dir, a second mount leaves it alone, and umount removes it', async () => {
    await withTempDir(async (_tmp, dir) => {
      const logDir = runtimeDir();
      const st = lstatSync(logDir);
      assert.ok(st.isDirectory() && (st.mode & 0o077) === 0, `${logDir} is private`);
      try {
        const first = await kscrubfs(['mount', dir, '--background', ...MANUAL]);
        assert.equal(first.code, 0, first.stderr);
        const logPath = /\(log (\S+)\)/.exec(first.stdout)![1]!;
        assert.equal(path.dirname(logPath), logDir);
        const mode = lstatSync(logPath).mode & 0o777;
        assert.equal(mode, 0o600);
        await sh(`cat ${q(path.join(dir, 'buddyinfo'))} > /dev/null`);
        const before = lstatSync(logPath);
        const second = await kscrubfs(['mount', dir, '--background', ...MANUAL]);
        assert.notEqual(second.code, 0);
        assert.match(second.stderr, /already mounted by a running daemon/);
        const after = lstatSync(logPath);
        assert.equal(after.ino, before.ino, 'the log is the same file');
        assert.ok(after.size >= before.size, 'and was not truncated');
        const stop = await kscrubfs(['umount', dir]);
        assert.equal(stop.code, 0, stop.stderr);
        assert.equal(existsSync(logPath), false, 'umount removed the log');
      } finally {
        await kscrubfs(['umount', dir]);
        await clearMount(dir);
      }
    });
  });

  test('when two mount --background start at once on one fresh dir then exactly one wins and the other says why', { timeout: 90_000 }, async () => {
    for (let round = 0; round < 3; round++) {
      await withTempDir(async (_tmp, dir) => {
        try {
          const [a, b] = await Promise.all([
            kscrubfs(['mount', dir, '--background', ...MANUAL]),
            kscrubfs(['mount', dir, '--background', ...MANUAL]),
          ]);
          const codes = [a.code, b.code].sort();
          assert.deepEqual(codes, [0, 1], `round ${round}: exit codes ${a.code} and ${b.code}\n${a.stderr}\n${b.stderr}`);
          const loser = a.code === 0 ? b : a;
          assert.match(loser.stderr, /already mounted|at the same moment|already a mount point/);
          const mounts = readMountInfo().filter((m) => m.mountPoint === dir);
          assert.equal(mounts.length, 1, `round ${round}: one mount on ${dir}, not ${mounts.length}`);
          const cat = await sh(`head -1 ${q(path.join(dir, 'meminfo'))}`);
          assert.match(cat.stdout, /^MemTotal:/);
        } finally {
          while (findMount(dir)) {
            if ((await kscrubfs(['umount', dir])).code !== 0) break;
          }
          await clearMount(dir);
        }
      });
    }
  });

  test('when the mount lock names a live process that has not mounted yet then mount waits its turn; once that process is gone, or the lock is older than any mount takes, it is stale', async () => {
    await withTempDir(async (_tmp, dir) => {
      // A daemon holds no /dev/fuse until it has mounted: the lock must count it alive anyway.
      const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
      const lock = mountLockPath(dir);
      try {
        writeFileSync(lock, String(holder.pid), { mode: 0o600 });
        const busy = await kscrubfs(['mount', dir, '--background', ...MANUAL]);
        assert.equal(busy.code, 1, busy.stderr);
        assert.match(busy.stderr, new RegExp(`being mounted by another kscrubfs daemon \\(pid ${holder.pid}\\) at the same moment`));
        assert.equal(findMount(dir), undefined, 'nothing was mounted');
        // A lock older than any mount takes is stale even while its pid lives (reused, say).
        const old = new Date(Date.now() - 10 * 60_000);
        utimesSync(lock, old, old);
        const taken = await kscrubfs(['mount', dir, '--background', ...MANUAL]);
        assert.equal(taken.code, 0, taken.stderr);
        assert.ok(findMount(dir), 'the old lock was taken over');
        assert.equal((await kscrubfs(['umount', dir])).code, 0);
        writeFileSync(lock, String(holder.pid), { mode: 0o600 });
        holder.kill('SIGKILL');
        await new Promise((resolve) => holder.once('exit', resolve));
        const ok = await kscrubfs(['mount', dir, '--background', ...MANUAL]);
        assert.equal(ok.code, 0, ok.stderr);
        assert.ok(findMount(dir), 'the stale lock was taken over');
        assert.equal(existsSync(lock), false, 'and released once mounted');
      } finally {
        holder.kill('SIGKILL');
        rmSync(lock, { force: true });
        await kscrubfs(['umount', dir]);
        await clearMount(dir);
      }
    });
  });

  test('when a tmpfs claims the source kscrubfs@<pid> then umount leaves it mounted', async () => {
    await withTempDir(async (tmp, dir) => {
      const holder = startDaemon(path.join(tmp, 'real'), MANUAL);
      try {
        await mkdir(path.join(tmp, 'real'), { recursive: true });
        await waitForMount(path.join(tmp, 'real'), holder);
        const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=1M', `kscrubfs@${holder.pid}`, dir]);
        assert.equal(m.code, 0, m.stderr);
        const r = await kscrubfs(['umount', dir]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /not a kscrubfs mount \(tmpfs/);
        assert.ok(findMount(dir), 'the tmpfs is still mounted');
        assert.ok(findMount(path.join(tmp, 'real')), 'and the daemon it named still serves its own mount');
      } finally {
        await run('umount', [dir]);
        await stopDaemon(holder, path.join(tmp, 'real'));
      }
    });
  });

  test('when a live mount has run a while before the first read then uptime counts from the mount', async () => {
    await withMount([], async (dir) => {
      await sh('sleep 1.5');
      const r = await sh(`cat ${q(path.join(dir, 'uptime'))}`);
      const up = Number(r.stdout.split(' ')[0]);
      assert.ok(up >= 1.4, `uptime ${up} s after 1.5 s mounted`);
    });
  });
});

void readdirSync;

describe('robust: a live clock faster than the model', () => {
  test('when --speed 1000000 runs with kscrubd zeroing everything then 20 reads each return and the clock still moves', { timeout: 60_000 }, async () => {
    await withMount(['--preset', 'x86_64', '--mem', '64G', '--speed', '1000000'], async (dir) => {
      const vm = path.join(dir, 'sys/vm');
      assert.equal((await sh(`echo 0 > ${q(vm)}/scrub_stop && echo 0 > ${q(vm)}/scrub_start`)).code, 0);
      const ups: number[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await sh(`cat ${q(path.join(dir, 'uptime'))}`, { timeoutMs: 5_000 });
        ups.push(Number(r.stdout.split(' ')[0]));
      }
      assert.ok(ups.at(-1)! > ups[0]!, `uptime moved: ${ups[0]} → ${ups.at(-1)}`);
    });
  });
});

describe('robust: the memory budget', () => {
  test('when mmap 64T and touch 64T are asked of a 64T machine then the touch is refused before it starts, naming the budget, and nothing changed', { timeout: 60_000 }, async () => {
    await withMount(['--preset', 'x86_64', '--mem', '64T', '--clock', 'manual', '--max-memory', '1G'], async (dir, daemon) => {
      const ctl = q(path.join(dir, 'control'));
      const mem = q(path.join(dir, 'meminfo'));
      const r = await sh(`exec 3<>${ctl}
        echo 'mm new' >&3; read -r a <&3
        echo 'mmap mm=1 size=64T' >&3; read -r b <&3; addr=\${b#ok addr=}; addr=\${addr%% *}
        grep MemFree ${mem}
        echo "touch mm=1 addr=$addr size=64T" | cat >&3 || echo "cat failed: $?"
        read -r c <&3; echo "$c"
        grep MemFree ${mem}`, { timeoutMs: 30_000 });
      const lines = r.stdout.trim().split('\n');
      // The write is accepted once it parses; the refusal fails cat's close (ENOMEM).
      assert.match(lines[1] ?? '', /cat failed: 1/, r.stderr);
      assert.match(r.stderr, /cat: write error: Cannot allocate memory/);
      assert.match(lines[2] ?? '', /^err touch: could need .* of its budget 1 ?Gi?B? \(mount --max-memory\); nothing ran$/);
      assert.equal(lines[0], lines[3], 'MemFree is unchanged');
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec((await run('cat', [`/proc/${daemon.pid}/status`])).stdout)![1]) * 1024;
      assert.ok(rss < 1024 ** 3, `daemon RSS ${rss}`);
    });
  });
});

describe('robust: many opens of a big file', () => {
  test('when an unprivileged user holds 300 opens of zoneinfo on a 64-node 1024-CPU machine then they share one snapshot: memory stays bounded', { timeout: 120_000 }, async () => {
    await withMount(['--preset', 'x86_64', '--mem', '64T', '--nodes', '64', '--cpus', '1024', '--clock', 'manual'], async (dir, daemon) => {
      const rssOf = async (): Promise<number> => Number(/VmRSS:\s+(\d+) kB/.exec((await run('cat', [`/proc/${daemon.pid}/status`])).stdout)![1]) * 1024;
      const one = await run('wc', ['-c', path.join(dir, 'zoneinfo')]);
      const size = Number(one.stdout.trim().split(' ')[0]);
      const before = await rssOf();
      // bash as nobody: 300 descriptors of zoneinfo held open (never read), then the daemon's RSS.
      const r = await run('bash', ['-c', `for i in $(seq 300); do exec {fd}<"$1" || exit 7; done; grep VmRSS /proc/$2/status`, 'bash', path.join(dir, 'zoneinfo'), String(daemon.pid)], { asNobody: true, timeoutMs: 100_000 });
      assert.equal(r.code, 0, r.stderr);
      const after = Number(/VmRSS:\s+(\d+) kB/.exec(r.stdout)![1]) * 1024;
      assert.ok(size > 1e6, `zoneinfo is ${size} bytes`);
      assert.ok(after - before < 40 * size, `300 opens added ${((after - before) / 1e6).toFixed(0)} MB for a ${(size / 1e6).toFixed(1)} MB file`);
    });
  });
});

describe('robust: pft past the machine', () => {
  test('when pft maps more than the machine holds then the row is marked OOM, its rate is over the pages faulted, and it exits non-zero', { timeout: 180_000 }, async () => {
    await withMount(['--clock', 'manual'], async (dir) => {
      const fits = await kscrubfs(['pft', '-m', dir, '-g', '1'], { timeoutMs: 120_000 });
      assert.equal(fits.code, 0, fits.stderr);
      const over = await kscrubfs(['pft', '-m', dir, '-g', '8'], { timeoutMs: 120_000 });
      assert.equal(over.code, 1, `exit ${over.code}\n${over.stdout}\n${over.stderr}`);
      assert.match(over.stderr, /out of memory in 1 of 1 row/);
      // The last row, above the line saying what the run used.
      const row = over.stdout.trim().split('\n').at(-2)!;
      assert.match(row, /OOM: 1 thread\(s\) ran out of memory; rates over the \d+ pages faulted$/);
      const rate = (out: string): number => Number(out.trim().split('\n').at(-2)!.trim().split(/\s+/)[6]);
      const ok = rate(fits.stdout);
      const oom = rate(over.stdout);
      assert.ok(oom > ok / 3 && oom < ok * 3, `flt/cpu/s ${oom} past memory against ${ok} within it`);
    });
  });
});
