import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { mountProvenance } from '../workload/provenance';
import { TEXTFILE, writeTextfile } from '../workload/textfile';
import { renderFrame, summarize, zonePages, type FrameOptions, type WatchSummary } from '../workload/watch';
import { readPageKb, readSample, type Sample } from '../workload/watch-files';
import { CliError, action } from './errors';
import { positiveNumber, defaultMount } from './options';
import { type FormatFlags, checkFormat, formatResult } from './output';
import { VERSION, commandLine } from './version';

interface WatchCliOptions extends FormatFlags {
  interval: number;
  textfile?: string;
  once?: boolean;
  color: boolean;
}

/** Width of a plain-text frame (--once, or stdout not a terminal). */
const PLAIN_COLUMNS = 80;
/** After Ctrl-C, how long a read stuck on a dead daemon may hold the exit. */
const EXIT_GRACE_MS = 2000;
/** The longest -n: a day. Node's timers end at 2^31 ms (24.8 days; past it one fires at once). */
const MAX_INTERVAL_S = 86_400;

function intervalSeconds(value: string): number {
  const s = positiveNumber(value);
  if (s > MAX_INTERVAL_S) throw new InvalidArgumentError(`expected at most ${MAX_INTERVAL_S} s (a day), got "${value}"`);
  return s;
}

/** `kscrubfs watch`: a live view of a mount, from its files only (a client, like cat). */
export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description('live view of a mount from its files: free blocks per order (zeroed / not zeroed), MemFree / MemZero, kscrubd, faults')
    .argument('[dir]', 'the kscrubfs mount to read (default $KSCRUBFS_MOUNT, else ./mount)', defaultMount())
    .option('-n, --interval <s>', `seconds between refreshes, at most ${MAX_INTERVAL_S} (--once: between its two samples)`, intervalSeconds, 1)
    .option('--once', 'print one plain-text frame and exit: two samples --interval apart, so the rates are there')
    .option('--no-color', 'no ANSI colours on a terminal (NO_COLOR=1 does the same)')
    .option('--json', "with --once: one JSON object instead of the frame: how the machine was made (through its control file, when readable), the summary, and one row per node, zone and order")
    .option('--csv', 'with --once: the rows as CSV (node, zone, order, free blocks not zeroed and zeroed), provenance as # comment lines')
    .option('--textfile <dir>', `instead of a view, write node_exporter textfile metrics to <dir>/${TEXTFILE} every refresh (with --once: once): zeroed and not-zeroed free blocks per node, zone and order, kscrubd's counters`)
    .addHelpText('after', `
Everything comes from the mounted files: buddyinfo (bars: each order's share of the zone's
free pages, # zeroed, = not zeroed; a --buddyinfo stock mount has no split and shows totals),
meminfo (MemFree, MemZero), vmstat (kscrubd_*, nr_scrub_pages, pgfault*), loadavg, uptime,
sys/vm/scrub_start and scrub_stop. Rates are per second of the machine's clock (uptime), over
the last refresh; "-" where there is no previous sample or the clock stood still (a manual
clock between ticks). kscrubd is "awake" when a block is in flight (nr_scrub_pages), a task is
runnable in loadavg, or kscrubd_pages / kscrubd_bursts grew since the last refresh; "off" when
asleep with scrub_start = MAX_ORDER. "prezeroed" is the share of the pages write faults mapped
that came prezeroed: pgfault_prezeroed / (pgfault_prezeroed + pgfault_hot_zeroed).

On a terminal the view redraws in place (alternate screen; Ctrl-C quits and restores it);
when stdout is not a terminal it prints a plain frame per refresh.

Examples:
  kscrubfs watch                      # ./mount, refreshed every second
  kscrubfs watch /tmp/k -n 0.5
  kscrubfs watch /tmp/k --once        # one frame, rates over 1 s`)
    .action(action(async (dir: string, o: WatchCliOptions) => {
      checkFormat('watch', o);
      if ((o.json || o.csv) && !o.once) throw new CliError('KSCRUB_USAGE', 'watch: --json and --csv go with --once');
      if (o.textfile !== undefined) {
        if (o.json || o.csv) throw new CliError('KSCRUB_USAGE', 'watch: --textfile writes its own format; leave out --json and --csv');
        await textfile(dir, o.textfile, o.interval, o.once === true);
        return;
      }
      const pageKb = await readPageKb(dir);
      const plain: FrameOptions = {
        dir, intervalS: o.interval, columns: PLAIN_COLUMNS, rows: Infinity, color: false, layout: 'stack', pageKb,
      };
      if (o.once) {
        await once(dir, o.interval, plain, o);
        return;
      }
      const stop = stopOnSignals();
      try {
        if (process.stdout.isTTY) await live(dir, o, { ...plain, color: o.color && !process.env.NO_COLOR }, stop.signal);
        else await stream(dir, o.interval, plain, stop.signal);
      } finally {
        stop.dispose();
      }
    }));
}

/** --textfile: a sample per refresh written as node_exporter textfile metrics, until a signal (or once). */
async function textfile(dir: string, out: string, intervalS: number, onceOnly: boolean): Promise<void> {
  if (onceOnly) {
    writeTextfile(out, await readSample(dir));
    return;
  }
  const stop = stopOnSignals();
  try {
    await everyInterval(dir, intervalS, stop.signal, (_prev, cur) => writeTextfile(out, cur));
  } finally {
    stop.dispose();
  }
}

