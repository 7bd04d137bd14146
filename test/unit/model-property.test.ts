// Random programs against the model: check() after every step on several machine shapes, and
// the same seed giving the same state. KSCRUB_SEED=<n> replays a run; KSCRUB_STEPS=<n> makes
// it longer (the default keeps the whole file to a few seconds).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, createMachine } from '../../src/model';
import { ModelError } from '../../src/uapi';
import type { Machine, MachineOptions, SysctlName } from '../../src/model';
import { Rng } from '../helpers/rng';
import { TINY, accountedPages, fingerprint } from '../helpers/model';

const SEED = process.env.KSCRUB_SEED !== undefined ? Number(process.env.KSCRUB_SEED) : 20050208;
const STEPS = process.env.KSCRUB_STEPS !== undefined ? Number(process.env.KSCRUB_STEPS) : 1000;
assert.ok(Number.isInteger(SEED) && SEED >= 0, `KSCRUB_SEED=${process.env.KSCRUB_SEED} is a non-negative integer`);
assert.ok(Number.isInteger(STEPS) && STEPS > 0, `KSCRUB_STEPS=${process.env.KSCRUB_STEPS} is a positive integer`);

const SHAPES: readonly [string, MachineOptions][] = [
  ['altix 6G', { clock: 'manual' }],
  ['x86_64 4G', { preset: 'x86_64', clock: 'manual' }],
  ['x86_64 2 nodes', { preset: 'x86_64', mem: '8G', nodes: 2, cpus: 4, clock: 'manual' }],
  ['x86_64 maxOrder 6', { preset: 'x86_64', mem: '128M', nodes: 2, cpus: 2, maxOrder: 6, clock: 'manual' }],
  ['altix 64K pages', { preset: 'altix', pageSize: '64K', mem: '2G', nodes: 2, clock: 'manual' }],
  ['tiny (runs out)', TINY],
];

const TICKS = [1_000, 50_000, 1e6, 2e7, 4e9];

/**
 * One random step; returns what it did, for the failure message. Allocations may run out of
 * memory (KSCRUB_NOMEM is an answer, not a failure); anything else thrown fails the test.
 */
function randomStep(m: Machine, rng: Rng): string {
  const r = rng.next();
  const handles = [...m.raw.keys()];
  if (r < 0.36 || handles.length === 0) {
    const order = rng.next() < 0.6 ? 0 : rng.int(m.maxOrder);
    const zero = rng.next() < 0.5;
    const node = rng.int(m.config.nodes);
    // On small machines, now and then ask for more than there is: the refusal and the rollback.
    const everything = m.managedPagesTotal() < 50_000 && rng.next() < 0.03;
    const count = everything ? Math.ceil(m.managedPagesTotal() / 2 ** order) : 1 + (rng.next() < 0.9 ? rng.int(8) : rng.int(400));
    const op = `allocRaw(${order}, ${zero}, ${node}, ${count})`;
    try {
      m.raw.alloc(order, zero, node, count);
    } catch (e) {
      if (!(e instanceof ModelError && e.code === 'KSCRUB_NOMEM')) throw e;
      return `${op} → NOMEM`;
    }
    return op;
  }
  if (r < 0.62 || handles.length > 300) {
    const n = 1 + rng.int(Math.min(handles.length, handles.length > 300 ? 200 : 16));
    const pick: number[] = [];
    for (let i = 0; i < n; i++) pick.push(handles.splice(rng.int(handles.length), 1)[0]!);
    m.raw.free(pick);
    return `freeRaw([${pick.join(',')}])`;
  }
  if (r < 0.8) {
    const ns = TICKS[rng.int(TICKS.length)]! + rng.int(1000);
    m.tick(ns);
    return `tick(${ns})`;
  }
  if (r < 0.9) {
    const name: SysctlName = (['scrub_start', 'scrub_start', 'scrub_stop', 'scrub_load'] as const)[rng.int(4)]!;
    const value = name === 'scrub_load' ? [0, 1, 999][rng.int(3)]! : rng.int(m.maxOrder + 1);
    m.setSysctl(name, value);
    return `setSysctl(${name}, ${value})`;
  }
  if (r < 0.95) return `drainPcp() → ${m.drainPcp()}`;
  const n = 1 + rng.int(3);
  m.injectBteFailures(n);
  return `injectBteFailures(${n})`;
}

