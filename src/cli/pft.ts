import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { KSCRUBD_ON_TEXT, MAX_LINES_PER_PAGE, MAX_MAP_BYTES, MAX_MAX_ORDER, MAX_REPS, MAX_THREADS, formatSize } from '../uapi';
import { PFT_COLUMNS, PftOptions, PftRow, pftTableStream, runPftWithConfig } from '../workload/pft';
import { renderPftSvg } from '../workload/plot';
import { type Provenance, provenance, ranWith, subtitleFacts } from '../workload/provenance';
import { CliError, action } from './errors';
import { writeOutput } from '../workload/output-file';
import { PREALLOC_HELP, byteSizeUpTo, integer, integerIn, defaultMount, preallocArg } from './options';
import { checkFormat, formatResult } from './output';
import { clearProgress, progressLine } from './progress';
import { VERSION, commandLine } from './version';

/** "1,2,4,8" → [1, 2, 4, 8]: each a thread count ≥ 1. */
function threadList(value: string): number[] {
  const parse = integer(1);
  return value.split(',').map((t) => {
    const n = parse(t.trim());
    // A usage error before anything runs, not the control file's touch refusing it mid-table.
    if (n > MAX_THREADS) throw new InvalidArgumentError(`expected at most ${MAX_THREADS} threads, got "${t.trim()}"`);
    return n;
  });
}

/** -g: GiB > 0, at most the largest mapping (what mmap takes). */
function gigabytes(value: string): number {
  const n = Number(value);
  const max = MAX_MAP_BYTES / 2 ** 30;
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > max) throw new InvalidArgumentError(`expected a number of GiB > 0 and at most ${max}, got "${value}"`);
  const bytes = Math.round(n * 2 ** 30);
  if (bytes < 1) throw new InvalidArgumentError(`expected a number of GiB > 0 and at most ${max}, got "${value}"`);
  return bytes;
}

/** Orders a machine may have: its scrub_start/scrub_stop go up to MAX_ORDER; the mount's own is checked before the first row. */
const order = integerIn(0, MAX_MAX_ORDER, 'as an order');

interface PftCliOptions {
  mount: string;
  gb?: number;
  bytes?: number;
  rep: number;
  threads: number[];
  cachelines: number;
  json?: boolean;
  csv?: boolean;
  scrub?: 'on' | 'off';
  scrubStart?: number;
  scrubStop?: number;
  prealloc: number | 'mount';
  thp?: boolean;
  stride?: number;
  settle?: boolean;
  plot?: string;
}

