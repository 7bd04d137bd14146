import { Argument, type Command, InvalidArgumentError, Option } from 'commander';
import { configPairs } from '../control/execute';
import { ZERO_DRIVERS, thpUnsupported } from '../model';
import { ModelError, PRESETS, type PreemptModel, formatSize, parseZeroingPolicy } from '../uapi';
import { provenance, toJson } from '../workload/provenance';
import { CliError, action } from './errors';
import { byteSize, hugeClearMachineOptions, hugeClearOption, integer, nameList, preemptOption } from './options';
import { HUGETLB_CASES, HUGETLB_POLICIES, runHugetlbPolicies } from './policies-hugetlb';
import { CHURN_GAP_NS, CHURN_ROUNDS, COMBINE, POLICY_CASES, type PolicyRow, SCENARIOS, type ScenarioName, type ScenarioOptions, caseMachine, isCombo, runPolicies, runTracePolicies } from './policies-run';
import { readTrace } from '../workload/trace-format';
import { type BarPanel, renderPoliciesSvg } from '../workload/plot';
import { writeOutput } from '../workload/output-file';
import { VERSION, commandLine } from './version';
import { BAND_HELP, type BandFlags, addBandOptions, bandFigures, bandText, bandsFor, writeTornado } from './band';
import { type Band, runBand } from '../workload/band';
import { clearProgress, progressLine } from './progress';

interface PoliciesFlags extends BandFlags {
  preset: string;
  mem?: string;
  cpus?: number;
  nodes?: number;
  zeroDrivers?: string[];
  size: number;
  threads: number;
  only?: string[];
  hugetlb?: number;
  hugeClear?: string;
  preempt?: PreemptModel;
  json?: boolean;
  svg?: string;
}

/** The rows of one comparison, with the machine options given (a band run changes its figures). */
type RunRows = (opts: ScenarioOptions) => Promise<PolicyRow[]>;

/**
 * --only: rows, comma-separated; a row is a policy or policies joined by "+", a machine booted
 * with all of them (`init_on_free+khzerod`, as `mount --zeroing-policy init_on_free,khzerod`).
 * A combination is checked as mount checks a policy list (unknown, twice, or two the kernels
 * cannot have at once: refused with the reason) and named in table order, so one set is one
 * row. The whole list is refused if any row is bad.
 */
function caseList(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  // Checked against every case here; against the run's own list (hugetlb or not) in the action.
  const known = [...new Set([...POLICY_CASES, ...HUGETLB_CASES].map((c) => c.name))];
  const names = items.map((item) => {
    if (!isCombo(item)) {
      if (!known.includes(item)) throw new InvalidArgumentError(`"${item}" is not one of ${known.join(', ')} (or several of them joined by ${COMBINE})`);
      return item;
    }
    const parts = item.split(COMBINE).map((s) => s.trim());
    if (parts.includes('')) throw new InvalidArgumentError(`"${item}" has an empty name between its ${COMBINE}s`);
    if (parts.includes('none')) throw new InvalidArgumentError(`"${item}": none is no policy at all, it combines with nothing`);
    if (new Set(parts).size !== parts.length) throw new InvalidArgumentError(`"${item}" names a policy twice`);
    try {
      return parseZeroingPolicy(parts).join(COMBINE);
    } catch (err) {
      if (err instanceof ModelError) throw new InvalidArgumentError(`"${item}": ${err.message.replace(/^zeroing policy: /, '')}`);
      throw err;
    }
  });
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new InvalidArgumentError(`"${value}" names ${isCombo(twice) ? `the combination ${twice}` : 'a policy'} twice`);
  return names;
}

/** The rows a run refuses: a buddy policy in a hugetlb comparison, a hugetlb proposal outside one; why, or null. */
function wrongRow(name: string, hugetlb: boolean): string | null {
  const parts = name.split(COMBINE);
  const proposals = parts.filter((p) => (HUGETLB_POLICIES as readonly string[]).includes(p));
  if (hugetlb) {
    if (isCombo(name) ? proposals.length > 0 : HUGETLB_CASES.some((c) => c.name === name)) return null;
    return `policies: --only "${name}" is not a hugetlb policy (${HUGETLB_CASES.map((c) => c.name).join(', ')}, or a combination with ${HUGETLB_POLICIES.join(' or ')})`;
  }
  if (proposals.length === 0) return null;
  return `policies: --only "${name}": ${proposals.join(' and ')} pre-zero${proposals.length === 1 ? 'es' : ''} hugetlb pages, which only a --hugetlb comparison has`;
}

