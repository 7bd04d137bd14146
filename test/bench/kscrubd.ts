import { modelChild, num, type BenchOptions, type SectionResult } from './common';

// kscrubd: how long the simulated kscrubd takes to zero all free memory of a fresh 1 TiB
// machine (virtual time: scrub_start 5 wakes every node, then tick 1 s at a time until every
// kscrubd sleeps) and how long the simulation takes to compute it (wall time, in a fresh
// process).

interface Scrub {
  wallMs: number;
  virtualS: number;
  ticks: number;
  freePages: number;
  zeroPages: number;
  pageSize: number;
  kscrubdBlocks: number;
}

export async function kscrubdBench(o: BenchOptions): Promise<SectionResult> {
  const rows: (string | number)[][] = [];
  const data: Record<string, unknown> = {};
  for (const preset of ['x86_64', 'altix']) {
    o.log(`kscrubd: scrubbing a 1 TiB ${preset} machine`);
    const r = await modelChild<Scrub>(['scrub', '--preset', preset, '--mem', '1T']);
    data[preset] = r;
    const gib = (r.zeroPages * r.pageSize) / 2 ** 30;
    rows.push([
      `${preset} 1 TiB`, num(gib, 1), num(r.kscrubdBlocks), num(r.virtualS, 1), num(gib / r.virtualS, 2),
      num(r.wallMs / 1e3, 2), num(r.virtualS / (r.wallMs / 1e3)),
    ]);
  }
  return {
    name: 'kscrubd',
    tables: [{
      title: 'kscrubd zeroing all free memory of a fresh 1 TiB machine (scrub_start 5, scrub_stop 4)',
      columns: ['machine', 'GiB zeroed', 'blocks', 'virtual s', 'virtual GiB/s', 'wall s', 'virtual s per wall s'],
      rows,
    }],
    targets: [],
    notes: ['x86_64 zeroes with the CPU (one kscrubd, one node); altix has four nodes, each kscrubd using the BTE for the blocks it accepts.'],
    data,
  };
}
