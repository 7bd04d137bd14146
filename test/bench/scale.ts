import { GIB, median, modelChild, num, type BenchOptions, type SectionResult, type Target } from './common';

// Scale: boot time and process RSS for small to huge machines, each booted in a fresh child
// process (three times; medians), and the RSS one touched page costs (touch 8 GiB after a
// warm-up GiB; ΔRSS after a full GC ÷ touched pages).

const MB = 1e6;
const MACHINES: ReadonlyArray<readonly [preset: string, mem: string]> = [
  ['altix', '6G'], ['x86_64', '6G'], ['altix', '1T'], ['x86_64', '1T'], ['altix', '64T'], ['x86_64', '64T'],
];

interface Boot {
  bootMs: number;
  rssBefore: number;
  rssAfter: number;
  pages: number;
}

interface Rss {
  pages: number;
  rssDelta: number;
  heapDelta: number;
  arrayBuffersDelta: number;
}

export async function scaleBench(o: BenchOptions): Promise<SectionResult> {
  const tries = o.quick ? 1 : 3;
  const rows: (string | number)[][] = [];
  const targets: Target[] = [];
  const data: Record<string, unknown> = {};
  o.log(`scale: booting ${MACHINES.length} machines ${tries}× each, then touching 8 GiB`);
  for (const [preset, mem] of MACHINES) {
    const boots: Boot[] = [];
    for (let i = 0; i < tries; i++) boots.push(await modelChild<Boot>(['boot', '--preset', preset, '--mem', mem]));
    const bootMs = median(boots.map((b) => b.bootMs));
    const rss = median(boots.map((b) => b.rssAfter));
    const delta = median(boots.map((b) => b.rssAfter - b.rssBefore));
    data[`${preset} ${mem}`] = boots;
    rows.push([`${preset} ${mem}`, num(boots[0]!.pages), bootMs.toFixed(1), num(rss / MB, 1), num(delta / MB, 1)]);
    if (mem === '64T') {
      targets.push({ what: `${preset} 64 TiB boot`, goal: '< 1 s', measured: `${bootMs.toFixed(1)} ms`, met: bootMs < 1000 });
      targets.push({ what: `${preset} 64 TiB process RSS after boot`, goal: '< 200 MB', measured: `${num(rss / MB, 1)} MB`, met: rss < 200 * MB });
    }
  }
  const perPage: (string | number)[][] = [];
  for (const preset of ['x86_64', 'altix']) {
    const runs: Rss[] = [];
    for (let i = 0; i < tries; i++) runs.push(await modelChild<Rss>(['rss', '--preset', preset, '--mem', '64G', '--gb', '8'], ['--expose-gc']));
    const bytes = median(runs.map((r) => r.rssDelta / r.pages));
    const buffers = median(runs.map((r) => r.arrayBuffersDelta / r.pages));
    const heap = median(runs.map((r) => r.heapDelta / r.pages));
    data[`rss ${preset}`] = runs;
    perPage.push([`${preset} 64 GiB, 8 GiB touched`, num(runs[0]!.pages), bytes.toFixed(2), buffers.toFixed(2), heap.toFixed(2), num((bytes * GIB) / (preset === 'altix' ? 16384 : 4096) / MB, 1)]);
    targets.push({ what: `RSS per touched page (${preset})`, goal: '≤ 16 bytes', measured: `${bytes.toFixed(2)} bytes`, met: bytes <= 16 });
  }
  return {
    name: 'scale',
    tables: [
      { title: `boot (createMachine) in a fresh process, median of ${tries}`, columns: ['machine', 'pages', 'boot ms', 'process RSS MB', 'RSS added by boot MB'], rows },
      { title: 'memory per touched page (ΔRSS after GC ÷ pages)', columns: ['machine', 'pages touched', 'RSS B/page', 'typed arrays B/page', 'JS heap B/page', 'MB per touched GiB'], rows: perPage },
    ],
    targets,
    notes: ['Per touched page the model keeps one pte (8 bytes, Float64Array) and one flag byte in its materialized section; untouched memory is one byte per top-order block (section state).'],
    data,
  };
}
