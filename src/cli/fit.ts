import { LocalControl } from '../control';
import { type CostModel, type Figures, type MachineOptions, createMachine, fittedTo } from '../model';
import { LocalClient } from '../workload/client';
import { type PublishedRow, TARGET_COLUMNS, TOLERANCE, pftOptionsFor } from '../workload/calibration';
import { type PftRow, runPftOn } from '../workload/pft';
import { type ConfigPairs, readConfig } from '../workload/provenance';

/**
 * `kscrubfs calibrate --fit`: the one procedure that sets fitted cost figures. It fits every
 * fitted figure of a preset together, over every published row of that preset, by bounded
 * least squares on log error:
 *
 *   minimise  Σ_rows Σ_{flt/cpu/s, fault/wsec}  e²,   e = ln(model ÷ nearest edge of the band)
 *             (the band: the envelope of replicate measurements, or the one published value,
 *             widened by `tolerance` each way — calibrate's ±10 %; e is 0 inside it)
 *   over      u_k = ln(figure_k),  ln lo_k ≤ u_k ≤ ln hi_k   (the bounds of src/model/cost-<preset>.ts)
 *
 * with Levenberg–Marquardt: a forward-difference Jacobian in log space (step FD_STEP, taken
 * downward at an upper bound), the damped normal equations solved exactly, each step
 * projected onto the bounds; accepted when the sum of squares falls (damping ÷ 3), else
 * retried with damping × 4. Every evaluation runs the rows on fresh machines in this process
 * on a manual clock, so a fit is deterministic: the same rows, bounds and start give the same
 * figures on any host. It costs (1 + figures) × iterations evaluations of all the rows.
 * Rows of one preset depend only on that preset's figures, so fitting preset by preset is the
 * joint fit.
 */
export interface FitParam {
  readonly name: keyof CostModel;
  readonly lo: number;
  readonly hi: number;
  readonly start: number;
}

export interface FitResidual {
  readonly label: string;
  readonly column: string;
  readonly model: number;
  readonly published: readonly number[];
  /** ln(model ÷ nearest edge of the published envelope): 0 inside it. */
  readonly logError: number;
  /** What the fit minimises: how far ln(model) lies outside the band (the envelope ±tolerance), 0 inside it. */
  readonly excess: number;
}

export interface FitResult {
  readonly params: readonly (FitParam & { readonly value: number; readonly atBound: 'lo' | 'hi' | null })[];
  readonly residuals: readonly FitResidual[];
  /** Σ logError², at the start and at the end. */
  readonly startSumSq: number;
  readonly sumSq: number;
  readonly iterations: number;
  readonly evaluations: number;
}

export interface FitOptions {
  readonly rows: readonly PublishedRow[];
  readonly params: readonly FitParam[];
  /** The machine each row runs on (default: the row's preset, CPU zeroing, a manual clock). */
  readonly machine?: (row: PublishedRow) => MachineOptions;
  readonly maxIterations?: number;
  /**
   * The band the fit aims for: the envelope ± this fraction (default 0: the envelope itself).
   * calibrate fits to its own target, ±10 % (TOLERANCE): a column inside it costs nothing, so
   * the fit spends no figure on moving a row that is already in band.
   */
  readonly tolerance?: number;
  readonly progress?: ((msg: string) => void) | undefined;
  /** Called with the fit as it stands after each accepted step (what --max-iterations at that count would return). */
  readonly onStep?: ((r: FitResult) => void) | undefined;
}

/** Log-space step of the finite differences: large enough to see past the model's discreteness. */
export const FD_STEP = 0.02;
const MAX_ITERATIONS = 20;
/** Stop when an accepted step improves the sum of squares by less than this fraction. */
const REL_TOL = 1e-4;

/** The machine a published row was measured on, as the model builds it. */
export function publishedMachine(row: PublishedRow): MachineOptions {
  return {
    // The rows' kernels (2.6.10-rc2, -rc3) predate update_mem_hiwater() in the fault path.
    preset: row.preset, zeroDrivers: ['cpu'], clock: 'manual', hiwaterInFault: false,
    ...(row.cpuMhz !== undefined && { cpuMhz: row.cpuMhz }),
  };
}

/** How the machine of a published row is made (the `config` pairs every result's provenance carries). */
export function publishedConfig(row: PublishedRow): ConfigPairs {
  const ctl = new LocalClient(new LocalControl(createMachine(publishedMachine(row))));
  try {
    return readConfig(ctl);
  } finally {
    ctl.close();
  }
}

/** Run one published row on a fresh machine in this process with `cost` overriding the preset's figures. */
export async function runPublishedRow(row: PublishedRow, cost: Partial<CostModel>, machine: MachineOptions = publishedMachine(row)): Promise<PftRow> {
  return (await runPublished(row, undefined, cost, machine)).rows[0]!;
}

