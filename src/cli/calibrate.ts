import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { findMount, fusermountUnmount, servedBy } from '../fuse/mountpoint';
import { ALTIX_COST, ALTIX_FITTED, I386_FITTED, type MachineOptions, i386Cost, presetFigures } from '../model';
import { PUBLISHED, TOLERANCE, compare, formatComparisons } from '../workload/calibration';
import { type FitResult, fit, fitParams, formatFit, publishedConfig, publishedMachine, runPublished } from './fit';
import { writeFittedFile } from './fit-file';
import type { Comparison, PublishedRow } from '../workload/calibration';
import { formatPftTable } from '../workload/pft';
import { type CalibrationPoint, renderCalibrationSvg } from '../workload/plot';
import type { PftRow } from '../workload/pft';
import { type ConfigPairs, provenance } from '../workload/provenance';
import { KSCRUBD_ON_TEXT, PRESETS } from '../uapi';
import { CliError, action } from './errors';
import { writeOutput } from '../workload/output-file';
import { type FormatFlags, checkFormat, formatResult } from './output';
import { integer } from './options';
import { VERSION, commandLine } from './version';
import { pollUntil } from '../daemon/poll';
import { clearProgress, progressLine } from './progress';

/** A private mount's default machine (trace replay passes its own): altix, CPU zeroing only, a manual clock. */
const DAEMON_ARGS = ['--preset', 'altix', '--zero-drivers', 'cpu', '--clock', 'manual'];

/** The presets with published rows; each cost file takes its fitted figures from src/model/fitted-<preset>.ts. */
const FIT_PRESETS = ['altix', 'i386'] as const;
const READY_MS = 30_000;

/**
 * `kscrubfs calibrate`: run the published pft rows, each on a fresh machine of its preset (as
 * each was measured on a freshly booted box) in this process behind the control grammar, on
 * a manual clock, and print model vs published per column. Exit 1 when a target column is
 * outside its band.
 */
export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description('run the published pft rows (docs/calibration.md), each on a fresh machine of its preset, and compare')
    .option('--json', 'print one JSON object: how the runs were made (version, machine, clock, sysctls), the rows and the comparisons')
    .option('--csv', 'print the comparisons as CSV, with the same provenance as # comment lines')
    .option('--plot <file>', 'also plot every published row\'s flt/cpu/s and fault/wsec, model ÷ published, with the ±10 % band (SVG)')
    .option('--preset <name>', `only the published rows of this preset (${FIT_PRESETS.join(' or ')})`)
    .option('--fit <preset>', `fit the preset's fitted cost figures (${FIT_PRESETS.join(' or ')}) together over all its published rows, in this process; print them, their bounds and the residuals`)
    .option('--max-iterations <n>', '--fit: stop after this many iterations (default 20; 0: only evaluate the cost file\'s figures)', integer(0))
    .option('--balance-timers', 'altix: place each new thread by the CPUs\' balance timers kept in virtual time (rebalance_tick), instead of the mean wait of half the node domain\'s longest interval; with --fit, fit the figures so (not with --write)')
    .option('--lock-line-queue', 'altix: price a contended page_table_lock\'s handoff by the lock line\'s queue at its home (the losers\' failed cmpxchgs take the line in turn, the holder\'s release waits for them) instead of half a transfer per other spinner; with --fit, fit the figures so (not with --write)')
    .option('--write', '--fit: write the fitted figures into the source tree (src/model/fitted-<preset>.ts), where the cost file takes them from')
    .addHelpText('after', `
The published figures and how pft computes its columns: docs/calibration.md in the
repository. Exit status 1 when a flt/cpu/s or fault/wsec column is outside its band
(±10 %, or the envelope of two published runs ±10 %); User, System and Wall are printed
beside them. --fit runs every row of the preset once per evaluation, (1 + figures) times an
iteration (altix: about 8 s an evaluation on one core, 3 minutes an iteration); it is
deterministic, so --fit --write from a clean clone writes the same figures again.`)
    .action(action(async (o: FormatFlags & { plot?: string; fit?: string; maxIterations?: number; preset?: string; write?: boolean; balanceTimers?: boolean; lockLineQueue?: boolean }) => {
      checkFormat('calibrate', o);
      if (o.write === true && o.fit === undefined) throw new CliError('KSCRUB_USAGE', 'calibrate --write: only with --fit <preset>');
      if (o.maxIterations !== undefined && o.fit === undefined) throw new CliError('KSCRUB_USAGE', 'calibrate --max-iterations: only with --fit <preset>');
      if (o.balanceTimers === true && o.write === true) throw new CliError('KSCRUB_USAGE', 'calibrate --balance-timers: not with --write (the cost file\'s figures are fitted with threads placed as the preset places them)');
      if (o.lockLineQueue === true && o.write === true) throw new CliError('KSCRUB_USAGE', 'calibrate --lock-line-queue: not with --write (the cost file\'s figures are fitted with the preset\'s handoff)');
      if (o.fit !== undefined) return runFit(o.fit, o);
      if (o.preset !== undefined && !(FIT_PRESETS as readonly string[]).includes(o.preset)) {
        throw new CliError('KSCRUB_USAGE', `calibrate --preset: "${o.preset}" has no published rows (presets with rows: ${FIT_PRESETS.join(', ')})`);
      }
      const published = PUBLISHED.filter((p) => o.preset === undefined || p.preset === o.preset);
      const rows: { label: string; row: PftRow; stride: number; pageSize: number }[] = [];
      const comparisons: Comparison[] = [];
      let config: ConfigPairs | undefined;
      const progress = progressLine();
      for (const [i, pub] of published.entries()) {
        const say = progress && ((msg: string): void => progress(`calibrate: row ${i + 1} of ${published.length}, ${pub.label}: ${msg}`, i, published.length));
        // A fresh machine of the row's preset in this process, behind the control grammar
        // (as sweep runs its points): the fit runs the same rows the same way.
        const run = await runPublished(pub, say, {}, variant(publishedMachine(pub), o));
        clearProgress();
        // Each row runs on a fresh machine of one make; its sysctls are the row's own (in rows).
        if (pub.preset === 'altix' || o.preset !== undefined) config ??= run.config;
        rows.push({ label: pub.label, row: run.rows[0]!, stride: pub.stride, pageSize: Number(run.config.page_size) });
        comparisons.push(...compare(pub, run.rows[0]!));
      }
      const prov = provenance(config ?? {}, VERSION, commandLine());
      process.stdout.write(formatResult(o, {
        provenance: prov,
        table: () => rows.map((r) => `${r.label}${strideNote(r.stride, r.pageSize)}\n${formatPftTable([r.row])}\n`).join('') + formatComparisons(comparisons) + formatPresetSummary(comparisons),
        json: { rows, comparisons, presets: presetSummary(comparisons) },
        columns: ['label', 'column', 'model', 'published', 'ratio', 'ok'],
        rows: comparisons,
      }));
      if (o.plot !== undefined) plotCalibration(o.plot, comparisons, o.preset);
      const off = comparisons.filter((c) => c.target && !c.ok);
      if (off.length > 0) throw new CliError('KSCRUB_CALIBRATION_OFF', `${off.length} of ${comparisons.filter((c) => c.target).length} flt/cpu/s and fault/wsec columns are outside their band`);
    }));
}

