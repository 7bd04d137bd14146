import type { BuddyZone, CounterName } from '../uapi';
import type { Sample } from './watch-files';

// The view of `kscrubfs watch`: two samples of the mounted files → a summary (what to say) →
// frame lines (how to draw it). Pure: no I/O, no clock, no terminal; src/cli/watch.ts reads
// the samples and owns the screen.
//
// Where each figure comes from:
//   bars, block counts   buddyinfo (v6: "Node …" line = not zeroed, "Zeroed Pages" line = zeroed;
//                        stock: one line, totals only)
//   MemFree, MemZero     meminfo
//   kscrubd              vmstat kscrubd_pages, kscrubd_bursts, nr_scrub_pages; loadavg's runnable
//                        count; sys/vm/scrub_start, scrub_stop
//   faults               vmstat pgfault, pgfault_prezeroed, pgfault_hot_zeroed
//   time                 uptime: rates are per second of the machine's (virtual) clock

/** What kscrubd is doing, as the files tell it. */
export type KscrubdState =
  /** vmstat has no kscrubd_* counters: not a prezeroing kernel. */
  | 'n/a'
  /** In a burst now, or zeroed something since the last sample. */
  | 'awake'
  | 'asleep'
  /** Asleep, and vm.scrub_start ≥ MAX_ORDER: no free will wake it. */
  | 'off';

export interface KscrubdView {
  readonly state: KscrubdState;
  /** Runnable tasks in loadavg, capped at the node count (null: no loadavg). */
  readonly runnable: number | null;
  readonly nodes: number;
  /** nr_scrub_pages: pages kscrubd holds off-list while zeroing them. */
  readonly inFlightPages: number;
  /** Pages zeroed per virtual second since the last sample (null: one sample, or the clock stood still). */
  readonly pagesPerS: number | null;
  readonly sinceBoot: { readonly pages: number; readonly bursts: number } | null;
  readonly scrubStart: number | null;
  readonly scrubStop: number | null;
  readonly maxOrder: number;
}

export interface FaultsView {
  /** pgfault per virtual second since the last sample. */
  readonly perS: number | null;
  /**
   * Share of the pages write faults mapped that were prezeroed: Δpgfault_prezeroed ÷
   * (Δpgfault_prezeroed + Δpgfault_hot_zeroed). Those two count pages (a prefaulting fault
   * takes several), so pgfault is not the denominator. Null when no page was mapped.
   */
  readonly prezeroedShare: number | null;
  readonly sinceBoot: { readonly faults: number; readonly prezeroedShare: number | null };
}

export interface WatchSummary {
  readonly uptimeS: number;
  /** Virtual and wall seconds since the previous sample (null for the first). */
  readonly virtualDtS: number | null;
  readonly wallDtS: number | null;
  readonly memFreeKb: number | null;
  readonly memZeroKb: number | null;
  readonly kscrubd: KscrubdView;
  /** Null when vmstat has no pgfault. */
  readonly faults: FaultsView | null;
}

/** A zone's free pages from buddyinfo: per order, not zeroed and zeroed (zeroed 0 for stock). */
export function zonePages(z: BuddyZone): { notZeroed: number[]; zeroed: number[] } {
  const zeroed = z.total.map((_, order) => (z.zeroed?.[order] ?? 0) * 2 ** order);
  return { notZeroed: z.total.map((n, order) => n * 2 ** order - zeroed[order]!), zeroed };
}

const sum = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);

/** A counter of the table (src/uapi/counters.ts) as the sample's vmstat gave it: the name is checked against the table. */
const counter = (s: Sample, name: CounterName): number | undefined => s.vmstat.get(name);

