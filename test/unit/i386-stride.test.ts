import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { strideNote } from '../../src/cli/calibrate';
import { runPublishedRow } from '../../src/cli/fit';
import { I386_ROW_STRIDE, PFT_STRIDE, PUBLISHED, pftOptionsFor } from '../../src/workload/calibration';
import type { PublishedRow } from '../../src/workload/calibration';
import { touchStride } from '../../src/workload/pft';

// Every published row carries the stride its pft wrote with, and pft runs every row the same
// way: a stride of a page or less writes every page, a larger one one page in stride ÷ page.
// The altix rows: pft.c's 16 KiB on 16 KiB pages. The i386 rows: every 4 KiB page, the reading
// the P6 figures allow (docs/calibration.md, "i386: the box, pft's stride and the P6 figures").
const row = (label: string): PublishedRow => {
  const r = PUBLISHED.find((p) => p.label === label);
  assert.ok(r, label);
  return r;
};
const PAGE = 4096;
const I386_PAGES = (256 * 2 ** 20 * 3) / PAGE;

describe('the published rows\' pft stride', () => {
  test('when calibrate builds any row then pft gets the row\'s stride: pft.c\'s 16 KiB on the altix, every 4 KiB page on the i386', () => {
    assert.equal(PFT_STRIDE, 16384);
    assert.equal(I386_ROW_STRIDE, 4096);
    for (const r of PUBLISHED) {
      assert.equal(r.stride, r.preset === 'i386' ? I386_ROW_STRIDE : PFT_STRIDE, r.label);
      assert.equal(pftOptionsFor(r).stride, r.stride, r.label);
    }
  });

  test('when a stride is a page or less then pft drops it (every page is written); past the page it stays', () => {
    // Hand-worked: one byte every s bytes lands in every page when s ≤ the page.
    assert.equal(touchStride(undefined, 4096), undefined);
    assert.equal(touchStride(16384, 16384), undefined, 'pft.c on the altix: every 16 KiB page');
    assert.equal(touchStride(8192, 16384), undefined, 'two bytes a page');
    assert.equal(touchStride(4096, 4096), undefined);
    assert.equal(touchStride(1, 4096), undefined);
    assert.equal(touchStride(16384, 4096), 16384, 'pft.c on 4 KiB pages: one page in four');
    assert.equal(touchStride(32768, 16384), 32768);
  });

  test('when calibrate heads a row then it says how that row\'s pft wrote on that machine\'s pages', () => {
    assert.equal(strideNote(16384, 16384), ' (one byte every 16 KiB: every 16 KiB page written)');
    assert.equal(strideNote(4096, 4096), ' (one byte every 4 KiB: every 4 KiB page written)');
    assert.equal(strideNote(16384, 4096), ' (one byte every 16 KiB: one 4 KiB page in 4 written, every page counted)');
  });

  test('when the i386 prefault row runs with pft.c\'s 16 KiB stride then V2 never prefaults and its CPU time is the base row\'s', async () => {
    const strided = (label: string): PublishedRow => ({ ...row(label), stride: PFT_STRIDE });
    const base = await runPublishedRow(strided('i386 base 1t'), {});
    const prefault = await runPublishedRow(strided('i386 prefault 1t'), {});
    for (const got of [base, prefault]) {
      assert.equal(got.pages, I386_PAGES, 'pft counts every page');
      assert.equal(got.faults, I386_PAGES / 4, 'one fault each 16 KiB');
    }
    assert.equal(prefault.prefaulted, 0, 'the next fault is never at the page V2 predicted');
    assert.equal(prefault.systemS + prefault.userS, base.systemS + base.userS);
  });

  test('when an i386 row runs as calibrate runs it then every page faults, and V2 prefaults on the prefault row', async () => {
    const base = await runPublishedRow(row('i386 base 1t'), {});
    assert.equal(base.pages, I386_PAGES, 'pft counts every page');
    assert.equal(base.faults, I386_PAGES, 'every page written: one fault a page');
    assert.equal(base.prefaulted, 0);
    const prefault = await runPublishedRow(row('i386 prefault 1t'), {});
    assert.equal(prefault.pages, I386_PAGES);
    assert.ok(prefault.prefaulted > 0, 'sequential faults grow the prefault run');
    assert.ok(prefault.faults < prefault.pages / 7, `${prefault.faults} faults for ${prefault.pages} pages`);
  });
});
