import type { PublishedRow } from './calibration';
import type { Band } from './band';

// pft results as an SVG: two panels side by side, flt/cpu/s and fault/wsec against the thread
// count, one line per series (a run, a scrub mode) and hollow markers for published figures,
// drawn first so that a model point on top of one stays visible. fault/wsec carries each
// run's ideal scaling (its first point × threads), dotted. A series with a `reference` (the
// label of a published series) gets a panel of model ÷ published under each panel, with the
// ±10 % band calibration holds it to.
// Plain SVG 1.1 text, no library, no fonts embedded: rsvg-convert and browsers render it.
// Deterministic: the same series give the same bytes (coordinates rounded to 0.1 px, no
// dates, no random ids). Every data point is one element with class "point" per panel.

/** One pft row, as far as the plot cares (a PftRow is one). */
export interface PftPoint {
  readonly threads: number;
  readonly fltPerCpuS: number;
  readonly faultPerWsec: number;
}

export type Marker = 'circle' | 'square' | 'triangle' | 'diamond';

export interface SeriesStyle {
  /** Any SVG colour; default: the next of a colour-blind-safe palette. */
  readonly color?: string;
  /** Default: the next of circle, square, triangle, diamond. */
  readonly marker?: Marker;
  /** 'none' for scattered points (published figures); default 'solid'. */
  readonly line?: 'solid' | 'dashed' | 'none';
  /** Outlined markers (fill="none": what is under them shows); default false. */
  readonly hollow?: boolean;
}

export interface PlotSeries {
  /** In the legend and in each point's tooltip: "scrub on", "published (patched)". */
  readonly label: string;
  /** Points with a non-finite or negative value are left out. */
  readonly points: readonly PftPoint[];
  readonly style?: SeriesStyle;
  /** The label of a (published) series to divide this one by, point by point at equal threads. */
  readonly reference?: string;
}

export interface PlotOptions {
  readonly title?: string;
  /** A second, smaller line: the run's parameters. */
  readonly subtitle?: string;
  /** What the x axis counts (a sweep may plot against cachelines, say); default 'threads'. */
  readonly xLabel?: string;
  /** Pixels; default 960 × 440, and 150 more when there are ratio panels. */
  readonly width?: number;
  readonly height?: number;
}

/** Okabe & Ito's palette, minus yellow and black (black is the published figures'). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9'] as const;
const MARKERS: readonly Marker[] = ['circle', 'square', 'triangle', 'diamond'];

/** How published figures are drawn unless told otherwise: black hollow diamonds, no line. */
export const PUBLISHED_STYLE: SeriesStyle = { color: '#000000', marker: 'diamond', line: 'none', hollow: true };

/**
 * Published rows as one series: a point per published measurement (the 1 GiB row was posted
 * twice: two points at 1 thread). The caller picks the rows that match its run.
 */
export function publishedSeries(rows: readonly PublishedRow[], label = 'published', style: SeriesStyle = PUBLISHED_STYLE): PlotSeries {
  const points: PftPoint[] = [];
  for (const r of rows) {
    const n = Math.max(r.fltPerCpuS.length, r.faultPerWsec.length);
    for (let i = 0; i < n; i++) {
      // A row with fewer measurements of one column repeats its last one.
      const flt = r.fltPerCpuS[Math.min(i, r.fltPerCpuS.length - 1)];
      const wsec = r.faultPerWsec[Math.min(i, r.faultPerWsec.length - 1)];
      if (flt !== undefined && wsec !== undefined) points.push({ threads: r.threads, fltPerCpuS: flt, faultPerWsec: wsec });
    }
  }
  return { label, points, style };
}

// ---- scales ---------------------------------------------------------------------------------

interface Scale {
  /** Data value → pixel. */
  readonly at: (v: number) => number;
  readonly ticks: readonly number[];
}

/** 1, 2, 2.5, 5 × 10^k: the smallest such step that gives at most `count` intervals over [0, max]. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

/** Linear from 0 to a round number above `max` (throughputs: 0 is the honest baseline). */
function yScale(max: number, top: number, bottom: number): Scale {
  const step = niceStep(max > 0 ? max : 1, 5);
  const hi = Math.max(step, Math.ceil(max / step - 1e-9) * step);
  const ticks: number[] = [];
  for (let v = 0; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { at: (v) => bottom - (v / hi) * (bottom - top), ticks };
}

/**
 * Threads: log2 when they span 4× or more (1, 2, 4, 8 … evenly spaced), linear otherwise;
 * padded half a step either side so the end points are not on the frame.
 */
function xScale(values: readonly number[], left: number, right: number): Scale {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo > 0 && hi / lo >= 4) {
    const a = Math.log2(lo) - 0.5;
    const b = Math.log2(hi) + 0.5;
    const ticks: number[] = [];
    for (let e = Math.ceil(a); e <= Math.floor(b); e++) ticks.push(2 ** e);
    return { at: (v) => left + ((Math.log2(v) - a) / (b - a)) * (right - left), ticks };
  }
  const step = Math.max(1, niceStep(Math.max(1, hi - lo), 6));
  const a = lo - Math.max(0.5, step / 2);
  const b = hi + Math.max(0.5, step / 2);
  const ticks: number[] = [];
  for (let v = Math.ceil(a / step) * step; v <= b; v += step) if (v >= 0) ticks.push(v);
  return { at: (v) => left + ((v - a) / (b - a)) * (right - left), ticks };
}

