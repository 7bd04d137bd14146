/**
 * How sure an answer is: a one-at-a-time sensitivity run over the preset's *fitted* cost
 * figures (src/model/figures.ts), plus the preset's calibration error.
 *
 * Each fitted figure is moved to its lower and to its upper bound, the others left where the
 * cost file has them, and the run repeated: at most 2 × (fitted figures) runs besides the
 * point estimate (a figure already on a bound is not run there: the answer is the point's).
 * For one answer with point p and, for figure k, answers a_k,lo and a_k,hi:
 *
 *   down_k = max(0, −ln(a_k,lo ÷ p), −ln(a_k,hi ÷ p))      up_k likewise with +
 *   down   = √(Σ_k down_k² + c²)                           up = √(Σ_k up_k² + c²)
 *   band   = [p × e^−down, p × e^up]
 *
 * c is the preset's calibration error: the root mean square of ln(model ÷ published) over
 * the flt/cpu/s and fault/wsec columns of its published rows (docs/calibration.md); a preset
 * without published rows has none, and its band is the sensitivity alone (said so).
 * Root-sum-square treats the figures as independent: one-at-a-time runs cannot see two
 * figures acting together, and the sum keeps a band from being as narrow as its widest swing.
 * An answer that is not positive (nothing faulted) cannot be taken on a log scale: its band is
 * the envelope of the runs, without the calibration term.
 */
export interface BandFigure {
  readonly name: string;
  /** The figure as the run's machine has it. */
  readonly value: number;
  /** Its fitted bounds. */
  readonly lo: number;
  readonly hi: number;
}

/** One sensitivity run: a figure moved to one of its bounds. */
export interface BandStep {
  readonly figure: string;
  readonly side: 'lo' | 'hi';
  readonly value: number;
}

/** The runs a band needs besides the point estimate, in figure order, lower bound first. */
export function bandSteps(figures: readonly BandFigure[]): BandStep[] {
  const out: BandStep[] = [];
  for (const f of figures) {
    if (f.lo !== f.value) out.push({ figure: f.name, side: 'lo', value: f.lo });
    if (f.hi !== f.value) out.push({ figure: f.name, side: 'hi', value: f.hi });
  }
  return out;
}

/** One figure's bar of a tornado chart: the answer with the figure at each bound. */
export interface TornadoBar {
  readonly figure: string;
  readonly lo: number;
  readonly hi: number;
  /** The answer with the figure at its lower and its upper bound. */
  readonly atLo: number;
  readonly atHi: number;
  /** The larger of |ln(atLo ÷ point)| and |ln(atHi ÷ point)|: how far the figure moves the answer. */
  readonly effect: number;
}

export interface Band {
  readonly answer: string;
  readonly point: number;
  readonly lo: number;
  readonly hi: number;
  /** The band from the figures alone (calibration error left out). */
  readonly sensitivity: readonly [number, number];
  /** The preset's calibration error used (rms ln), or null when it has no published rows. */
  readonly calibration: number | null;
  /** Every figure, the one that moves the answer most first. */
  readonly tornado: readonly TornadoBar[];
}

/** What a band is made of: the point's answers and each step's, answer by answer in the same order. */
export interface BandRuns {
  readonly answers: readonly string[];
  readonly point: readonly number[];
  readonly steps: readonly { readonly step: BandStep; readonly values: readonly number[] }[];
}

