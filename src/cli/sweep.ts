import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Option, type Command } from 'commander';
import { defaultMaxMemory, MemoryBudget } from '../daemon';
import { type SysctlName, createMachine } from '../model';
import { writeSysctlValue } from '../procfs/sysctl';
import { PFT_COLUMNS } from '../workload/pft';
import { type PlotSeries, renderPftSvg } from '../workload/plot';
import { parseCsv, toCsv } from '../workload/provenance';
import { describeKscrubd, formatSize, kscrubdSysctls, parseSize } from '../uapi';
import { CliError, action } from './errors';
import { checkNotSymlink, writeOutput } from '../workload/output-file';
import { integer, memoryBudget } from './options';
import { clearProgress, progressLine } from './progress';
import { writeTornado } from './band';
import { type SweepRow, runPoint } from './sweep-run';
import { type SweepSpec, canonical, loadSpec, pointRun } from './sweep-spec';
import { PACKAGE_ROOT, VERSION } from './version';

interface SweepFlags {
  jobs: number;
  out?: string;
  csv?: string;
  list?: boolean;
  point?: string;
  merge?: boolean;
  plot?: string;
  maxMemory?: number;
  band?: boolean;
  tornado?: string;
}

/** `kscrubfs sweep SPEC`: a grid of pft points, each on a fresh in-process machine. */
export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description('run a grid of pft points (presets × machine options × sysctls × workloads), each on a fresh in-process machine')
    .argument('<spec>', `a sweep spec (JSON), or the name of a shipped one: ${shippedSpecs().join(', ')}`)
    .argument('[pieces...]', 'with --merge: JSONL files of rows to join into the output')
    .addOption(new Option('-j, --jobs <n>', 'worker threads').argParser(integer(1)).default(os.availableParallelism(), `the cores, ${os.availableParallelism()}`))
    .option('-o, --out <file>', 'JSONL output (default: <spec name>.jsonl here); points already in it are skipped')
    .option('--csv <file>', 'CSV output instead of JSONL; points already in it are skipped')
    .option('--list', 'print one command per point (kscrubfs sweep SPEC --point KEY), for GNU parallel')
    .option('--point <key>', 'run only this point and print its row (JSONL) on stdout')
    .option('--merge', 'join the rows of the given pieces into the output, in grid order')
    .option('--plot <file>', "after the run, plot the output as the spec's plot section says (SVG)")
    .option('--band', 'also run each point with every fitted cost figure of its preset at each of its bounds (2 runs a figure) and add its flt/cpu/s and fault/wsec bands to the row (JSONL; default output <spec name>-band.jsonl)')
    .addOption(new Option('--tornado <file>', "with --band: after the run, draw which fitted figures move each point's flt/cpu/s and fault/wsec most (SVG, a panel each)").implies({ band: true }))
    .option('--max-memory <size>', `the memory all points in flight may take together, as mount's budget: a command that could pass it fails its point (default: half the host's memory, at most 4G; here ${formatSize(defaultMaxMemory())})`, memoryBudget)
    .addHelpText('after', `
Every point is one pft row on a fresh machine with a manual clock, so its result depends on
the point alone: the same whatever --jobs and order. Each output row carries the point's full
configuration and a stable key (a hash of the point), and kscrubd's side as payoff gives it:
its CPU for the pages the row took prezeroed (kscrubd.cpuS; CSV kscrubdCpuS) and fault/wsec
with that work done during the run, on the CPUs pft leaves idle first (kscrubd.faultPerWsec;
CSV faultPerWsecKscrubd). A point runs without prefault unless its spec sets prealloc or the
max_prealloc_order sysctl, as pft. The spec format is described at the
top of src/cli/sweep-spec.ts; shipped specs are in scripts/sweeps/. Progress goes to stderr
on a terminal once the run takes more than a second.

Across machines (GNU parallel):
  kscrubfs sweep spec.json --list | parallel --sshlogin … '{} > piece.{#}.jsonl'
  kscrubfs sweep spec.json --merge piece.*.jsonl`)
    .action(action(async (file: string, pieces: string[], o: SweepFlags) => {
      if (o.out !== undefined && o.csv !== undefined) throw new CliError('KSCRUB_USAGE', 'sweep: give --out or --csv, not both');
      if (pieces.length > 0 && !o.merge) throw new CliError('KSCRUB_USAGE', 'sweep: extra arguments are pieces for --merge');
      // Each of these replaces the run: two at once would silently do only the first.
      const modes = [o.list && '--list', o.point !== undefined && '--point', o.merge && '--merge'].filter(Boolean);
      if (modes.length > 1) throw new CliError('KSCRUB_USAGE', `sweep: give only one of ${modes.join(' and ')}`);
      if (o.merge && pieces.length === 0) throw new CliError('KSCRUB_USAGE', 'sweep --merge: name the pieces to join (kscrubfs sweep SPEC --merge piece.*.jsonl)');
      if (o.band && o.csv !== undefined) throw new CliError('KSCRUB_USAGE', 'sweep --band: a band is a list per row, in the JSONL rows; --csv has no columns for it');
      if (o.band && o.merge) throw new CliError('KSCRUB_USAGE', 'sweep --band: --merge joins rows as they are; run the pieces with --band');
      if (o.tornado !== undefined && (o.list || o.point !== undefined)) throw new CliError('KSCRUB_USAGE', "sweep --tornado draws the output's rows: not with --list or --point");
      const maxMemory = o.maxMemory ?? defaultMaxMemory();
      file = specFile(file);
      const spec = loadSpec(file);
      if (o.list) {
        for (const p of spec.points) process.stdout.write(`kscrubfs sweep ${shellQuote(file)} --point ${p.key}${o.band ? ' --band' : ''}\n`);
        return;
      }
      if (o.point !== undefined) {
        const p = spec.points.find((x) => x.key === o.point);
        if (!p) throw new CliError('KSCRUB_BAD_INPUT', `sweep: ${file} has no point ${o.point} (--list shows them)`);
        process.stdout.write(`${JSON.stringify(await runPoint(spec, p, new MemoryBudget(maxMemory), o.band === true))}\n`);
        return;
      }
      const out = output(spec, o);
      if (o.merge) {
        merge(spec, out, pieces);
      } else {
        await run(spec, out, o.jobs, maxMemory, o.band === true);
      }
      if (o.plot !== undefined) writePlot(spec, out, o.plot);
      if (o.tornado !== undefined) writeSweepTornado(spec, out, o.tornado);
    }));
}