/** `kscrubfs policies SCENARIO`: one scenario under each zeroing policy, side by side. */
export function registerPolicies(program: Command): void {
  const cmd = program
    .command('policies')
    .description(`run one scenario under each zeroing policy (${POLICY_CASES.map((c) => c.name).join(', ')}) on one machine, side by side`)
    .addArgument(new Argument('<scenario>', `pft: map, write, exit; restart: an exit and a new process faulting as much at once; vm-start: map and write with transparent huge pages (a PMD each: 2 MiB on x86-64, 32 MiB on altix); churn: ${CHURN_ROUNDS} rounds of pft, ${CHURN_GAP_NS / 1e6} ms idle after each; trace FILE: a recorded program's faults (kscrubfs trace record)`).choices(SCENARIOS))
    .addArgument(new Argument('[file]', 'the trace, for the trace scenario'))
    .addOption(new Option('--preset <name>', 'machine preset').choices(PRESETS).default('x86_64'))
    .option('--mem <size>', "memory size (default: the preset's)")
    .option('--cpus <n>', 'CPUs', integer(1))
    .option('--nodes <n>', 'NUMA nodes', integer(1))
    .option('--zero-drivers <list>', `kscrubd's zero drivers, newest first (comma list of ${ZERO_DRIVERS.join(', ')}; default: the preset's)`, nameList(ZERO_DRIVERS))
    .option('-s, --size <size>', 'bytes the program maps and writes', byteSize, 256 * 2 ** 20)
    .option('-t, --threads <n>', 'threads writing them', integer(1), 1)
    .option('--only <list>', `only these rows (comma list of ${POLICY_CASES.map((c) => c.name).join(', ')}; with --hugetlb: ${HUGETLB_CASES.map((c) => c.name).join(', ')}; or policies joined by ${COMBINE}, a machine booted with all of them: init_on_free${COMBINE}init_on_alloc, init_on_free${COMBINE}khzerod with --hugetlb)`, caseList)
    .option('--hugetlb <size>', 'vm-start and restart on a hugetlb pool of pages of this size (one the machine has: 2M or 1G on x86-64, 4M on i386, 256M on altix) sized to the VM, under the pool\'s pre-zeroing policies (none, khzerod, zeroable_hugepages)', byteSize)
    .addOption(hugeClearOption())
    .addOption(preemptOption())
    .option('--json', 'print one JSON object: how the machine was made, the scenario, and a row per policy')
    .option('--svg <file>', 'also draw the rows: one panel per column, a bar per policy (SVG; with --band each time a whisker over its band)');
  addBandOptions(cmd, "each policy's times (ready, app cpu, exit, bg cpu, prep cpu, max fault, corun)")
    .addHelpText('after', `
Each policy runs on a fresh machine of the same shape with a manual clock (the same command
prints the same bytes). Before the scenario the machine idles until background zeroing is
done (its zeroing then is prep CPU, as is init_on_free's boot wipe); after it, again
(background CPU). A trace's faults run back to back, each thread on its own CPU.

Columns: ready = until the program has written all its memory; app cpu = its user + system
time, exit included (exit = the exit's share); bg cpu = the background zeroing thread (kscrubd,
kprezerod, the idle zeroer) during and after; traffic =
bytes the clearing moved (each page cleared read for ownership and written back); hit =
pages faulted that were already zero; max fault = the slowest fault; unusable = the kernel's
unusable free space index at 2 MiB afterwards (free memory in blocks too small for it);
corun = the time a cache-sensitive job beside the program loses refetching what the clearing
evicted from its last-level cache (one job a cache, its working set half the cache, summed):
clear_page in the faults and kscrubd's rep stos evict, CLZERO, non-temporal stores and the
BTE do not (--zero-drivers clzero,cpu on epyc; bte,cpu on altix).

${BAND_HELP}

Example:
  kscrubfs policies restart --size 1G`)
    .action(action(async (scenario: ScenarioName, file: string | undefined, o: PoliciesFlags) => {
      if ((scenario === 'trace') !== (file !== undefined)) {
        throw new CliError('KSCRUB_USAGE', scenario === 'trace' ? 'policies trace: name the trace file (kscrubfs policies trace FILE)' : `policies ${scenario}: takes no file (only trace does)`);
      }
      const machine = {
        preset: o.preset,
        ...(o.mem === undefined ? {} : { mem: o.mem }),
        ...(o.cpus === undefined ? {} : { cpus: o.cpus }),
        ...(o.nodes === undefined ? {} : { nodes: o.nodes }),
        ...(o.zeroDrivers === undefined ? {} : { zeroDrivers: o.zeroDrivers }),
        ...hugeClearMachineOptions(o),
      };
      const opts: ScenarioOptions = { machine, bytes: o.size, threads: o.threads };
      // The machine's shape (the first case's; every case has the same), checked before anything runs.
      const base = caseMachine(POLICY_CASES[0]!, opts);
      // A trace brings its own footprint; --size is the built-in scenarios'.
      if (scenario !== 'trace' && o.size > base.config.memBytes / 2) throw new CliError('KSCRUB_USAGE', `policies: --size ${formatSize(o.size)} is more than half the machine's ${formatSize(base.config.memBytes)} (restart holds two copies at once)`);
      for (const n of o.only ?? []) {
        const why = wrongRow(n, o.hugetlb !== undefined);
        if (why !== null) throw new CliError('KSCRUB_USAGE', why);
      }
      if (scenario === 'vm-start' && o.hugetlb === undefined) {
        const why = thpUnsupported(base, base.procs);
        // Such a machine still has hugetlb pages: say which size runs the VM on them.
        const sizes = base.hugetlb.hstates.map((h) => (h.kB % 2 ** 20 === 0 ? `${h.kB / 2 ** 20}G` : `${h.kB / 1024}M`));
        if (why !== null) throw new CliError('KSCRUB_USAGE', `policies vm-start: ${why}; --hugetlb ${sizes.join('|')} runs the VM on its hugetlb pages instead`);
      }
      const hugeBytes = o.hugetlb;
      const trace = file === undefined ? undefined : readTrace(file);
      const runRows: RunRows = async (op) => {
        if (hugeBytes !== undefined) return runHugetlbPolicies(scenario, op, hugeBytes, o.only);
        return trace === undefined ? runPolicies(scenario as Exclude<ScenarioName, 'trace'>, op, o.only) : runTracePolicies(trace, op, o.only);
      };
      const rows = await runRows(opts);
      const band = o.band ? await policiesBand(scenario, opts, o, rows, runRows) : undefined;
      // A hugetlb run says how its faults cleared: the mode, and the extent the preemption model allows.
      const clearing = base.config.hugeClear === 'pages' ? 'page at a time' : `extents, preempt ${base.config.preempt ? 'full' : 'none'}`;
      const title = hugeBytes === undefined ? scenario : `${scenario} (hugetlb ${formatSize(hugeBytes)}, cleared ${clearing})`;
      if (o.svg !== undefined) writePoliciesSvg(o.svg, title, base.config.preset, base.config.memBytes, o, rows, band?.bands);
      if (o.json) {
        const prov = provenance(Object.fromEntries(configPairs(base)), VERSION, commandLine());
        const hugetlb = hugeBytes === undefined ? {} : { hugetlb_bytes: hugeBytes };
        process.stdout.write(toJson(prov, { scenario: { name: scenario, bytes: o.size, threads: o.threads, ...hugetlb }, rows, ...(band && { band: band.bands }) }));
        return;
      }
      process.stdout.write(formatPolicyTable(title, base.config.preset, base.config.memBytes, o, rows) + (band?.text ?? ''));
    }));
}

