import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { findMount, fusermountUnmount, probe } from '../fuse/mountpoint';
import { PUBLISHED, compare, formatComparisons, pftOptionsFor } from '../workload/calibration';
import type { Comparison } from '../workload/calibration';
import { formatPftTable, runPft } from '../workload/pft';
import type { PftRow } from '../workload/pft';
import { CliError, action } from './errors';
import { pollUntil } from './poll';
import { clearProgress, progressLine } from './pft';

/** The machine of calibration.md: the altix preset, CPU zeroing only, a manual clock. */
const DAEMON_ARGS = ['--preset', 'altix', '--zero-drivers', 'cpu', '--clock', 'manual'];
const READY_MS = 30_000;

/**
 * `kscrubfs calibrate`: mount a private altix machine, run the published pft rows through its
 * control file (a fresh machine per row, as each was measured on a freshly booted box), and
 * print model vs published per column. Exit 1 when a column is off by more than ±10 %.
 */
export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description('run the published pft rows (shared/calibration.md) on a private altix mount and compare')
    .option('--json', 'print the comparisons as JSON')
    .action(action(async (o: { json?: boolean }) => {
      const rows: { label: string; row: PftRow }[] = [];
      const comparisons: Comparison[] = [];
      for (const pub of PUBLISHED) {
        const row = await withPrivateMount((dir) => runPft(dir, { ...pftOptionsFor(pub), progress: progressLine() }));
        clearProgress();
        rows.push({ label: pub.label, row: row[0]! });
        comparisons.push(...compare(pub, row[0]!));
      }
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ rows, comparisons }, null, 2)}\n`);
      } else {
        for (const r of rows) process.stdout.write(`${r.label}\n${formatPftTable([r.row])}\n`);
        process.stdout.write(formatComparisons(comparisons));
      }
      const off = comparisons.filter((c) => !c.ok);
      if (off.length > 0) throw new CliError(`${off.length} column(s) are off by more than ±10 %`);
    }));
}

/** Mount a fresh daemon in a temporary directory for `fn`, and always take it down again. */
async function withPrivateMount<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-calibrate-'));
  const daemon = spawn(process.execPath, [path.join(__dirname, 'main.js'), 'mount', dir, ...DAEMON_ARGS], {
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
      return findMount(dir) && (await probe(path.join(dir, 'buddyinfo'), 1000)) === 'ok' ? true : undefined;
    }, { timeoutMs: READY_MS, intervalMs: 50 });
    if (!ready) throw new CliError(`the calibration daemon did not mount ${dir}`);
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
