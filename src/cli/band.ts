import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { type MachineOptions, presetFigures, resolveConfig } from '../model';
import { type Band, type BandFigure, type BandRuns, bands, formatBands } from '../workload/band';
import { type PresetStanding, calibrationErrors, standingRows } from '../workload/calibration';
import { writeOutput } from '../workload/output-file';
import { type TornadoPanel, renderTornadoSvg } from '../workload/plot';
import { CliError } from './errors';
import { PACKAGE_ROOT, VERSION, commandLine } from './version';

// The glue between a command and src/workload/band.ts: which figures of the machine are
// fitted, the preset's calibration error, the options and the tornado chart. Loaded only
// when a command is asked for a band (it loads the model, to read the figures).

/** The fitted figures of the machine `opts` makes, at the values it has them (its --cost included). */
export function bandFigures(opts: MachineOptions): BandFigure[] {
  const config = resolveConfig(opts);
  const figures = presetFigures(config.preset, config.cpuMhz);
  return (Object.keys(figures) as (keyof typeof figures)[]).flatMap((name) => {
    const f = figures[name];
    return f.kind === 'fitted' ? [{ name, value: config.cost[name], lo: f.bounds[0], hi: f.bounds[1] }] : [];
  });
}

/** The table of docs/calibration.md this kscrubfs ships with. */
const CALIBRATION_DOC = path.join(PACKAGE_ROOT, 'docs/calibration.md');

/**
 * Per preset with published rows, how far the model is from them (src/workload/calibration.ts,
 * calibrationErrors), from the model's columns of docs/calibration.md.
 */
export function calibrationStanding(doc = CALIBRATION_DOC): Map<string, PresetStanding> {
  let text: string;
  try {
    text = readFileSync(doc, 'utf8');
  } catch (err) {
    throw new CliError('KSCRUB_BAD_INPUT', `cannot read the calibration table ${doc}: ${(err as Error).message}`);
  }
  return calibrationErrors(standingRows(text));
}

/**
 * The preset's calibration error (rms ln(model ÷ published) over its published rows, from the
 * model's column of docs/calibration.md), or null when it has no published rows.
 */
export function presetCalibration(preset: string, doc = CALIBRATION_DOC): number | null {
  return calibrationStanding(doc).get(preset)?.rms ?? null;
}

/** The options every command with a band takes. */
export interface BandFlags {
  band?: boolean;
  tornado?: string;
}

export function addBandOptions(cmd: Command, what: string): Command {
  return cmd
    .option('--band', `also run every fitted cost figure of the preset at each of its bounds (2 runs a figure) and print ${what} with its band`)
    .addOption(new Option('--tornado <file>', 'with --band: write an SVG of which figures move the answer most').implies({ band: true }));
}

/** Help text for --band, shared. */
export const BAND_HELP = `
--band: a one-at-a-time sensitivity run. Every cost figure the preset marks fitted
(src/model/figures.ts) is moved to its lower and to its upper bound, one at a time, and the
run repeated (at most 2 × the fitted figures runs besides the point, each on a fresh
machine of the preset; \`kscrubfs presets\` counts each preset's fitted figures); the band is the point × e^±√(Σ swing² + c²), c the preset's calibration
error (rms ln(model ÷ published) over its rows of docs/calibration.md; presets without
published rows have none, and the band says so). --tornado FILE draws the swings.`;

/** The bands of a finished sensitivity run, for a machine of `opts`. */
export function bandsFor(opts: MachineOptions, figures: readonly BandFigure[], runs: BandRuns): Band[] {
  return bands(figures, runs, presetCalibration(resolveConfig(opts).preset));
}

/** The text under a result: the bands and what they are made of. */
export function bandText(list: readonly Band[], figures: readonly BandFigure[], runs: BandRuns): string {
  return formatBands(list, { figures: figures.length, runs: runs.steps.length });
}

/** --tornado: one panel per band. */
export function writeTornado(file: string, panels: readonly TornadoPanel[], title: string, subtitle: readonly string[]): void {
  const svg = renderTornadoSvg(panels, { title, subtitle, provenance: `kscrubfs ${VERSION}: ${commandLine()}` });
  try {
    writeOutput(file, svg);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `--tornado: cannot write ${file}: ${(err as Error).message}`);
  }
}