/**
 * --band: the scenario again with each fitted figure at each bound; each policy's time columns
 * with their bands. A time the point run left at 0 (no policy zeroing: no bg cpu) has no band:
 * a band is the point times a factor.
 */
async function policiesBand(scenario: ScenarioName, opts: ScenarioOptions, o: PoliciesFlags, point: readonly PolicyRow[], runRows: RunRows): Promise<{ bands: Band[]; text: string }> {
  const figures = bandFigures(opts.machine);
  const cells = point.flatMap((r, i) => BAND_COLUMNS.filter((c) => c.value(r) !== 0).map((c) => ({ row: i, column: c, name: `${r.policy}: ${c.head}` })));
  const names = cells.map((c) => c.name);
  const answers = (rows: readonly PolicyRow[]): number[] => cells.map((c) => c.column.value(rows[c.row]!));
  const progress = progressLine();
  const runs = await runBand(figures, names, async (cost) => {
    // Let a signal's handler and the progress line have their turn between runs.
    await new Promise((resolve) => setImmediate(resolve));
    return answers(await runRows({ ...opts, machine: { ...opts.machine, cost: { ...opts.machine.cost, ...cost } } }));
  }, progress);
  clearProgress();
  const bands = bandsFor(opts.machine, figures, runs);
  if (o.tornado !== undefined) {
    writeTornado(o.tornado, bands.filter((b) => b.answer.endsWith('ready ms')).map((b) => ({ title: b.answer, band: b })),
      `policies ${scenario}: which fitted figures move the time to ready`, [`each fitted cost figure at its lower and upper bound, one at a time (${runs.steps.length} runs); band: √(Σ swing² + calibration error²)`]);
  }
  return { bands, text: bandText(bands, figures, runs) };
}

