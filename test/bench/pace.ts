import { modelChild, num, type BenchOptions, type SectionResult } from './common';

// pace: how fast the simulated machine runs against the wall on the calibration runs —
// Lameter's pft 4 GiB × 3 on the altix preset at 1, 2, 4 and 8 threads, base (kscrubd off,
// every fault zeroes hot) and patched (kscrubd on, settled first) — and on the largest Altix
// 3000 these kernels ran (512 CPUs in 256 nodes) with 64 threads, each in a fresh process. The
// engine exists to run many simulated machines (fits, sweeps): the goal is at least 10× real
// time on every one.

interface Pace {
  virtualS: number;
  wallS: number;
  /** The process's CPU time meanwhile (its GC threads included): the wall time on an idle host. */
  cpuS: number;
  pages: number;
}

interface PaceRun {
  readonly what: string;
  readonly args: readonly string[];
}

function runs(quick: boolean): PaceRun[] {
  const out: PaceRun[] = [];
  for (const scrub of ['off', 'on'] as const) {
    for (const threads of quick ? [1, 8] : [1, 2, 4, 8]) {
      const what = scrub === 'off' ? 'base (kscrubd off)' : 'patched (kscrubd on, settled)';
      out.push({ what: `altix pft 4 GiB × 3, ${threads} thread${threads > 1 ? 's' : ''}, ${what}`, args: ['--scrub', scrub, '--gb', '4', '--reps', '3', '--threads', String(threads)] });
    }
  }
  out.push({
    what: 'altix 512 CPUs / 256 nodes, pft 4 GiB × 1, 64 threads, base',
    args: ['--scrub', 'off', '--gb', '4', '--reps', '1', '--threads', '64', '--nodes', '256', '--cpus', '512', '--mem', '512G'],
  });
  return out;
}

export async function paceBench(o: BenchOptions): Promise<SectionResult> {
  const rows: (string | number)[][] = [];
  const targets: SectionResult['targets'] = [];
  const data: Record<string, unknown> = {};
  for (const run of runs(o.quick)) {
    o.log(`pace: ${run.what}`);
    const r = await modelChild<Pace>(['pace', ...run.args]);
    data[run.what] = r;
    const pace = r.virtualS / r.wallS;
    rows.push([run.what, num(r.pages), num(r.virtualS, 2), num(r.wallS, 2), num(pace, 1), num(r.cpuS, 2), num(r.virtualS / r.cpuS, 1)]);
    targets.push({ what: `pace, ${run.what}`, goal: '≥ 10× real time', measured: `${num(pace, 1)}×`, met: pace >= 10 });
  }
  return {
    name: 'pace',
    tables: [{
      title: 'the simulated machine against the wall clock (one fresh process each, JIT cold)',
      columns: ['run', 'pages', 'virtual s', 'wall s', 'virtual s per wall s', 'CPU s', 'virtual s per CPU s'],
      rows,
    }],
    targets,
    notes: [
      'Virtual time covers the repetitions (touch and exit), not the settling before a patched run.',
      'The target is on wall time; CPU s is the process\'s own (GC threads included), what the wall would be on an idle host: on a shared host the two differ by the load.',
    ],
    data,
  };
}
