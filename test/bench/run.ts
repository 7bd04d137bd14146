import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VERSION } from '../../src/cli/version';
import { findMount } from '../../src/fuse/mountpoint';
import { toCsv } from '../../src/workload/provenance';
import { hostInfo, type BenchOptions, type SectionResult, type Table, type Target } from './common';
import { faultsBench } from './faults';
import { hotPathsBench } from './hot-paths';
import { kscrubdBench } from './kscrubd';
import { livenessBench } from './liveness';
import { opensBench } from './opens';
import { paceBench } from './pace';
import { readsBench } from './reads';
import { scaleBench } from './scale';
import { sweepBench } from './sweep';

// `npm run bench` (= scripts/setup.sh && node dist/test/bench/run.js): every benchmark, one
// after another, then a table per section and the issue's targets, met or not. Not part of
// npm test. Results and method: test/bench/RESULTS.md.
//
//   node dist/test/bench/run.js [--json|--csv] [--quick] [--only reads,faults,scale,kscrubd,pace,liveness,opens,hot,sweep]
//
// --json   one JSON document on stdout (version, command, host, tables, targets and the raw numbers)
// --csv    every table cell as one CSV line (section, table, row, column, value), the version,
//          command and host as # comment lines first
// --quick  fewer rounds: a smoke run whose numbers are not for publishing
// Progress goes to stderr.

const SECTIONS: Record<string, (o: BenchOptions) => Promise<SectionResult>> = {
  reads: readsBench,
  faults: faultsBench,
  scale: scaleBench,
  kscrubd: kscrubdBench,
  pace: paceBench,
  liveness: livenessBench,
  opens: opensBench,
  hot: hotPathsBench,
  sweep: sweepBench,
};

interface Flags {
  json: boolean;
  csv: boolean;
  quick: boolean;
  only: string[];
}

function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = { json: false, csv: false, quick: false, only: Object.keys(SECTIONS) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') flags.json = true;
    else if (arg === '--csv') flags.csv = true;
    else if (arg === '--quick') flags.quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const list = arg.includes('=') ? arg.slice('--only='.length) : argv[++i] ?? '';
      flags.only = list.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = flags.only.filter((s) => !(s in SECTIONS));
      if (unknown.length > 0 || flags.only.length === 0) usage(`unknown section(s): ${unknown.join(', ') || '(none given)'}`);
    } else {
      usage(`unknown option ${arg}`);
    }
  }
  if (flags.json && flags.csv) usage('give --json or --csv, not both');
  return flags;
}

function usage(why: string): never {
  process.stderr.write(`bench: ${why}\nusage: node dist/test/bench/run.js [--json|--csv] [--quick] [--only ${Object.keys(SECTIONS).join(',')}]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const host = hostInfo();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-bench-'));
  const started = Date.now();
  const log = (msg: string): void => {
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${msg}\n`);
  };
  const o: BenchOptions = { quick: flags.quick, log, tmp };
  const results: SectionResult[] = [];
  const failures: string[] = [];
  try {
    for (const name of flags.only) {
      try {
        results.push(await SECTIONS[name]!(o));
      } catch (err) {
        failures.push(`${name}: ${(err as Error).message}`);
        log(`${name} failed: ${(err as Error).stack ?? err}`);
      }
    }
  } finally {
    cleanUp(tmp);
  }
  const end = { seconds: Math.round((Date.now() - started) / 1000), loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100) };
  const command = ['bench', ...process.argv.slice(2)].join(' ');
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ kscrubfs: VERSION, command, host, end, quick: flags.quick, sections: results, failures }, null, 2)}\n`);
  } else if (flags.csv) {
    const cells = results.flatMap((r) => r.tables.flatMap((t) => t.rows.flatMap((row, i) => t.columns.map((column, c) => ({
      section: r.name, table: t.title, row: i + 1, column, value: row[c] ?? '',
    })))));
    const comments = [
      `# kscrubfs ${VERSION}`, `# command: ${command}`,
      `# host: ${Object.entries(host).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`,
      `# end: seconds=${end.seconds} loadavg=${end.loadavg.join(',')} quick=${flags.quick}`,
      ...failures.map((f) => `# FAILED ${f}`),
    ];
    process.stdout.write(`${comments.join('\n')}\n${toCsv(null, ['section', 'table', 'row', 'column', 'value'], cells)}`);
  } else {
    process.stdout.write(report(host, end, results, failures));
  }
  if (failures.length > 0) process.exitCode = 1;
}

/** Remove the scratch directory — never while something is still mounted in it. */
function cleanUp(tmp: string): void {
  const mounted = ['altix', 'x86_64', 'minimal', 'minimal2', 'minimal14k', 'lxcfs', 'lxcfs-debug', 'trace0', 'trace1', 'pft']
    .map((d) => path.join(tmp, d)).filter((d) => findMount(d));
  if (mounted.length > 0) {
    process.stderr.write(`bench: still mounted, leaving ${tmp} in place: ${mounted.join(', ')}\n`);
    return;
  }
  rmSync(tmp, { recursive: true, force: true });
}

function report(host: ReturnType<typeof hostInfo>, end: { seconds: number; loadavg: number[] }, results: readonly SectionResult[], failures: readonly string[]): string {
  let out = `kscrubfs bench — ${host.date}\n`;
  out += `host: ${host.nproc} × ${host.cpuModel}, ${host.memGiB} GiB, ${host.kernel}, node ${host.node}, THP ${host.thp}\n`;
  out += `load average: ${host.loadavg.join(' ')} at start, ${end.loadavg.join(' ')} at the end (${end.seconds} s)\n`;
  for (const r of results) {
    out += `\n== ${r.name} ==\n`;
    for (const t of r.tables) out += `\n${formatTable(t)}`;
    for (const n of r.notes) out += `\n  note: ${n}`;
    out += '\n';
  }
  const targets = results.flatMap((r) => r.targets);
  if (targets.length > 0) {
    out += `\n== targets ==\n\n${formatTable({
      title: '',
      columns: ['', 'target', 'goal', 'measured'],
      rows: targets.map((t: Target) => [t.met === undefined ? 'n/a' : t.met ? 'met' : 'NOT MET', t.what, t.goal, t.note ? `${t.measured} (${t.note})` : t.measured]),
    })}`;
  }
  for (const f of failures) out += `\nFAILED ${f}\n`;
  return out;
}

function formatTable(t: Table): string {
  const cells = [t.columns, ...t.rows].map((row) => row.map(String));
  const widths = t.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return `${t.title ? `${t.title}\n` : ''}${cells.map(line).join('\n')}\n`;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