/** runPublishedRow with the machine's `config` (for provenance) and progress messages. */
export async function runPublished(
  row: PublishedRow, progress?: (msg: string) => void, cost: Partial<CostModel> = {}, machine: MachineOptions = publishedMachine(row),
): Promise<{ config: ConfigPairs; rows: PftRow[] }> {
  const ctl = new LocalClient(new LocalControl(createMachine({ ...machine, cost: { ...machine.cost, ...cost } })));
  return runPftOn(ctl, { ...pftOptionsFor(row), ...(progress !== undefined && { progress }) });
}

/** The fitted figures of a preset that its published rows constrain, with their bounds, starting at `cost`. */
export function fitParams(figures: Figures, cost: CostModel, preset: 'altix' | 'i386'): FitParam[] {
  return fittedTo(figures, preset).map((name) => {
    const f = figures[name];
    if (f.kind !== 'fitted') throw new Error(`unreachable: ${name} is not fitted`);
    return { name, lo: f.bounds[0], hi: f.bounds[1], start: cost[name] };
  });
}

/** ln(model ÷ nearest edge of the envelope of `published`), 0 inside it. */
export function logError(model: number, published: readonly number[]): number {
  const lo = Math.min(...published);
  const hi = Math.max(...published);
  if (model < lo) return Math.log(model / lo);
  if (model > hi) return Math.log(model / hi);
  return 0;
}

/** ln(model) beyond the band: the envelope of `published` widened by `tolerance` each way; 0 inside. */
export function bandExcess(model: number, published: readonly number[], tolerance: number): number {
  return logError(model, [Math.min(...published) * (1 - tolerance), Math.max(...published) * (1 + tolerance)]);
}

/** The residuals of the target columns of `rows` run with the given figures. */
export async function residuals(
  rows: readonly PublishedRow[], cost: Partial<CostModel>, machine: (row: PublishedRow) => MachineOptions = publishedMachine, tolerance = 0,
): Promise<FitResidual[]> {
  const out: FitResidual[] = [];
  for (const row of rows) {
    const got = await runPublishedRow(row, cost, machine(row));
    for (const column of TARGET_COLUMNS) {
      const model = column === 'flt/cpu/s' ? got.fltPerCpuS : got.faultPerWsec;
      const published = column === 'flt/cpu/s' ? row.fltPerCpuS : row.faultPerWsec;
      out.push({ label: row.label, column, model, published, logError: logError(model, published), excess: bandExcess(model, published, tolerance) });
    }
  }
  return out;
}

const sumSq = (r: readonly FitResidual[]): number => r.reduce((s, x) => s + x.excess ** 2, 0);

/** The bounded Levenberg–Marquardt fit described above. */
export async function fit(o: FitOptions): Promise<FitResult> {
  const n = o.params.length;
  if (n === 0) throw new Error('fit: no fitted figure is constrained by these rows');
  if (o.rows.length === 0) throw new Error('fit: no published rows to fit to');
  const lo = o.params.map((p) => Math.log(p.lo));
  const hi = o.params.map((p) => Math.log(p.hi));
  const clamp = (u: number[]): number[] => u.map((v, k) => Math.min(hi[k]!, Math.max(lo[k]!, v)));
  const machine = o.machine ?? publishedMachine;
  let evaluations = 0;
  const evaluate = async (u: readonly number[]): Promise<FitResidual[]> => {
    evaluations++;
    const cost: Partial<Record<keyof CostModel, number>> = {};
    o.params.forEach((p, k) => { cost[p.name] = Math.exp(u[k]!); });
    return residuals(o.rows, cost, machine, o.tolerance ?? 0);
  };
  let u = clamp(o.params.map((p) => Math.log(p.start)));
  let r = await evaluate(u);
  const startSumSq = sumSq(r);
  let s = startSumSq;
  let lambda = 1e-2;
  let iterations = 0;
  const maxIterations = o.maxIterations ?? MAX_ITERATIONS;
  while (iterations < maxIterations && s > 0) {
    iterations++;
    o.progress?.(`fit: iteration ${iterations}, Σe² ${s.toFixed(5)}, ${evaluations} evaluations`);
    // Jacobian of the residuals in log space, one column per figure.
    const J: number[][] = [];
    for (let k = 0; k < n; k++) {
      const h = u[k]! + FD_STEP <= hi[k]! ? FD_STEP : -FD_STEP;
      const uk = u.slice();
      uk[k] = u[k]! + h;
      const rk = await evaluate(uk);
      J.push(rk.map((x, i) => (x.excess - r[i]!.excess) / h));
    }
    const JtJ = J.map((a) => J.map((b) => a.reduce((acc, v, i) => acc + v * b[i]!, 0)));
    const Jtr = J.map((a) => a.reduce((acc, v, i) => acc + v * r[i]!.excess, 0));
    let accepted = false;
    while (!accepted && lambda < 1e8) {
      const A = JtJ.map((row, i) => row.map((v, j) => (i === j ? v * (1 + lambda) + 1e-12 : v)));
      const next = boundedStep(A, Jtr.map((v) => -v), u, lo, hi);
      if (next.every((v, k) => v === u[k])) break;
      const rn = await evaluate(next);
      const sn = sumSq(rn);
      if (sn < s) {
        accepted = true;
        const gain = (s - sn) / s;
        u = next;
        r = rn;
        s = sn;
        lambda = Math.max(lambda / 3, 1e-7);
        if (gain < REL_TOL) lambda = 1e8; // converged: leave the outer loop below
        o.onStep?.(result(o.params, u, lo, hi, r, startSumSq, s, iterations, evaluations));
      } else {
        lambda *= 4;
      }
    }
    if (!accepted || lambda >= 1e8) break;
  }
  return result(o.params, u, lo, hi, r, startSumSq, s, iterations, evaluations);
}

