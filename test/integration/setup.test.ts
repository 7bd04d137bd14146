import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { run } from '../helpers/mount';

// scripts/setup.sh and the apt-get wrapper it installs through, on this (Debian, root) machine,
// with the real apt-get: a package whose install would remove another is refused, and nothing
// changes.

/** dpkg's status line of each package (what "nothing changed" is compared on). */
async function status(pkgs: readonly string[]): Promise<string> {
  const r = await run('dpkg-query', ['-W', '-f=${Package} ${Status} ${Version}\\n', ...pkgs]);
  return r.stdout;
}

async function installed(pkg: string): Promise<boolean> {
  return (await status([pkg])).includes('install ok installed');
}

describe('setup never removes a package', () => {
  it('when installing one FUSE userland would remove the other then apt-install.sh refuses, names it, and installs nothing', async () => {
    // fuse (FUSE 2) and fuse3 break each other on Debian: whichever is here, ask for the other.
    const here = (await installed('fuse3')) ? 'fuse3' : 'fuse';
    const other = here === 'fuse' ? 'fuse3' : 'fuse';
    assert.ok(await installed(here), `${here} is installed (scripts/setup.sh puts one of them here)`);
    const before = await status(['fuse', 'fuse3', 'libfuse2']);
    const r = await run('bash', ['scripts/apt-install.sh', other], { timeoutMs: 120_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^setup: refusing to install ${other}: apt-get would remove [^\\n]*\\b${here}\\b`, 'm'));
    assert.match(r.stderr, /kscrubfs never removes a package/);
    assert.equal(await status(['fuse', 'fuse3', 'libfuse2']), before, 'no package changed');
  });

  it('when a package is unknown to apt then apt-install.sh says so with apt-get\'s words', async () => {
    const r = await run('bash', ['scripts/apt-install.sh', 'kscrubfs-no-such-package'], { timeoutMs: 120_000 });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^setup: apt-get cannot install kscrubfs-no-such-package:\n {2}E: Unable to locate package kscrubfs-no-such-package/m);
  });

  it('when setup.sh is given an unknown option then it exits 2 and changes nothing', async () => {
    // (setup.sh itself runs before every npm test: that it passes on this machine is tested there.)
    const bad = await run('bash', ['scripts/setup.sh', '--with-everything']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, "setup.sh: unknown option '--with-everything'\n");
  });
});
