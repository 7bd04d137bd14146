import { modelChild, num, type BenchOptions, type SectionResult } from './common';

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
        title: 'render + Buffer at open, µs per file (best of 5 rounds of 2,000)',
        columns: ['file', ...machines],
        rows: files.map((f) => [f.slice(1), ...machines.map((m) => num(h.render[m]![f]!, 1))]),
      },
    ],
    targets: [],
    notes: [],
    data: h as unknown as Record<string, unknown>,
  };
}
