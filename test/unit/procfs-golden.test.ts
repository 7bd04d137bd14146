import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createMachine, type Machine } from '../../src/model';
import type { PresetName } from '../../src/uapi';
import { buildProcTree, fixedFilesFor, type BuddyinfoFormat } from '../../src/procfs';

// Every rendered file, byte for byte, against test/golden/<preset>/<path> after a fixed
// sequence in manual clock. When a change to the model or a renderer is meant,
// regenerate and review the diff:
//
//   scripts/update-golden        (= tsc, then: node dist/test/unit/procfs-golden.test.js --update)

const GOLDEN = path.resolve(__dirname, '../../../test/golden');
const UPDATE = process.argv.includes('--update');
const PRESETS: readonly PresetName[] = ['altix', 'x86_64', 'i386', 'epyc'];

/**
 * The fixed sequence: fragment node 0 with small allocations (some of them __GFP_ZERO, which
 * hot-zero), free every other one, free big blocks on the last node so they coalesce, turn
 * kscrubd on (scrub_start 5 wakes every node) and let 1 s pass.
 */
function goldenMachine(preset: PresetName): Machine {
  const m = createMachine({ preset, clock: 'manual' });
  const last = m.config.nodes - 1;
  const small = m.raw.alloc(0, false, 0, 100);
  m.raw.alloc(3, true, 0, 20);
  const big = m.raw.alloc(5, false, last, 8);
  m.raw.free(small.filter((_, i) => i % 2 === 0));
  m.raw.free(big);
  m.setSysctl('scrub_start', 5);
  m.tick(1e9);
  return m;
}

/** golden file name → rendered bytes, read through the tree as a reader would. */
function renderAll(m: Machine): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const formats: readonly BuddyinfoFormat[] = ['v6', 'stock'];
  for (const buddyinfo of formats) {
    const tree = buildProcTree(m, { buddyinfo, syncClock: () => undefined });
    for (const file of fixedFilesFor(m)) {
      if (!file.render) continue;
      if (buddyinfo === 'stock' && file.path !== '/buddyinfo') continue;
      const name = file.path.slice(1) + (buddyinfo === 'stock' ? '.stock' : '');
      out.set(name, tree.files.get(file.path)!.open(0).read(0, 1 << 24));
    }
  }
  return out;
}

describe('golden files', () => {
  for (const preset of PRESETS) {
    const rendered = renderAll(goldenMachine(preset));
    for (const [name, bytes] of rendered) {
      const file = path.join(GOLDEN, preset, name);
      test(`when ${preset} renders ${name} after the fixed sequence then it matches test/golden/${preset}/${name}`, () => {
        if (UPDATE) {
          mkdirSync(path.dirname(file), { recursive: true });
          writeFileSync(file, bytes);
          return;
        }
        assert.equal(bytes.toString('utf8'), readFileSync(file, 'utf8'), `regenerate with scripts/update-golden if the change is meant`);
        assert.ok(bytes.equals(readFileSync(file)));
      });
    }
  }

  test('when the sequence runs twice then the bytes are the same (same commands ⇒ same bytes)', () => {
    for (const preset of PRESETS) {
      const a = renderAll(goldenMachine(preset));
      const b = renderAll(goldenMachine(preset));
      assert.deepEqual([...a.keys()], [...b.keys()]);
      for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${preset}/${name}`);
    }
  });
});
