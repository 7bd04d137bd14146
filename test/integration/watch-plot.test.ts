import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT, kscrubfs, withMount, withTempDir } from '../helpers/mount';
import { PUBLISHED } from '../../src/workload/calibration';
import { decodePng, inkPixels, pixelsOfColor } from '../helpers/png';

// `kscrubfs pft --plot`: the run's rows as an SVG, against a real mount, rendered by
// rsvg-convert (Debian librsvg2-bin, installed by scripts/setup.sh --with-clients).

describe('pft --plot', () => {
  test('when pft runs three thread counts with --plot then the SVG has their six points, labelled by the scrub mode, and renders', async () => {
    await withTempDir(async (tmp) => {
      await withMount(['--clock', 'manual'], async (dir) => {
        const svgFile = path.join(tmp, 'pft.svg');
        const r = await kscrubfs(['pft', '-m', dir, '-b', '16M', '-t', '1,2,4', '--scrub', 'on', '--settle', '--plot', svgFile], { timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
        // Header, three rows, and the line saying what the run used: as without --plot.
        assert.equal(r.stdout.trimEnd().split('\n').length, 5, 'the table is printed as without --plot');
        const svg = readFileSync(svgFile, 'utf8');
        assert.equal(svg.match(/class="point"/g)?.length, 6);
        assert.match(svg, />scrub on<\/text>/);
        assert.match(svg, />16 MiB × 1 repetition, 1 cacheline per page, altix, zero drivers bte,cpu, prefault off, scrub_start 5, scrub_stop 2<\/text>/);
        const png = path.join(tmp, 'pft.png');
        execFileSync('rsvg-convert', ['-o', png, svgFile]);
        const img = decodePng(readFileSync(png));
        assert.ok(inkPixels(img) > 5000, 'not blank');
        assert.ok(pixelsOfColor(img, '#0072B2', 0, img.width / 2) > 100 && pixelsOfColor(img, '#0072B2', img.width / 2) > 100, 'the series in both panels');
      });
    });
  });

  test('when the plot cannot be written then pft still prints its table and exits 1 naming the file', async () => {
    await withMount(['--clock', 'manual'], async (dir) => {
      const r = await kscrubfs(['pft', '-m', dir, '-b', '1M', '--plot', '/nonexistent/dir/pft.svg']);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /flt\/cpu\/s/);
      assert.match(r.stderr, /^kscrubfs: pft --plot: cannot write \/nonexistent\/dir\/pft\.svg: ENOENT/);
    });
  });
});

describe('calibrate --plot', () => {
  test('when calibrate plots then the SVG has one marker per published row and target column, hollow exactly where a column is off, and renders', { timeout: 180_000 }, async () => {
    await withTempDir(async (tmp) => {
      const svgFile = path.join(tmp, 'cal.svg');
      const r = await kscrubfs(['calibrate', '--plot', svgFile], { timeoutMs: 170_000 });
      // Exit 1 while a column is off (the table says which); the plot is written either way.
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      const svg = readFileSync(svgFile, 'utf8');
      assertOneMarkerPerColumn(svg);
      // A hollow marker (fill="none") for each column calibrate counts as outside its band.
      const off = r.code === 0 ? 0 : Number(/(\d+) of \d+ flt\/cpu\/s and fault\/wsec columns are outside/.exec(r.stderr)?.[1]);
      assert.equal(svg.match(/class="point"[^>]*fill="none"/g)?.length ?? 0, off, r.stderr);
      for (const p of PUBLISHED) assert.ok(svg.includes(`>${p.label}</text>`), `a row label for ${p.label}`);
      const png = path.join(tmp, 'cal.png');
      execFileSync('rsvg-convert', ['-o', png, svgFile]);
      assert.ok(inkPixels(decodePng(readFileSync(png))) > 5000, 'not blank');
    });
  });

  test('the README\'s calibration plot (docs/calibration.svg) has one marker per published row and target column', () => {
    assertOneMarkerPerColumn(readFileSync(path.join(REPO_ROOT, 'docs/calibration.svg'), 'utf8'));
  });
});

/** Every published row's flt/cpu/s and fault/wsec, once each, of its own preset. */
function assertOneMarkerPerColumn(svg: string): void {
  assert.equal(svg.match(/class="point"/g)?.length, 2 * PUBLISHED.length);
  for (const column of ['flt/cpu/s', 'fault/wsec']) {
    for (const preset of ['altix', 'i386']) {
      const want = PUBLISHED.filter((p) => p.preset === preset).length;
      assert.equal(svg.match(new RegExp(`class="point" data-column="${column}" data-preset="${preset}"`, 'g'))?.length, want, `${column} on ${preset}`);
    }
  }
}