/** One preset's distance from its published rows: the count in band, the rms log error, the row farthest off. */
export interface PresetSummary {
  readonly preset: string;
  readonly rows: number;
  readonly targets: number;
  readonly within: number;
  /** √(mean of ln(model ÷ published)²) over the flt/cpu/s and fault/wsec columns (the band's calibration term). */
  readonly rmsLogError: number;
  readonly worst: { readonly label: string; readonly column: string; readonly ratio: number } | null;
}

/** Per preset that has published rows: how far the model is from them; the others named as having none. */
export function presetSummary(comparisons: readonly Comparison[]): PresetSummary[] {
  const presetOf = new Map(PUBLISHED.map((p) => [p.label, p.preset]));
  return PRESETS.flatMap((preset): PresetSummary[] => {
    const t = comparisons.filter((c) => c.target && presetOf.get(c.label) === preset);
    if (t.length === 0) return [];
    const rms = Math.sqrt(t.reduce((s, c) => s + Math.log(c.ratio) ** 2, 0) / t.length);
    const worst = t.reduce((a, c) => (Math.abs(Math.log(c.ratio)) > Math.abs(Math.log(a.ratio)) ? c : a));
    return [{
      preset, rows: new Set(t.map((c) => c.label)).size, targets: t.length, within: t.filter((c) => c.ok).length, rmsLogError: rms,
      worst: { label: worst.label, column: worst.column, ratio: worst.ratio },
    }];
  });
}

export function formatPresetSummary(comparisons: readonly Comparison[]): string {
  const s = presetSummary(comparisons);
  const none = PRESETS.filter((p) => !PUBLISHED.some((x) => x.preset === p));
  return '\n' + s.map((x) =>
    `${x.preset}: ${x.within} of ${x.targets} flt/cpu/s and fault/wsec within band; rms ln(model ÷ published) ${x.rmsLogError.toFixed(3)}`
    + (x.worst ? `; farthest: ${x.worst.label} ${x.worst.column} ×${x.worst.ratio.toFixed(3)}` : '') + '\n').join('')
    + (none.length > 0 ? `no published rows: ${none.join(', ')} (their figures are bounded, not fitted to rows; a band for them has no calibration term)\n` : '');
}

/** What a row header says of how its pft wrote: one byte every `stride` bytes on `pageSize` pages, every page counted. */
export function strideNote(stride: number, pageSize: number): string {
  const kib = (b: number): string => `${b / 1024} KiB`;
  return stride <= pageSize
    ? ` (one byte every ${kib(stride)}: every ${kib(pageSize)} page written)`
    : ` (one byte every ${kib(stride)}: one ${kib(pageSize)} page in ${stride / pageSize} written, every page counted)`;
}

