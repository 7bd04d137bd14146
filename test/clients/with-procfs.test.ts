import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { childPids, kscrubfs, processAlive, run, startDaemon, stopDaemon, waitForMount, withMount, withTempDir } from '../helpers/mount';
import { meminfo, parseMeminfo, readModel, WITH_PROCFS, withProcfs } from './tools';

// scripts/with-procfs: the model's files over /proc in a private mount namespace, and nowhere else.
const MANUAL = ['--clock', 'manual'];
const FILES = ['meminfo', 'stat', 'vmstat', 'loadavg', 'uptime', 'zoneinfo', 'buddyinfo'];
/** with-procfs's own failures exit 125, as env(1) and timeout(1) do. */
const OWN_FAILURE = 125;

/** Mount points under /proc in this (the host's) namespace. */
function procMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith('/proc/'));
}

function hostMemTotal(): number {
  return parseMeminfo(readFileSync('/proc/meminfo', 'utf8')).MemTotal!;
}

describe('with-procfs', () => {
  test('when a command runs under it then it reads the model in /proc while the host /proc stays the kernel\'s, during and after', async () => {
    const hostTotal = hostMemTotal();
    const hostMounts = procMounts();
    // 3 GiB: a MemTotal no host here has, so a leak could not pass unseen.
    await withMount([...MANUAL, '--mem', '3G'], async (dir) => {
      const modelTotal = (await meminfo(dir)).MemTotal!;
      assert.notEqual(modelTotal, hostTotal, 'the model and the host must differ for this test to prove anything');

      // Inside: compare every replaced file with the mount's (a manual clock: same bytes), say
      // READY, wait for the test to look at the host, then read /proc/meminfo once more.
      const inner = `for f in ${FILES.join(' ')}; do cmp -s "/proc/$f" "$1/$f" && echo "same $f" || echo "differs $f"; done
        grep -c ' /proc/' /proc/self/mountinfo | sed 's/^/proc-mounts /'
        echo READY; read -r go; head -1 /proc/meminfo`;
      const child = spawn(WITH_PROCFS, ['--mount', dir, '--', 'sh', '-c', inner, 'inner', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const ready = await pollUntil(() => (out.includes('READY\n') ? true : undefined), { timeoutMs: 10_000 });
        assert.ok(ready, `the command under with-procfs did not get ready: ${out}${err}`);
        for (const f of FILES) assert.match(out, new RegExp(`^same ${f}$`, 'm'), `/proc/${f} inside is the model's:\n${out}${err}`);
        assert.ok(Number(/^proc-mounts (\d+)$/m.exec(out)?.[1]) >= FILES.length, out);

        // While the command runs, with the binds in place: the host sees none of them.
        assert.equal(hostMemTotal(), hostTotal);
        assert.deepEqual(procMounts(), hostMounts);

        child.stdin.end('go\n');
        assert.equal(await exited, 0, err);
        assert.match(out, new RegExp(`READY\\nMemTotal: +${modelTotal} kB\\n$`));
      } finally {
        child.kill('SIGKILL');
      }
      // After: nothing left behind.
      assert.equal(hostMemTotal(), hostTotal);
      assert.deepEqual(procMounts(), hostMounts);
    });
  });

  test('when the command exits with a status then with-procfs exits with it; a missing command is 127', async () => {
    await withMount(MANUAL, async (dir) => {
      assert.equal((await withProcfs(dir, ['sh', '-c', 'exit 7'])).code, 7);
      const missing = await withProcfs(dir, ['kscrubfs-no-such-command']);
      assert.equal(missing.code, 127);
      // Named as env(1) names it, not by the script's internals (its shell and line number).
      assert.equal(missing.stderr, 'with-procfs: kscrubfs-no-such-command: command not found\n');
    });
  });

  test('when no --mount is given then ./mount of the current directory is used, and a relative DIR works', async () => {
    await withTempDir(async (tmp) => {
      const dir = path.join(tmp, 'mount');
      await mkdir(dir);
      const daemon = startDaemon(dir, [...MANUAL, '--mem', '3G']);
      try {
        await waitForMount(dir, daemon);
        const first = (await readModel(dir, 'meminfo')).split('\n')[0];
        const byDefault = await run(WITH_PROCFS, ['--', 'head', '-1', '/proc/meminfo'], { cwd: tmp });
        assert.equal(byDefault.code, 0, byDefault.stderr);
        assert.equal(byDefault.stdout, `${first}\n`);
        const relative = await run(WITH_PROCFS, ['--mount', 'mount/', 'head', '-1', '/proc/meminfo'], { cwd: tmp });
        assert.equal(relative.code, 0, relative.stderr);
        assert.equal(relative.stdout, `${first}\n`);
      } finally {
        await stopDaemon(daemon, dir);
      }
    });
  });

  test('when DIR has a space and a backslash in its name (escaped in mountinfo) then it is still found', async () => {
    await withTempDir(async (tmp) => {
      const dir = path.join(tmp, 'a b\\c');
      await mkdir(dir);
      const daemon = startDaemon(dir, MANUAL);
      try {
        await waitForMount(dir, daemon);
        const r = await withProcfs(dir, ['head', '-1', '/proc/meminfo']);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `${(await readModel(dir, 'meminfo')).split('\n')[0]}\n`);
      } finally {
        await stopDaemon(daemon, dir);
      }
    });
  });

  test('when DIR is not a kscrubfs mount then it says what is there and exits 125 without running the command', async () => {
    await withTempDir(async (tmp, dir) => {
      const empty = await run(WITH_PROCFS, ['--mount', dir, '--', 'touch', path.join(tmp, 'ran')]);
      assert.equal(empty.code, OWN_FAILURE);
      assert.equal(empty.stderr, `with-procfs: ${dir} is not a kscrubfs mount: nothing is mounted there (start one: kscrubfs mount ${dir} --background)\n`);
      const proc = await run(WITH_PROCFS, ['--mount', '/proc', '--', 'touch', path.join(tmp, 'ran')]);
      assert.equal(proc.code, OWN_FAILURE);
      assert.match(proc.stderr, /^with-procfs: \/proc is not a kscrubfs mount: it is a proc mount of 'proc'\n$/);
      const missing = await run(WITH_PROCFS, ['--mount', path.join(tmp, 'no/such'), '--', 'true']);
      assert.equal(missing.code, OWN_FAILURE);
      assert.match(missing.stderr, /no such directory/);
      assert.equal((await run('ls', [tmp])).stdout, 'mnt\n', 'the command never ran');
    });
  });

  test('when the mount\'s daemon is dead then it says the mount does not answer and exits 125', async () => {
    await withMount(MANUAL, async (dir, daemon) => {
      // Kill the daemon without letting anything unmount: its auto_unmount watchdog first.
      const watchdogs = childPids(daemon.pid).filter((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'fusermount');
      for (const pid of watchdogs) process.kill(pid, 'SIGKILL');
      await pollUntil(() => (watchdogs.some(processAlive) ? undefined : true), { timeoutMs: 5000 });
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      const r = await withProcfs(dir, ['true'], { timeoutMs: 15_000 });
      assert.equal(r.code, OWN_FAILURE);
      assert.match(r.stderr, new RegExp(`^with-procfs: the kscrubfs mount on ${dir} does not answer \\(.*(Transport endpoint is not connected|Software caused connection abort).*\\); its daemon is gone or stuck`));
    });
  });

  test('when run without root then it refuses with exit 125 and says it needs root', async () => {
    // A clone may sit under a directory nobody cannot enter (/root is 0700): run a copy of the
    // script from a directory nobody can reach, so the refusal is the script's, not exec's.
    await withTempDir(async (tmp) => {
      const script = path.join(tmp, 'with-procfs');
      await copyFile(WITH_PROCFS, script);
      await chmod(script, 0o755);
      await withMount(MANUAL, async (dir) => {
        const r = await run(script, ['--mount', dir, '--', 'true'], { asNobody: true });
        assert.equal(r.code, OWN_FAILURE, r.stderr);
        assert.match(r.stderr, /^with-procfs: needs root/);
      });
    });
  });

  test('when no command is given then it is a usage error (125); --help prints the usage and exits 0', async () => {
    const none = await run(WITH_PROCFS, ['--mount', '/nonexistent']);
    assert.equal(none.code, OWN_FAILURE);
    assert.match(none.stderr, /no command given/);
    const help = await run(WITH_PROCFS, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /scripts\/with-procfs \[--mount DIR\] \[--\] CMD/);
  });

  test('when kscrubfs with-procfs is given no command or an unknown option then it exits 125 as its help says, not 2', async () => {
    const none = await kscrubfs(['with-procfs', '--mount', '/nonexistent']);
    assert.equal(none.code, OWN_FAILURE, none.stderr);
    assert.match(none.stderr, /missing required argument 'cmd'/);
    const bad = await kscrubfs(['with-procfs', '--bogus', '--', 'true']);
    assert.equal(bad.code, OWN_FAILURE, bad.stderr);
    assert.match(bad.stderr, /unknown option '--bogus'/);
    // CMD's own status 2 still comes through as 2.
    await withMount(MANUAL, async (dir) => {
      assert.equal((await kscrubfs(['with-procfs', '--mount', dir, '--', 'sh', '-c', 'exit 2'])).code, 2);
    });
    const help = await kscrubfs(['with-procfs', '--help']);
    assert.equal(help.code, 0);
  });
});
