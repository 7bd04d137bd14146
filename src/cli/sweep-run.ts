import { LocalControl } from '../control';
import type { MemoryBudget } from '../daemon';
import { createMachine } from '../model';
import { LocalClient } from '../workload/client';
import { type PftRow, runPftOn } from '../workload/pft';
import { provenance } from '../workload/provenance';
import { type Point, type SweepSpec, type Value, pointRun } from './sweep-spec';
import { VERSION } from './version';

/** One line of a sweep's output: the point, how its machine was made, and its pft row (or why it failed). */
export interface SweepRow {
  readonly key: string;
  readonly sweep: string;
  readonly index: number;
  readonly point: Readonly<Record<string, Value>>;
  readonly kscrubfs: string;
  readonly machine?: unknown;
  readonly clock?: unknown;
  readonly sysctl?: unknown;
  readonly row?: PftRow;
  readonly error?: string;
}

/**
 * Run one point on a fresh machine in this process: the model behind the control grammar,
 * no FUSE. Deterministic: a manual clock, so the row depends on the
 * point alone (not on the worker, the order or the number of jobs).
 */
export async function runPoint(spec: Pick<SweepSpec, 'dims' | 'name'>, p: Point, budget?: MemoryBudget): Promise<SweepRow> {
  const base = { key: p.key, sweep: spec.name, index: p.index, point: p.values, kscrubfs: VERSION };
  try {
    const run = pointRun(spec, p);
    const ctl = new LocalClient(new LocalControl(createMachine(run.machine), budget));
    for (const [name, value] of run.sysctl) ctl.writeSysctl(name, value);
    const { config, rows } = await runPftOn(ctl, run.pft);
    const prov = provenance(config, VERSION, '');
    return { ...base, machine: prov.machine, clock: prov.clock, sysctl: prov.sysctl, row: rows[0]! };
  } catch (err) {
    // A point the model refuses (a machine too small, an OOM) is a result too: said once, not rerun.
    return { ...base, error: (err as Error).message };
  }
}