/** The bands of every answer of `runs` (see the top of this file). */
export function bands(figures: readonly BandFigure[], runs: BandRuns, calibration: number | null): Band[] {
  return runs.answers.map((answer, i) => {
    const p = runs.point[i]!;
    const at = (figure: string, side: 'lo' | 'hi'): number => runs.steps.find((s) => s.step.figure === figure && s.step.side === side)?.values[i] ?? p;
    const logOf = (v: number): number => (p > 0 && v > 0 ? Math.log(v / p) : 0);
    const tornado = figures.map((f): TornadoBar => {
      const atLo = at(f.name, 'lo');
      const atHi = at(f.name, 'hi');
      return { figure: f.name, lo: f.lo, hi: f.hi, atLo, atHi, effect: Math.max(Math.abs(logOf(atLo)), Math.abs(logOf(atHi))) };
    }).sort((a, b) => b.effect - a.effect || a.figure.localeCompare(b.figure));
    const all = [p, ...tornado.flatMap((t) => [t.atLo, t.atHi])];
    if (!(p > 0) || all.some((v) => !(v > 0))) {
      // Not on a log scale: the envelope of the runs.
      const env: [number, number] = [Math.min(...all), Math.max(...all)];
      return { answer, point: p, lo: env[0], hi: env[1], sensitivity: env, calibration: null, tornado };
    }
    const rss = (pick: (t: TornadoBar) => number, c: number): number => Math.sqrt(tornado.reduce((s, t) => s + pick(t) ** 2, 0) + c * c);
    const downK = (t: TornadoBar): number => Math.max(0, -logOf(t.atLo), -logOf(t.atHi));
    const upK = (t: TornadoBar): number => Math.max(0, logOf(t.atLo), logOf(t.atHi));
    const c = calibration ?? 0;
    return {
      answer, point: p,
      lo: p * Math.exp(-rss(downK, c)), hi: p * Math.exp(rss(upK, c)),
      sensitivity: [p * Math.exp(-rss(downK, 0)), p * Math.exp(rss(upK, 0))],
      calibration, tornado,
    };
  });
}

/**
 * Run a band: `run(cost)` answers with the figures of `cost` set on the machine (an empty
 * object: the point estimate); each step sets one figure. Runs one after another, so a band
 * holds one machine at a time, as the command itself does.
 */
export async function runBand(
  figures: readonly BandFigure[],
  answers: readonly string[],
  run: (cost: Readonly<Record<string, number>>, step: BandStep | null) => Promise<readonly number[]>,
  progress?: (msg: string, done: number, total: number) => void,
): Promise<BandRuns> {
  const steps = bandSteps(figures);
  progress?.('band: the point estimate', 0, steps.length + 1);
  const point = await run({}, null);
  const out: { step: BandStep; values: readonly number[] }[] = [];
  for (const [i, step] of steps.entries()) {
    progress?.(`band: ${step.figure} at its ${step.side === 'lo' ? 'lower' : 'upper'} bound ${step.value} (run ${i + 2} of ${steps.length + 1})`, i + 1, steps.length + 1);
    out.push({ step, values: await run({ [step.figure]: step.value }, step) });
  }
  return { answers, point, steps: out };
}

/** A number as a band prints it: 4 significant figures. */
const sig = (v: number): string => (Math.abs(v) >= 1e4 ? v.toFixed(0) : Number(v.toPrecision(4)).toString());

/**
 * The bands as lines of text: each answer, its band, what the band is made of, and the
 * `top` figures that move it most.
 */
export function formatBands(list: readonly Band[], o: { figures: number; runs: number; top?: number }): string {
  const top = o.top ?? 3;
  const out: string[] = [];
  const cal = list[0]?.calibration;
  out.push(`band: ${o.figures} fitted figures each at its bounds (${o.runs} runs besides the point)`
    + (cal === null || cal === undefined ? '; no published rows for this preset: calibration error unknown, not in the band' : `, plus the preset's calibration error (rms ln ${cal.toFixed(3)})`));
  for (const b of list) {
    const pct = (v: number): string => `${v >= b.point ? '+' : '−'}${Math.abs(100 * (v / b.point - 1)).toFixed(1)} %`;
    const movers = b.tornado.slice(0, top).filter((t) => t.effect > 0)
      .map((t) => `${t.figure} ${sig(t.atLo)} … ${sig(t.atHi)}`).join('; ');
    out.push(`  ${b.answer}: ${sig(b.point)} [${sig(b.lo)} … ${sig(b.hi)}] (${pct(b.lo)}, ${pct(b.hi)}); figures alone [${sig(b.sensitivity[0])} … ${sig(b.sensitivity[1])}]`
      + (movers === '' ? '; no figure moves it' : `; most: ${movers}`));
  }
  return `${out.join('\n')}\n`;
}
