import type { CostModel } from './cost';

/**
 * Where each cost figure's value comes from. A figure is either
 *   - measured: a datasheet, a published measurement of that machine, or a kernel constant
 *     (the source says which, precisely enough to look it up); or
 *   - fitted: no such source exists, so its value is whatever `kscrubfs calibrate --fit`
 *     finds within physical bounds over every published row of its preset together
 *     (docs/calibration.md), and nothing else changes it. `rows` names the rows it is fitted
 *     to: a preset's name (all of that preset's rows), or 'none' when no published row
 *     exercises it (no rows for the preset, or a mechanism those rows never use): then it
 *     stays where it is and only the bounds say how sure it is (sensitivity runs move it
 *     across them).
 *   - derived: the same quantity as another figure of the machine (`from`), so it has no value
 *     of its own: it follows `from` wherever that is set (a fit, a band's bound, --cost), and
 *     neither a fit nor a band moves it apart. `why` says why the two are one.
 * The bounds are what the hardware or the code allows, stated with the reason in `why`; they
 * are not a tolerance around the current value.
 */
export type Figure =
  | { readonly kind: 'measured'; readonly source: string }
  | { readonly kind: 'derived'; readonly from: keyof CostModel; readonly why: string }
  | {
      readonly kind: 'fitted';
      readonly bounds: readonly [number, number];
      readonly why: string;
      readonly rows: FitRows;
    };

/** The rows a fitted figure is fitted to: a preset with published rows, or none. */
export type FitRows = 'altix' | 'i386' | 'none';

/** One provenance entry for every figure of a CostModel (a missing one fails to compile). */
export type Figures = { readonly [K in keyof CostModel]: Figure };

/**
 * What `kscrubfs calibrate --fit PRESET --write` leaves in src/model/fitted-PRESET.ts: the value
 * of every figure fitted to the preset's rows, its bounds, the figures that ended on a bound,
 * the rows fitted to, Σ e² at the start and at the end (e: ln(model) beyond calibrate's band,
 * the envelope ±10 %, as the fit minimises it), and the count of flt/cpu/s and
 * fault/wsec columns within band at the fitted point.
 */
export interface FittedSet {
  readonly preset: Exclude<FitRows, 'none'>;
  readonly command: string;
  /** Where the fit started (its first guesses): every fit of the preset starts here, so it reproduces. */
  readonly start: Readonly<Partial<Record<keyof CostModel, number>>>;
  readonly values: Readonly<Partial<Record<keyof CostModel, number>>>;
  readonly bounds: Readonly<Partial<Record<keyof CostModel, readonly [number, number]>>>;
  readonly atBound: readonly (keyof CostModel)[];
  readonly rows: readonly string[];
  readonly sumSq: number;
  readonly startSumSq: number;
  readonly iterations: number;
  readonly evaluations: number;
  readonly within: number;
  readonly targets: number;
}

/** Shorthands that keep the cost files readable. */
export function measured(source: string): Figure {
  return { kind: 'measured', source };
}
export function fitted(lo: number, hi: number, why: string, rows: FitRows): Figure {
  return { kind: 'fitted', bounds: [lo, hi], why, rows };
}
export function derived(from: keyof CostModel, why: string): Figure {
  return { kind: 'derived', from, why };
}

/**
 * `cost` with every derived figure set to its source's value, except those `own` names (a
 * figure set explicitly, by --cost, keeps what it was given).
 */
export function followDerived(cost: CostModel, figures: Figures, own: Readonly<Partial<CostModel>> = {}): CostModel {
  const out: Record<keyof CostModel, number> = { ...cost };
  for (const name of Object.keys(figures) as (keyof CostModel)[]) {
    const f = figures[name];
    if (f.kind === 'derived' && own[name] === undefined) out[name] = cost[f.from];
  }
  return out;
}

/**
 * What is wrong with a preset's provenance, in words (empty when nothing is): every figure
 * has a kind; a measured one a source; a fitted one finite bounds lo < hi, positive where the
 * figure divides or multiplies, a reason, and a value inside them.
 */
export function figureProblems(cost: CostModel, figures: Figures): string[] {
  const out: string[] = [];
  for (const name of Object.keys(cost) as (keyof CostModel)[]) {
    const f = figures[name] as Figure | undefined;
    if (f === undefined) {
      out.push(`${name}: no provenance (measured or fitted)`);
      continue;
    }
    if (f.kind === 'measured') {
      if (f.source.trim().length < 10) out.push(`${name}: measured, but its source says nothing ("${f.source}")`);
      continue;
    }
    if (f.kind === 'derived') {
      const from = figures[f.from] as Figure | undefined;
      if (from === undefined || from.kind === 'derived') out.push(`${name}: derived from ${f.from}, which is not a measured or fitted figure`);
      else if (cost[name] !== cost[f.from]) out.push(`${name}: derived from ${f.from}, but ${cost[name]} is not its ${cost[f.from]}`);
      if (f.why.trim().length < 10) out.push(`${name}: derived, but nothing says why it is ${f.from}`);
      continue;
    }
    const [lo, hi] = f.bounds;
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) out.push(`${name}: fitted bounds [${lo}, ${hi}] are not an interval`);
    else if (lo <= 0) out.push(`${name}: fitted bounds [${lo}, ${hi}] must be above 0 (the fit works on logarithms)`);
    else if (cost[name] < lo || cost[name] > hi) out.push(`${name}: ${cost[name]} lies outside its fitted bounds [${lo}, ${hi}]`);
    if (f.why.trim().length < 10) out.push(`${name}: fitted, but nothing says why its bounds are physical`);
  }
  return out;
}

/** The fitted figures of `figures` that are fitted to `rows`, in CostModel order. */
export function fittedTo(figures: Figures, rows: Exclude<FitRows, 'none'>): (keyof CostModel)[] {
  return (Object.keys(figures) as (keyof CostModel)[]).filter((k) => {
    const f = figures[k];
    return f.kind === 'fitted' && f.rows === rows;
  });
}
