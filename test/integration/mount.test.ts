import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { controlBatch } from '../../src/workload/client';
import { daemonPid, findMount } from '../../src/fuse/mountpoint';
import {
  childPids, kscrubfs, processAlive, q, sh, startDaemon, stopDaemon, waitForMount, withMount, withTempDir,
  type Daemon,
} from '../helpers/mount';

// The real daemon (a child process) on a temporary directory, checked with real tools.
// `--clock manual` keeps the bytes of every file stable between reads.
const MANUAL = ['--clock', 'manual'];

/** Kill the daemon without letting anything unmount: its auto_unmount watchdog first. */
async function leaveDeadMount(daemon: Daemon): Promise<void> {
  const watchdogs = childPids(daemon.pid).filter((pid) => readComm(pid) === 'fusermount');
  assert.equal(watchdogs.length, 1, 'the daemon has one fusermount auto_unmount watchdog');
  for (const pid of watchdogs) process.kill(pid, 'SIGKILL');
  await pollUntil(() => (watchdogs.some(processAlive) ? undefined : true), { timeoutMs: 5000 });
  daemon.child.kill('SIGKILL');
  await daemon.exited;
}

/** A fresh daemon mounts `dir` (stale or not) and serves it; it is stopped again after. */
async function assertMountServes(dir: string): Promise<void> {
  const daemon = startDaemon(dir, MANUAL);
  try {
    await waitForMount(dir, daemon);
    assert.equal((await sh(`cat ${q(path.join(dir, 'buddyinfo'))}`)).code, 0);
  } finally {
    await stopDaemon(daemon, dir);
  }
}

/** The TCP ports `pid` listens on: its socket inodes matched against /proc/net/tcp{,6} (state 0A = LISTEN). */
function listeningTcpPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    })();
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1] !== undefined) inodes.add(m[1]);
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [, local, , state, , , , , , inode] = f;
      if (state === '0A' && inode !== undefined && inodes.has(inode)) ports.push(parseInt(local?.split(':')[1] ?? '', 16));
    }
  }
  return ports;
}

/** Every byte a descriptor gives until read(2) returns 0. */
function readUntilEof(fd: number): string {
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(65536);
    const n = readSync(fd, buf);
    if (n === 0) return Buffer.concat(chunks).toString('utf8');
    chunks.push(buf.subarray(0, n));
  }
}

function readComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

