import { modelChild, num, type BenchOptions, type SectionResult } from './common';

// pace: how fast the simulated machine runs against the wall on the heaviest calibration runs
// — Lameter's pft 4 GiB × 3 with 8 threads on the altix preset, base (kscrubd off, every fault
// zeroes hot) and patched (kscrubd on, settled first) — each in a fresh process. The richer
// SMP fault path (lock spinners, line transfers, a shared bus per node) must keep it at least
// 10× real time, so a calibration stays a matter of seconds.

interface Pace {
  virtualS: number;
  wallS: number;
  pages: number;
}

export async function paceBench(o: BenchOptions): Promise<SectionResult> {
  const rows: (string | number)[][] = [];
  const targets: SectionResult['targets'] = [];
  const data: Record<string, unknown> = {};
  for (const scrub of ['off', 'on'] as const) {
    const what = scrub === 'off' ? 'base (kscrubd off)' : 'patched (kscrubd on, settled)';
    o.log(`pace: pft 4 GiB × 3, 8 threads, ${what}`);
    const r = await modelChild<Pace>(['pace', '--scrub', scrub, '--gb', '4', '--reps', '3', '--threads', '8']);
    data[scrub] = r;
    const pace = r.virtualS / r.wallS;
    rows.push([`altix pft 4 GiB × 3, 8 threads, ${what}`, num(r.pages), num(r.virtualS, 2), num(r.wallS, 2), num(pace, 1)]);
    targets.push({ what: `pace, ${what}`, goal: '≥ 10× real time', measured: `${num(pace, 1)}×`, met: pace >= 10 });
  }
  return {
    name: 'pace',
    tables: [{
      title: 'the simulated machine against the wall clock (one fresh process each, JIT cold)',
      columns: ['run', 'pages', 'virtual s', 'wall s', 'virtual s per wall s'],
      rows,
    }],
    targets,
    notes: ['Virtual time covers the repetitions (touch and exit), not the settling before a patched run.'],
    data,
  };
}
