// src/uapi is a leaf, and the clients (the workload process) load it, never the daemon's side:
// checked in a fresh Node process through require.cache, which lists every module it loaded.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';

/** dist/src: this file runs from dist/test/unit. */
const SRC = path.resolve(__dirname, '../../src');

/** The layers of kscrubfs each module of src that `entry` loads belongs to (uapi, model, …). */
function layersLoadedBy(entry: string): Map<string, string[]> {
  const code = `require(${JSON.stringify(path.join(SRC, entry))}); process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
  assert.equal(r.status, 0, `loading ${entry}: ${r.stderr}`);
  const layers = new Map<string, string[]>();
  for (const file of JSON.parse(r.stdout) as string[]) {
    if (!file.startsWith(SRC + path.sep)) continue;
    const rel = path.relative(SRC, file);
    const layer = rel.split(path.sep)[0]!;
    layers.set(layer, [...(layers.get(layer) ?? []), rel]);
  }
  return layers;
}

/** The daemon's side: a client that loads any of these carries the machine in its process. */
const DAEMON_SIDE = ['model', 'procfs', 'control', 'daemon'];

describe('uapi: the leaf every client stands on', () => {
  it('when src/uapi is loaded then it loads no module outside src/uapi', () => {
    const layers = layersLoadedBy('uapi/index.js');
    assert.ok((layers.get('uapi') ?? []).length >= 5, 'the uapi modules themselves were seen');
    assert.deepEqual([...layers.keys()], ['uapi']);
  });

  it('when the control layer is loaded then the model shows in require.cache (the check sees it)', () => {
    const layers = layersLoadedBy('control/index.js');
    assert.ok((layers.get('model') ?? []).includes(path.join('model', 'machine.js')), [...layers.keys()].join(', '));
  });

  for (const client of ['workload/pft.js', 'cli/pft.js', 'workload/trace-replay.js', 'workload/watch.js', 'workload/textfile.js']) {
    it(`when the client ${client} is loaded then no module of the daemon's side is (model, procfs, control, daemon)`, () => {
      const layers = layersLoadedBy(client);
      assert.ok([...layers.values()].flat().includes(client.split('/').join(path.sep)), `${client} itself was seen loaded`);
      const loaded = DAEMON_SIDE.flatMap((l) => layers.get(l) ?? []);
      assert.deepEqual(loaded, []);
    });
  }
});