describe('mounted files', () => {
  test('when the root is listed unsorted then . and .. come first, then the files', async () => {
    await withMount(MANUAL, async (dir) => {
      const ls = await sh(`ls -a -U ${q(dir)}`);
      assert.equal(ls.code, 0, ls.stderr);
      const names = ls.stdout.split('\n').filter(Boolean);
      assert.deepEqual(names.slice(0, 2), ['.', '..']);
      for (const name of ['buddyinfo', 'meminfo', 'sys']) assert.ok(names.includes(name), `${name} in ${names.join(' ')}`);
    });
  });

  test('when buddyinfo is read with cat and in 7-byte chunks then both give the same zone lines', async () => {
    await withMount(MANUAL, async (dir) => {
      const file = q(path.join(dir, 'buddyinfo'));
      const cat = await sh(`cat ${file}`);
      assert.equal(cat.code, 0, cat.stderr);
      assert.match(cat.stdout, /^Node 0, zone +\w+ /m);
      const dd = await sh(`dd if=${file} bs=7 status=none`);
      assert.equal(dd.stdout, cat.stdout);
    });
  });

  test('when files report their size (as LXCFS) then cp, tar and sendfile (shutil.copyfile) copy the whole text, and writable files stay 0', async () => {
    await withMount(MANUAL, async (dir) => {
      const out = await mkdtemp(path.join(os.tmpdir(), 'kscrubfs-copy-'));
      try {
        const r = await sh(`cd ${q(dir)} && stat -c %s meminfo sys/vm/scrub_start control && wc -c < meminfo`
          + ` && cp --reflink=never meminfo ${q(out)}/cp-meminfo && tar cf ${q(out)}/t.tar meminfo buddyinfo && tar xf ${q(out)}/t.tar -C ${q(out)}`
          + ` && python3 -c 'import shutil,sys; shutil.copyfile(sys.argv[1], sys.argv[2])' meminfo ${q(out)}/py-meminfo`);
        assert.equal(r.code, 0, r.stderr);
        const [meminfoSize, sysctlSize, controlSize, bytes] = r.stdout.trim().split('\n').map(Number);
        assert.equal(meminfoSize, bytes, 'st_size is the length cat reads');
        assert.ok(bytes! > 100, `meminfo has ${bytes} bytes`);
        assert.deepEqual([sysctlSize, controlSize], [0, 0]);
        const text = await readFile(path.join(dir, 'meminfo'), 'utf8');
        for (const copy of ['cp-meminfo', 'meminfo', 'py-meminfo']) assert.equal(await readFile(path.join(out, copy), 'utf8'), text, copy);
        assert.equal(await readFile(path.join(out, 'buddyinfo'), 'utf8'), await readFile(path.join(dir, 'buddyinfo'), 'utf8'));
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    });
  });

  test('when vmstat grows between stat, open and fstat then fstat gives that open\'s length and fs.readFile gets the whole text', async () => {
    await withMount(MANUAL, async (dir) => {
      const file = path.join(dir, 'vmstat');
      const before = statSync(file).size;
      const fd = openSync(file, 'r');
      try {
        // Faulting 64 MiB turns counters from 0 into five digits: vmstat grows by many bytes.
        const lines = await controlBatch(dir, 'mm new keep\nmmap mm=1 size=64M addr=0x10000000000\ntouch mm=1 addr=0x10000000000 size=64M\n');
        assert.ok(lines.every((l) => l.startsWith('ok')), lines.join(' | '));
        const size = fstatSync(fd).size;
        const text = readUntilEof(fd);
        assert.equal(size, Buffer.byteLength(text), 'fstat on an open is the length of what it reads');
        assert.ok(size > before, `vmstat grew (${before} → ${size} bytes)`);
        const whole = readFileSync(file, 'utf8');
        assert.ok(whole.endsWith('\n') && /^pgfault [1-9]\d*$/m.test(whole), 'fs.readFile reads the whole text');
        assert.equal(whole, (await sh(`cat ${q(file)}`)).stdout);
      } finally {
        closeSync(fd);
      }
    });
  });

  test('when stat is asked for modes then files keep theirs and directories are 555', async () => {
    await withMount(MANUAL, async (dir) => {
      const r = await sh(`cd ${q(dir)} && stat -c '%a %U %F %n' . sys sys/vm buddyinfo sys/vm/scrub_start control`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.split('\n').filter(Boolean), [
        '555 root directory .',
        '555 root directory sys',
        '555 root directory sys/vm',
        '444 root regular file buddyinfo',
        '644 root regular empty file sys/vm/scrub_start',
        '600 root regular empty file control',
      ]);
    });
  });

  test('when echo 5 > sys/vm/scrub_start then the open with O_TRUNC is accepted and it reads back 5', async () => {
    await withMount(MANUAL, async (dir) => {
      const file = q(path.join(dir, 'sys/vm/scrub_start'));
      const r = await sh(`echo 5 > ${file} && cat ${file}`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '5\n');
    });
  });

  test('when root opens a 0444 file for writing then it gets Permission denied', async () => {
    await withMount(MANUAL, async (dir) => {
      const r = await sh(`echo x > ${q(path.join(dir, 'buddyinfo'))}`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Permission denied/);
    });
  });

  test('when root truncates a 0444 file with truncate(2) then it gets EACCES and the file is unchanged', async () => {
    await withMount(MANUAL, async (dir) => {
      // Root passes the kernel's permission check (default_permissions), so the refusal is ours.
      const file = path.join(dir, 'meminfo');
      const before = (await sh(`cat ${q(file)}`)).stdout;
      const r = await sh(`python3 -c 'import os, sys; os.truncate(sys.argv[1], 0)' ${q(file)}`);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /PermissionError: \[Errno 13\]/);
      assert.equal((await sh(`cat ${q(file)}`)).stdout, before);
      const ok = await sh(`python3 -c 'import os, sys; os.truncate(sys.argv[1], 0)' ${q(path.join(dir, 'sys/vm/scrub_stop'))}`);
      assert.equal(ok.code, 0, `a 0644 file accepts truncate(2) as a no-op: ${ok.stderr}`);
    });
  });

  test('when nobody reads 0444 and 0644 files then it can, and when it writes a 0644 file then EACCES', async () => {
    await withMount(MANUAL, async (dir) => {
      const read = await sh(`cat ${q(path.join(dir, 'buddyinfo'))} ${q(path.join(dir, 'sys/vm/scrub_start'))}`, { asNobody: true });
      assert.equal(read.code, 0, read.stderr);
      assert.match(read.stdout, /^Node 0, zone/m);

      const before = (await sh(`cat ${q(path.join(dir, 'sys/vm/scrub_start'))}`)).stdout;
      const write = await sh(`echo 3 > ${q(path.join(dir, 'sys/vm/scrub_start'))}`, { asNobody: true });
      assert.notEqual(write.code, 0);
      assert.match(write.stderr, /Permission denied/);
      assert.equal((await sh(`cat ${q(path.join(dir, 'sys/vm/scrub_start'))}`)).stdout, before);
    });
  });

  test('when /proc/mounts is read then the mount names kscrubfs, its daemon pid and the permission options', async () => {
    await withMount(MANUAL, async (dir, daemon) => {
      const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === dir);
      assert.ok(line, `${dir} in /proc/mounts`);
      const [source, , fstype, options] = line.split(' ');
      assert.equal(source, `kscrubfs@${daemon.pid}`);
      assert.equal(fstype, 'fuse.kscrubfs');
      const opts = options?.split(',') ?? [];
      for (const opt of ['default_permissions', 'allow_other']) assert.ok(opts.includes(opt), `${opt} in ${options}`);
    });
  });
});

