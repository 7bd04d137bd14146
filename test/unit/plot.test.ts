import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { PUBLISHED } from '../../src/workload/calibration';
import { formatCount, publishedSeries, renderPayoffSvg, renderPftSvg, type PlotSeries } from '../../src/workload/plot';
import { decodePng, inkPixels, pixelsOfColor } from '../helpers/png';

// The pft plot: its SVG text (points, legend, escaping, determinism) and its rendering by a
// real SVG renderer, rsvg-convert (Debian librsvg2-bin; scripts/setup.sh --with-clients).

const ON: PlotSeries = {
  label: 'scrub on',
  points: [
    { threads: 1, fltPerCpuS: 520_000, faultPerWsec: 515_000 },
    { threads: 2, fltPerCpuS: 345_000, faultPerWsec: 690_000 },
    { threads: 4, fltPerCpuS: 243_000, faultPerWsec: 970_000 },
    { threads: 8, fltPerCpuS: 135_000, faultPerWsec: 1_080_000 },
  ],
};
const OFF: PlotSeries = {
  label: 'scrub off',
  points: ON.points.map((p) => ({ threads: p.threads, fltPerCpuS: p.fltPerCpuS / 4, faultPerWsec: p.faultPerWsec / 4 })),
};
const PATCHED = publishedSeries(PUBLISHED.filter((r) => r.scrub === 'on' && r.cachelines === 1), 'published, patched');

const count = (svg: string, re: RegExp): number => svg.match(re)?.length ?? 0;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-plot-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** SVG → PNG with rsvg-convert, decoded. */
function rasterize(svg: string, name: string): ReturnType<typeof decodePng> {
  const have = spawnSync('rsvg-convert', ['--version'], { encoding: 'utf8' });
  assert.equal(have.error, undefined, 'rsvg-convert is missing: run scripts/setup.sh --with-clients (Debian librsvg2-bin)');
  const file = path.join(tmp, `${name}.svg`);
  writeFileSync(file, svg);
  execFileSync('rsvg-convert', ['-o', path.join(tmp, `${name}.png`), file]);
  return decodePng(readFileSync(path.join(tmp, `${name}.png`)));
}