/** The specs shipped with the package (scripts/sweeps/NAME.json), by name. */
const SPEC_DIR = path.join(PACKAGE_ROOT, 'scripts/sweeps');
function shippedSpecs(): string[] {
  try {
    return readdirSync(SPEC_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
  } catch {
    return [];
  }
}

/** A path as given, or a shipped spec's file when the argument is its name and no such file is here. */
function specFile(arg: string): string {
  if (existsSync(arg) || !/^[\w-]+$/.test(arg)) return arg;
  const shipped = path.join(SPEC_DIR, `${arg}.json`);
  if (existsSync(shipped)) return shipped;
  throw new CliError('KSCRUB_BAD_INPUT', `sweep: no file ${arg} here and no shipped spec of that name (shipped: ${shippedSpecs().join(', ')})`);
}

const shellQuote = (s: string): string => (/^[\w./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

interface Output {
  readonly file: string;
  readonly csv: boolean;
}

function output(spec: SweepSpec, o: SweepFlags): Output {
  if (o.csv !== undefined) return { file: o.csv, csv: true };
  return { file: o.out ?? `${spec.name}${o.band ? '-band' : ''}.jsonl`, csv: false };
}

/** Rows already in the output (a missing file has none). */
function readRows(spec: SweepSpec, out: Output): SweepRow[] {
  try {
    checkNotSymlink(out.file);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `sweep: cannot write ${out.file}: ${(err as Error).message}`);
  }
  if (!existsSync(out.file)) return [];
  const text = readFileSync(out.file, 'utf8');
  return out.csv ? rowsFromCsv(spec, text) : rowsFromJsonl(text, out.file);
}

function rowsFromJsonl(text: string, file: string): SweepRow[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try {
      return JSON.parse(l) as SweepRow;
    } catch {
      throw new CliError('KSCRUB_BAD_INPUT', `sweep: ${file} line ${i + 1} is not JSON`);
    }
  });
}

