import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../helpers/mount';
import { num, type BenchOptions, type SectionResult } from './common';

// sweep: points per second of `kscrubfs sweep` at --jobs 1 and --jobs 2, side by side in one
// run (each point a fresh in-process machine: boot, a 64 MiB pft row, settle when scrubbing).

const execFileP = promisify(execFile);

export async function sweepBench(o: BenchOptions): Promise<SectionResult> {
  const spec = path.join(o.tmp, 'bench-sweep.json');
  writeFileSync(spec, JSON.stringify({
    name: 'bench',
    machine: { preset: ['x86_64', 'altix'] },
    workload: { bytes: '64M', threads: [1, 2, 4], scrub: ['off', 'on'], settle: true, cachelines: o.quick ? [1] : [1, 8] },
  }));
  const rows: (string | number)[][] = [];
  const data: Record<string, number> = {};
  for (const jobs of [1, 2]) {
    const out = path.join(o.tmp, `bench-sweep-${jobs}.jsonl`);
    o.log(`sweep: --jobs ${jobs}`);
    const start = performance.now();
    await execFileP(process.execPath, [CLI, 'sweep', spec, '--jobs', String(jobs), '-o', out]);
    const s = (performance.now() - start) / 1000;
    const points = o.quick ? 12 : 24;
    data[`jobs${jobs}`] = points / s;
    rows.push([jobs, points, num(s, 2), num(points / s, 1)]);
  }
  return {
    name: 'sweep',
    tables: [{ title: 'kscrubfs sweep, whole command (worker start-up included)', columns: ['--jobs', 'points', 'wall s', 'points/s'], rows }],
    targets: [],
    notes: [`--jobs 2 ÷ --jobs 1: ${num(data.jobs2! / data.jobs1!, 2)}× (this host: 2 cores, shared)`],
    data,
  };
}