describe('pft plot', () => {
  test('when two runs and the published points are plotted then every point has one marker per panel', () => {
    const svg = renderPftSvg([ON, OFF, PATCHED], { title: 'pft', subtitle: '1 GiB × 1' });
    assert.equal(PATCHED.points.length, 6, 'the 4G×3 rows (1, 2, 4, 8 threads), and the 1G×1 row posted twice');
    assert.equal(count(svg, /class="point"/g), 2 * (4 + 4 + 6));
    assert.equal(count(svg, /class="panel"/g), 2);
    assert.equal(count(svg, /class="series-line"/g), 4, 'the runs have lines, the published points none');
    assert.equal(count(svg, /class="legend-item"/g), 3);
    for (const label of ['scrub on', 'scrub off', 'published, patched', 'flt/cpu/s', 'fault/wsec', 'threads']) assert.ok(svg.includes(label), label);
  });

  test('when published points are plotted with a run then they are hollow and drawn before (under) the run', () => {
    const svg = renderPftSvg([ON, PATCHED]);
    const published = [...svg.matchAll(/<path class="point"[^>]*>/g)].map((m) => m[0]);
    assert.equal(published.length, 2 * 6, 'diamonds: the published points, in both panels');
    for (const d of published) assert.match(d, /fill="none"/);
    const panels = svg.split('<g class="panel"').slice(1);
    for (const p of panels) assert.ok(p.indexOf('<path class="point"') < p.indexOf('<circle class="point"'), 'published first, model on top');
  });

  test('when a run is plotted then fault/wsec has its ideal-scaling line from the 1-thread point, flt/cpu/s none', () => {
    const svg = renderPftSvg([ON, OFF, PATCHED]);
    const [flt, wsec] = svg.split('<g class="panel"').slice(1);
    assert.equal(count(flt!, /class="ideal"/g), 0);
    assert.equal(count(wsec!, /class="ideal"/g), 2, 'one per run, none for the published points');
    assert.match(wsec!, /clip-path="url\(#clip-faultPerWsec\)"/);
  });

  test('when a run scales poorly then its ideal line\'s first step still lies inside the frame (not clipped out of sight)', () => {
    const flat: PlotSeries = { label: 'flat', points: [1, 2, 4, 8].map((t) => ({ threads: t, fltPerCpuS: 100_000 / t, faultPerWsec: 100_000 })) };
    const wsec = renderPftSvg([flat]).split('<g class="panel"').slice(1)[1]!;
    const frameTop = Number(/<clipPath id="clip-faultPerWsec"><rect x="[\d.]+" y="([\d.]+)"/.exec(wsec)![1]);
    const d = /<path class="ideal" d="([^"]+)"/.exec(wsec)![1]!;
    const ys = [...d.matchAll(/[ML][\d.]+ ([\d.]+)/g)].map((m) => Number(m[1]));
    assert.ok(ys[1]! >= frameTop, `the 2-thread ideal point (y ${ys[1]}) is below the frame's top (y ${frameTop})`);
    assert.ok(ys[1]! < ys[0]! - 10, 'and visibly above the 1-thread point');
  });

  test('when a run names a published reference then a ratio panel per column shows model ÷ published with the ±10 % band', () => {
    const svg = renderPftSvg([{ ...ON, reference: 'published, patched' }, OFF, PATCHED]);
    assert.equal(count(svg, /class="ratio-panel"/g), 2);
    assert.equal(count(svg, /class="band"/g), 2);
    // ON has 1, 2, 4, 8 threads; published has 1 thread three times (the 4G row and the 1G row
    // posted twice) and 2, 4, 8 once each (the 4G rows): 6 ratios per column.
    assert.equal(count(svg, /class="ratio-point"/g), 2 * 6);
    assert.match(svg, /scrub on ÷ published, patched: 1 thread, 1\.0\d\d/);
    assert.equal(count(renderPftSvg([ON, OFF, PATCHED]), /class="ratio-panel"/g), 0, 'no reference, no ratio panel');
    const img = rasterize(svg, 'ratio');
    assert.equal(img.height, 590);
    assert.ok(pixelsOfColor(img, '#dff0df', 0, img.width) > 1000, 'the band is drawn');
  });

  test('when the same series are plotted twice then the bytes are the same', () => {
    assert.equal(renderPftSvg([ON, PATCHED]), renderPftSvg([ON, PATCHED]));
  });

  test('when threads span 1 to 8 then the axis is log2 with a tick per power of two', () => {
    const svg = renderPftSvg([ON]);
    const ticks = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" fill="#333333">(\d+)<\/text>/g)].slice(0, 4);
    assert.deepEqual(ticks.map((m) => m[2]), ['1', '2', '4', '8']);
    const xs = ticks.map((m) => Number(m[1]));
    assert.ok(Math.abs((xs[1]! - xs[0]!) - (xs[3]! - xs[2]!)) < 0.2, `evenly spaced: ${xs.join(', ')}`);
  });

  test('when a label has markup characters or a value is not finite then the label is escaped and the point left out', () => {
    const svg = renderPftSvg([{ label: 'a<b & "c"', points: [...ON.points, { threads: 16, fltPerCpuS: Infinity, faultPerWsec: 1 }] }]);
    assert.ok(svg.includes('a&lt;b &amp; &quot;c&quot;'));
    assert.ok(!svg.includes('a<b'));
    assert.equal(count(svg, /class="point"/g), 8);
    assert.ok(!/NaN|Infinity/.test(svg));
  });

  test('when a sweep plots against an axis that starts at 0 then the 0 points are drawn, with a tick', () => {
    const stops = [0, 2, 4, 6, 8].map((x) => ({ threads: x, fltPerCpuS: 480_000, faultPerWsec: 480_000 }));
    const svg = renderPftSvg([{ label: 'reps 1', points: stops }], { xLabel: 'scrubStop' });
    assert.equal(count(svg, /class="point"/g), 2 * 5, 'scrub_stop 0 is a point like the others');
    assert.match(svg, /<text [^>]*>0<\/text>[\s\S]*<text [^>]*>scrubStop<\/text>/, 'a 0 tick on the x axis');
  });

  test('when a title is longer than the plot is wide then it wraps between words instead of running off the frame', () => {
    const title = 'sweep scrub-stop: scrub_stop against pool depletion: repetitions drain the prezeroed pool while kscrubd refills it';
    const lines = [...renderPftSvg([ON], { title }).matchAll(/<text [^>]*font-size="16"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
    assert.ok(lines.length >= 2, `${lines.length} title line(s)`);
    assert.equal(lines.join(' '), title);
    for (const l of lines) assert.ok(l.length * 9.8 <= 960 - 40, l);
  });

  test('when tick values are formatted then they are short', () => {
    assert.deepEqual([0, 250, 2500, 250_000, 1_250_000].map(formatCount), ['0', '250', '2.5k', '250k', '1.25M']);
  });

  test('when rsvg-convert renders the plot then both panels have ink, in each series\' colour', () => {
    const img = rasterize(renderPftSvg([ON, OFF, PATCHED], { title: 'pft' }), 'three');
    assert.equal(img.width, 960);
    assert.equal(img.height, 440);
    const half = img.width / 2;
    assert.ok(inkPixels(img) > 5000, `not blank: ${inkPixels(img)} dark pixels`);
    for (const [x0, x1] of [[0, half], [half, img.width]] as const) {
      assert.ok(pixelsOfColor(img, '#0072B2', x0, x1) > 100, 'the first series, blue');
      assert.ok(pixelsOfColor(img, '#D55E00', x0, x1) > 100, 'the second series, vermillion');
    }
  });

  test('when there are no points then the plot still renders, saying so', () => {
    const svg = renderPftSvg([]);
    assert.equal(count(svg, /no data/g), 2);
    assert.ok(inkPixels(rasterize(svg, 'empty')) > 100);
  });
});