// ---- CSV: one flat line per row -------------------------------------------------------------

const csvValue = (v: unknown): unknown => (typeof v === 'object' && v !== null ? canonical(v) : v);

/** The point's dimensions, then pft's columns that are not dimensions already (threads, cachelines), then kscrubd's share. */
function csvColumns(spec: SweepSpec): string[] {
  const dims = spec.dims.map((d) => d[0]);
  return ['key', ...dims, ...PFT_COLUMNS.filter((c) => !dims.includes(c)), 'kscrubdCpuS', 'faultPerWsecKscrubd', 'error'];
}

function csvRecord(spec: SweepSpec, r: SweepRow): Record<string, unknown> {
  const rec: Record<string, unknown> = { key: r.key, kscrubdCpuS: r.kscrubd?.cpuS ?? '', faultPerWsecKscrubd: r.kscrubd?.faultPerWsec ?? '', error: r.error ?? '' };
  for (const c of PFT_COLUMNS) rec[c] = r.row?.[c] ?? '';
  for (const [name] of spec.dims) rec[name] = csvValue(r.point[name]);
  return rec;
}

/** Enough of a row back from CSV to skip it and to plot it. */
function rowsFromCsv(spec: SweepSpec, text: string): SweepRow[] {
  return parseCsv(text).map((rec) => {
    const row = Object.fromEntries(PFT_COLUMNS.map((c) => [c, Number(rec[c])])) as unknown as SweepRow['row'];
    const point = Object.fromEntries(spec.dims.map(([name]) => [name, rec[name] ?? '']));
    return { key: rec.key ?? '', sweep: spec.name, index: -1, point, kscrubfs: '', ...(rec.error ? { error: rec.error } : { row }) } as SweepRow;
  });
}

function csvHead(spec: SweepSpec): string {
  return `# kscrubfs ${VERSION}\n# sweep: ${spec.name} (${spec.file}): ${spec.description}\n`
    + '# each row: one point on a fresh machine, manual clock; key = hash of the point\n';
}

/** Append rows to the output, writing its header first when the file is new. */
function append(spec: SweepSpec, out: Output, rows: readonly SweepRow[]): void {
  if (rows.length === 0) return;
  let text = rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (out.csv) {
    const fresh = !existsSync(out.file) || readFileSync(out.file, 'utf8') === '';
    const body = toCsv(null, csvColumns(spec), rows.map((r) => csvRecord(spec, r)));
    text = fresh ? csvHead(spec) + body : body.slice(body.indexOf('\n') + 1);
  }
  writeRows(out.file, text, 'append');
}

function writeRows(file: string, text: string, how: 'append' | 'truncate'): void {
  try {
    writeOutput(file, text, how);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `sweep: cannot write ${file}: ${(err as Error).message}`);
  }
}

// ---- running --------------------------------------------------------------------------------

/**
 * Run every point not yet in the output on `jobs` worker threads. Rows are written in grid
 * order as soon as every earlier pending point is done, so an interrupted sweep loses only
 * the points in flight and a rerun picks up the rest.
 */
