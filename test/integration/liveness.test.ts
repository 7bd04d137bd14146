import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { runCommand } from '../../src/control/execute';
import { parseCommand } from '../../src/uapi';
import { type Machine, createMachine } from '../../src/model';
import { buildProcTree } from '../../src/procfs';
import { run, withMount } from '../helpers/mount';

// DESIGN §5 over a real mount: a long command runs in slices, and other readers are answered
// while it is in flight; slicing never changes the outcome (the same commands on a manual clock
// give the same bytes as the model run whole, in this process, with no mount).

const MACHINE = ['--preset', 'x86_64', '--mem', '256G', '--clock', 'manual'];
const MODEL = { preset: 'x86_64', mem: '256G', clock: 'manual' } as const;

/**
 * python3: one thread writes `commands` to control (one write, so one batch) and reads the
 * results; another loops open+read+close on meminfo meanwhile. Prints JSON: the results, when
 * the write started and when the last result was read, and when each meminfo read completed
 * (monotonic seconds).
 */
const SCRIPT = String.raw`
import json, os, sys, threading, time
d, commands = sys.argv[1], sys.argv[2]
done = threading.Event()
reads = []
def reader():
    while not done.is_set():
        with open(os.path.join(d, 'meminfo'), 'rb') as f:
            assert f.read().startswith(b'MemTotal:')
        reads.append(time.monotonic())
t = threading.Thread(target=reader)
t.start()
fd = os.open(os.path.join(d, 'control'), os.O_RDWR)
start = time.monotonic()
os.write(fd, commands.encode())
out = b''
while True:
    b = os.read(fd, 65536)
    if not b: break
    out += b
end = time.monotonic()
done.set()
t.join()
os.close(fd)
print(json.dumps({'results': out.decode().splitlines(), 'start': start, 'end': end, 'reads': reads}))
`;

interface Outcome {
  results: string[];
  start: number;
  end: number;
  reads: number[];
}

async function drive(dir: string, commands: string): Promise<Outcome> {
  const r = await run('python3', ['-c', SCRIPT, dir, commands], { timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Outcome;
}

/** The same lines run whole against a fresh model in this process. */
function replay(lines: readonly string[]): { m: Machine; results: string[] } {
  const m = createMachine(MODEL);
  return { m, results: lines.map((l) => runCommand(m, parseCommand(l)).line) };
}

function rendered(m: Machine): Map<string, string> {
  const tree = buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined });
  const out = new Map<string, string>();
  for (const [p, entry] of tree.files) out.set(p, entry.open(constants.O_RDONLY).read(0, 1 << 24).toString());
  return out;
}

async function mounted(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of rendered(createMachine(MODEL)).keys()) {
    const r = await run('cat', [path.join(dir, p)]);
    assert.equal(r.code, 0, r.stderr);
    out.set(p, r.stdout);
  }
  return out;
}

describe('liveness: long commands and readers', () => {
  test('when a 16 GiB touch runs through control then meminfo reads complete meanwhile, and the result and files equal the whole run', { timeout: 300_000 }, async (t) => {
    await withMount(MACHINE, async (dir) => {
      const setup = ['mm new keep', 'mmap mm=1 size=16G'];
      const [, map] = (await drive(dir, `${setup.join('\n')}\n`)).results;
      const addr = /addr=(0x[0-9a-f]+)/.exec(map!)![1]!;
      const lines = [`touch mm=1 addr=${addr} size=16G threads=4`, 'tick 2s', 'munmap mm=1 addr=' + addr + ' size=8G', 'check', 'mm exit mm=1'];
      const o = await drive(dir, `${lines.join('\n')}\n`);
      const during = o.reads.filter((x) => x > o.start && x < o.end).length;
      t.diagnostic(`the batch took ${(o.end - o.start).toFixed(2)} s; ${during} meminfo reads completed meanwhile`);
      assert.ok(during >= 5, `only ${during} reads completed while the batch ran ${(o.end - o.start).toFixed(2)} s`);

      const whole = replay([...setup, ...lines]);
      assert.deepEqual(o.results, whole.results.slice(2), 'the same result lines as the model run whole');
      assert.match(o.results[0]!, /^ok pages=4194304 faults=\d+ /);
      assert.equal(o.results[3], 'ok');
      assert.deepEqual(await mounted(dir), rendered(whole.m), 'every file has the same bytes');
    });
  });
});