describe('payoff chart', () => {
  const groups = [
    { name: 'altix, 16K', about: '2004, 8 × Itanium 2', kscrubdCpuSPerGiB: 0.25, bars: [{ threads: 1, cpuGain: 4, wallGain: 2, share: 1 }, { threads: 8, cpuGain: 1.19, wallGain: 0.9, share: 0.95 }] },
    { name: 'epyc, 4K', about: '2021, 2 × EPYC Milan', kscrubdCpuSPerGiB: null, bars: [{ threads: 128, cpuGain: 1.89, wallGain: 1.07, share: 1 }] },
  ];
  const svg = renderPayoffSvg(groups, { subtitle: ['pft: altix 128M'], provenance: 'kscrubfs 0.1.0: kscrubfs payoff --svg p.svg' });
  const bars = [...svg.matchAll(/<rect class="bar" data-kind="(\w+)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/g)].map((m) => ({ kind: m[1]!, y: Number(m[2]), h: Number(m[3]) }));
  const one = Number(/<line class="one" x1="[\d.]+" y1="([\d.]+)"/.exec(svg)![1]);

  test('when gains are drawn then each thread count has a flt/cpu/s and a fault/wsec bar, on a log axis from the 1× line', () => {
    assert.equal(bars.length, 2 * 3);
    assert.deepEqual(bars.map((b) => b.kind), ['cpu', 'wall', 'cpu', 'wall', 'cpu', 'wall']);
    // log axis: 4× is twice as tall as 2×, and both stand on the 1× line
    const [four, two] = [bars[0]!, bars[1]!];
    assert.ok(Math.abs(four.h - 2 * two.h) <= 0.2, `4× ${four.h} px, 2× ${two.h} px`);
    assert.ok(Math.abs(four.y + four.h - one) <= 0.2 && Math.abs(two.y + two.h - one) <= 0.2, 'bars rise from 1×');
    const loss = bars[3]!;
    assert.ok(Math.abs(loss.y - one) <= 0.2, 'a loss (0.90×) hangs down from the 1× line');
    for (const label of ['1.19×', '1.89×', '1.07×', '0.90×', 'no gain', 'gain (log scale)', 'fault/wsec gain (wall-clock throughput)']) assert.ok(svg.includes(label), label);
  });

  test('when a chart is drawn then kscrubd\'s cost, the version and the command are on it, and no bar is labelled by its share', () => {
    assert.match(svg, /kscrubd: 0\.250 CPU s<\/text>\n<text [^>]*>per GiB it zeroed/);
    assert.match(svg, /kscrubd zeroed nothing/);
    assert.match(svg, /class="provenance"[^>]*>kscrubfs 0\.1\.0: kscrubfs payoff --svg p\.svg</);
    assert.doesNotMatch(svg, />\d+ %</, 'shares only in the tooltips');
    const png = rasterize(svg, 'payoff');
    assert.ok(png.width >= 960, 'rsvg-convert renders it');
  });
});