/** Every target column of the rows run, model ÷ published, as docs/calibration.svg shows them. */
function plotCalibration(file: string, comparisons: readonly Comparison[], preset: string | undefined): void {
  const presetOf = new Map(PUBLISHED.map((p) => [p.label, p.preset]));
  const points: CalibrationPoint[] = comparisons.filter((c) => c.target).map((c) => ({
    label: c.label, preset: presetOf.get(c.label)!, column: c.column as CalibrationPoint['column'], model: c.model, published: c.published, ok: c.ok,
  }));
  const svg = renderCalibrationSvg(points, {
    title: `pft, the model against Lameter's published rows (Dec 2004)${preset === undefined ? '' : `: ${preset}`}`,
    subtitle: `each row on a fresh machine of its preset, zero drivers cpu, the rows' own sysctls; patched: ${KSCRUBD_ON_TEXT}, settled before each row`,
    provenance: `kscrubfs ${VERSION}: ${commandLine()}`,
    tolerance: TOLERANCE,
  });
  try {
    writeOutput(file, svg);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `calibrate --plot: cannot write ${file}: ${(err as Error).message}`);
  }
}

/** A published row's machine with calibrate's alternative mechanisms that `o` turns on. */
function variant(m: MachineOptions, o: { balanceTimers?: boolean; lockLineQueue?: boolean }): MachineOptions {
  return { ...m, ...(o.balanceTimers === true && { balanceTimers: true }), ...(o.lockLineQueue === true && { lockLineQueue: true }) };
}

/**
 * `calibrate --fit PRESET`: the fit of src/cli/fit.ts over every published row of the
 * preset, starting from the cost file's figures; it prints them, and with --write puts them
 * where the cost file takes them from (src/model/fitted-PRESET.ts): nothing else changes a
 * fitted figure.
 */
async function runFit(preset: string, o: FormatFlags & { maxIterations?: number; write?: boolean; balanceTimers?: boolean; lockLineQueue?: boolean }): Promise<void> {
  if (!(FIT_PRESETS as readonly string[]).includes(preset)) {
    throw new CliError('KSCRUB_USAGE', `calibrate --fit: "${preset}" has no published rows (presets with rows: ${FIT_PRESETS.join(', ')})`);
  }
  const p = preset as (typeof FIT_PRESETS)[number];
  const rows = PUBLISHED.filter((r) => r.preset === p);
  const mhz = rows.find((r) => r.cpuMhz !== undefined)?.cpuMhz;
  // Each preset starts from the first guesses its generated file keeps (not from the last fit's
  // result), so the same command gives the same figures from any clone.
  const cost = p === 'altix' ? { ...ALTIX_COST, ...ALTIX_FITTED.start } : { ...i386Cost(mhz), ...I386_FITTED.start };
  const progress = progressLine();
  // With --write, every accepted step is written as it comes (the file then holds what
  // --max-iterations at that count gives, and says so), so a fit stopped early keeps its progress.
  const write = (r: FitResult): void => {
    if (o.write !== true) return;
    const file = writeFittedFile(p, `kscrubfs calibrate --fit ${p} --max-iterations ${r.iterations} --write`, r);
    process.stderr.write(`calibrate: wrote ${file} (${r.iterations} iteration(s)); build again (npm run build) for the model to use it\n`);
  };
  const result = await fit({
    rows, params: fitParams(presetFigures(p, mhz), cost, p), progress, onStep: write, tolerance: TOLERANCE,
    ...((o.balanceTimers === true || o.lockLineQueue === true) && { machine: (row: PublishedRow) => variant(publishedMachine(row), o) }),
    ...(o.maxIterations !== undefined && { maxIterations: o.maxIterations }),
  });
  clearProgress();
  process.stdout.write(formatResult(o, {
    provenance: provenance(publishedConfig(rows[0]!), VERSION, commandLine()),
    table: () => formatFit(result),
    json: { ...result },
    columns: ['label', 'column', 'model', 'published', 'logError'],
    rows: result.residuals.map((r) => ({ ...r, published: r.published.join(' ') })),
  }));
  write(result);
}

/** Mount a fresh daemon (`mount` with `args`) in a temporary directory for `fn`, and always take it down again. */
export async function withPrivateMount<T>(fn: (dir: string) => Promise<T>, args: readonly string[] = DAEMON_ARGS): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-calibrate-'));
  const daemon = spawn(process.execPath, [path.join(__dirname, 'main.js'), 'mount', dir, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited = false;
  daemon.on('exit', () => {
    exited = true;
  });
  const stop = (): void => {
    if (!exited) daemon.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const ready = await pollUntil(async () => {
      if (exited) return false;
      return (await servedBy(dir, daemon.pid)) ? true : undefined;
    }, { timeoutMs: READY_MS, intervalMs: 50 });
    if (!ready) throw new CliError('KSCRUB_DAEMON_DOWN', `the calibration daemon did not mount ${dir}`);
    return await fn(dir);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    stop();
    await pollUntil(() => (exited ? true : undefined), { timeoutMs: 5000 });
    if (findMount(dir)) await fusermountUnmount(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