/** `kscrubfs pft`: Lameter's page fault test against a running mount, through its control file. */
export function registerPft(program: Command): void {
  program
    .command('pft')
    .description("page fault test after Lameter's pft: each repetition a new process maps and writes fresh anonymous memory")
    .option('-m, --mount <dir>', 'the kscrubfs mount to drive (default $KSCRUBFS_MOUNT, else ./mount)', defaultMount())
    .option('-g, --gb <n>', 'GiB to map per repetition (default 1)', gigabytes)
    .option('-b, --bytes <size>', 'bytes to map per repetition (4096, 256M, 1G), instead of --gb', byteSizeUpTo(MAX_MAP_BYTES))
    .option('-r, --rep <n>', 'repetitions, a new process each', integerIn(1, MAX_REPS, 'repetitions'), 1)
    .option('-t, --threads <list>', 'thread counts, one table row each (1,2,4,8)', threadList, [1])
    .option('-c, --cachelines <n>', "cachelines written per page (at most the mount's page size ÷ its line size)", integerIn(1, MAX_LINES_PER_PAGE, 'cachelines'), 1)
    .addOption(new Option('--scrub <mode>', `off: kscrubd off (scrub_start = MAX_ORDER); on: ${KSCRUBD_ON_TEXT}`).choices(['on', 'off']))
    .option('--scrub-start <order>', 'scrub_start for --scrub on', order)
    .option('--scrub-stop <order>', 'scrub_stop for --scrub on', order)
    .option('--prealloc <order>', `${PREALLOC_HELP}; default 0: no mainline kernel prefaults anonymous memory, and payoff and trace replay do not either; 'mount' leaves the mount's sysctl as it is`, preallocArg('mount'), 0)
    .option('--stride <size>', "write one byte every <size> bytes, counting every page as pft does (pft.c's NBPP: 16K; a page or less writes every page); default: every page", byteSizeUpTo(MAX_MAP_BYTES))
    .option('--thp', 'map with MADV_HUGEPAGE: 2 MiB-aligned ranges fault as transparent huge pages (4 KiB-page presets)')
    .option('--settle', 'before each row, wait (or tick a manual clock) until kscrubd sleeps')
    .option('--json', 'print one JSON object: how the run was made (version, machine, clock, sysctls) and the rows, with the model-side counts')
    .option('--csv', 'print CSV: the same provenance as # comment lines, a header row, one line per row')
    .option('--plot <file>', 'also write an SVG: flt/cpu/s and fault/wsec against threads, labelled by --scrub')
    .addHelpText('after', `
Defaults agree with scripts/payoff and trace replay: prefault off (--prealloc 0), kscrubd as
the mount has it unless --scrub says; the line under the table says what the run used.

Columns are pft's: pages = bytes × rep ÷ page size; flt/cpu/s = pages ÷ (User + System);
fault/wsec = pages ÷ Wall. pft.c writes at the start of every 16 KiB (its NBPP) whatever the
page size: --stride 16K does the same, and the pages column still counts every page, as pft's
does (on 4 KiB pages, one page in four is touched; on the altix's 16 KiB pages, every page, as
any stride of a page or less). Times are the simulated machine's. Sysctls changed by --scrub and
--prealloc are restored afterwards.

--plot writes the rows as an SVG, one series labelled by --scrub.

Example:
  kscrubfs pft -g 1 -r 2 -t 1,2,4 --scrub on --settle
  kscrubfs pft -g 1 -t 1,2,4,8 --scrub on --settle --plot pft.svg`)
    .action(action(async (o: PftCliOptions) => {
      if (o.gb !== undefined && o.bytes !== undefined) throw new CliError('KSCRUB_USAGE', 'pft: give --gb or --bytes, not both');
      checkFormat('pft', o);
      if ((o.scrubStart !== undefined || o.scrubStop !== undefined) && o.scrub !== 'on') {
        throw new CliError('KSCRUB_USAGE', 'pft: --scrub-start/--scrub-stop go with --scrub on');
      }
      const opts: PftOptions = {
        bytes: o.bytes ?? o.gb ?? 2 ** 30, reps: o.rep, threads: o.threads, cachelines: o.cachelines,
        settle: o.settle ?? false, progress: progressLine(),
        // The table streams: each row as it finishes. --json and --csv print once, at the end.
        ...(!o.json && !o.csv && { onRow: pftTableStream((text) => { clearProgress(); process.stdout.write(text); }) }),
        ...(o.scrub ? { scrub: o.scrub } : {}),
        ...(o.scrubStart !== undefined ? { scrubStart: o.scrubStart } : {}),
        ...(o.scrubStop !== undefined ? { scrubStop: o.scrubStop } : {}),
        ...(o.prealloc !== 'mount' ? { prealloc: o.prealloc } : {}),
        ...(o.thp ? { thp: true } : {}),
        ...(o.stride !== undefined ? { stride: o.stride } : {}),
      };
      const { config, rows } = await runPftWithConfig(o.mount, opts);
      clearProgress();
      const prov = provenance(config, VERSION, commandLine());
      // Under the table: what it ran with, defaults included (--json and --csv carry it whole).
      if (!o.json && !o.csv) process.stdout.write(`${ranWith(prov, [`${o.cachelines} cacheline${o.cachelines === 1 ? '' : 's'} a page`, ...(o.settle ? ['settled before each row'] : [])])}\n`);
      if (o.json || o.csv) {
        process.stdout.write(formatResult(o, { provenance: prov, table: () => '', json: { rows }, columns: PFT_COLUMNS, rows }));
      }
      if (o.plot !== undefined) writePlot(o.plot, rows, o, prov);
      const oom = rows.filter((r) => r.oom > 0);
      if (oom.length > 0) {
        // The rates above are over the pages faulted; the run itself did not complete.
        process.stderr.write(`kscrubfs pft: out of memory in ${oom.length} of ${rows.length} row(s): the run did not complete (the rates are over the pages faulted)\n`);
        process.exitCode = 1;
      }
    }));
}

/** `--plot`: this run's rows as one series, named by its scrub mode. */
function writePlot(file: string, rows: readonly PftRow[], o: PftCliOptions, prov: Provenance): void {
  const r = rows[0];
  const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  const subtitle = [
    ...(r ? [`${formatSize(r.gb * 2 ** 30)} × ${plural(r.rep, 'repetition')}`, `${plural(r.cachelines, 'cacheline')} per page`] : []),
    subtitleFacts(prov),
  ].join(', ');
  const svg = renderPftSvg([{ label: o.scrub ? `scrub ${o.scrub}` : 'scrub as mounted', points: rows }], {
    title: 'pft: page faults against threads', subtitle,
  });
  try {
    writeOutput(file, svg);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `pft --plot: cannot write ${file}: ${(err as Error).message}`);
  }
}