/** What the view says, from the current sample and (for rates) the previous one. */
export function summarize(prev: Sample | undefined, cur: Sample): WatchSummary {
  const delta = (name: CounterName): number | null => {
    const a = prev && counter(prev, name);
    const b = counter(cur, name);
    return a === undefined || b === undefined ? null : b - a;
  };
  const virtualDtS = prev ? cur.uptimeS - prev.uptimeS : null;
  const perS = (d: number | null): number | null => (d === null || virtualDtS === null || virtualDtS <= 0 ? null : d / virtualDtS);
  return {
    uptimeS: cur.uptimeS,
    virtualDtS,
    wallDtS: prev ? (cur.wallMs - prev.wallMs) / 1000 : null,
    memFreeKb: cur.meminfo.get('MemFree') ?? null,
    memZeroKb: cur.meminfo.get('MemZero') ?? null,
    kscrubd: kscrubdView(cur, delta, perS),
    faults: faultsView(cur, delta, perS),
  };
}

type Delta = (name: CounterName) => number | null;
type PerS = (d: number | null) => number | null;

/**
 * Awake when any file shows it: a block in flight (nr_scrub_pages), a runnable task in
 * loadavg (on kscrubfs only kscrubd threads are ever seen runnable: a workload's threads run
 * inside one control command), or kscrubd_pages / kscrubd_bursts grew since the last sample.
 */
function kscrubdView(cur: Sample, delta: Delta, perS: PerS): KscrubdView {
  const nodes = new Set(cur.buddy.map((z) => z.node)).size;
  const maxOrder = cur.buddy[0]?.total.length ?? 0;
  const pages = counter(cur, 'kscrubd_pages');
  const inFlightPages = counter(cur, 'nr_scrub_pages') ?? 0;
  const runnable = cur.runnable === null ? null : Math.min(cur.runnable, nodes);
  const grew = (delta('kscrubd_pages') ?? 0) > 0 || (delta('kscrubd_bursts') ?? 0) > 0;
  const scrubStart = cur.sysctl.get('scrub_start') ?? null;
  let state: KscrubdState;
  if (pages === undefined) state = 'n/a';
  else if (inFlightPages > 0 || (runnable ?? 0) > 0 || grew) state = 'awake';
  else if (scrubStart !== null && scrubStart >= maxOrder) state = 'off';
  else state = 'asleep';
  return {
    state, runnable, nodes, inFlightPages, maxOrder, scrubStart,
    pagesPerS: perS(delta('kscrubd_pages')),
    sinceBoot: pages === undefined ? null : { pages, bursts: counter(cur, 'kscrubd_bursts') ?? 0 },
    scrubStop: cur.sysctl.get('scrub_stop') ?? null,
  };
}

function share(part: number | null | undefined, other: number | null | undefined): number | null {
  if (part == null || other == null || part + other === 0) return null;
  return part / (part + other);
}

function faultsView(cur: Sample, delta: Delta, perS: PerS): FaultsView | null {
  const faults = counter(cur, 'pgfault');
  if (faults === undefined) return null;
  return {
    perS: perS(delta('pgfault')),
    prezeroedShare: share(delta('pgfault_prezeroed'), delta('pgfault_hot_zeroed')),
    sinceBoot: { faults, prezeroedShare: share(counter(cur, 'pgfault_prezeroed'), counter(cur, 'pgfault_hot_zeroed')) },
  };
}

// ---- drawing ------------------------------------------------------------------------------

export interface FrameOptions {
  /** The mount, as the user named it. */
  readonly dir: string;
  readonly intervalS: number;
  /** Width to fit. */
  readonly columns: number;
  /** Height to fit: lines past it are cut, with a note (Infinity: never cut). */
  readonly rows: number;
  /** ANSI colours (a terminal); plain text otherwise. */
  readonly color: boolean;
  /** 'grid': zones side by side as the width allows (a terminal); 'stack': one under another. */
  readonly layout: 'grid' | 'stack';
  /** Page size in kB, for the MiB/s figure (null: pages only). */
  readonly pageKb: number | null;
  /** A last line, e.g. "Ctrl-C quits". */
  readonly footer?: string;
}

/** Bar characters: plain ASCII, so the view reads the same over any ssh and in a log. */
export const BAR_ZEROED = '#';
export const BAR_NOT_ZEROED = '=';
/** Printed where a figure needs two samples (or a clock that moved). */
export const NO_VALUE = '-';