/** Invariants beyond check(): pages add up, kscrubd holds a block only while awake. */
function extraInvariants(m: Machine): string | null {
  if (accountedPages(m) !== m.managedPagesTotal()) {
    return `free ${m.freePagesTotal()} + per-cpu ${m.pcpPagesTotal()} + raw ${m.raw.pages} ≠ managed ${m.managedPagesTotal()}`;
  }
  for (const k of m.kscrubd) {
    if (!k.awake && k.inFlight()) return `kscrubd${k.node} sleeps holding a block`;
  }
  for (const z of m.zones) {
    if (z.zeroPages < 0 || z.zeroPages > z.freePages - z.scrubPages) return `zone ${z.name}@${z.node}: zero_pages ${z.zeroPages} of ${z.freePages}`;
  }
  return null;
}

function run(opts: MachineOptions, seed: number, steps: number, onStep: (m: Machine, i: number, op: string, log: string[]) => void): Machine {
  const m = createMachine(opts);
  const rng = new Rng(seed);
  const log: string[] = [];
  for (let i = 0; i < steps; i++) {
    let op: string;
    try {
      op = randomStep(m, rng);
    } catch (e) {
      throw new Error(`seed=${seed} step=${i} threw after [${log.slice(-5).join('; ')}]: ${(e as Error).stack}`);
    }
    log.push(op);
    onStep(m, i, op, log);
  }
  return m;
}

describe('model: random programs', () => {
  for (const [name, opts] of SHAPES) {
    it(`when ${STEPS} random steps run on ${name} then check() passes after every one (seed ${SEED})`, () => {
      let nomem = 0;
      let scrubbed = 0;
      const m = run(opts, SEED, STEPS, (mm, i, op, log) => {
        const err = check(mm) ?? extraInvariants(mm);
        if (err) {
          assert.fail(`KSCRUB_SEED=${SEED} shape "${name}" step ${i} (${op}): ${err}\n  last steps: ${log.slice(-8).join('; ')}`);
        }
        if (op.endsWith('NOMEM')) nomem++;
      });
      scrubbed = m.kscrubd.reduce((s, k) => s + k.blocks, 0);
      // The program must have exercised what it claims to.
      assert.ok(m.vm.pgfree > 0 && m.vm.pcpDrainPages > 0, `${name}: frees and drains happened`);
      assert.ok(scrubbed > 0, `${name}: kscrubd zeroed something`);
      assert.ok(m.vm.allocPrezeroed > 0 && m.vm.allocHotZeroed > 0, `${name}: both __GFP_ZERO outcomes happened`);
      if (name.startsWith('tiny')) assert.ok(nomem > 0 && m.vm.allocFail > 0, 'the tiny machine ran out of memory');
      if (name.startsWith('altix')) assert.ok(m.kscrubd.some((k) => k.bteBlocks > 0 && k.bteFallbacks > 0), 'BTE used and failed over');
    });
  }
});

describe('model: determinism', () => {
  const steps = Math.min(STEPS, 600);
  for (const [name, opts] of [SHAPES[1]!, SHAPES[2]!, SHAPES[4]!]) {
    it(`when the same seed and steps run twice on ${name} then every fingerprint matches`, () => {
      const prints: string[] = [];
      run(opts, SEED, steps, (m, i) => { if (i % 50 === 49) prints.push(fingerprint(m)); });
      let k = 0;
      run(opts, SEED, steps, (m, i, op) => {
        if (i % 50 === 49) assert.equal(fingerprint(m), prints[k++], `KSCRUB_SEED=${SEED} shape "${name}" diverged by step ${i} (${op})`);
      });
      assert.equal(k, prints.length);
    });
  }

  it('when the seed differs then the fingerprint differs (the fingerprint sees the state)', () => {
    const a = fingerprint(run(SHAPES[1]![1], SEED, 200, () => {}));
    const b = fingerprint(run(SHAPES[1]![1], SEED + 1, 200, () => {}));
    assert.notEqual(a, b);
  });
});