/** The fit's state at log-figures u, as a FitResult. */
function result(
  ps: readonly FitParam[], u: readonly number[], lo: readonly number[], hi: readonly number[], r: FitResidual[],
  startSumSq: number, s: number, iterations: number, evaluations: number,
): FitResult {
  const params = ps.map((p, k) => {
    const atBound = u[k]! <= lo[k]! ? 'lo' as const : u[k]! >= hi[k]! ? 'hi' as const : null;
    // At a bound, the bound itself (exp(ln 700) is 699.9999999999998).
    const value = atBound === 'lo' ? p.lo : atBound === 'hi' ? p.hi : Math.exp(u[k]!);
    return { ...p, value, atBound };
  });
  return { params, residuals: r, startSumSq, sumSq: s, iterations, evaluations };
}

/**
 * The damped step from u, kept inside [lo, hi]: a figure the step would push past a bound is
 * held at that bound and the step is solved again for the others (so a fit whose optimum lies
 * on a bound reaches it, instead of creeping towards it by ever shorter projected steps).
 */
function boundedStep(A: number[][], b: number[], u: readonly number[], lo: readonly number[], hi: readonly number[]): number[] {
  const n = b.length;
  const fixed = new Map<number, number>(); // index → its step, to the bound
  for (;;) {
    const free = [...Array(n).keys()].filter((k) => !fixed.has(k));
    const rhs = free.map((i) => b[i]! - [...fixed].reduce((acc, [j, d]) => acc + A[i]![j]! * d, 0));
    const x = solve(free.map((i) => free.map((j) => A[i]![j]!)), rhs);
    const delta = new Array<number>(n).fill(0);
    for (const [j, d] of fixed) delta[j] = d;
    free.forEach((k, i) => { delta[k] = x[i]!; });
    const out = free.filter((k) => u[k]! + delta[k]! < lo[k]! || u[k]! + delta[k]! > hi[k]!);
    if (out.length === 0) return u.map((v, k) => Math.min(hi[k]!, Math.max(lo[k]!, v + delta[k]!)));
    for (const k of out) fixed.set(k, (u[k]! + delta[k]! < lo[k]! ? lo[k]! : hi[k]!) - u[k]!);
  }
}

/** Solve A x = b (A symmetric positive definite here) by Gaussian elimination with partial pivoting. */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(M[i]![c]!) > Math.abs(M[p]![c]!)) p = i;
    [M[c], M[p]] = [M[p]!, M[c]!];
    const d = M[c]![c]!;
    if (d === 0) continue;
    for (let i = c + 1; i < n; i++) {
      const f = M[i]![c]! / d;
      if (f !== 0) for (let j = c; j <= n; j++) M[i]![j]! -= f * M[c]![j]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    const d = M[i]![i]!;
    if (d === 0) continue;
    let acc = M[i]![n]!;
    for (let j = i + 1; j < n; j++) acc -= M[i]![j]! * x[j]!;
    x[i] = acc / d;
  }
  return x;
}

/** The fit as a table: each figure's start, fitted value, bounds; then every residual. */
export function formatFit(f: FitResult): string {
  const num = (v: number): string => (Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(4)).toString());
  const pad = (rows: string[][]): string => {
    const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd()).join('\n') + '\n';
  };
  const figures = pad([
    ['figure', 'start', 'fitted', 'lo', 'hi', ''],
    ...f.params.map((p) => [p.name, num(p.start), num(p.value), num(p.lo), num(p.hi), p.atBound ? `at its ${p.atBound === 'lo' ? 'lower' : 'upper'} bound` : '']),
  ]);
  const res = pad([
    ['run', 'column', 'model', 'published', 'ln error', 'fitted', ''],
    ...f.residuals.map((r) => [
      r.label, r.column, r.model.toFixed(0), r.published.map((p) => p.toFixed(0)).join('–'), r.logError.toFixed(3), r.excess.toFixed(3),
      r.logError >= Math.log(1 - TOLERANCE) && r.logError <= Math.log(1 + TOLERANCE) ? 'ok' : 'OFF',
    ]),
  ]);
  return `${figures}\n${res}\nΣ e² (the fitted column: ln error beyond the band the fit aims for): ${f.sumSq.toFixed(5)} (from ${f.startSumSq.toFixed(5)}), ${f.iterations} iteration(s), ${f.evaluations} evaluations\n` +
    `--cost ${f.params.map((p) => `${p.name}=${Number(p.value.toPrecision(4))}`).join(',')}\n`;
}