/** Narrowest zone block in the grid layout. */
const MIN_BLOCK = 38;

const SGR = { bold: '\x1b[1m', green: '\x1b[32m', yellow: '\x1b[33m', reset: '\x1b[0m' } as const;

/**
 * Cells of one order's bar, `width` cells standing for `scale` pages (the zone's free pages).
 * A non-empty class gets at least one cell, so a lone free page still shows; the total is
 * rounded once and split between the classes in proportion.
 */
export function barCells(notZeroed: number, zeroed: number, scale: number, width: number): { zeroed: number; notZeroed: number } {
  const pages = notZeroed + zeroed;
  if (pages === 0 || scale <= 0 || width <= 0) return { zeroed: 0, notZeroed: 0 };
  const cells = Math.min(width, Math.max(1, Math.round((pages / scale) * width)));
  let z: number;
  if (zeroed === 0) z = 0;
  else if (notZeroed === 0) z = cells;
  else if (cells === 1) z = zeroed >= notZeroed ? 1 : 0;
  else z = Math.min(cells - 1, Math.max(1, Math.round((zeroed / pages) * cells)));
  return { zeroed: z, notZeroed: cells - z };
}

function fmtRate(v: number | null): string {
  return v === null ? NO_VALUE : String(Math.round(v));
}

function fmtPct(v: number | null): string {
  return v === null ? NO_VALUE : `${(v * 100).toFixed(1)}%`;
}

function fmtSeconds(s: number): string {
  return `${s.toFixed(2)} s`;
}

/**
 * The frame's lines (no newlines, no cursor movement), fitted to `opts.columns` × `opts.rows`.
 * On a terminal, header lines too long for the width wrap (nothing is cut), and when the zone
 * blocks do not fit the height the zones become one line each, orders as a strip.
 */
export function renderFrame(s: WatchSummary, cur: Sample, opts: FrameOptions): string[] {
  const paint = (code: string, text: string): string => (opts.color && text !== '' ? `${code}${text}${SGR.reset}` : text);
  const grid = opts.layout === 'grid';
  const fit = (line: string): string => (grid ? line.slice(0, opts.columns) : line);
  const header = headerLines(s, cur, opts).flatMap((l) => (grid ? wrap(l, opts.columns) : [l]));
  const footer = opts.footer !== undefined ? ['', fit(opts.footer)] : [];
  const width = blockWidth(cur.buddy.length, opts);
  const blocks = cur.buddy.map((z) => zoneBlock(z, width, paint));
  let lines = [...header, '', ...arrange(blocks, opts), ...footer];
  if (grid && lines.length > opts.rows) {
    // The legend wraps like the header (cut, it would lose what `1-9` means); zone lines fit.
    const [legend = '', ...zones] = compactZones(cur.buddy, paint);
    lines = [...header, '', ...wrap(legend, opts.columns), ...zones.map(fit), ...footer];
  }
  if (lines.length <= opts.rows) return lines;
  const keep = Math.max(0, opts.rows - 1);
  return [...lines.slice(0, keep), fit(`... ${lines.length - keep} more lines: enlarge the window`)];
}

/** A header line wrapped at `, ` or `; ` to `width`, continuation lines indented as the labels are. */
export function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const cut = Math.max(rest.lastIndexOf(', ', width - 1), rest.lastIndexOf('; ', width - 1));
    if (cut <= 10) break;
    out.push(rest.slice(0, cut + 1));
    rest = `          ${rest.slice(cut + 2)}`;
  }
  out.push(rest.slice(0, width));
  return out;
}

/** One strip cell per order: . none free, = all not zeroed, # all zeroed, 1–9 tenths zeroed. */
export function stripCell(notZeroed: number, zeroed: number): string {
  const pages = notZeroed + zeroed;
  if (pages === 0) return '.';
  if (zeroed === 0) return BAR_NOT_ZEROED;
  if (notZeroed === 0) return BAR_ZEROED;
  return String(Math.min(9, Math.max(1, Math.round((zeroed / pages) * 10))));
}

