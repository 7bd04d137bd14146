import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findMount } from '../../src/fuse/mountpoint';
import { REPO_ROOT, run } from '../helpers/mount';

// The package as a user gets it: `npm pack` of this tree (built by prepare, which npm test's
// setup ran), installed with `npm i -g --prefix` into a scratch prefix, and its kscrubfs run
// from there — mount, pft, umount — with nothing of the repository on its path.

// What a user does first with an installed kscrubfs, from outside the repository: mount (at
// KSCRUBFS_MOUNT), one pft row, umount, and nothing left mounted.
async function mountPftUmount(tmp: string, prefix: string): Promise<void> {
  const m = path.join(tmp, 'm');
  const env = { ...process.env, KSCRUBFS_MOUNT: m, PATH: `${path.join(prefix, 'bin')}:${process.env.PATH ?? ''}` };
  const opts = { cwd: tmp, env, timeoutMs: 60_000 };
  const mount = await run(path.join(prefix, 'bin/kscrubfs'), ['mount', '--background', '--preset', 'x86_64', '--clock', 'manual'], opts);
  assert.equal(mount.code, 0, mount.stderr);
  assert.match(mount.stdout, new RegExp(`mounted on ${m} `));
  try {
    const pft = await run('kscrubfs', ['pft', '-g', '0.05', '-t', '1', '--scrub', 'off', '--json'], opts);
    assert.equal(pft.code, 0, pft.stderr);
    const rows = (JSON.parse(pft.stdout) as { rows: { threads: number }[] }).rows;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.threads, 1);
  } finally {
    const umount = await run('kscrubfs', ['umount'], opts);
    assert.equal(umount.code, 0, umount.stderr);
  }
  assert.equal(findMount(m), undefined, 'nothing left mounted');
}

function unmountLeftover(tmp: string): void {
  const m = path.join(tmp, 'm');
  if (findMount(m)) void run('fusermount', ['-u', '-z', m]);
}


describe('npm pack and npm i -g', () => {
  let tmp = '';
  let prefix = '';
  let bin = '';
  let files: string[] = [];
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-install-'));
    prefix = path.join(tmp, 'prefix');
    // --ignore-scripts: prepare already built this tree; packing must not rebuild it under the tests.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: REPO_ROOT, timeoutMs: 120_000 });
    assert.equal(pack.code, 0, pack.stderr);
    const [info] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
    files = info.files.map((f) => f.path);
    const install = await run('npm', ['i', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, info.filename)], { cwd: tmp, timeoutMs: 300_000 });
    assert.equal(install.code, 0, install.stderr);
    bin = path.join(prefix, 'bin/kscrubfs');
  });
  after(() => {
    unmountLeftover(tmp);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('when packed then the tarball holds what runs and nothing of the tests, sources or CI', () => {
    for (const f of ['dist/src/cli/main.js', 'package.json', 'README.md', 'man/kscrubfs.1', 'completions/kscrubfs.bash', 'completions/_kscrubfs', 'scripts/payoff', 'scripts/with-procfs', 'scripts/sweeps/threads.json']) {
      assert.ok(files.includes(f), `${f} is shipped`);
    }
    const stray = files.filter((f) => /^(test|src|dist\/test)\/|\.ts$|\.map$|^\.|golden|node_modules/.test(f));
    assert.deepEqual(stray, [], 'no tests, TypeScript sources, source maps or dot files');
    // 547 files before package.json had a files list; the built JS is most of what is left.
    assert.ok(files.length < 200, `${files.length} files`);
  });

  it('when installed into a prefix then its kscrubfs mounts, runs pft and unmounts, with KSCRUBFS_MOUNT as the mount point', async () => {
    await mountPftUmount(tmp, prefix);
  });

  it('when installed then a shipped sweep spec is found by name, payoff and with-procfs are commands, and the man page and completions are there', async () => {
    const list = await run(bin, ['sweep', 'threads', '--list'], { cwd: tmp });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^kscrubfs sweep ${path.join(prefix, 'lib/node_modules/kscrubfs/scripts/sweeps/threads.json')} --point [0-9a-f]+$`, 'm'));
    const typo = await run(bin, ['sweep', 'thread'], { cwd: tmp });
    assert.match(typo.stderr, /^kscrubfs: sweep: no file thread here and no shipped spec of that name \(shipped: cachelines, scrub-stop, thp, threads\)\n$/);
    for (const cmd of ['payoff', 'with-procfs']) {
      const help = await run(bin, [cmd, '--help'], { cwd: tmp });
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: kscrubfs ${cmd} `));
    }
    const man = path.join(prefix, 'share/man/man1/kscrubfs.1');
    assert.ok(existsSync(man), 'npm linked the man page');
    const printed = await run(bin, ['man'], { cwd: tmp });
    assert.equal(readFileSync(man, 'utf8'), printed.stdout, 'the installed man page is the one the commands make');
    const shown = await run('man', ['--warnings', '-l', man], { env: { ...process.env, MANWIDTH: '100' } });
    assert.equal(shown.code, 0);
    assert.equal(shown.stderr, '', 'man has no warnings');
    assert.match(shown.stdout, /kscrubfs with-procfs \[options\] <cmd> \[args\.\.\.\]/);
    const bash = await run(bin, ['completion', 'bash'], { cwd: tmp });
    assert.equal(readFileSync(path.join(prefix, 'lib/node_modules/kscrubfs/completions/kscrubfs.bash'), 'utf8'), bash.stdout);
  });
});

// npm i -g of a git URL, with the npm on this machine: npm clones the commit, builds it in the
// clone (prepare) and installs what it packs. npm 11 links that temporary clone over the global
// package while building it; scripts/prepare.sh puts the package back (see there). This installs
// HEAD of this repository, so it checks committed code.
describe('npm i -g <git url>', () => {
  let tmp = '';
  let prefix = '';
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-git-install-'));
    prefix = path.join(tmp, 'prefix');
    const install = await run('npm', ['i', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', `git+file://${REPO_ROOT}`], { cwd: tmp, timeoutMs: 480_000 });
    assert.equal(install.code, 0, install.stderr);
  });
  after(() => {
    unmountLeftover(tmp);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('when installed from a git URL then the package is a directory of its own, not a link to npm\'s deleted clone, holding the built CLI and its man page', () => {
    const pkg = path.join(prefix, 'lib/node_modules/kscrubfs');
    assert.ok(!lstatSync(pkg).isSymbolicLink(), `${pkg} is not a link (it was one to a temporary clone)`);
    for (const f of ['dist/src/cli/main.js', 'node_modules/fuse-native/index.js', 'man/kscrubfs.1']) assert.ok(existsSync(path.join(pkg, f)), `${f} installed`);
    assert.ok(!existsSync(path.join(pkg, 'src')) && !existsSync(path.join(pkg, 'test')), 'what a tarball install ships, no sources or tests');
    assert.ok(existsSync(path.join(prefix, 'share/man/man1/kscrubfs.1')), 'npm linked the man page');
  });

  it('when installed from a git URL then its kscrubfs mounts, runs pft and unmounts', async () => {
    await mountPftUmount(tmp, prefix);
  });
});
