import { type Command, Option } from 'commander';
import { KSCRUBD_ON_TEXT, PRESETS } from '../uapi';
import { type Trace, readTrace } from '../workload/trace-format';
import { record } from '../workload/trace-record';
import { type ConfigPairs, provenance, ranWith, scrubFact } from '../workload/provenance';
import { REPLAY_COLUMNS, type ReplayOptions, type ReplayRow, formatReplayTable, replay, replayOn } from '../workload/trace-replay';
import { withPrivateMount } from './calibrate';
import { CliError, action } from './errors';
import type { BandFlags } from './band';
import type { Band } from '../workload/band';
import { PREALLOC_HELP, integer, preallocArg } from './options';
import { checkFormat, formatResult } from './output';
import { type Progress, clearProgress, progressLine } from './progress';
import { VERSION, commandLine } from './version';

interface ReplayCliOptions extends BandFlags {
  mount?: string;
  preset: string;
  scrub?: 'on' | 'off';
  threadsAsCpus?: boolean;
  hostCpus?: boolean;
  lines: number;
  prealloc?: number;
  gaps?: boolean;
  json?: boolean;
  csv?: boolean;
}

/** `kscrubfs trace record|replay`: a real program's page faults, and the model's answer to them. */
export function registerTrace(program: Command): void {
  const trace = program
    .command('trace')
    .description("record a real program's page faults (root, tracefs), and replay them on the model")
    .enablePositionalOptions();

  trace
    .command('record')
    .description('run CMD and record its user page faults and anonymous mappings (needs root)')
    .requiredOption('-o, --output <file>', 'the trace file to write')
    .argument('<cmd>', 'the program to run')
    .argument('[args...]', 'its arguments (after --)')
    .passThroughOptions()
    .addHelpText('after', `
CMD runs as a child of the recorder, under a private ftrace instance that is removed afterwards
(tracefs is mounted on a temporary directory if it is not mounted); the global tracing state
is never touched. The recorder exits with CMD's exit status. The trace format is described in
src/workload/trace-format.ts and the README.

Example:
  sudo kscrubfs trace record -o sort.trace -- sort -o /dev/null big.txt`)
    .action(action(async (cmd: string, args: string[], o: { output: string }) => {
      const r = await record({ out: o.output, command: cmd, args });
      const f = r.summary.faults;
      process.stderr.write(
        `kscrubfs trace: ${f.anon + f.file + f.unknown} faults (${f.anon} anonymous, ${f.file} file-backed, `
        + `${f.unknown} unknown) from ${r.summary.processes} process(es), ${r.summary.tasks} task(s); `
        + `${r.summary.lost_events} events lost; ${o.output}: ${r.bytes} bytes\n`,
      );
      if (r.summary.lost_events > 0) process.stderr.write('kscrubfs trace: the kernel dropped events: the trace is incomplete\n');
      process.exitCode = r.summary.exit_status;
    }));

  trace
    .command('replay')
    .description('replay a trace on the model: kscrubd off and on side by side')
    .argument('<file>', 'a trace from trace record')
    .option('-m, --mount <dir>', 'replay on this running mount (default: a private manual-clock machine per side)')
    .addOption(new Option('--preset <name>', 'the private machine (without -m)').choices(PRESETS).default('altix'))
    .addOption(new Option('--scrub <mode>', `only this side: off (scrub_start = MAX_ORDER) or on (${KSCRUBD_ON_TEXT}, settled)`).choices(['on', 'off']))
    .option('--threads-as-cpus', 'every traced thread on its own simulated CPU, as pft places its threads and a scheduler with idle CPUs spreads them (the default)')
    .option('--host-cpus', 'every traced thread on the simulated CPU numbered as the host CPU it faulted on, mod the CPUs (on a busy host, threads that shared a CPU there share one here)')
    .option('--lines <n>', 'cachelines the program writes after each fault (not in a fault trace)', integer(1), 1)
    .option('--prealloc <order>', `${PREALLOC_HELP}; default 0: no mainline kernel prefaults anonymous memory`, preallocArg())
    .option('--gaps', "replay the program's time between faults as idle time (manual clock), so kscrubd can zero meanwhile")
    .option('--json', 'print one JSON object: how the run was made (version, machine, clock, sysctls), the trace\'s header and summary, and the rows (each with its side\'s sysctls)')
    .option('--csv', 'print CSV: the same provenance as # comment lines, a header row, one line per row')
    .option('--band', 'also replay with every fitted cost figure of the preset at each of its bounds and print each answer with its band (private machines only)')
    .addOption(new Option('--tornado <file>', 'with --band: write an SVG of which figures move the answer most').implies({ band: true }))
    .addHelpText('after', `
faults = the trace's anonymous faults; pages = pages they allocated on the model (prezeroed +
hot zeroed); flt/cpu/s = pages ÷ (User + System); fault/wsec = pages ÷ Wall; zeroing = hot
zeroing in the fault path; kscrubd = its CPU for the pages the side took prezeroed (zeroed
before the run), and fault/wsec+kscrubd = fault/wsec with that work done during the run: on
the CPUs the replay left idle first, then on its own. Faults on file-backed memory are counted, not replayed. A 4 KiB
host page lands in the model page that holds its address (altix: 16 KiB, 4 host pages).

Example:
  kscrubfs trace replay sort.trace --preset x86_64`)
    .action(action(async (file: string, o: ReplayCliOptions) => {
      checkFormat('trace replay', o);
      if (o.threadsAsCpus === true && o.hostCpus === true) throw new CliError('KSCRUB_USAGE', 'trace replay: --threads-as-cpus and --host-cpus place threads two ways; give one');
      const t = readTrace(file);
      if (t.summary === null) process.stderr.write(`kscrubfs trace: ${file} has no end record (the recorder was killed): replaying what it holds\n`);
      const sides = o.scrub ? [o.scrub] : (['off', 'on'] as const);
      const opts = {
        // Spread by default: where the host ran a thread says how busy the host was, not
        // where the modelled machine's scheduler would put it.
        lines: o.lines, threadsAsCpus: o.hostCpus !== true, progress: progressLine(),
        ...(o.prealloc !== undefined && { prealloc: o.prealloc }),
        ...(o.gaps === true && { gaps: true }),
      };
      if (o.band && o.mount !== undefined) throw new CliError('KSCRUB_USAGE', 'trace replay --band: the band changes cost figures, which a running mount keeps: leave out -m');
      const rows: ReplayRow[] = [];
      const configs: ConfigPairs[] = [];
      const add = (r: { rows: ReplayRow[]; configs: ConfigPairs[] }): void => {
        rows.push(...r.rows);
        configs.push(...r.configs);
      };
      if (o.mount !== undefined) add(await replay(o.mount, t, { ...opts, sides }));
      else {
        // A fresh machine per side, as each would be a freshly booted box. Each replay's share
        // done is of its one side: the line's counts the sides before it.
        for (const [i, side] of sides.entries()) {
          const progress: Progress | undefined = opts.progress && ((msg, done, total) => opts.progress!(msg,
            done === undefined || total === undefined ? undefined : i * total + done, total === undefined ? undefined : sides.length * total));
          add(await withPrivateMount((dir) => replay(dir, t, { ...opts, progress, sides: [side] }), ['--preset', o.preset, '--clock', 'manual']));
        }
      }
      const band = o.band ? await replayBand(o, t, rows, sides, { ...opts, progress: undefined }) : undefined;
      clearProgress();
      const provs = configs.map((c) => provenance(c, VERSION, commandLine()));
      const table = (): string => {
        const r = rows[0]!;
        const traced = t.summary ? `${t.summary.faults.anon + t.summary.faults.file + t.summary.faults.unknown} faults traced` : 'trace cut short';
        const out = [
          `${shownCommand(t.header.command)}: ${traced} (${t.header.page_size / 1024} KiB pages), `
            + `replayed on a model with ${r.pageSize / 1024} KiB pages and ${r.cpus} CPUs\n`,
          formatReplayTable(rows),
        ];
        if (r.fileFaults + r.unknownFaults > 0) {
          out.push(`(not replayed: ${r.fileFaults} faults on file-backed memory, ${r.unknownFaults} on memory of unknown kind)\n`);
        }
        if (t.header.thp === 'always') {
          out.push('(the host had transparent huge pages on for every mapping: a 2 MiB fault there replays as one page)\n');
        }
        if (r.hostPageSize !== r.pageSize) {
          out.push(`(host pages of ${r.hostPageSize / 1024} KiB on model pages of ${r.pageSize / 1024} KiB: ${r.faults} host faults made ${r.modelFaults} model faults)\n`);
        }
        out.push(`${ranWith(provs[0]!, [`${o.lines} cacheline${o.lines === 1 ? '' : 's'} a fault`, o.hostCpus !== true ? 'a CPU per thread' : 'threads on the host CPU they ran on', ...(o.gaps ? ['gaps as idle time'] : []), provs.map(scrubFact).join(', then ')], false)}\n`);
        if (band) out.push(band.text);
        return out.join('');
      };
      process.stdout.write(formatResult(o, {
        provenance: provs[0]!, table, columns: REPLAY_COLUMNS, rows,
        json: { trace: { header: t.header, summary: t.summary }, rows: rows.map((r, i) => ({ ...r, sysctl: provs[i]!.sysctl })), ...(band && { band: band.bands }) },
      }));
      if (o.csv && band) process.stdout.write(band.text.split('\n').filter(Boolean).map((l) => `# ${l}`).join('\n') + '\n');
    }));
}