/** Every zone on one line: free pages, zeroed share, the orders as a strip (small terminals). */
function compactZones(zones: readonly BuddyZone[], paint: Paint): string[] {
  const orders = zones[0]?.total.length ?? 0;
  const lines = [`zone          free pages  zeroed  orders 0-${orders - 1}: . none free, ${BAR_NOT_ZEROED} not zeroed, ${BAR_ZEROED} zeroed, 1-9 tenths zeroed`];
  for (const z of zones) {
    const { notZeroed, zeroed } = zonePages(z);
    const free = sum(notZeroed) + sum(zeroed);
    const strip = z.total.map((_, o) => stripCell(notZeroed[o]!, z.zeroed ? zeroed[o]! : 0)).join('');
    const share = z.zeroed ? fmtPct(free ? sum(zeroed) / free : null) : NO_VALUE;
    lines.push(`${paint(SGR.bold, `N${z.node} ${z.zone}`.padEnd(12))} ${String(free).padStart(11)} ${share.padStart(7)}  [${strip}]`);
  }
  return lines;
}

function headerLines(s: WatchSummary, cur: Sample, opts: FrameOptions): string[] {
  const timing = s.virtualDtS === null
    ? `first sample; refresh every ${opts.intervalS} s`
    : `last ${fmtSeconds(s.virtualDtS)} of machine time in ${fmtSeconds(s.wallDtS ?? 0)}`;
  const free = s.memFreeKb === null ? 'n/a' : `${s.memFreeKb} kB`;
  const zero = s.memZeroKb === null
    ? 'n/a (no MemZero in meminfo)'
    : `${s.memZeroKb} kB (${fmtPct(s.memFreeKb ? s.memZeroKb / s.memFreeKb : null)} of free)`;
  const legend = cur.buddy[0]?.zeroed === null
    ? `stock format: no zeroed / not-zeroed split, totals only (${BAR_NOT_ZEROED})`
    : `${BAR_ZEROED} zeroed  ${BAR_NOT_ZEROED} not zeroed (bars: share of the zone's free pages)`;
  return [
    `kscrubfs watch ${opts.dir}: up ${fmtSeconds(s.uptimeS)} (${timing})`,
    ...(cur.uptimeS !== cur.uptimeFirstS
      ? [`note      the clock moved ${fmtSeconds(cur.uptimeS - cur.uptimeFirstS)} while these files were read; figures from different files may disagree`]
      : []),
    `MemFree   ${free}   MemZero ${zero}`,
    ...kscrubdLines(s.kscrubd, opts.pageKb),
    ...faultsLines(s.faults),
    `buddyinfo ${legend}`,
  ];
}

function kscrubdLines(k: KscrubdView, pageKb: number | null): string[] {
  if (k.state === 'n/a') return ['kscrubd   n/a: vmstat has no kscrubd_* counters (not a prezeroing kernel)'];
  const rate = k.pagesPerS === null
    ? `${NO_VALUE} pages/s`
    : `${fmtRate(k.pagesPerS)} pages/s${pageKb === null ? '' : ` (${((k.pagesPerS * pageKb) / 1024).toFixed(1)} MiB/s)`}`;
  const now: string[] = [];
  if (k.state === 'awake') {
    if (k.runnable !== null) now.push(`${k.runnable}/${k.nodes} runnable`);
    now.push(`${k.inFlightPages} pages in flight`);
    // Awake only by what it did since the last sample: the burst is over by now.
    if (!k.runnable && k.inFlightPages === 0) now.push('burst ended');
  }
  if (k.state === 'off') now.push(`scrub_start ${k.scrubStart} = MAX_ORDER`);
  const sysctls = [
    k.scrubStart === null ? null : `scrub_start ${k.scrubStart}`,
    k.scrubStop === null ? null : `scrub_stop ${k.scrubStop}`,
  ].filter((x) => x !== null);
  const bursts = k.sinceBoot?.bursts === 1 ? 'burst' : 'bursts';
  const boot = k.sinceBoot ? `since boot: ${k.sinceBoot.pages} pages zeroed in ${k.sinceBoot.bursts} ${bursts}` : '';
  return [
    `kscrubd   ${k.state}: ${[rate, ...now].join(', ')}`,
    `          ${[boot, sysctls.join(', ')].filter((x) => x !== '').join('; ')}`,
  ];
}