/** 0, 250k, 1.5M: tick labels short enough for the axis. */
export function formatCount(v: number): string {
  const trim = (x: number): string => String(Number(x.toFixed(2)));
  if (Math.abs(v) >= 1e6) return `${trim(v / 1e6)}M`;
  if (Math.abs(v) >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

// ---- SVG text ---------------------------------------------------------------------------------

const px = (v: number): string => String(Math.round(v * 10) / 10);

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${px(x)}" y="${px(y)}"${attrs ? ` ${attrs}` : ''}>${escapeXml(body)}</text>`;
}

/** A marker centred on (x, y), with its tooltip. */
function marker(kind: Marker, x: number, y: number, color: string, hollow: boolean, cls: string, tip: string): string {
  const paint = `fill="${hollow ? 'none' : color}" stroke="${color}" stroke-width="${hollow ? 1.8 : 1}"`;
  const title = tip ? `<title>${escapeXml(tip)}</title>` : '';
  const r = 4.5;
  switch (kind) {
    case 'circle':
      return `<circle class="${cls}" cx="${px(x)}" cy="${px(y)}" r="${r}" ${paint}>${title}</circle>`;
    case 'square':
      return `<rect class="${cls}" x="${px(x - r)}" y="${px(y - r)}" width="${2 * r}" height="${2 * r}" ${paint}>${title}</rect>`;
    case 'triangle':
      return `<path class="${cls}" d="M${px(x)} ${px(y - r - 1)}L${px(x + r + 1)} ${px(y + r)}L${px(x - r - 1)} ${px(y + r)}Z" ${paint}>${title}</path>`;
    case 'diamond':
      return `<path class="${cls}" d="M${px(x)} ${px(y - r - 1)}L${px(x + r + 1)} ${px(y)}L${px(x)} ${px(y + r + 1)}L${px(x - r - 1)} ${px(y)}Z" ${paint}>${title}</path>`;
  }
}

interface Resolved {
  readonly label: string;
  readonly points: readonly PftPoint[];
  readonly color: string;
  readonly marker: Marker;
  readonly line: 'solid' | 'dashed' | 'none';
  readonly hollow: boolean;
  readonly reference: string | undefined;
}

// x may be 0 on a sweep's axis (scrub_stop 0); thread counts never are.
const usable = (p: PftPoint): boolean =>
  [p.threads, p.fltPerCpuS, p.faultPerWsec].every((v) => Number.isFinite(v) && v >= 0);

function resolve(series: readonly PlotSeries[]): Resolved[] {
  // Series that take a default colour or marker take the next ones, in order.
  let next = 0;
  return series.map((s) => {
    const i = s.style?.color === undefined || s.style.marker === undefined ? next++ : 0;
    return {
      label: s.label,
      points: s.points.filter(usable),
      color: s.style?.color ?? PALETTE[i % PALETTE.length]!,
      marker: s.style?.marker ?? MARKERS[i % MARKERS.length]!,
      line: s.style?.line ?? 'solid',
      hollow: s.style?.hollow ?? false,
      reference: s.reference,
    };
  });
}

/** Hollow (published) series first: drawn under the model's points. */
const drawOrder = (all: readonly Resolved[]): Resolved[] => [...all.filter((s) => s.hollow), ...all.filter((s) => !s.hollow)];

type Key = (typeof PANELS)[number]['key'];

interface RatioPoint {
  readonly series: Resolved;
  readonly threads: number;
  readonly ratio: number;
}

/** model ÷ published for every series with a reference, at each thread count both have. */
function ratios(all: readonly Resolved[], key: Key): RatioPoint[] {
  const out: RatioPoint[] = [];
  for (const s of all) {
    const ref = all.find((r) => r.label === s.reference);
    if (!ref || ref === s) continue;
    for (const pt of s.points) {
      for (const pub of ref.points) {
        if (pub.threads === pt.threads && pub[key] > 0) out.push({ series: s, threads: pt.threads, ratio: pt[key] / pub[key] });
      }
    }
  }
  return out;
}

const PANELS = [
  { key: 'fltPerCpuS', title: 'flt/cpu/s: faults per CPU second (user + system)' },
  { key: 'faultPerWsec', title: 'fault/wsec: faults per wall second' },
] as const;

/** Approximate width of `s` in 12 px sans-serif, for laying out the legend. */
const textWidth = (s: string): number => s.length * 6.8;

/** `s` in lines of at most `width` px at `charPx` a character, broken between words. */
function wrapText(s: string, width: number, charPx: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of s.split(' ')) {
    if (line && (line.length + 1 + word.length) * charPx > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/**
 * The SVG document for `series` (a run per scrub mode, published figures …): flt/cpu/s and
 * fault/wsec against threads, in two panels with a shared legend.
 */
export function renderPftSvg(series: readonly PlotSeries[], opts: PlotOptions = {}): string {
  const all = resolve(series);
  const hasRatios = PANELS.some((p) => ratios(all, p.key).length > 0);
  const ratioH = hasRatios ? 150 : 0;
  const width = opts.width ?? 960;
  const height = opts.height ?? 440 + ratioH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  let top = 20;
  // Long titles (a sweep's description) wrap: cut by the frame, they would lose their ends.
  let lead = 8;
  for (const line of opts.title ? wrapText(opts.title, width - 40, 9.8) : []) {
    out.push(text(width / 2, (top += lead), line, 'text-anchor="middle" font-size="16" font-weight="bold"'));
    lead = 20;
  }
  for (const line of opts.subtitle ? wrapText(opts.subtitle, width - 40, 6.8) : []) out.push(text(width / 2, (top += 20), line, 'text-anchor="middle" fill="#444444"'));
  top += 36;

  const legend = legendRows(all, width - 80);
  const bottom = height - 62 - legend.length * 20 - ratioH;
  const gap = 90;
  const panelW = (width - 80 - 20 - gap) / 2;
  const threads = all.flatMap((s) => s.points.map((p) => p.threads));
  for (let i = 0; i < PANELS.length; i++) {
    const left = 80 + i * (panelW + gap);
    out.push(panel(all, PANELS[i]!, threads, left, left + panelW, top, bottom, opts.xLabel ?? 'threads'));
    if (hasRatios) out.push(ratioPanel(all, PANELS[i]!.key, threads, left, left + panelW, bottom + 62, bottom + ratioH + 10));
  }
  legend.forEach((row, r) => out.push(...legendItems(row, 80, height - 14 - (legend.length - 1 - r) * 20)));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function panel(all: readonly Resolved[], p: (typeof PANELS)[number], threads: readonly number[], left: number, right: number, top: number, bottom: number, xLabel: string): string {
  const out: string[] = [`<g class="panel" data-value="${p.key}">`];
  out.push(text(left, top - 12, p.title, 'font-weight="bold"'));
  if (threads.length === 0) {
    out.push(`<rect x="${px(left)}" y="${px(top)}" width="${px(right - left)}" height="${px(bottom - top)}" fill="none" stroke="#888888"/>`);
    out.push(text((left + right) / 2, (top + bottom) / 2, 'no data', 'text-anchor="middle" fill="#888888"'));
    out.push('</g>');
    return out.join('\n');
  }
  const x = xScale(threads, left, right);
  const withIdeal = p.key === 'faultPerWsec' && xLabel === 'threads';
  // The ideal line's first step (to a run's second thread count) is kept in the frame: a run
  // that scales poorly would otherwise see its ideal leave the frame at once, out of sight.
  const idealTop = withIdeal ? all.filter((s) => !s.hollow && s.points.length > 1).map((s) => {
    const [a, b] = [...s.points].sort((u, v) => u.threads - v.threads);
    return (a![p.key] * b!.threads) / a!.threads;
  }) : [];
  const y = yScale(Math.max(...all.flatMap((s) => s.points.map((pt) => pt[p.key])), ...idealTop), top, bottom);
  for (const v of y.ticks) {
    const yy = y.at(v);
    out.push(`<line class="grid" x1="${px(left)}" y1="${px(yy)}" x2="${px(right)}" y2="${px(yy)}" stroke="#e4e4e4"/>`);
    out.push(text(left - 8, yy + 4, formatCount(v), 'text-anchor="end" fill="#333333"'));
  }
  for (const v of x.ticks) {
    const xx = x.at(v);
    out.push(`<line class="tick" x1="${px(xx)}" y1="${px(bottom)}" x2="${px(xx)}" y2="${px(bottom + 5)}" stroke="#333333"/>`);
    out.push(text(xx, bottom + 19, String(v), 'text-anchor="middle" fill="#333333"'));
  }
  out.push(`<rect x="${px(left)}" y="${px(top)}" width="${px(right - left)}" height="${px(bottom - top)}" fill="none" stroke="#333333"/>`);
  out.push(text((left + right) / 2, bottom + 36, xLabel, 'text-anchor="middle"'));
  const ideal = withIdeal ? idealLines(all, p.key, x, y, left, right, top, bottom) : [];
  if (ideal.length > 0) out.push(text(right, top - 12, 'dotted: ideal scaling', 'text-anchor="end" fill="#444444"'), ...ideal);
  for (const s of drawOrder(all)) {
    const pts = [...s.points].sort((a, b) => a.threads - b.threads);
    if (s.line !== 'none' && pts.length > 1) {
      const d = pts.map((pt, i) => `${i === 0 ? 'M' : 'L'}${px(x.at(pt.threads))} ${px(y.at(pt[p.key]))}`).join('');
      const dash = s.line === 'dashed' ? ' stroke-dasharray="6 4"' : '';
      out.push(`<path class="series-line" d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    }
    for (const pt of pts) {
      const tip = `${s.label}: ${xLabel === 'threads' ? `${pt.threads} thread${pt.threads === 1 ? '' : 's'}` : `${xLabel} ${pt.threads}`}, ${p.key === 'fltPerCpuS' ? 'flt/cpu/s' : 'fault/wsec'} ${pt[p.key].toFixed(0)}`;
      out.push(marker(s.marker, x.at(pt.threads), y.at(pt[p.key]), s.color, s.hollow, 'point', tip));
    }
  }
  out.push('</g>');
  return out.join('\n');
}

/**
 * Ideal scaling for each run: its fewest-threads point × threads ÷ those threads, dotted in
 * the run's colour and clipped to the panel (perfect scaling soon leaves the frame).
 */
function idealLines(all: readonly Resolved[], key: Key, x: Scale, y: Scale, left: number, right: number, top: number, bottom: number): string[] {
  const id = `clip-${key}`;
  const out = [`<clipPath id="${id}"><rect x="${px(left)}" y="${px(top)}" width="${px(right - left)}" height="${px(bottom - top)}"/></clipPath>`];
  for (const s of all) {
    if (s.hollow || s.points.length < 2) continue;
    const pts = [...s.points].sort((a, b) => a.threads - b.threads);
    const first = pts[0]!;
    const d = pts.map((pt, i) => `${i === 0 ? 'M' : 'L'}${px(x.at(pt.threads))} ${px(y.at((first[key] * pt.threads) / first.threads))}`).join('');
    out.push(`<path class="ideal" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.2" stroke-dasharray="2 3" clip-path="url(#${id})"><title>${escapeXml(`${s.label}: ideal scaling from ${first.threads} thread${first.threads === 1 ? '' : 's'}`)}</title></path>`);
  }
  return out.length > 1 ? out : [];
}

/** model ÷ published under a panel: a line at 1, the ±10 % band, a marker per ratio. */
function ratioPanel(all: readonly Resolved[], key: Key, threads: readonly number[], left: number, right: number, top: number, bottom: number): string {
  const pts = ratios(all, key);
  const out: string[] = [`<g class="ratio-panel" data-value="${key}">`];
  out.push(text(left, top - 8, 'model ÷ published (band: ±10 %)', 'fill="#333333"'));
  const lo = Math.min(0.8, ...pts.map((r) => r.ratio));
  const hi = Math.max(1.2, ...pts.map((r) => r.ratio));
  const at = (v: number): number => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
  const x = xScale(threads, left, right);
  out.push(`<rect class="band" x="${px(left)}" y="${px(at(1.1))}" width="${px(right - left)}" height="${px(at(0.9) - at(1.1))}" fill="#dff0df"/>`);
  out.push(`<line x1="${px(left)}" y1="${px(at(1))}" x2="${px(right)}" y2="${px(at(1))}" stroke="#333333" stroke-dasharray="4 3"/>`);
  for (const v of [0.9, 1, 1.1]) out.push(text(left - 8, at(v) + 4, v.toFixed(1), 'text-anchor="end" fill="#333333"'));
  // The panel's ends, when the ratios stretch it past the band: how far off the extremes are.
  for (const v of [lo, hi]) if (v < 0.8 || v > 1.2) out.push(text(left - 8, at(v) + 4, v.toFixed(2), 'text-anchor="end" fill="#333333"'));
  out.push(`<rect x="${px(left)}" y="${px(top)}" width="${px(right - left)}" height="${px(bottom - top)}" fill="none" stroke="#333333"/>`);
  if (pts.length === 0) out.push(text((left + right) / 2, (top + bottom) / 2, 'no published point at these threads', 'text-anchor="middle" fill="#888888"'));
  for (const r of pts) {
    const tip = `${r.series.label} ÷ ${r.series.reference}: ${r.threads} thread${r.threads === 1 ? '' : 's'}, ${r.ratio.toFixed(3)}`;
    out.push(marker(r.series.marker, x.at(r.threads), at(r.ratio), r.series.color, false, 'ratio-point', tip));
  }
  out.push('</g>');
  return out.join('\n');
}

/** Legend entries in rows that fit `width`. */
function legendRows(all: readonly Resolved[], width: number): Resolved[][] {
  const rows: Resolved[][] = [];
  let used = Infinity;
  for (const s of all) {
    const w = 40 + textWidth(s.label) + 24;
    if (used + w > width) {
      rows.push([]);
      used = 0;
    }
    rows.at(-1)!.push(s);
    used += w;
  }
  return rows;
}

function legendItems(row: readonly Resolved[], left: number, y: number): string[] {
  const out: string[] = [];
  let x = left;
  for (const s of row) {
    const line = s.line === 'none' ? '' : `<line x1="${px(x)}" y1="${px(y - 4)}" x2="${px(x + 30)}" y2="${px(y - 4)}" stroke="${s.color}" stroke-width="2"${s.line === 'dashed' ? ' stroke-dasharray="6 4"' : ''}/>`;
    out.push(`<g class="legend-item">${line}${marker(s.marker, x + 15, y - 4, s.color, s.hollow, 'legend-marker', '')}${text(x + 40, y, s.label)}</g>`);
    x += 40 + textWidth(s.label) + 24;
  }
  return out;
}

// ---- payoff -----------------------------------------------------------------------------------

/** One machine and page size of `kscrubfs payoff`: the gains at each thread count, and kscrubd's cost. */
export interface PayoffGroup {
  /** "epyc, 4K" */
  readonly name: string;
  /** "2021, 2 × EPYC Milan" */
  readonly about: string;
  readonly bars: readonly { threads: number; cpuGain: number; wallGain: number; share: number }[];
  /** kscrubd's CPU time per GiB it zeroed, while it prepared the prezeroed rows (null: it zeroed nothing). */
  readonly kscrubdCpuSPerGiB: number | null;
}

export interface PayoffOptions {
  readonly subtitle: readonly string[];
  /** Version and how the chart was made, printed at its foot. */
  readonly provenance: string;
}

/**
 * `kscrubfs payoff --svg`: prezeroed ÷ base for each machine, page size and thread count, on a
 * log axis (1.19× and 1.89× look as far apart as they are, a loss points down) with the 1× line
 * marked: flt/cpu/s (CPU spent per fault) and fault/wsec (wall-clock throughput) side by side,
 * since a gain in one need not be one in the other; under each group, what kscrubd paid.
 */
export function renderPayoffSvg(groups: readonly PayoffGroup[], opts: PayoffOptions): string {
  const W = 960;
  const top = 70 + 16 * opts.subtitle.length;
  const bottom = top + 300;
  const H = bottom + 136;
  const left = 64;
  const right = W - 24;
  const gains = groups.flatMap((g) => g.bars.flatMap((b) => [b.cpuGain, b.wallGain])).filter((v) => v > 0 && Number.isFinite(v));
  // Whole powers of two around the data, 1× always inside.
  const lo = 2 ** Math.min(-1, Math.floor(Math.log2(Math.min(...gains, 1))));
  const hi = 2 ** Math.max(1, Math.ceil(Math.log2(Math.max(...gains, 1))));
  const y = (v: number): number => bottom - ((Math.log2(v) - Math.log2(lo)) / (Math.log2(hi) - Math.log2(lo))) * (bottom - top);
  const colors = { cpu: '#4477aa', wall: '#ee7733' };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    text(W / 2, 26, 'Would kscrubd pay off today? prezeroed ÷ base, pft', 'text-anchor="middle" font-size="16" font-weight="bold"'),
    ...opts.subtitle.map((line, i) => text(W / 2, 46 + 16 * i, line, 'text-anchor="middle" fill="#444444"')),
  ];
  for (let v = lo; v <= hi; v *= 2) {
    const one = v === 1;
    out.push(`<line class="${one ? 'one' : 'grid'}" x1="${px(left)}" y1="${px(y(v))}" x2="${px(right)}" y2="${px(y(v))}" stroke="${one ? '#000000' : '#e0e0e0'}" stroke-width="${one ? 1.5 : 1}"/>`);
    out.push(text(left - 8, y(v) + 4, `${v >= 1 ? v : `1/${1 / v}`}×`, `text-anchor="end" fill="#333333"${one ? ' font-weight="bold"' : ''}`));
  }
  out.push(text(left - 44, (top + bottom) / 2, 'gain (log scale)', `text-anchor="middle" transform="rotate(-90 ${px(left - 44)} ${px((top + bottom) / 2)})"`));
  const gw = (right - left) / Math.max(1, groups.length);
  groups.forEach((g, i) => {
    const x0 = left + i * gw;
    const slots = g.bars.length * 2;
    const bw = Math.min(34, (gw * 0.8) / slots);
    const start = x0 + (gw - bw * slots - 6 * (g.bars.length - 1)) / 2;
    g.bars.forEach((b, j) => {
      for (const [k, kind] of (['cpu', 'wall'] as const).entries()) {
        const v = kind === 'cpu' ? b.cpuGain : b.wallGain;
        const x = start + j * (2 * bw + 6) + k * bw;
        const [ya, yb] = [y(Math.max(v, 1)), y(Math.min(v, 1))];
        const tip = `${g.name}, ${b.threads} thread${b.threads === 1 ? '' : 's'}: ${kind === 'cpu' ? 'flt/cpu/s' : 'fault/wsec'} ${v.toFixed(2)}× (${Math.round(100 * b.share)} % of faults served prezeroed)`;
        out.push(`<rect class="bar" data-kind="${kind}" x="${px(x)}" y="${px(ya)}" width="${px(bw - 2)}" height="${px(Math.max(1, yb - ya))}" fill="${colors[kind]}"><title>${escapeXml(tip)}</title></rect>`);
        out.push(text(x + (bw - 2) / 2, v >= 1 ? ya - 4 : yb + 12, `${v.toFixed(2)}×`, 'text-anchor="middle" font-size="10"'));
      }
      out.push(text(start + j * (2 * bw + 6) + bw - 1, bottom + 16, `${b.threads} thr`, 'text-anchor="middle" fill="#333333" font-size="11"'));
    });
    const cx = x0 + gw / 2;
    out.push(text(cx, bottom + 34, g.name, 'text-anchor="middle" font-weight="bold"'));
    out.push(text(cx, bottom + 50, g.about, 'text-anchor="middle" fill="#555555" font-size="11"'));
    const cost = g.kscrubdCpuSPerGiB === null ? ['kscrubd zeroed nothing', ''] : [`kscrubd: ${g.kscrubdCpuSPerGiB.toFixed(3)} CPU s`, 'per GiB it zeroed'];
    cost.forEach((line, n) => { if (line !== '') out.push(text(cx, bottom + 66 + 13 * n, line, 'class="cost" text-anchor="middle" fill="#555555" font-size="11"')); });
  });
  out.push(`<rect x="${px(left)}" y="${px(H - 42)}" width="12" height="12" fill="${colors.cpu}"/>`, text(left + 18, H - 32, 'flt/cpu/s gain (CPU time per fault)'));
  out.push(`<rect x="${px(left + 280)}" y="${px(H - 42)}" width="12" height="12" fill="${colors.wall}"/>`, text(left + 298, H - 32, 'fault/wsec gain (wall-clock throughput); 1× (bold): no gain'));
  out.push(text(left, H - 12, opts.provenance, 'class="provenance" fill="#777777" font-size="10"'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** One answer's tornado: its band and the figures that move it, the largest first. */
export interface TornadoPanel {
  /** "altix, 8 threads: flt/cpu/s gain" */
  readonly title: string;
  readonly band: Band;
}

export interface TornadoOptions {
  readonly title: string;
  readonly subtitle: readonly string[];
  /** Version and how the chart was made, printed at its foot. */
  readonly provenance: string;
  /** Bars per panel (default 10): the figures that move the answer least are left off. */
  readonly bars?: number;
}

/**
 * `--tornado FILE`: for each answer, one bar per fitted figure from the answer with the figure
 * at its lower bound to the answer at its upper one, on a log axis of answer ÷ point (so a
 * 10 % swing is as long whatever the answer's size), the figure that moves it most on top; a
 * line marks the point and a band under the bars the whole band, calibration error included.
 */
export function renderTornadoSvg(panels: readonly TornadoPanel[], opts: TornadoOptions): string {
  const W = 860;
  const nBars = opts.bars ?? 10;
  const left = 250;
  const right = W - 30;
  const rowH = 18;
  const head = 62 + 16 * opts.subtitle.length;
  const shown = panels.map((p) => p.band.tornado.slice(0, nBars));
  const panelH = (i: number): number => 40 + rowH * Math.max(1, shown[i]!.length) + 26;
  const H = head + panels.reduce((s, _, i) => s + panelH(i), 0) + 40;
  // One scale for every panel: ln(answer ÷ point), symmetric, at least ±5 %.
  const logs = panels.flatMap((p) => [p.band.lo, p.band.hi, ...p.band.tornado.flatMap((t) => [t.atLo, t.atHi])]
    .filter((v) => v > 0 && p.band.point > 0).map((v) => Math.abs(Math.log(v / p.band.point))));
  const span = Math.max(Math.log(1.05), ...logs) * 1.1;
  const x = (ratio: number): number => left + ((Math.log(Math.max(ratio, 1e-12)) + span) / (2 * span)) * (right - left);
  const colors = { lo: '#4477aa', hi: '#ee7733', band: '#dddddd' };
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${px(H)}" viewBox="0 0 ${W} ${px(H)}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${px(H)}" fill="#ffffff"/>`,
    text(W / 2, 26, opts.title, 'text-anchor="middle" font-size="16" font-weight="bold"'),
    ...opts.subtitle.map((line, i) => text(W / 2, 46 + 16 * i, line, 'text-anchor="middle" fill="#444444"')),
  ];
  let top = head;
  panels.forEach((p, i) => {
    const b = p.band;
    const bars = shown[i]!;
    const y0 = top + 34;
    const y1 = y0 + rowH * Math.max(1, bars.length);
    const sig = (v: number): string => Number(v.toPrecision(4)).toString();
    out.push(text(left, top + 14, `${p.title}: ${formatCount(b.point)} [${formatCount(b.lo)} … ${formatCount(b.hi)}]`, 'font-weight="bold"'));
    out.push(`<rect class="band" x="${px(x(b.lo / b.point))}" y="${px(y0 - 8)}" width="${px(Math.max(1, x(b.hi / b.point) - x(b.lo / b.point)))}" height="${px(y1 - y0 + 10)}" fill="${colors.band}"><title>${escapeXml(`band ${b.lo} … ${b.hi}`)}</title></rect>`);
    bars.forEach((t, j) => {
      const y = y0 + j * rowH;
      out.push(text(left - 8, y + 12, `${t.figure} ${sig(t.lo)}…${sig(t.hi)}`, 'text-anchor="end" fill="#333333" font-size="11"'));
      // The longer swing first: when both bounds move the answer the same way, the shorter stays visible on top.
      const swing = (v: number): number => (b.point > 0 && v > 0 ? Math.abs(Math.log(v / b.point)) : 0);
      for (const side of swing(t.atLo) >= swing(t.atHi) ? (['lo', 'hi'] as const) : (['hi', 'lo'] as const)) {
        const v = side === 'lo' ? t.atLo : t.atHi;
        const r = b.point > 0 && v > 0 ? v / b.point : 1;
        const [xa, xb] = [Math.min(x(r), x(1)), Math.max(x(r), x(1))];
        const tip = `${t.figure} at its ${side === 'lo' ? 'lower' : 'upper'} bound ${t[side]}: ${v} (${(100 * (r - 1)).toFixed(1)} %)`;
        out.push(`<rect class="bar" data-figure="${escapeXml(t.figure)}" data-side="${side}" x="${px(xa)}" y="${px(y + 2)}" width="${px(Math.max(1, xb - xa))}" height="${rowH - 4}" fill="${colors[side]}"><title>${escapeXml(tip)}</title></rect>`);
      }
    });
    if (bars.length === 0) out.push(text(left + 8, y0 + 12, 'no fitted figure', 'fill="#777777"'));
    out.push(`<line class="point" x1="${px(x(1))}" y1="${px(y0 - 10)}" x2="${px(x(1))}" y2="${px(y1 + 4)}" stroke="#000000" stroke-width="1.5"/>`);
    for (const r of [Math.exp(-span / 1.1), 1, Math.exp(span / 1.1)]) {
      out.push(text(x(r), y1 + 18, `${r >= 1 ? '+' : '−'}${Math.abs(100 * (r - 1)).toFixed(1)} %`, 'text-anchor="middle" fill="#555555" font-size="10"'));
    }
    top += panelH(i);
  });
  const ly = H - 36;
  out.push(`<rect x="${left}" y="${px(ly)}" width="12" height="12" fill="${colors.lo}"/>`, text(left + 18, ly + 10, 'figure at its lower bound'));
  out.push(`<rect x="${left + 190}" y="${px(ly)}" width="12" height="12" fill="${colors.hi}"/>`, text(left + 208, ly + 10, 'at its upper bound'));
  out.push(`<rect x="${left + 350}" y="${px(ly)}" width="12" height="12" fill="${colors.band}"/>`, text(left + 368, ly + 10, 'band, calibration error included'));
  out.push(text(24, H - 10, opts.provenance, 'class="provenance" fill="#777777" font-size="10"'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---- policies -----------------------------------------------------------------------------------

/** One column of `kscrubfs policies`' table: a bar per policy. */
export interface BarPanel {
  /** "ready ms" */
  readonly title: string;
  /** band: the value's uncertainty (policies --band), drawn as a whisker across the bar. */
  readonly bars: readonly { readonly name: string; readonly value: number; readonly band?: { readonly lo: number; readonly hi: number } }[];
  /** How a value is printed beside its bar. */
  readonly format: (v: number) => string;
}

export interface BarPanelOptions {
  readonly title: string;
  /** Version and how the chart was made, printed at its foot. */
  readonly provenance: string;
}

/** Bar colours by position (colour-blind safe, Paul Tol's bright scheme), the same policy the same colour in every panel. */
const BAR_COLORS = ['#4477aa', '#ee6677', '#228833', '#ccbb44', '#66ccee', '#aa3377', '#bbbbbb'];

/**
 * `kscrubfs policies --svg`: one panel per column of the table, three to a row, each with a
 * horizontal bar per policy from 0 (linear: a column's values are compared by size, and 0 —
 * nothing cleared, no co-runner loss — must look like nothing), its value printed at its end;
 * a bar with a band has a whisker from its low to its high end.
 */
export function renderPoliciesSvg(panels: readonly BarPanel[], opts: BarPanelOptions): string {
  const perRow = 3;
  const W = 960;
  const names = panels[0]?.bars.map((b) => b.name) ?? [];
  const barH = 16;
  const panelH = 40 + names.length * (barH + 4);
  const panelW = (W - 40) / perRow;
  const labelW = 12 + Math.max(0, ...names.map(textWidth));
  const top = 56;
  const H = top + Math.ceil(panels.length / perRow) * (panelH + 16) + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${px(H)}" viewBox="0 0 ${W} ${px(H)}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${px(H)}" fill="#ffffff"/>`,
    text(W / 2, 28, opts.title, 'text-anchor="middle" font-size="16" font-weight="bold"'),
  ];
  panels.forEach((p, i) => {
    const x0 = 20 + (i % perRow) * panelW;
    const y0 = top + Math.floor(i / perRow) * (panelH + 16);
    const max = Math.max(0, ...p.bars.map((b) => Math.max(b.value, b.band?.hi ?? 0)));
    const span = panelW - labelW - 70;
    out.push(`<g class="panel" data-title="${escapeXml(p.title)}">`);
    out.push(text(x0, y0 + 14, p.title, 'font-weight="bold"'));
    p.bars.forEach((b, j) => {
      const y = y0 + 26 + j * (barH + 4);
      const w = max > 0 ? (b.value / max) * span : 0;
      out.push(text(x0 + labelW - 8, y + barH - 4, b.name, 'text-anchor="end" fill="#333333"'));
      out.push(`<rect class="bar" data-policy="${escapeXml(b.name)}" x="${px(x0 + labelW)}" y="${px(y)}" width="${px(Math.max(w, 0.5))}" height="${barH}" fill="${BAR_COLORS[j % BAR_COLORS.length]}"><title>${escapeXml(`${b.name}: ${p.title} ${p.format(b.value)}`)}</title></rect>`);
      let end = w;
      if (b.band !== undefined && max > 0) {
        const lo = (b.band.lo / max) * span;
        end = Math.max(w, (b.band.hi / max) * span);
        const mid = y + barH / 2;
        out.push(`<path class="band" data-policy="${escapeXml(b.name)}" d="M${px(x0 + labelW + lo)} ${px(mid)}H${px(x0 + labelW + end)}M${px(x0 + labelW + lo)} ${px(mid - 4)}V${px(mid + 4)}M${px(x0 + labelW + end)} ${px(mid - 4)}V${px(mid + 4)}" stroke="#222222" stroke-width="1.5" fill="none"><title>${escapeXml(`${b.name}: ${p.title} ${p.format(b.band.lo)} … ${p.format(b.band.hi)}`)}</title></path>`);
      }
      out.push(text(x0 + labelW + end + 4, y + barH - 4, p.format(b.value), 'font-size="11"'));
    });
    out.push('</g>');
  });
  out.push(text(20, H - 12, opts.provenance, 'class="provenance" fill="#777777" font-size="10"'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** One published target column and the model's value for it (a calibrate Comparison, with its row's preset). */
export interface CalibrationPoint {
  readonly label: string;
  readonly preset: string;
  readonly column: 'flt/cpu/s' | 'fault/wsec';
  readonly model: number;
  /** The published value nearest the model's. */
  readonly published: number;
  readonly ok: boolean;
}

export interface CalibrationOptions {
  readonly title: string;
  readonly subtitle: string;
  /** Version and how the chart was made, printed at its foot. */
  readonly provenance: string;
  /** The band calibration holds a column to, each way (0.1: ±10 %). */
  readonly tolerance: number;
}

/**
 * `kscrubfs calibrate --plot`: every published row's flt/cpu/s and fault/wsec, model ÷
 * published on a log axis (0.8× and 1.25× are as far off), one panel per column, the rows
 * along x grouped by preset, the ±tolerance band shaded. A ratio per row rather than a
 * model-against-published scatter: the rows' values crowd within a decade, their ratios do not.
 * Filled markers are within band (of the envelope where a row was published twice), hollow
 * ones outside it. Every point is one element with class "point".
 */
export function renderCalibrationSvg(points: readonly CalibrationPoint[], opts: CalibrationOptions): string {
  const columns = ['flt/cpu/s', 'fault/wsec'] as const;
  const labels = [...new Set(points.map((p) => p.label))];
  const presets = [...new Set(points.map((p) => p.preset))];
  const W = Math.max(960, 140 + 34 * labels.length);
  const left = 74;
  const right = W - 24;
  const panelH = 220;
  const gap = 40;
  const top0 = 88;
  const labelsH = 150;
  const H = top0 + 2 * panelH + gap + labelsH + 40;
  const ratios = points.map((p) => p.model / p.published).filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.min(1 - 2 * opts.tolerance, ...ratios.map((r) => r / 1.05));
  const hi = Math.max(1 + 2 * opts.tolerance, ...ratios.map((r) => r * 1.05));
  const ticks = [0.25, 0.33, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 4].filter((t) => t >= lo && t <= hi);
  const slot = (right - left) / Math.max(1, labels.length);
  const xOf = (label: string): number => left + slot * (labels.indexOf(label) + 0.5);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    text(W / 2, 26, opts.title, 'text-anchor="middle" font-size="16" font-weight="bold"'),
    text(W / 2, 46, opts.subtitle, 'text-anchor="middle" fill="#444444"'),
  ];
  columns.forEach((column, c) => {
    const top = top0 + c * (panelH + gap);
    const bottom = top + panelH;
    const y = (v: number): number => bottom - ((Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * panelH;
    out.push(text(left, top - 8, `${column}: model ÷ published (log scale)`, 'font-weight="bold"'));
    out.push(`<rect class="band" x="${px(left)}" y="${px(y(1 + opts.tolerance))}" width="${px(right - left)}" height="${px(y(1 - opts.tolerance) - y(1 + opts.tolerance))}" fill="#e8f0e8"/>`);
    for (const t of ticks) {
      const one = t === 1;
      out.push(`<line class="${one ? 'one' : 'grid'}" x1="${px(left)}" y1="${px(y(t))}" x2="${px(right)}" y2="${px(y(t))}" stroke="${one ? '#000000' : '#d8d8d8'}" stroke-width="${one ? 1.2 : 1}"/>`);
      out.push(text(left - 8, y(t) + 4, `${t}×`, `text-anchor="end" fill="#333333"${one ? ' font-weight="bold"' : ''}`));
    }
    // A thin rule where the rows of one preset end and the next preset's begin.
    for (let i = 1; i < labels.length; i++) {
      const a = points.find((p) => p.label === labels[i - 1])!.preset;
      const b = points.find((p) => p.label === labels[i])!.preset;
      if (a !== b) out.push(`<line class="preset-rule" x1="${px(left + slot * i)}" y1="${px(top)}" x2="${px(left + slot * i)}" y2="${px(bottom)}" stroke="#888888" stroke-dasharray="4 3"/>`);
    }
    for (const p of points.filter((q) => q.column === column)) {
      const r = p.model / p.published;
      if (!(r > 0) || !Number.isFinite(r)) continue;
      const color = PALETTE[presets.indexOf(p.preset) % PALETTE.length]!;
      const tip = `${p.label}, ${column}: model ${formatCount(p.model)}, published ${formatCount(p.published)}, ×${r.toFixed(3)}${p.ok ? '' : ' (outside the band)'}`;
      out.push(marker(column === 'flt/cpu/s' ? 'circle' : 'square', xOf(p.label), y(r), color, !p.ok, 'point', tip)
        .replace('class="point"', `class="point" data-column="${column}" data-preset="${escapeXml(p.preset)}"`));
    }
  });
  const axis = top0 + 2 * panelH + gap;
  for (const label of labels) {
    const x = xOf(label);
    out.push(text(x + 4, axis + 10, label, `class="row-label" text-anchor="end" font-size="11" transform="rotate(-60 ${px(x + 4)} ${px(axis + 10)})"`));
  }
  const ly = H - 38;
  presets.forEach((preset, i) => {
    out.push(`<rect x="${px(left + 110 * i)}" y="${px(ly - 10)}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`, text(left + 110 * i + 18, ly, preset));
  });
  const legendX = left + 110 * presets.length + 20;
  out.push(text(legendX, ly, `circles flt/cpu/s, squares fault/wsec; filled: within the ±${Math.round(100 * opts.tolerance)} % band (shaded), hollow: outside it`));
  out.push(text(left, H - 12, opts.provenance, 'class="provenance" fill="#777777" font-size="10"'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