/** --once: two samples `intervalS` apart, one plain frame. */
async function once(dir: string, intervalS: number, opts: FrameOptions, format: FormatFlags): Promise<void> {
  const first = await readSample(dir);
  await sleep(intervalS * 1000);
  const cur = await readSample(dir);
  const summary = summarize(first, cur);
  if (!format.json && !format.csv) {
    process.stdout.write(`${renderFrame(summary, cur, opts).join('\n')}\n`);
    return;
  }
  const got = mountProvenance(dir, VERSION, commandLine());
  const rows = blockRows(cur);
  process.stdout.write(formatResult(format, {
    provenance: got.provenance ?? { kscrubfs: VERSION, command: commandLine(), unknown: got.why ?? 'no control file', ...(got.sysctl ? { sysctl: got.sysctl } : {}) },
    table: () => '',
    json: { summary: jsonSummary(summary), rows },
    columns: ['node', 'zone', 'order', 'notZeroedBlocks', 'zeroedBlocks', 'notZeroedPages', 'zeroedPages'],
    rows,
  }));
}

/** One row per node, zone and order: buddyinfo's blocks (zeroed null on a stock buddyinfo). */
function blockRows(cur: Sample): object[] {
  return cur.buddy.flatMap((z) => {
    const pages = zonePages(z);
    return z.total.map((total, order) => ({
      node: z.node, zone: z.zone, order,
      notZeroedBlocks: z.zeroed ? total - z.zeroed[order]! : total,
      zeroedBlocks: z.zeroed ? z.zeroed[order]! : null,
      notZeroedPages: pages.notZeroed[order]!,
      zeroedPages: z.zeroed ? pages.zeroed[order]! : null,
    }));
  });
}

/** The summary without wall-clock figures that differ on every run, for a result file. */
function jsonSummary(s: WatchSummary): object {
  return { ...s, wallDtS: undefined };
}

/** Sample every `intervalS` (from the start of the last sample) until `signal` fires. */
async function everyInterval(dir: string, intervalS: number, signal: AbortSignal, show: (prev: Sample | undefined, cur: Sample) => void): Promise<void> {
  let prev: Sample | undefined;
  while (!signal.aborted) {
    const cur = await readSample(dir);
    if (signal.aborted) return;
    show(prev, cur);
    prev = cur;
    const wait = intervalS * 1000 - (performance.now() - cur.wallMs);
    await sleep(Math.max(0, wait), undefined, { signal }).catch(() => undefined);
  }
}

/** stdout is a pipe or a file: a plain frame per refresh, a blank line between them. */
async function stream(dir: string, intervalS: number, opts: FrameOptions, signal: AbortSignal): Promise<void> {
  // A reader that goes away (`| head`) ends the watch, quietly.
  process.stdout.on('error', () => process.exit(0));
  let first = true;
  await everyInterval(dir, intervalS, signal, (prev, cur) => {
    process.stdout.write(`${first ? '' : '\n'}${renderFrame(summarize(prev, cur), cur, opts).join('\n')}\n`);
    first = false;
  });
}

/** A terminal: the frame redrawn in place on the alternate screen, fitted to the window. */
async function live(dir: string, o: WatchCliOptions, base: FrameOptions, signal: AbortSignal): Promise<void> {
  const out = process.stdout;
  const screen = new Screen(out);
  let last: [Sample | undefined, Sample] | undefined;
  const draw = (): void => {
    if (!last) return;
    const [prev, cur] = last;
    screen.draw(renderFrame(summarize(prev, cur), cur, {
      ...base, layout: 'grid', columns: out.columns || PLAIN_COLUMNS, rows: out.rows || 24, footer: 'Ctrl-C quits',
    }));
  };
  screen.enter();
  out.on('resize', draw);
  try {
    await everyInterval(dir, o.interval, signal, (prev, cur) => {
      last = [prev, cur];
      draw();
    });
  } finally {
    out.off('resize', draw);
    screen.leave();
  }
}

/**
 * The terminal, with plain ANSI (no terminal library): the alternate screen and a hidden
 * cursor while the view runs; each frame is drawn from the home position, every line erased
 * to its end and the rest of the screen below the frame cleared (a clear without flicker).
 * leave() restores both, also from an 'exit' handler should anything end the process early.
 */
class Screen {
  private entered = false;
  private readonly restore = (): void => this.leave();

  constructor(private readonly out: NodeJS.WriteStream) {}

  enter(): void {
    this.entered = true;
    process.on('exit', this.restore);
    this.out.write('\x1b[?1049h\x1b[?25l');
  }

  draw(lines: readonly string[]): void {
    this.out.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`);
  }

  leave(): void {
    if (!this.entered) return;
    this.entered = false;
    process.off('exit', this.restore);
    this.out.write('\x1b[?25h\x1b[?1049l');
  }
}

/**
 * SIGINT (Ctrl-C), SIGTERM, SIGHUP end the watch normally (exit 0) through the signal; should
 * a read hang on a dead daemon, the process exits anyway after a grace period.
 */
function stopOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const stop = (): void => {
    controller.abort();
    setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, stop);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of signals) process.off(s, stop);
    },
  };
}