async function run(spec: SweepSpec, out: Output, jobs: number, maxMemory: number, band: boolean): Promise<void> {
  const have = readRows(spec, out);
  // One output holds one kind of row: a point run without a band would be skipped as done.
  const other = have.find((r) => r.error === undefined && (r.band !== undefined) !== band);
  if (other) {
    throw new CliError('KSCRUB_USAGE', `sweep: ${out.file} holds rows ${band ? 'without' : 'with'} a band (point ${other.key}); `
      + `give ${band ? '--band' : 'a run without --band'} another --out`);
  }
  const done = new Set(have.map((r) => r.key));
  const todo = spec.points.filter((p) => !done.has(p.key));
  const workers = Math.min(jobs, todo.length);
  process.stderr.write(`sweep ${spec.name}: ${spec.points.length} points, ${spec.points.length - todo.length} already in ${out.file}, `
    + `${todo.length === 0 ? 'nothing to run' : `${todo.length} to run on ${workers} worker thread${workers === 1 ? '' : 's'}`}\n`);
  if (todo.length === 0) return;
  const progress = progressLine();
  const started = Date.now();
  const results = new Map<number, SweepRow>();
  let flushed = 0;
  let finished = 0;
  const flush = (): void => {
    const ready: SweepRow[] = [];
    while (flushed < todo.length && results.has(todo[flushed]!.index)) ready.push(results.get(todo[flushed++]!.index)!);
    append(spec, out, ready);
  };
  const threads = Array.from({ length: workers }, () => new Worker(path.join(__dirname, 'sweep-worker.js'), { workerData: { file: spec.file, maxMemory, band } }));
  let next = 0;
  try {
    await Promise.all(threads.map((w) => new Promise<void>((resolve, reject) => {
      const give = (): void => {
        if (next >= todo.length) {
          resolve();
          return;
        }
        w.postMessage(todo[next++]!.index);
      };
      w.on('message', (row: SweepRow) => {
        results.set(row.index, row);
        finished++;
        progress?.(`sweep ${spec.name}: ${finished}/${todo.length} points, ${(finished / ((Date.now() - started) / 1000)).toFixed(1)} points/s`, finished, todo.length);
        flush();
        give();
      });
      w.on('error', reject);
      give();
    })));
  } finally {
    clearProgress();
    await Promise.all(threads.map((w) => w.terminate()));
  }
  const failed = todo.filter((p) => results.get(p.index)?.error !== undefined).length;
  process.stderr.write(`sweep ${spec.name}: ${todo.length} points in ${((Date.now() - started) / 1000).toFixed(1)} s${failed > 0 ? `, ${failed} failed (their rows say why)` : ''}; rows in ${out.file}\n`);
}

/** Join pieces and the output: one row per key of the spec, in grid order (the output is rewritten). */
function merge(spec: SweepSpec, out: Output, pieces: readonly string[]): void {
  const byKey = new Map<string, SweepRow>();
  for (const r of readRows(spec, out)) byKey.set(r.key, r);
  for (const file of pieces) {
    if (!existsSync(file)) throw new CliError('KSCRUB_BAD_INPUT', `sweep --merge: no file ${file}`);
    for (const r of rowsFromJsonl(readFileSync(file, 'utf8'), file)) byKey.set(r.key, r);
  }
  const rows = spec.points.map((p) => byKey.get(p.key)).filter((r): r is SweepRow => r !== undefined);
  const stray = [...byKey.keys()].filter((k) => !spec.points.some((p) => p.key === k));
  writeRows(out.file, '', 'truncate');
  append(spec, out, rows);
  process.stderr.write(`sweep ${spec.name}: ${rows.length} of ${spec.points.length} points in ${out.file}${stray.length > 0 ? `; ${stray.length} row(s) of other specs left out` : ''}\n`);
}

// ---- plot -----------------------------------------------------------------------------------

/**
 * What changes the numbers but a spec may leave to the defaults: the zero drivers, the prefault
 * order and kscrubd's scrub_start/stop, as each point's machine boots and pft sets them. A plot
 * that looks off then says why (the altix default zeroes with the BTE, prefault is on at 3).
 */
