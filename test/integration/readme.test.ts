import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { findMount, fusermountUnmount } from '../../src/fuse/mountpoint';
import { kscrubfs } from '../helpers/mount';
import { README, mismatch, parseReadme, rewrite, runBlock, scratch } from '../helpers/readme';

// Runs every console example of README.md in order and compares its output (see
// test/helpers/readme.ts for the rules). With --update (scripts/update-readme) it writes the
// actual output into README.md instead: every exact block that differs, and every live block
// whose shape changed (a live block that only changed numbers is left as it is).
const UPDATE = process.argv.includes('--update');

test('README console examples', { timeout: 600_000 }, async (t) => {
  const text = readFileSync(README, 'utf8');
  const blocks = parseReadme(text);
  assert.ok(blocks.length >= 8, `README has ${blocks.length} console blocks`);
  const { cwd, env } = await scratch();
  const mountDir = path.join(cwd, 'mount');
  const rewrites: { block: (typeof blocks)[number]; actual: string[][] }[] = [];
  const unmount = async (): Promise<void> => {
    if (!findMount(mountDir)) return;
    const r = await kscrubfs(['umount', mountDir]);
    if (r.code !== 0 && !(await fusermountUnmount(mountDir))) throw new Error(`could not unmount ${mountDir}: ${r.stderr}`);
  };
  try {
    for (const block of blocks) {
      await t.test(`when the block at README line ${block.fence + 1} runs then it prints what the README shows`, async () => {
        if (block.mount !== undefined) {
          await unmount();
          const r = await kscrubfs(['mount', mountDir, ...block.mount.split(' ').filter(Boolean), '--background'], { cwd, env });
          assert.equal(r.code, 0, `mount for README line ${block.fence + 1}: ${r.stderr}`);
        }
        const actual = await runBlock(block, cwd, env);
        const why = mismatch(block, actual);
        if (UPDATE) {
          if (why !== null) rewrites.push({ block, actual });
          return;
        }
        assert.equal(why, null, why ?? '');
      });
    }
  } finally {
    await unmount();
    for (const dir of ['k']) if (findMount(path.join(cwd, dir))) await fusermountUnmount(path.join(cwd, dir));
    if (!findMount(mountDir)) rmSync(cwd, { recursive: true, force: true });
  }
  if (UPDATE && rewrites.length > 0) {
    let lines = text.split('\n');
    for (const { block, actual } of rewrites.reverse()) lines = rewrite(lines, block, actual);
    writeFileSync(README, lines.join('\n'));
    process.stderr.write(`README.md: rewrote ${rewrites.length} block(s) at line(s) ${rewrites.map((r) => r.block.fence + 1).reverse().join(', ')}\n`);
  }
});
