import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runPublishedRow } from '../../src/cli/fit';
import { PFT_STRIDE, PUBLISHED, pftOptionsFor } from '../../src/workload/calibration';
import type { PublishedRow } from '../../src/workload/calibration';

// The i386 rows as pft.c ran them (docs/calibration.md, "i386: the box, pft's stride and the
// P6 figures"): one byte every 16 KiB on 4 KiB pages. The published prefault rows' CPU time is
// the base rows' within 2.5 %, which is what V2's predictor gives on that stride and not on
// every page.
const row = (label: string): PublishedRow => {
  const r = PUBLISHED.find((p) => p.label === label);
  assert.ok(r, label);
  return r;
};
const PAGE = 4096;

describe('i386 calibration rows: pft.c writes one byte every 16 KiB', () => {
  test('when calibrate builds an i386 row then pft runs with pft.c\'s 16 KiB stride, and an altix row with none (its page is 16 KiB)', () => {
    assert.equal(PFT_STRIDE, 16384);
    for (const r of PUBLISHED) {
      assert.equal(pftOptionsFor(r).stride, r.preset === 'i386' ? PFT_STRIDE : undefined, r.label);
    }
  });

  test('when the prefault row runs as pft ran it then V2 never prefaults and its CPU time is the base row\'s', async () => {
    const base = await runPublishedRow(row('i386 base 1t'), {});
    const prefault = await runPublishedRow(row('i386 prefault 1t'), {});
    const pages = (256 * 2 ** 20 * 3) / PAGE;
    for (const got of [base, prefault]) {
      assert.equal(got.pages, pages, 'pft counts every page');
      assert.equal(got.faults, pages / 4, 'one fault each 16 KiB');
    }
    assert.equal(prefault.prefaulted, 0, 'the next fault is never at the page V2 predicted');
    assert.equal(prefault.systemS + prefault.userS, base.systemS + base.userS);
  });

  test('when the same prefault row writes every page then V2 prefaults and cuts the faults about eightfold', async () => {
    const { stride: _stride, ...everyPage } = row('i386 prefault 1t');
    const got = await runPublishedRow(everyPage, {});
    assert.ok(got.prefaulted > 0, 'sequential faults grow the prefault run');
    assert.ok(got.faults < got.pages / 7, `${got.faults} faults for ${got.pages} pages`);
  });
});