function numberFacts(spec: SweepSpec): string[] {
  const drivers = new Map<string, string>();
  const prefault = new Set<number>();
  const scrub = new Set<string>();
  for (const p of spec.points) {
    let run;
    try {
      run = pointRun(spec, p);
    } catch {
      continue; // a point the model refuses is a row with its error, not a plot point
    }
    let m;
    try {
      m = createMachine(run.machine);
      for (const [name, value] of run.sysctl) writeSysctlValue(m, name as SysctlName, value);
    } catch {
      continue;
    }
    drivers.set(m.config.preset, m.config.zeroDrivers.join(','));
    prefault.add(run.pft.prealloc ?? m.sysctl.max_prealloc_order);
    if (run.pft.scrub !== undefined) {
      const set = new Map(kscrubdSysctls(run.pft.scrub, m.config.maxOrder, run.pft));
      scrub.add(describeKscrubd(set.get('scrub_start'), set.get('scrub_stop') ?? m.sysctl.scrub_stop, m.config.maxOrder));
    } else scrub.add(describeKscrubd(m.sysctl.scrub_start, m.sysctl.scrub_stop, m.config.maxOrder));
  }
  const facts: string[] = [];
  const byPreset = new Set(drivers.values()).size > 1;
  if (!spec.dims.some(([name]) => name === 'zeroDrivers') && drivers.size > 0) {
    facts.push(`zero drivers ${byPreset ? [...drivers].map(([preset, d]) => `${preset} ${d}`).join(', ') : [...drivers.values()][0]}`);
  }
  if (!spec.dims.some(([name]) => name === 'prealloc' || name === 'max_prealloc_order') && prefault.size > 0) {
    facts.push(`prefault ${prefault.size === 1 && prefault.has(0) ? 'off' : `order ${[...prefault].join(', ')}`}`);
  }
  const on = [...scrub].filter((t) => t !== 'off');
  if (scrub.size > 0 && !spec.dims.some(([name]) => name === 'scrubStart' || name === 'scrubStop' || name === 'scrub_start' || name === 'scrub_stop')) {
    facts.push(on.length === 0 ? 'kscrubd off' : `kscrubd ${scrub.has('off') ? 'off or on' : 'on'}: ${on.join('; ')}`);
  }
  return facts;
}

/** --tornado: a panel per band of every row of the spec's points, titled by the dimensions that vary. */
function writeSweepTornado(spec: SweepSpec, out: Output, file: string): void {
  const keyOf = new Set(spec.points.map((p) => p.key));
  const varying = spec.dims.filter(([, , choices]) => choices.length > 1).map(([name]) => name);
  const panels = readRows(spec, out).filter((r) => keyOf.has(r.key) && r.band !== undefined).flatMap((r) => {
    const label = varying.map((name) => `${name} ${String(csvValue(r.point[name]))}`).join(', ') || spec.name;
    return r.band!.map((band) => ({ title: `${label}: ${band.answer}`, band }));
  });
  writeTornado(file, panels, `sweep ${spec.name}: which fitted figures move each point's answer`,
    ['each fitted figure of the point\'s preset at its lower and upper bound, one at a time; band: √(Σ swing² + calibration error²)']);
}

/** One series per combination of the spec's plot.series dimensions, x = plot.x. */
function writePlot(spec: SweepSpec, out: Output, file: string): void {
  if (!spec.plot) throw new CliError('KSCRUB_BAD_INPUT', `sweep --plot: ${spec.file} has no plot section`);
  const { x, series } = spec.plot;
  const groups = new Map<string, PlotSeries['points'][number][]>();
  const keyOf = new Set(spec.points.map((p) => p.key));
  for (const r of readRows(spec, out)) {
    if (!keyOf.has(r.key) || !r.row) continue;
    const label = series.map((s) => `${s} ${String(csvValue(r.point[s]))}`).join(', ') || spec.name;
    const list = groups.get(label) ?? [];
    list.push({ threads: Number(r.point[x]), fltPerCpuS: r.row.fltPerCpuS, faultPerWsec: r.row.faultPerWsec });
    groups.set(label, list);
  }
  const fixed = spec.dims.filter(([name, , choices]) => choices.length === 1 && name !== x).map(([name, , [v]]) => `${name} ${String(csvValue(v))}`);
  const svg = renderPftSvg([...groups].map(([label, points]) => ({ label, points })), {
    title: `sweep ${spec.name}${spec.description ? `: ${spec.description}` : ''}`,
    subtitle: [fixed.join(', '), ...numberFacts(spec)].filter((t) => t !== '').join('; '), xLabel: x,
  });
  try {
    writeOutput(file, svg);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `sweep --plot: cannot write ${file}: ${(err as Error).message}`);
  }
}
