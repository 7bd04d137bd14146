import type { PftOptions, PftRow } from './pft';
import { PREFAULT_VARIANTS } from '../uapi/prefault';

/**
 * The published pft rows the model must reproduce (docs/calibration.md): Lameter's 8-way
 * Altix (6 GB, 16 KiB pages, CPU zeroing only) with prezeroing V1 and anticipatory prefault
 * V2, and his 2-way Pentium III with V2. "base" runs with kscrubd off; "patched" with kscrubd
 * on after the machine settled; "prefault" with V2's prefault on and kscrubd absent.
 */
export interface PublishedRow {
  readonly label: string;
  /** The preset of the machine it was measured on, and its core clock where the preset has one. */
  readonly preset: 'altix' | 'i386';
  readonly cpuMhz?: number;
  readonly gb: number;
  readonly rep: number;
  readonly threads: number;
  readonly cachelines: number;
  readonly scrub: 'on' | 'off';
  /** The anticipatory prefault V2 patch as published (vm.max_prealloc_order 3: 1, 2, 4, 8, 16 … pages a fault). */
  readonly prefault: boolean;
  /**
   * pft wrote one byte every `stride` bytes and counted every page (pft.c's loop steps 16384
   * bytes whatever the page size). Every row has one, and pft runs each the same way: a stride
   * of a page or less writes every page (the altix's 16 KiB pages), a larger one one page in
   * stride ÷ page size.
   */
  readonly stride: number;
  readonly userS?: number;
  readonly systemS?: number;
  readonly wallS?: number;
  /**
   * One or more published measurements of the same configuration (the 1 GiB patched row was
   * posted twice; the base 4 GiB × 3 rows were measured on the V1 and the V2 kernel): the
   * target is their envelope, ±10 %.
   */
  readonly fltPerCpuS: readonly number[];
  readonly faultPerWsec: readonly number[];
}

/** pft.c's step between the bytes it writes (`p += 16384` in its test loop, the NBPP of its SGI origin). */
export const PFT_STRIDE = 16384;

/**
 * The stride the i386 rows were written with: every 4 KiB page. Not pft.c's 16 KiB, because
 * the P6 figures rule that reading out: one page in four would make each fault take 32 µs
 * (16,000 cycles at 500 MHz) where trap, fault path and a fast-string clear at the 100 MHz
 * bus's write-back rate come to 8–10 µs, while every page gives the 8.1 µs a page the rows
 * show and the ≈ 560 MB/s of write-back their two-thread run reaches on a bus of 800 MB/s
 * (docs/calibration.md, "i386: the box, pft's stride and the P6 figures").
 */
export const I386_ROW_STRIDE = 4096;

type Times = Pick<PublishedRow, 'userS' | 'systemS' | 'wallS'>;
const altix = (label: string, gb: number, rep: number, threads: number, scrub: 'on' | 'off', prefault: boolean, t: Times, flt: readonly number[], wsec: readonly number[]): PublishedRow =>
  ({ label, preset: 'altix', gb, rep, threads, cachelines: 1, scrub, prefault, stride: PFT_STRIDE, ...t, fltPerCpuS: flt, faultPerWsec: wsec });
const i386 = (label: string, threads: number, prefault: boolean, t: Times, flt: number, wsec: number): PublishedRow =>
  ({ label, preset: 'i386', cpuMhz: 500, gb: 0.25, rep: 3, threads, cachelines: 1, scrub: 'off', prefault, stride: I386_ROW_STRIDE, ...t, fltPerCpuS: [flt], faultPerWsec: [wsec] });

