import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pollUntil } from '../../src/daemon/poll';
import { findMount } from '../../src/fuse/mountpoint';
import { parseMeminfo } from '../../src/uapi';
import { CLI, REPO_ROOT, kscrubfs, q, run, withMount } from '../helpers/mount';

// deploy/: the systemd unit, the container bind list and the Grafana dashboard, each driven
// the way its user would: the unit's own command lines, the binds made in a private mount
// namespace (as a container runtime makes them), the dashboard's queries against the metric
// names the exporter writes.

const DEPLOY = path.join(REPO_ROOT, 'deploy');
const MANUAL = ['--preset', 'x86_64', '--clock', 'manual'];

/** A unit file's [Service] keys (a key given twice keeps every value). */
function unitKeys(file: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

describe('deploy: systemd unit, container binds, Grafana dashboard', () => {
  let tmp = '';
  let bin = '';
  before(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-deploy-'));
    // `kscrubfs` on PATH, as npm i -g leaves it: the unit runs it through /usr/bin/env.
    bin = path.join(tmp, 'bin');
    mkdirSync(bin);
    writeFileSync(path.join(bin, 'kscrubfs'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
    chmodSync(path.join(bin, 'kscrubfs'), 0o755);
  });
  after(async () => {
    const m = path.join(tmp, 'proc');
    if (findMount(m)) await run('fusermount', ['-u', '-z', m]);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('when systemd checks the unit then it is sound, and it runs in the foreground, restarts on failure and unmounts on stop', async () => {
    const unit = path.join(DEPLOY, 'kscrubfs.service');
    // systemd-analyze looks the Documentation= man page up: give it ours.
    mkdirSync(path.join(tmp, 'man/man1'), { recursive: true });
    copyFileSync(path.join(REPO_ROOT, 'man/kscrubfs.1'), path.join(tmp, 'man/man1/kscrubfs.1'));
    const verify = await run('systemd-analyze', ['verify', unit], { env: { ...process.env, MANPATH: path.join(tmp, 'man'), PATH: `${bin}:${process.env.PATH ?? ''}` } });
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr, '');
    const keys = unitKeys(unit);
    assert.deepEqual(keys.get('Type'), ['simple']);
    assert.deepEqual(keys.get('Restart'), ['on-failure']);
    assert.deepEqual(keys.get('KillSignal'), ['SIGTERM']);
    assert.deepEqual(keys.get('ExecStart'), ['/usr/bin/env kscrubfs mount $KSCRUBFS_ARGS']);
    assert.deepEqual(keys.get('ExecStopPost'), ['-/usr/bin/env kscrubfs umount']);
  });

  it('when the unit\'s commands run as systemd runs them then SIGTERM unmounts, and after a crash ExecStopPost clears the dead mount for the restart', async () => {
    const mp = path.join(tmp, 'proc');
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, KSCRUBFS_MOUNT: mp, KSCRUBFS_ARGS: MANUAL.join(' ') };
    // ExecStart: $KSCRUBFS_ARGS unbraced is split on whitespace, as sh does here.
    const start = (): ReturnType<typeof spawn> => spawn('sh', ['-c', 'exec /usr/bin/env kscrubfs mount $KSCRUBFS_ARGS'], { env, stdio: 'ignore' });
    const up = async (): Promise<void> => {
      const ok = await pollUntil(async () => ((await run('cat', [path.join(mp, 'meminfo')])).code === 0 ? true : undefined), { timeoutMs: 20_000, intervalMs: 50 });
      assert.ok(ok, `the service's mount answers on ${mp}`);
    };
    const exited = (p: ReturnType<typeof spawn>): Promise<number | null> => new Promise((resolve) => p.on('exit', (code) => resolve(code)));

    const first = start();
    await up();
    first.kill('SIGTERM'); // systemctl stop
    assert.equal(await exited(first), 0, 'a clean stop exits 0 (no restart)');
    assert.equal(findMount(mp), undefined, 'stop unmounted it');

    const second = start();
    await up();
    second.kill('SIGKILL'); // a crash: Restart=on-failure, and ExecStopPost runs first
    await exited(second);
    // auto_unmount usually takes a killed daemon's mount away; whatever is left, ExecStopPost
    // clears (its '-' lets it fail when there is nothing to clear).
    const post = await run('sh', ['-c', '/usr/bin/env kscrubfs umount'], { env });
    assert.ok(post.code === 0 || /not mounted/.test(post.stderr), post.stderr);
    assert.equal(findMount(mp), undefined, 'nothing is left on the mount point');
    const third = start();
    await up();
    third.kill('SIGTERM');
    assert.equal(await exited(third), 0);
    assert.equal(findMount(mp), undefined);
  });

  it('when a container gets the binds container-binds prints then free and cat in it read the model, and the host\'s /proc stays its own', async () => {
    await withMount(MANUAL, async (dir) => {
      const binds = await run(path.join(DEPLOY, 'container-binds'), [dir]);
      assert.equal(binds.code, 0, binds.stderr);
      const pairs = binds.stdout.trim().split('\n').map((line) => {
        const m = /^--mount type=bind,source=(\S+),target=(\/proc\/\w+),readonly$/.exec(line);
        assert.ok(m, `a docker/podman --mount option: ${line}`);
        return [m[1]!, m[2]!] as const;
      });
      const targets = pairs.map(([, t]) => t);
      for (const f of ['meminfo', 'vmstat', 'buddyinfo', 'zoneinfo']) assert.ok(targets.includes(`/proc/${f}`), `${f} is bound`);
      // What a runtime does with them: read-only binds in the container's mount namespace.
      const mounts = pairs.map(([s, t]) => `mount --bind -o ro ${q(s)} ${q(t)}`).join(' && ');
      const inside = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${mounts} && free -b | awk '/^Mem:/ { print $2 }' && cat /proc/buddyinfo`]);
      assert.equal(inside.code, 0, inside.stderr);
      const [total, ...buddy] = inside.stdout.split('\n');
      const model = readFileSync(path.join(dir, 'meminfo'), 'utf8');
      assert.equal(Number(total), parseMeminfo(model).get('MemTotal')! * 1024, 'free in the container: the model\'s MemTotal');
      assert.equal(buddy.join('\n'), readFileSync(path.join(dir, 'buddyinfo'), 'utf8'), 'its /proc/buddyinfo is the model\'s');
      assert.doesNotMatch(readFileSync('/proc/buddyinfo', 'utf8'), /Zeroed Pages/, 'the host\'s is the kernel\'s');
    });
    const none = await run(path.join(DEPLOY, 'container-binds'), [path.join(tmp, 'nothing')]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^container-binds: \S+\/nothing\/meminfo is missing: is a kscrubfs mount on \S+\/nothing\?\n$/);
  });

  it('when the dashboard queries the textfile exporter then every metric and label it names is one the exporter writes', async () => {
    const out = path.join(tmp, 'textfile');
    mkdirSync(out);
    await withMount(MANUAL, async (dir) => {
      const w = await kscrubfs(['watch', dir, '--once', '--textfile', out]);
      assert.equal(w.code, 0, w.stderr);
    });
    const prom = readFileSync(path.join(out, 'kscrubfs.prom'), 'utf8');
    const written = new Set<string>();
    const labels = new Set<string>(['instance', 'job']); // Prometheus adds these at scrape
    for (const line of prom.split('\n')) {
      const m = /^([a-z_][a-z0-9_]*)(?:\{([^}]*)\})? /.exec(line);
      if (!m) continue;
      written.add(m[1]!);
      for (const l of (m[2] ?? '').matchAll(/(\w+)="/g)) labels.add(l[1]!);
    }
    const dashboard = JSON.parse(readFileSync(path.join(DEPLOY, 'grafana-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
      templating: { list: { definition?: string }[] };
    };
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : []))];
    assert.ok(exprs.length >= 8, `${exprs.length} queries`);
    for (const e of exprs) {
      const names = [...e.matchAll(/\bkscrubfs_\w+/g)].map((m) => m[0]);
      assert.ok(names.length > 0, `a kscrubfs metric in ${e}`);
      for (const n of names) assert.ok(written.has(n), `${n} (in ${e}) is written by the exporter`);
      for (const b of e.matchAll(/\bby \(([^)]*)\)|\{([^}]*)\}/g)) {
        const used = (b[1] ?? b[2] ?? '').split(',').map((s) => s.trim().split(/[=!~]/)[0]!).filter((s) => s !== '');
        for (const l of used) assert.ok(labels.has(l), `label ${l} (in ${e}) is written by the exporter`);
      }
    }
  });
});
