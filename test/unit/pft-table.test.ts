// pft's table (what `kscrubfs pft` prints): columns, units and alignment on known rows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PFT_COLUMNS, type PftRow, formatPftTable, pftTableStream } from '../../src/workload/pft';

const row = (r: Partial<PftRow>): PftRow => ({
  gb: 1, rep: 1, threads: 1, cachelines: 1, userS: 0, systemS: 0, wallS: 0, fltPerCpuS: 0, faultPerWsec: 0,
  pages: 0, faults: 0, prezeroed: 0, hotZeroed: 0, prefaulted: 0, oom: 0, ...r,
});

describe('pft table', () => {
  it('when two known rows are formatted then the columns are pft\'s, right-aligned, seconds and rates to 3 places', () => {
    const text = formatPftTable([
      row({ userS: 0.014548992, systemS: 0.114437948, wallS: 0.12898694, fltPerCpuS: 508082.4461763338, faultPerWsec: 508082.4461763338 }),
      row({ gb: 0.5, rep: 3, threads: 16, userS: 1.5, systemS: 12.25, wallS: 0.9999, fltPerCpuS: 1234.5678, faultPerWsec: 98765.4321 }),
    ]);
    assert.equal(text, [
      '  Gb Rep Threads   User  System   Wall  flt/cpu/s fault/wsec',
      '   1   1       1 0.015s  0.114s 0.129s 508082.446 508082.446',
      '0.50   3      16 1.500s 12.250s 1.000s   1234.568  98765.432',
      '',
    ].join('\n'));
  });

  it('when rows stream then each is written as it comes, the header with the first, and rows as wide as the batch table\'s stay aligned with it', () => {
    const written: string[] = [];
    const add = pftTableStream((text) => written.push(text));
    const a = row({ userS: 0.0145, systemS: 0.1144, wallS: 0.129, fltPerCpuS: 508082.446, faultPerWsec: 508082.446 });
    const b = row({ threads: 2, userS: 0.0151, systemS: 0.1751, wallS: 0.095, fltPerCpuS: 345885.358, faultPerWsec: 691769.255 });
    add(a);
    assert.equal(written.length, 1, 'the first row is out before the second is made');
    assert.equal(written[0], formatPftTable([a]));
    add(b);
    assert.equal(written.join(''), formatPftTable([a, b]));
  });

  it('when the CSV/JSON columns are listed then every PftRow field is there once, in table order first', () => {
    assert.deepEqual(PFT_COLUMNS.slice(0, 3), ['gb', 'rep', 'threads']);
    assert.equal(new Set(PFT_COLUMNS).size, PFT_COLUMNS.length);
    assert.deepEqual([...PFT_COLUMNS].sort(), Object.keys(row({})).sort());
  });
});
