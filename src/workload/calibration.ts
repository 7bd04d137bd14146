import type { PftOptions, PftRow } from './pft';

/**
 * The published pft rows the `altix` preset must reproduce (docs/calibration.md): Lameter's
 * 8-way Altix, 6 GB, 16 KiB pages, CPU zeroing only, no anticipatory prefault. "base" runs
 * with kscrubd off; "patched" with kscrubd on after the machine settled.
 */
export interface PublishedRow {
  readonly label: string;
  readonly gb: number;
  readonly rep: number;
  readonly threads: number;
  readonly cachelines: number;
  readonly scrub: 'on' | 'off';
  readonly userS?: number;
  readonly systemS?: number;
  readonly wallS?: number;
  /** One or more published measurements of the same run (the 1 GiB row was posted twice). */
  readonly fltPerCpuS: readonly number[];
  readonly faultPerWsec: readonly number[];
}

export const PUBLISHED: readonly PublishedRow[] = [
  // 4 GiB × 3, 1–8 threads (prezeroing V1 announcement): Wall is pages ÷ fault/wsec.
  { label: 'base 4G×3 1t', gb: 4, rep: 3, threads: 1, cachelines: 1, scrub: 'off', userS: 0.146, systemS: 11.155, wallS: 11.30, fltPerCpuS: [69584.896], faultPerWsec: [69566.852] },
  { label: 'base 4G×3 2t', gb: 4, rep: 3, threads: 2, cachelines: 1, scrub: 'off', userS: 0.170, systemS: 14.909, wallS: 7.97, fltPerCpuS: [52150.369], faultPerWsec: [98643.687] },
  { label: 'base 4G×3 4t', gb: 4, rep: 3, threads: 4, cachelines: 1, scrub: 'off', userS: 0.181, systemS: 16.597, wallS: 5.79, fltPerCpuS: [46869.167], faultPerWsec: [135642.420] },
  { label: 'base 4G×3 8t', gb: 4, rep: 3, threads: 8, cachelines: 1, scrub: 'off', userS: 0.166, systemS: 23.239, wallS: 4.37, fltPerCpuS: [33599.215], faultPerWsec: [179791.120] },
  { label: 'patched 4G×3 1t', gb: 4, rep: 3, threads: 1, cachelines: 1, scrub: 'on', userS: 0.183, systemS: 2.750, wallS: 2.93, fltPerCpuS: [268077.996], faultPerWsec: [267952.890] },
  { label: 'patched 4G×3 2t', gb: 4, rep: 3, threads: 2, cachelines: 1, scrub: 'on', userS: 0.185, systemS: 4.876, wallS: 2.97, fltPerCpuS: [155344.562], faultPerWsec: [263967.292] },
  { label: 'patched 4G×3 4t', gb: 4, rep: 3, threads: 4, cachelines: 1, scrub: 'on', userS: 0.150, systemS: 6.617, wallS: 2.97, fltPerCpuS: [116205.793], faultPerWsec: [264774.080] },
  { label: 'patched 4G×3 8t', gb: 4, rep: 3, threads: 8, cachelines: 1, scrub: 'on', userS: 0.186, systemS: 13.693, wallS: 3.54, fltPerCpuS: [56659.819], faultPerWsec: [221701.073] },
  // 1 GiB × 1, one thread, patched: the V1 announcement and the cacheline series.
  // (Wall printed as 0.012s: garbled by pft's format; pages ÷ fault/wsec is 0.127 s.)
  { label: 'patched 1G×1', gb: 1, rep: 1, threads: 1, cachelines: 1, scrub: 'on', userS: 0.014, systemS: 0.110, wallS: 0.127, fltPerCpuS: [524292.194, 500813.853], faultPerWsec: [517665.538, 497925.891] },
  { label: 'patched 1G×1 128 lines', gb: 1, rep: 1, threads: 1, cachelines: 128, scrub: 'on', fltPerCpuS: [102300.257], faultPerWsec: [101674.435] },
];

/** The tolerance calibration.md sets on every column. */
export const TOLERANCE = 0.1;

/** pft options that reproduce a published row. */
export function pftOptionsFor(row: PublishedRow): PftOptions {
  return {
    bytes: row.gb * 2 ** 30, reps: row.rep, threads: [row.threads], cachelines: row.cachelines,
    scrub: row.scrub, prealloc: 0, settle: row.scrub === 'on',
  };
}

export interface Comparison {
  readonly label: string;
  readonly column: string;
  readonly model: number;
  readonly published: number;
  /** model ÷ published (the closest published value when there are several). */
  readonly ratio: number;
  readonly ok: boolean;
}

/** Model vs published, column by column. */
export function compare(row: PublishedRow, got: PftRow): Comparison[] {
  const cols: [string, number, readonly number[]][] = [
    ['User', got.userS, row.userS === undefined ? [] : [row.userS]],
    ['System', got.systemS, row.systemS === undefined ? [] : [row.systemS]],
    ['Wall', got.wallS, row.wallS === undefined ? [] : [row.wallS]],
    ['flt/cpu/s', got.fltPerCpuS, row.fltPerCpuS],
    ['fault/wsec', got.faultPerWsec, row.faultPerWsec],
  ];
  const out: Comparison[] = [];
  for (const [column, model, published] of cols) {
    for (const p of published) {
      const ratio = model / p;
      out.push({ label: row.label, column, model, published: p, ratio, ok: Math.abs(ratio - 1) <= TOLERANCE });
    }
  }
  return out;
}

/** A table of comparisons, aligned, with a verdict column. */
export function formatComparisons(rows: readonly Comparison[]): string {
  const head = ['run', 'column', 'model', 'published', 'ratio', ''];
  const fmt = (v: number): string => (v >= 1000 ? v.toFixed(0) : v.toFixed(3));
  const body = rows.map((c) => [c.label, c.column, fmt(c.model), fmt(c.published), c.ratio.toFixed(3), c.ok ? 'ok' : `OFF by more than ±${TOLERANCE * 100}%`]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...body.map(line)].join('\n') + '\n';
}