export const PUBLISHED: readonly PublishedRow[] = [
  // 4 GiB × 3, 1–8 threads: the V1 announcement (2.6.10-rc2); the base rows were measured
  // again with V2 (2.6.10-rc3-bk7), the second value. Wall is pages ÷ fault/wsec; User and
  // System are V1's.
  altix('base 4G×3 1t', 4, 3, 1, 'off', false, { userS: 0.146, systemS: 11.155, wallS: 11.30 }, [69584.896, 68788.420], [69566.852, 68747.223]),
  altix('base 4G×3 2t', 4, 3, 2, 'off', false, { userS: 0.170, systemS: 14.909, wallS: 7.97 }, [52150.369, 47315.277], [98643.687, 91322.962]),
  altix('base 4G×3 4t', 4, 3, 4, 'off', false, { userS: 0.181, systemS: 16.597, wallS: 5.79 }, [46869.167, 52852.007], [135642.420, 164043.773]),
  altix('base 4G×3 8t', 4, 3, 8, 'off', false, { userS: 0.166, systemS: 23.239, wallS: 4.37 }, [33599.215, 33565.604], [179791.120, 183348.574]),
  altix('patched 4G×3 1t', 4, 3, 1, 'on', false, { userS: 0.183, systemS: 2.750, wallS: 2.93 }, [268077.996], [267952.890]),
  altix('patched 4G×3 2t', 4, 3, 2, 'on', false, { userS: 0.185, systemS: 4.876, wallS: 2.97 }, [155344.562], [263967.292]),
  altix('patched 4G×3 4t', 4, 3, 4, 'on', false, { userS: 0.150, systemS: 6.617, wallS: 2.97 }, [116205.793], [264774.080]),
  altix('patched 4G×3 8t', 4, 3, 8, 'on', false, { userS: 0.186, systemS: 13.693, wallS: 3.54 }, [56659.819], [221701.073]),
  // 1 GiB × 1, one thread, patched: the V1 announcement and the cacheline series.
  // (Wall printed as 0.012s: garbled by pft's format; pages ÷ fault/wsec is 0.127 s.)
  altix('patched 1G×1', 1, 1, 1, 'on', false, { userS: 0.014, systemS: 0.110, wallS: 0.127 }, [524292.194, 500813.853], [517665.538, 497925.891]),
  { label: 'patched 1G×1 128 lines', preset: 'altix', gb: 1, rep: 1, threads: 1, cachelines: 128, scrub: 'on', prefault: false, stride: PFT_STRIDE, fltPerCpuS: [102300.257], faultPerWsec: [101674.435] },
  // Anticipatory prefault V2 (2.6.10-rc3-bk7), kscrubd absent.
  altix('V2 base 1G×3 1t', 1, 3, 1, 'off', false, { userS: 0.047, systemS: 2.163, wallS: 2.21 }, [88925.153], [88859.030]),
  altix('V2 base 1G×3 2t', 1, 3, 2, 'off', false, { userS: 0.040, systemS: 3.215, wallS: 1.70 }, [60385.889], [115677.685]),
  altix('V2 base 1G×3 4t', 1, 3, 4, 'off', false, { userS: 0.041, systemS: 3.509, wallS: 1.24 }, [55370.338], [158971.609]),
  altix('V2 base 1G×3 8t', 1, 3, 8, 'off', false, { userS: 0.047, systemS: 4.130, wallS: 1.14 }, [47049.904], [172405.990]),
  altix('V2 prefault 1G×3 1t', 1, 3, 1, 'off', true, { userS: 0.008, systemS: 2.080, wallS: 2.09 }, [94121.792], [94101.359]),
  altix('V2 prefault 1G×3 2t', 1, 3, 2, 'off', true, { userS: 0.015, systemS: 3.128, wallS: 1.64 }, [62523.771], [119563.496]),
  altix('V2 prefault 1G×3 4t', 1, 3, 4, 'off', true, { userS: 0.008, systemS: 2.714, wallS: 1.12 }, [72185.910], [175020.971]),
  altix('V2 prefault 1G×3 8t', 1, 3, 8, 'off', true, { userS: 0.016, systemS: 2.963, wallS: 0.88 }, [65965.457], [223921.949]),
  altix('V2 prefault 4G×3 1t', 4, 3, 1, 'off', true, { userS: 0.034, systemS: 10.861, wallS: 10.90 }, [72179.444], [72181.353]),
  altix('V2 prefault 4G×3 2t', 4, 3, 2, 'off', true, { userS: 0.050, systemS: 14.303, wallS: 7.73 }, [54786.447], [101738.901]),
  altix('V2 prefault 4G×3 4t', 4, 3, 4, 'off', true, { userS: 0.038, systemS: 13.478, wallS: 4.45 }, [58182.649], [176913.840]),
  altix('V2 prefault 4G×3 8t', 4, 3, 8, 'off', true, { userS: 0.063, systemS: 13.584, wallS: 3.07 }, [57620.638], [256109.927]),
  // i386: 2 × Pentium III 500 MHz (2.6.10-rc3-bk3), "256M allocation", 3 repetitions, V2 announcement.
  i386('i386 base 1t', 1, false, { userS: 0.020, systemS: 1.566, wallS: 1.59 }, 123827.513, 123842.098),
  i386('i386 base 2t', 2, false, { userS: 0.017, systemS: 2.439, wallS: 1.44 }, 79999.154, 136931.671),
  i386('i386 prefault 1t', 1, true, { userS: 0.020, systemS: 1.527, wallS: 1.40 }, 126945.181, 140930.664),
  i386('i386 prefault 2t', 2, true, { userS: 0.016, systemS: 2.417, wallS: 1.27 }, 80754.809, 155162.903),
];

/**
 * The most V2 maps a fault, as vm.max_prealloc_order means it here (at most 2^n pages): V2 had
 * no sysctl; its do_anonymous_page raises anon_fault_order by one per predicted fault and maps
 * 2^order pages until that reaches PAGEVEC_SIZE, then maps a full pagevec and sets the order
 * back to 3, so a long run maps 1, 2, 4, 8, 16, 16 … pages a fault (the modelled kernel's
 * pagevec caps it): order 4. Its "3" is the order it falls back to, not a ceiling of 8 pages.
 */
