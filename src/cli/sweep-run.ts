import { LocalControl } from '../control';
import type { MemoryBudget } from '../daemon';
import { createMachine } from '../model';
import { LocalClient, run as runCommand } from '../workload/client';
import { kscrubdShare } from '../workload/kscrubd-cost';
import { type PftRow, runPftOn } from '../workload/pft';
import { provenance } from '../workload/provenance';
import { type Point, type SweepSpec, type Value, pointRun } from './sweep-spec';
import { VERSION } from './version';
import { type Band, runBand } from '../workload/band';
import { bandFigures, bandsFor } from './band';

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
  /**
   * kscrubd's side of the bill, as payoff and trace replay give it: its CPU seconds for the
   * pages the row took prezeroed (its CPU per page zeroed on this machine), and fault/wsec
   * with that work done during the run (src/workload/kscrubd-cost.ts).
   */
  readonly kscrubd?: { readonly cpuS: number; readonly faultPerWsec: number };
  /** --band: flt/cpu/s and fault/wsec with their bands (src/workload/band.ts). */
  readonly band?: readonly Band[];
  readonly error?: string;
}

/**
 * Run one point on a fresh machine in this process: the model behind the control grammar,
 * no FUSE. Deterministic: a manual clock, so the row depends on the
 * point alone (not on the worker, the order or the number of jobs).
 */
export async function runPoint(spec: Pick<SweepSpec, 'dims' | 'name'>, p: Point, budget?: MemoryBudget, band = false): Promise<SweepRow> {
  const base = { key: p.key, sweep: spec.name, index: p.index, point: p.values, kscrubfs: VERSION };
  try {
    const run = pointRun(spec, p);
    let kscrubd: SweepRow['kscrubd'];
    const pft = async (cost: Readonly<Record<string, number>>): Promise<{ config: Record<string, string>; rows: PftRow[] }> => {
      const ctl = new LocalClient(new LocalControl(createMachine({ ...run.machine, cost: { ...run.machine.cost, ...cost } }), budget));
      for (const [name, value] of run.sysctl) ctl.writeSysctl(name, value);
      const out = await runPftOn(ctl, run.pft);
      const r = out.rows[0]!;
      const k = runCommand(ctl, { verb: 'stats' });
      const share = kscrubdShare({
        wallS: r.wallS, prezeroedPages: r.prezeroed, pageSize: k.page_size, cpus: k.cpus, busy: r.threads,
        cpuSPerPage: k.kscrubd_pages > 0 ? k.kscrubd_cpu_us / 1e6 / k.kscrubd_pages : 0,
      });
      kscrubd = { cpuS: share.cpuS, faultPerWsec: share.wallS > 0 ? r.pages / share.wallS : 0 };
      return out;
    };
    const { config, rows } = await pft({});
    const prov = provenance(config, VERSION, '');
    const point = { ...base, machine: prov.machine, clock: prov.clock, sysctl: prov.sysctl, row: rows[0]!, kscrubd: kscrubd! };
    if (!band) return point;
    // The same point with each fitted figure of its machine at each bound, one machine at a time.
    const figures = bandFigures(run.machine);
    const answers = (r: PftRow): number[] => [r.fltPerCpuS, r.faultPerWsec];
    const runs = await runBand(figures, ['flt/cpu/s', 'fault/wsec'], async (cost, step) => answers(step === null ? rows[0]! : (await pft(cost)).rows[0]!));
    return { ...point, band: bandsFor(run.machine, figures, runs) };
  } catch (err) {
    // A point the model refuses (a machine too small, an OOM) is a result too: said once, not rerun.
    return { ...base, error: (err as Error).message };
  }
}
