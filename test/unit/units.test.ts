// Sizes, durations and machine options: what parses, and that refusals say which option and quote it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveConfig } from '../../src/model';
import { ModelError, formatSize, parseDuration, parseSize } from '../../src/uapi';
import type { MachineOptions } from '../../src/model';
import { ALTIX_COST } from '../../src/model';

const refused = (code: string, ...parts: (string | RegExp)[]) => (e: unknown): boolean => {
  assert.ok(e instanceof ModelError, `a ModelError, not ${String(e)}`);
  assert.equal(e.code, code);
  for (const p of parts) {
    if (typeof p === 'string') assert.ok(e.message.includes(p), `"${e.message}" mentions ${p}`);
    else assert.match(e.message, p);
  }
  return true;
};

describe('units: parseSize', () => {
  it('when sizes use binary units, decimals, hex or spaces then they parse to bytes', () => {
    const cases: [string, number][] = [
      ['4096', 4096], ['0', 0], ['16K', 16384], ['16k', 16384], ['16KiB', 16384], ['16kb', 16384],
      ['6G', 6 * 2 ** 30], ['1.5G', 1610612736], ['64M', 2 ** 26], ['64T', 2 ** 46], ['1P', 2 ** 50],
      ['0x1000', 4096], ['0X1000', 4096], [' 6G ', 6 * 2 ** 30], ['6 GiB', 6 * 2 ** 30], ['512B', 512],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
  });

  it('when a size is malformed then KSCRUB_BAD_SIZE names what and quotes the text', () => {
    for (const text of ['', ' ', 'G', '6X', '-1G', '1e3', '0x', '0x1000K', '.5G', '6G6', '6,5G', '1/2G', '6 G B']) {
      assert.throws(() => parseSize(text, 'mem'), refused('KSCRUB_BAD_SIZE', `mem: "${text}"`, 'is not a size'), JSON.stringify(text));
    }
  });

  it('when a size is past 2^53 then it is refused as too large', () => {
    assert.throws(() => parseSize('99999P'), refused('KSCRUB_BAD_SIZE', '"99999P" is too large'));
    assert.throws(() => parseSize('0x20000000000000'), refused('KSCRUB_BAD_SIZE', 'too large'));
  });
});

describe('units: parseDuration', () => {
  it('when durations carry a unit then they parse to nanoseconds', () => {
    const cases: [string, number][] = [
      ['10ns', 10], ['100us', 1e5], ['100µs', 1e5], ['250ms', 250e6], ['2s', 2e9], ['1.5s', 1.5e9],
      ['1m', 60e9], ['2min', 120e9], ['1h', 3600e9], [' 2 s ', 2e9], ['3S', 3e9],
    ];
    for (const [text, ns] of cases) assert.equal(parseDuration(text), ns, text);
  });

  it('when a duration has no unit or a wrong one then KSCRUB_BAD_DURATION quotes it', () => {
    for (const text of ['5', '', 's', '5sec', '-1s', '1e3s', '2 days', '1.s']) {
      assert.throws(() => parseDuration(text, 'tick'), refused('KSCRUB_BAD_DURATION', `tick: "${text}"`, 'is not a duration'), JSON.stringify(text));
    }
  });

  it('when a duration does not fit in 2^53 ns then it is refused as too long', () => {
    assert.throws(() => parseDuration('99999999999h'), refused('KSCRUB_BAD_DURATION', 'too long'));
  });
});

describe('units: formatSize', () => {
  it('when bytes divide evenly then the unit is exact, else one decimal', () => {
    const cases: [number, string][] = [
      [0, '0 B'], [1023, '1023 B'], [1024, '1 KiB'], [1536, '1.5 KiB'], [16384, '16 KiB'],
      [6 * 2 ** 30, '6 GiB'], [2 ** 46, '64 TiB'], [2 ** 60, '1024 PiB'],
    ];
    for (const [bytes, text] of cases) assert.equal(formatSize(bytes), text, String(bytes));
  });
});

describe('units: resolveConfig', () => {
  it('when no options are given then it is the seeds\' 8-way Altix', () => {
    const c = resolveConfig();
    assert.deepEqual(
      [c.preset, c.pageSize, c.lineSize, c.nodes, c.cpus, c.memBytes, c.maxOrder, c.zoneLayout, c.zeroDrivers],
      ['altix', 16384, 128, 4, 8, 6 * 2 ** 30, 18, 'ia64', ['bte', 'cpu']],
    );
  });

  it('when options override the preset then the figures follow', () => {
    const c = resolveConfig({ preset: 'x86_64', mem: '65M', nodes: 1, pageSize: '4K', maxOrder: 11 });
    assert.equal(c.memBytes, 64 * 2 ** 20); // rounded down to whole 4 MiB sections
    assert.equal(resolveConfig({ preset: 'x86_64', nodes: 2 }).cpus, 8); // the preset's CPUs per node
    assert.equal(resolveConfig({ cost: { wakeupNs: 5 } }).cost.wakeupNs, 5);
    assert.equal(resolveConfig({ cost: { wakeupNs: 5 } }).cost.trapNs, ALTIX_COST.trapNs);
  });

  it('when an option is refused then KSCRUB_BAD_OPTION names the option and the value', () => {
    const cases: [MachineOptions, string, string][] = [
      [{ preset: 'sparc' }, 'preset', '"sparc"'],
      [{ pageSize: '3K' }, 'page size', '3072'],
      [{ pageSize: '1K' }, 'page size', '1024'],
      [{ pageSize: '4M' }, 'page size', '4194304'],
      [{ maxOrder: 1 }, 'max order', '1'],
      [{ maxOrder: 21 }, 'max order', '21'],
      [{ maxOrder: 11.5 }, 'max order', '11.5'],
      [{ nodes: 0 }, 'nodes', '0'],
      [{ nodes: 257 }, 'nodes', '257'],
      [{ nodes: 2, cpus: 1 }, 'cpus', 'fewer than nodes'],
      [{ nodes: 4, cpus: 6 }, 'cpus', 'evenly'],
      [{ cpus: 0 }, 'cpus', '0'],
      [{ lineSize: 48 }, 'line size', '48'],
      [{ lineSize: 8 }, 'line size', '8'],
      [{ preset: 'x86_64', mem: '32M' }, 'mem', '32M'],
      [{ mem: '200M' }, 'mem', 'too small'], // 4 Altix nodes of 50 MiB
      [{ clock: 'fast' as 'live' }, 'clock', '"fast"'],
      [{ speed: 0 }, 'speed', '0'],
      [{ speed: Number.NaN }, 'speed', 'NaN'],
      [{ zeroDrivers: ['gpu'] }, 'zero drivers', '"gpu"'],
      [{ zeroDrivers: ['cpu', 'cpu'] }, 'zero drivers', 'twice'],
    ];
    for (const [opts, option, quoted] of cases) {
      assert.throws(() => resolveConfig(opts), refused('KSCRUB_BAD_OPTION', `${option}:`, quoted), JSON.stringify(opts));
    }
  });

  it('when a size option is malformed then the size error names the option', () => {
    assert.throws(() => resolveConfig({ mem: 'lots' }), refused('KSCRUB_BAD_SIZE', 'mem: "lots"'));
    assert.throws(() => resolveConfig({ pageSize: '16Q' }), refused('KSCRUB_BAD_SIZE', 'page size: "16Q"'));
    assert.throws(() => resolveConfig({ preset: 'x86_64', mem: '128P' }), refused('KSCRUB_BAD_SIZE', 'mem: "128P" is too large'));
  });
});