export const V2_PREALLOC_ORDER = PREFAULT_VARIANTS.v2;

/** The tolerance calibration.md sets on every column. */
export const TOLERANCE = 0.1;

/** pft options that reproduce a published row. */
export function pftOptionsFor(row: PublishedRow): PftOptions {
  return {
    bytes: row.gb * 2 ** 30, reps: row.rep, threads: [row.threads], cachelines: row.cachelines,
    scrub: row.scrub, prealloc: row.prefault ? V2_PREALLOC_ORDER : 0, settle: row.scrub === 'on', stride: row.stride,
  };
}

export interface Comparison {
  readonly label: string;
  readonly column: string;
  readonly model: number;
  /** The published value nearest the model's (one of several where a run was published more than once). */
  readonly published: number;
  /** model ÷ published. */
  readonly ratio: number;
  /** Whether the column is a target (flt/cpu/s, fault/wsec) or printed beside them (User, System, Wall). */
  readonly target: boolean;
  /** Within the envelope of the published values, ±TOLERANCE. */
  readonly ok: boolean;
}

/** The target columns, the ones a fit pulls on and `calibrate` fails on. */
export const TARGET_COLUMNS = ['flt/cpu/s', 'fault/wsec'] as const;

/** Within the envelope of the published values, ±TOLERANCE? */
export function withinBand(model: number, published: readonly number[]): boolean {
  return model >= Math.min(...published) * (1 - TOLERANCE) && model <= Math.max(...published) * (1 + TOLERANCE);
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
    if (published.length === 0) continue;
    const nearest = published.reduce((a, b) => (Math.abs(Math.log(model / b)) < Math.abs(Math.log(model / a)) ? b : a));
    out.push({
      label: row.label, column, model, published: nearest, ratio: model / nearest,
      target: (TARGET_COLUMNS as readonly string[]).includes(column), ok: withinBand(model, published),
    });
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

/**
 * The model's flt/cpu/s and fault/wsec per published row, as docs/calibration.md's table
 * "Where the model stands" (written from a `kscrubfs calibrate` run) has them: found by the
 * header cells "flt/cpu/s model" and "fault/wsec model", rows by their run label.
 */
export function standingRows(markdown: string): { label: string; fltPerCpuS: number; faultPerWsec: number }[] {
  const lines = markdown.split('\n');
  const cells = (line: string): string[] => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
  const head = lines.findIndex((l) => l.startsWith('|') && l.includes('flt/cpu/s model') && l.includes('fault/wsec model'));
  if (head < 0) return [];
  const h = cells(lines[head]!);
  const flt = h.indexOf('flt/cpu/s model');
  const wsec = h.indexOf('fault/wsec model');
  const num = (s: string | undefined): number => Number((s ?? '').replaceAll(',', ''));
  const out: { label: string; fltPerCpuS: number; faultPerWsec: number }[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const c = cells(line);
    const row = { label: c[0]!, fltPerCpuS: num(c[flt]), faultPerWsec: num(c[wsec]) };
    if (row.fltPerCpuS > 0 && row.faultPerWsec > 0) out.push(row);
  }
  return out;
}

/** A preset's distance from its published rows, from docs/calibration.md's table. */
export interface PresetStanding {
  /** √(mean of ln(model ÷ nearest published)²) over the flt/cpu/s and fault/wsec of its rows. */
  readonly rms: number;
  readonly rows: number;
  /** flt/cpu/s and fault/wsec columns, and how many of them are within band. */
  readonly targets: number;
  readonly within: number;
}

/**
 * Each preset's calibration error: the root mean square of ln(model ÷ nearest published)
 * over the flt/cpu/s and fault/wsec of its published rows, the model's from `standing` (the
 * table of docs/calibration.md), and how many of those columns are within band. A preset
 * absent from the result has no published rows.
 */
export function calibrationErrors(standing: readonly { label: string; fltPerCpuS: number; faultPerWsec: number }[]): Map<string, PresetStanding> {
  const sums = new Map<string, { sq: number; n: number; rows: number; within: number }>();
  for (const pub of PUBLISHED) {
    const got = standing.find((s) => s.label === pub.label);
    if (!got) continue;
    const s = sums.get(pub.preset) ?? { sq: 0, n: 0, rows: 0, within: 0 };
    for (const [model, published] of [[got.fltPerCpuS, pub.fltPerCpuS], [got.faultPerWsec, pub.faultPerWsec]] as const) {
      const nearest = published.reduce((a, b) => (Math.abs(Math.log(model / b)) < Math.abs(Math.log(model / a)) ? b : a));
      s.sq += Math.log(model / nearest) ** 2;
      s.n++;
      if (withinBand(model, published)) s.within++;
    }
    s.rows++;
    sums.set(pub.preset, s);
  }
  return new Map([...sums].map(([preset, s]) => [preset, { rms: Math.sqrt(s.sq / s.n), rows: s.rows, targets: s.n, within: s.within }]));
}
