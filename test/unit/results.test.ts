// The result side of the control protocol (src/uapi/results.ts): every verb's `ok` line, as the
// daemon prints it, parses by the table into the typed object a client reads.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalControl } from '../../src/control';
import { createMachine } from '../../src/model';
import { type Command, RESULT_KEYS, type Verb, formatCommand, parseResult } from '../../src/uapi';
import { LocalClient, run } from '../../src/workload/client';
import { TINY } from '../helpers/model';

describe('control results: one table of keys and types', () => {
  it('when every verb runs on a machine then its ok line parses by the table, keys in order and typed', () => {
    const m = createMachine({ ...TINY, cpus: 2 });
    const local = new LocalControl(m);
    const ok = (cmd: Command): string => {
      const line = local.run(formatCommand(cmd));
      assert.match(line, /^ok( |$)/, `${cmd.verb}: ${line}`);
      return line.slice(3);
    };
    const seen = new Set<Verb>();
    const parsed = <V extends Verb>(cmd: Command & { verb: V }) => {
      seen.add(cmd.verb);
      return parseResult(cmd.verb, ok(cmd));
    };
    assert.equal(parsed({ verb: 'tick', ns: 5e6 }).now_ns, 5e6);
    const { handles } = parsed({ verb: 'alloc', order: 0, count: 3 });
    assert.deepEqual(handles, [1, 2, 3]);
    assert.equal(parsed({ verb: 'free', handles: [1] }).freed_pages, 1);
    assert.equal(typeof parsed({ verb: 'drain' }).drained_pages, 'number');
    parsed({ verb: 'bte', fail: 0 });
    parsed({ verb: 'check' });
    const stats = parsed({ verb: 'stats' });
    assert.equal(stats.raw_pages, 2);
    assert.equal(stats.nr_free_pages, m.freePagesTotal());
    assert.equal(parsed({ verb: 'config' }).preset, 'x86_64');
    const { mm } = parsed({ verb: 'mm new' });
    assert.deepEqual(parsed({ verb: 'mm list' }), { mms: [mm], kept: [mm] });
    const { addr, size } = parsed({ verb: 'mmap', mm, size: 1 << 20 });
    assert.ok(addr > 0 && size === 1 << 20);
    assert.equal(parsed({ verb: 'touch', mm, addr, size: 64 << 10 }).faults > 0, true);
    assert.equal(parsed({ verb: 'fault', mm, addr: addr + (128 << 10) }).faults, 1);
    assert.equal(parsed({ verb: 'faults', mm, at: { tasks: [0], writes: [1], addrs: [addr + (256 << 10)] } }).faults, 1);
    assert.equal(parsed({ verb: 'munmap', mm, addr, size: 64 << 10 }).freed_pages, 16);
    assert.equal(typeof parsed({ verb: 'mm exit', mm }).freed_pages, 'number');
    assert.deepEqual([...seen].sort(), [...Object.keys(RESULT_KEYS), 'config'].sort(), 'every verb was run');
  });

  it('when a machine runs a zeroing policy then stats carries its counters and parses; elsewhere they are absent', () => {
    const line = (zeroingPolicy?: string): string => new LocalControl(createMachine({ ...TINY, ...(zeroingPolicy && { zeroingPolicy }) })).run('stats').slice(3);
    assert.equal(typeof parseResult('stats', line('init_on_free')).init_on_free_pages, 'number');
    assert.equal(parseResult('stats', line()).init_on_free_pages, undefined);
    assert.throws(() => parseResult('stats', `${line()} init_on_free_pages=0`), { code: 'KSCRUB_CONTROL_RESULT' }, 'out of its place');
  });

  it('when a result line lacks a key, has one more, or a value of the wrong shape then the error names it', () => {
    assert.throws(() => parseResult('mmap', 'addr=0x1000'), { code: 'KSCRUB_CONTROL_RESULT', message: 'mmap: result keys "addr" are not the protocol\'s "addr size"' });
    assert.throws(() => parseResult('tick', 'now_ns=5 extra=1'), { message: 'tick: result keys "now_ns extra" are not the protocol\'s "now_ns"' });
    assert.throws(() => parseResult('mmap', 'addr=4096 size=1'), { message: 'mmap: result addr="4096" is not a hex address' });
    assert.throws(() => parseResult('free', 'freed_pages=-1'), { message: 'free: result freed_pages="-1" is not a decimal integer' });
    assert.throws(() => parseResult('alloc', 'handles=1,,2'), { message: 'alloc: result handles="1,,2" is not a list of ids' });
    assert.throws(() => parseResult('drain', 'drained_pages'), { message: 'drain: result token "drained_pages" is not key=value' });
    assert.deepEqual(parseResult('mm list', 'mms= kept='), { mms: [], kept: [] });
  });

  it('when a client runs a command then the request is formatted and the reply parsed by the same tables', () => {
    const client = new LocalClient(new LocalControl(createMachine(TINY)));
    const { mm } = run(client, { verb: 'mm new' });
    assert.equal(typeof mm, 'number');
    assert.throws(() => run(client, { verb: 'mm exit', mm: mm + 1 }), { code: 'KSCRUB_WORKLOAD', message: /^'mm exit mm=2': mm exit: / });
  });
});