/** The answers a replay's band is of: each side's rates, and the gains when both ran. */
function replayAnswers(rows: readonly ReplayRow[]): { names: string[]; values: number[] } {
  const names: string[] = [];
  const values: number[] = [];
  for (const r of rows) {
    names.push(`kscrubd ${r.scrub}: flt/cpu/s`, `kscrubd ${r.scrub}: fault/wsec`);
    values.push(r.fltPerCpuS, r.faultPerWsec);
  }
  const off = rows.find((r) => r.scrub === 'off');
  const on = rows.find((r) => r.scrub === 'on');
  if (off && on) {
    names.push('flt/cpu/s gain (on ÷ off)', 'fault/wsec gain, kscrubd counted');
    values.push(on.fltPerCpuS / off.fltPerCpuS, on.faultPerWsecWithKscrubd / off.faultPerWsec);
  }
  return { names, values };
}

/**
 * --band: the replay again with each fitted figure at each bound, each side on a fresh
 * machine of the preset made in this process (behind the control grammar, as calibrate and
 * sweep run theirs: no mount per run), the same machine the private mount boots.
 */
async function replayBand(
  o: ReplayCliOptions, t: Trace, point: readonly ReplayRow[], sides: readonly ('off' | 'on')[], opts: Omit<ReplayOptions, 'sides'>,
): Promise<{ bands: Band[]; text: string }> {
  const { bandFigures, bandsFor, bandText, writeTornado } = require('./band') as typeof import('./band');
  const { runBand } = require('../workload/band') as typeof import('../workload/band');
  const { LocalControl } = require('../control') as typeof import('../control');
  const { createMachine } = require('../model') as typeof import('../model');
  const { LocalClient } = require('../workload/client') as typeof import('../workload/client');
  const { MemoryBudget, defaultMaxMemory } = require('../daemon') as typeof import('../daemon');
  const machine = { preset: o.preset, clock: 'manual' as const };
  const figures = bandFigures(machine);
  // One machine at a time, held to a mount's default budget: a command that could pass it is refused, as on a mount.
  const budget = new MemoryBudget(defaultMaxMemory());
  const { names } = replayAnswers(point);
  const again = async (cost: Readonly<Record<string, number>>): Promise<ReplayRow[]> => {
    const rows: ReplayRow[] = [];
    for (const side of sides) rows.push(...(await replayOn(new LocalClient(new LocalControl(createMachine({ ...machine, cost }), budget)), t, { ...opts, sides: [side] })).rows);
    return rows;
  };
  const progress = progressLine();
  const runs = await runBand(figures, names, async (cost) => replayAnswers(await again(cost)).values, progress);
  const bands = bandsFor(machine, figures, runs);
  if (o.tornado !== undefined) {
    // The headline answers: the gains when both sides ran, else the one side's rates.
    const shown = bands.length > 2 ? bands.slice(-2) : bands;
    writeTornado(o.tornado, shown.map((b) => ({ title: b.answer, band: b })), `trace replay on ${o.preset}: which fitted figures move the answer`, [
      `each fitted cost figure at its lower and upper bound, one at a time (${runs.steps.length} runs); band: √(Σ swing² + calibration error²)`,
    ]);
  }
  return { bands, text: bandText(bands, figures, runs) };
}

/** The traced command on one line: whitespace runs as one space, at most 60 characters. */
function shownCommand(argv: readonly string[]): string {
  const line = argv.join(' ').replace(/\s+/g, ' ').trim();
  return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}