function faultsLines(f: FaultsView | null): string[] {
  if (f === null) return ['faults    n/a: vmstat has no pgfault'];
  return [
    `faults    ${fmtRate(f.perS)}/s, ${fmtPct(f.prezeroedShare)} of pages prezeroed`,
    `          since boot: ${f.sinceBoot.faults} faults, ${fmtPct(f.sinceBoot.prezeroedShare)} of pages prezeroed`,
  ];
}

/** Zone blocks per row: one in the stack layout, as many as fit (two columns apart) in the grid. */
function blocksPerRow(zones: number, opts: FrameOptions): number {
  if (opts.layout === 'stack') return 1;
  const most = Math.max(1, Math.min(zones, Math.floor((opts.columns + 2) / (MIN_BLOCK + 2))));
  // As few per row as still give the fewest rows: 4 zones in 3 columns → 2 × 2, wider bars.
  return Math.ceil(zones / Math.ceil(zones / most));
}

function blockWidth(zones: number, opts: FrameOptions): number {
  return Math.floor((opts.columns + 2) / blocksPerRow(zones, opts)) - 2;
}

type Paint = (code: string, text: string) => string;

/**
 * One zone: a title, a column header (and the zone's zeroed share above the bars), one row
 * per order: its block counts as buddyinfo has them, and its bar. Every line is `width` cells.
 */
function zoneBlock(z: BuddyZone, width: number, paint: Paint): string[] {
  const { notZeroed, zeroed } = zonePages(z);
  const free = sum(notZeroed) + sum(zeroed);
  const split = z.zeroed !== null;
  const nzW = Math.max(10, ...z.total.map((n) => String(n).length));
  const zW = Math.max(6, ...(z.zeroed ?? []).map((n) => String(n).length));
  const barW = Math.max(1, width - (5 + 1 + nzW + 1 + zW + 1));
  const cell = (text: string): string => text.slice(0, width).padEnd(width);
  const columns = `order ${(split ? 'not zeroed' : 'free').padStart(nzW)} ${(split ? 'zeroed' : NO_VALUE).padStart(zW)}`;
  const lines = [
    paint(SGR.bold, cell(`Node ${z.node}, zone ${z.zone}: ${free} pages free`)),
    // Above the bars: how much of them is zeroed.
    cell(split ? `${columns} ${fmtPct(free ? sum(zeroed) / free : null)} zeroed` : columns),
  ];
  for (let order = 0; order < z.total.length; order++) {
    const cells = barCells(notZeroed[order]!, zeroed[order]!, free, barW);
    // The blocks as buddyinfo prints them: v6's two lines, or stock's one (then no zeroed figure).
    const first = z.total[order]! - (z.zeroed?.[order] ?? 0);
    const second = z.zeroed ? String(z.zeroed[order]!) : NO_VALUE;
    const counts = `${String(order).padStart(5)} ${String(first).padStart(nzW)} ${second.padStart(zW)} `;
    const bar = paint(SGR.green, BAR_ZEROED.repeat(cells.zeroed)) + paint(SGR.yellow, BAR_NOT_ZEROED.repeat(cells.notZeroed));
    lines.push(counts + bar + ' '.repeat(barW - cells.zeroed - cells.notZeroed));
  }
  return lines;
}

/** Blocks side by side, as many as the width holds (grid), or one under another (stack). */
function arrange(blocks: string[][], opts: FrameOptions): string[] {
  const perRow = blocksPerRow(blocks.length, opts);
  const out: string[] = [];
  for (let i = 0; i < blocks.length; i += perRow) {
    const row = blocks.slice(i, i + perRow);
    if (i > 0) out.push('');
    const height = Math.max(...row.map((b) => b.length));
    for (let line = 0; line < height; line++) out.push(row.map((b) => b[line] ?? '').join('  ').trimEnd());
  }
  return out;
}
