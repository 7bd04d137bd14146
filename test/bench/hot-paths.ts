import { modelChild, num, type BenchOptions, type SectionResult, type Target } from './common';

// The allocator's hot paths one at a time, and the renderers on small and huge machines (a
// renderer walks zone counters, never pages: its cost must not grow with memory). Absolute
// times: compare them with each other and across commits on one machine, not across machines.

interface Hot {
  rmqueueNs: number;
  freeOnePageNs: number;
  pcpAllocFreeNs: number;
  render: Record<string, Record<string, number>>;
}

export async function hotPathsBench(o: BenchOptions): Promise<SectionResult> {
  o.log('hot paths: rmqueue, __free_one_page, the per-cpu lists, the renderers');
  const h = await modelChild<Hot>(['hot']);
  const machines = Object.keys(h.render);
  const files = Object.keys(h.render[machines[0]!]!);
  // 64× the memory, same preset: a renderer that walked pages or sections would take ~64× as
  // long; one that reads counters only moves with the width of its numbers (64 TiB counts pass
  // 2^31 and print as doubles). Files under a microsecond are left out: their ratio is noise.
  const targets: Target[] = [];
  for (const preset of ['altix', 'x86_64']) {
    const one = h.render[`${preset} 1 TiB`]!;
    const big = h.render[`${preset} 64 TiB`]!;
    const timed = files.filter((f) => one[f]! >= 1);
    const worst = Math.max(...timed.map((f) => big[f]! / one[f]!));
    targets.push({
      what: `rendering does not grow with memory: ${preset} 64 TiB vs 1 TiB, worst of ${timed.map((f) => f.slice(1)).join(', ')}`,
      goal: '≤ 2× for 64× the memory', measured: `${worst.toFixed(2)}×`, met: worst <= 2,
    });
  }
  return {
    name: 'hot paths',
    tables: [
      {
        title: 'allocator, ns per call (x86_64 16 GiB, best of 5 rounds of 200,000)',
        columns: ['path', 'ns'],
        rows: [
          ['rmqueue: takeBlock(order 0) from the buddy lists, splitting', num(h.rmqueueNs, 1)],
          ['__free_one_page: freeBlock(order 0), coalescing', num(h.freeOnePageNs, 1)],
          ['allocPages + freePages through the per-cpu lists', num(h.pcpAllocFreeNs, 1)],
        ],
      },
      {
        title: 'open of a snapshot: render + first read into a 64 KiB reply buffer, µs per file (best of 5 rounds of 2,000)',
        columns: ['file', ...machines],
        rows: files.map((f) => [f.slice(1), ...machines.map((m) => num(h.render[m]![f]!, 1))]),
      },
    ],
    targets,
    notes: ['Renderers read zone counters only: a 64 TiB machine has the zones and CPUs of a small one of its preset; only wider numbers (more digits, counts past the small-number table) cost a little more than on a few GiB.'],
    data: h as unknown as Record<string, unknown>,
  };
}