/** The table's first line: what ran, on which machine. */
function tableTitle(scenario: string, preset: string, memBytes: number, o: { size: number; threads: number }): string {
  const plural = o.threads === 1 ? 'thread' : 'threads';
  return scenario === 'trace' ? `trace on ${preset} (${formatSize(memBytes)})` : `${scenario} on ${preset} (${formatSize(memBytes)}): ${formatSize(o.size)}, ${o.threads} ${plural}`;
}

/** --svg: the rows drawn through the project's SVG renderer, with --band's bands as whiskers. */
function writePoliciesSvg(file: string, scenario: string, preset: string, memBytes: number, o: { size: number; threads: number }, rows: readonly PolicyRow[], bands?: readonly Band[]): void {
  const svg = renderPoliciesSvg(policyPanels(rows, bands), { title: `kscrubfs policies: ${tableTitle(scenario, preset, memBytes, o)}`, provenance: `kscrubfs ${VERSION}: ${commandLine()}` });
  try {
    writeOutput(file, svg);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `--svg: cannot write ${file}: ${(err as Error).message}`);
  }
}

/** The table's columns after `policy`, each a value of the row and how it prints: the table and the chart both read this list. */
const COLUMNS: readonly { head: string; value: (r: PolicyRow) => number; format: (v: number) => string }[] = [
  { head: 'ready ms', value: (r) => r.readyNs / 1e6, format: (v) => v.toFixed(3) },
  { head: 'app cpu ms', value: (r) => r.appCpuNs / 1e6, format: (v) => v.toFixed(3) },
  { head: 'exit ms', value: (r) => r.exitNs / 1e6, format: (v) => v.toFixed(3) },
  { head: 'bg cpu ms', value: (r) => r.backgroundCpuNs / 1e6, format: (v) => v.toFixed(3) },
  { head: 'prep cpu ms', value: (r) => r.prepCpuNs / 1e6, format: (v) => v.toFixed(3) },
  { head: 'traffic MiB', value: (r) => r.trafficBytes / 2 ** 20, format: (v) => v.toFixed(1) },
  { head: 'hit %', value: (r) => r.hitRate * 100, format: (v) => v.toFixed(1) },
  { head: 'max fault us', value: (r) => r.maxFaultNs / 1e3, format: (v) => v.toFixed(2) },
  { head: 'unusable', value: (r) => r.unusable, format: (v) => v.toFixed(3) },
  { head: 'corun ms', value: (r) => r.corunNs / 1e6, format: (v) => v.toFixed(3) },
];

/** The columns --band gives a band: the times, which the fitted cost figures move. */
const BAND_COLUMNS = COLUMNS.filter((c) => / (ms|us)$/.test(c.head));

/** The chart's panels: a column each, a bar per policy. */
export function policyPanels(rows: readonly PolicyRow[], bands: readonly Band[] = []): BarPanel[] {
  const byAnswer = new Map(bands.map((b) => [b.answer, b]));
  return COLUMNS.map((c) => ({
    title: c.head, format: c.format,
    bars: rows.map((r) => {
      const b = byAnswer.get(`${r.policy}: ${c.head}`);
      return { name: r.policy, value: c.value(r), ...(b && { band: { lo: b.lo, hi: b.hi } }) };
    }),
  }));
}

/** The rows as an aligned table, a line saying what ran first. */
export function formatPolicyTable(scenario: string, preset: string, memBytes: number, o: { size: number; threads: number }, rows: readonly PolicyRow[]): string {
  const head = ['policy', ...COLUMNS.map((c) => c.head)];
  const body = rows.map((r) => [r.policy, ...COLUMNS.map((c) => c.format(c.value(r)))]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return `${tableTitle(scenario, preset, memBytes, o)}\n${[line(head), ...body.map(line)].join('\n')}\n`;
}