describe('daemon lifecycle', () => {
  test('when the daemon starts then it prints one line naming the machine and the mount point', async () => {
    await withMount(MANUAL, async (dir, daemon) => {
      assert.equal(
        daemon.stdout(),
        `kscrubfs: altix machine (6 GiB, 4 nodes, 8 CPUs) mounted on ${dir} — Ctrl-C or 'kscrubfs umount ${dir}' to stop\n`,
      );
    });
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    test(`when the daemon gets ${signal} then it unmounts and exits 0`, async () => {
      await withMount(MANUAL, async (dir, daemon) => {
        daemon.child.kill(signal);
        assert.deepEqual(await daemon.exited, { code: 0, signal: null }, daemon.stderr());
        assert.equal(findMount(dir), undefined);
      });
    });
  }

  test('when the daemon gets SIGUSR1 (as logrotate sends) then it opens no inspector port and keeps serving', async () => {
    await withMount(MANUAL, async (dir, daemon) => {
      process.kill(daemon.pid, 'SIGUSR1');
      // Node's inspector, once started, listens within milliseconds; give it far more.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.deepEqual(listeningTcpPorts(daemon.pid), [], 'a listening TCP socket would let any local user run code as the daemon');
      assert.doesNotMatch(daemon.stderr(), /Debugger listening/);
      assert.ok(processAlive(daemon.pid));
      assert.equal((await sh(`cat ${q(path.join(dir, 'loadavg'))}`)).code, 0);
    });
  });

  test('when the daemon was SIGKILLed then the next mount on the same dir works', async () => {
    await withTempDir(async (_tmp, dir) => {
      const first = startDaemon(dir, MANUAL);
      try {
        await waitForMount(dir, first);
        first.child.kill('SIGKILL');
        await first.exited;
      } finally {
        await stopDaemon(first, dir).catch(() => undefined);
      }
      await assertMountServes(dir);
    });
  });

  test('when a dead mount is left (Transport endpoint is not connected) then mount clears it and serves', async () => {
    await withTempDir(async (_tmp, dir) => {
      const first = startDaemon(dir, MANUAL);
      await waitForMount(dir, first);
      await leaveDeadMount(first);
      const dead = await sh(`ls ${q(dir)}`);
      assert.match(dead.stderr, /Transport endpoint is not connected/);

      await assertMountServes(dir);
    });
  });

  test('when a live daemon holds the dir then a second mount is refused with exit 1 and the first keeps serving', async () => {
    await withMount(MANUAL, async (dir, daemon) => {
      const second = await kscrubfs(['mount', dir, ...MANUAL]);
      assert.equal(second.code, 1);
      assert.equal(
        second.stderr,
        `kscrubfs: ${dir} is already mounted by a running daemon (pid ${daemon.pid}) — run 'kscrubfs umount ${dir}' first\n`,
      );
      assert.equal(daemonPid(findMount(dir)!), daemon.pid);
      assert.equal((await sh(`cat ${q(path.join(dir, 'buddyinfo'))}`)).code, 0);
    });
  });

  test('when kscrubfs umount is run on a live mount then the daemon exits 0 and the mount is gone', async () => {
    await withMount(MANUAL, async (dir, daemon) => {
      const r = await kscrubfs(['umount', dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `kscrubfs: unmounted ${dir} (daemon pid ${daemon.pid} stopped)\n`);
      assert.deepEqual(await daemon.exited, { code: 0, signal: null });
      assert.equal(findMount(dir), undefined);
    });
  });

  test('when kscrubfs umount is run on a dead mount then fusermount clears it', async () => {
    await withTempDir(async (_tmp, dir) => {
      const daemon = startDaemon(dir, MANUAL);
      await waitForMount(dir, daemon);
      await leaveDeadMount(daemon);
      const r = await kscrubfs(['umount', dir]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `kscrubfs: unmounted ${dir} (daemon pid ${daemon.pid} was not running)\n`);
      assert.equal(findMount(dir), undefined);
    });
  });

  test('when kscrubfs umount is run on a dir that is not mounted then it says so and exits 1', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['umount', dir]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `kscrubfs: ${dir} is not mounted\n`);
    });
  });

  test('when mount --background is run then it prints the daemon pid, the mount answers, and umount stops it', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['mount', dir, '--background', ...MANUAL]);
      const pid = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1]);
      const log = /\(log (\S+)\)/.exec(r.stdout)?.[1];
      try {
        assert.equal(r.code, 0, r.stderr);
        assert.ok(pid > 0, r.stdout);
        assert.equal(daemonPid(findMount(dir)!), pid);
        assert.match((await sh(`cat ${q(path.join(dir, 'buddyinfo'))}`)).stdout, /^Node 0, zone/m);
        const stop = await kscrubfs(['umount', dir]);
        assert.equal(stop.code, 0, stop.stderr);
        assert.equal(findMount(dir), undefined);
        assert.equal(processAlive(pid), false);
      } finally {
        if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGTERM');
        if (log) rmSync(log, { force: true });
      }
    });
  });

  test('when mount --background gets a size the model refuses then it fails with the daemon\'s message and exit 2', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['mount', dir, '--background', '--mem', 'lots']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^kscrubfs: .*"lots"/);
      assert.equal(findMount(dir), undefined);
    });
  });

  test('when the model refuses an option then mount prints kscrubfs: <message> and exits 2 without mounting', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['mount', dir, '--mem', 'lots']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^kscrubfs: .*"lots"/);
      assert.equal(findMount(dir), undefined);
    });
  });

  test('when an integer option gets 1.5 then commander refuses it and exits 2 (a usage error)', async () => {
    await withTempDir(async (_tmp, dir) => {
      const r = await kscrubfs(['mount', dir, '--nodes', '1.5']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--nodes <n>.*expected an integer ≥ 1, got "1\.5"/);
      assert.equal(findMount(dir), undefined);
    });
  });
});
