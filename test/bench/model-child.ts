import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { createMachine, NOT_ZEROED, type Machine, type MachineOptions } from '../../src/model';
import type { PresetName } from '../../src/uapi';
import { KIND_ALLOC, pageFlags } from '../../src/model/page';
import { FILES, Snapshot } from '../../src/procfs';

// The model benchmarks, each in a fresh process so that one's heap, JIT state and RSS never
// leak into another's figures. The parent (test/bench/*.ts) runs
//
//   node dist/test/bench/model-child.js <what> --preset P --mem M [...]
//
// and reads the one JSON line this prints. <what>:
//   faults  a worker: one pft repetition (touch G GiB with T threads) per "rep" line on
//           stdin, one JSON line each (the fault path end to end in the model)
//   boot    createMachine: wall ms and process RSS before/after (the scale target)
//   rss     touch G GiB and report ΔRSS per touched page (needs --expose-gc)
//   scrub   scrub_start on, tick until every kscrubd sleeps: virtual and wall time
//   hot     the allocator's hot paths one by one (ns per call) and the renderers (µs per file)
//   pace    Lameter's pft 4 GiB × 3 on the altix preset (CPU zeroing, no prefault): virtual
//           time simulated against wall time, --scrub off (base) or on (settled first);
//           --nodes N --cpus C [--mem M] for a bigger altix (the 512-CPU, 256-node one)

type Args = Record<string, string>;

function parseArgs(argv: readonly string[]): { what: string; args: Args } {
  const [what = '', ...rest] = argv;
  const args: Args = {};
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i]!;
    if (!key.startsWith('--') || rest[i + 1] === undefined) throw new Error(`model-child: bad argument ${key}`);
    args[key.slice(2)] = rest[i + 1]!;
  }
  return { what, args };
}

function machineOptions(args: Args): MachineOptions {
  return {
    preset: (args.preset ?? 'x86_64') as PresetName,
    ...(args.mem ? { mem: args.mem } : {}),
    clock: 'manual',
  };
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('model-child: run with --expose-gc');
  g();
  g();
}

/**
 * A worker for interleaved fault measurements: boots the machine, then does one pft
 * repetition in the model per "rep" line on stdin (a new process maps G GiB, T threads touch
 * every page, it exits) and answers one JSON line each. The first repetition is the caller's
 * warm-up (the JIT has not compiled the fault path yet). EOF ends it.
 */
async function faults(args: Args): Promise<undefined> {
  const m = createMachine(machineOptions(args));
  m.setSysctl('max_prealloc_order', Number(args.prealloc ?? 3));
  const bytes = Number(args.gb ?? 1) * 2 ** 30;
  const threads = Number(args.threads ?? 1);
  const lines = createInterface({ input: process.stdin });
  process.stdout.write('{"ready":true}\n');
  for await (const line of lines) {
    if (line.trim() !== 'rep') throw new Error(`model-child faults: expected "rep", got ${JSON.stringify(line)}`);
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, bytes);
    const t0 = performance.now();
    const c0 = cpuMs();
    const r = m.procs.touch(id, { addr, size, threads });
    const wallMs = performance.now() - t0;
    const cpu = cpuMs() - c0;
    const e0 = performance.now();
    m.procs.exit(id);
    const exitMs = performance.now() - e0;
    process.stdout.write(`${JSON.stringify({ pages: r.pages, faults: r.faults, wallMs, cpuMs: cpu, exitMs })}\n`);
  }
  return undefined;
}

function boot(args: Args): unknown {
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const m = createMachine(machineOptions(args));
  const bootMs = performance.now() - t0;
  const rssAfter = process.memoryUsage().rss;
  return { bootMs, rssBefore, rssAfter, zones: m.zones.length, pages: m.totalPages, sections: m.materializedSections() };
}

function rss(args: Args): unknown {
  const m = createMachine(machineOptions(args));
  m.setSysctl('max_prealloc_order', Number(args.prealloc ?? 3));
  const gib = Number(args.gb ?? 8);
  const id = m.procs.create().id;
  const { addr, size } = m.procs.mmap(id, (gib + 1) * 2 ** 30);
  // The first GiB warms the JIT and sizes the heap; the measured GiBs follow it.
  m.procs.touch(id, { addr, size: 2 ** 30, threads: 1 });
  gc();
  const before = process.memoryUsage();
  const r = m.procs.touch(id, { addr: addr + 2 ** 30, size: size - 2 ** 30, threads: 1 });
  gc();
  const after = process.memoryUsage();
  return {
    pages: r.pages,
    rssDelta: after.rss - before.rss,
    heapDelta: after.heapUsed - before.heapUsed,
    arrayBuffersDelta: after.arrayBuffers - before.arrayBuffers,
    sections: m.materializedSections(),
  };
}

function scrub(args: Args): unknown {
  const m = createMachine(machineOptions(args));
  const free0 = m.freePagesTotal();
  const t0 = performance.now();
  const v0 = m.now;
  m.setSysctl('scrub_start', Number(args.start ?? 5));
  let ticks = 0;
  while (m.scrubbing()) {
    m.tick(1e9);
    ticks++;
  }
  // The last burst ended inside the last tick: kscrubd's own record says when.
  const end = Math.max(...m.kscrubd.map((k) => k.lastBurstEnd));
  return {
    wallMs: performance.now() - t0,
    virtualS: (end - v0) / 1e9,
    ticks,
    freePages: free0,
    zeroPages: m.zeroPagesTotal(),
    pageSize: m.pageSize,
    kscrubdBlocks: m.kscrubd.reduce((s, k) => s + k.blocks, 0),
  };
}

/** ns per call of `fn`, best of a few rounds (the least disturbed). */
function nsPer(calls: number, fn: () => void): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, ((performance.now() - t0) * 1e6) / calls);
  }
  return best;
}

/** rmqueue, __free_one_page, the per-cpu path and the renderers, one at a time. */
function hot(): unknown {
  const N = 200_000;
  const m = createMachine({ preset: 'x86_64', mem: '16G', clock: 'manual' });
  const zone = m.zones[m.zones.length - 1]!;
  const pfns = new Float64Array(N);
  const allocated = pageFlags(KIND_ALLOC, 0, NOT_ZEROED);
  // rmqueue: order-0 blocks straight from the buddy lists (splitting top-order blocks as it goes).
  let rmqueueNs = 0;
  let freeNs = 0;
  for (let round = 0; round < 5; round++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) pfns[i] = zone.takeBlock(0, NOT_ZEROED, allocated);
    const r = ((performance.now() - t0) * 1e6) / N;
    // __free_one_page: give them back in the same order, coalescing up to top order again.
    t0 = performance.now();
    for (let i = 0; i < N; i++) zone.freeBlock(pfns[i]!, 0, NOT_ZEROED);
    const f = ((performance.now() - t0) * 1e6) / N;
    if (round === 0 || r < rmqueueNs) rmqueueNs = r;
    if (round === 0 || f < freeNs) freeNs = f;
  }
  // The per-cpu path: allocPages/freePages (refills and drains in batches).
  const cpu = 0;
  const pcpNs = nsPer(N, () => {
    for (let i = 0; i < N; i++) pfns[i] = m.allocPages(0, true, 0, cpu);
    for (let i = 0; i < N; i++) m.freePages(pfns[i]!, 0, cpu);
  }) / 2;
  return { rmqueueNs, freeOnePageNs: freeNs, pcpAllocFreeNs: pcpNs, render: renderTimes() };
}

/** µs per open of each file (render + the first read into a 64 KiB reply), small to huge machines. */
function renderTimes(): unknown {
  const reply = Buffer.alloc(65536);
  const machines: [string, Machine][] = [
    ['altix 6 GiB', createMachine({ preset: 'altix', clock: 'manual' })],
    ['altix 1 TiB', createMachine({ preset: 'altix', mem: '1T', clock: 'manual' })],
    ['altix 64 TiB', createMachine({ preset: 'altix', mem: '64T', clock: 'manual' })],
    ['x86_64 4 GiB', createMachine({ preset: 'x86_64', clock: 'manual' })],
    ['x86_64 1 TiB', createMachine({ preset: 'x86_64', mem: '1T', clock: 'manual' })],
    ['x86_64 64 TiB', createMachine({ preset: 'x86_64', mem: '64T', clock: 'manual' })],
  ];
  const out: Record<string, Record<string, number>> = {};
  for (const [label, m] of machines) {
    out[label] = {};
    for (const path of ['/buddyinfo', '/meminfo', '/zoneinfo', '/vmstat', '/sys/vm/scrub_start']) {
      const render = FILES.find((f) => f.path === path)!.render!;
      const calls = 2000;
      out[label]![path] = nsPer(calls, () => {
        for (let i = 0; i < calls; i++) new Snapshot(render(m, { buddyinfo: 'v6' })).readInto(reply, 0, reply.length);
      }) / 1000;
    }
  }
  return out;
}

/**
 * The simulated machine's pace on a calibration run: --gb × --reps with --threads threads, a
 * fresh altix machine, kscrubd off (base) or on and settled before the clock starts (patched).
 * Virtual seconds of the repetitions (touch and exit) against the wall seconds they took, and
 * against this process's CPU seconds (what the wall would be on an idle host).
 */
function pace(args: Args): unknown {
  const big = args.nodes ? { nodes: Number(args.nodes), cpus: Number(args.cpus), mem: args.mem ?? '512G' } : {};
  const m = createMachine({ preset: 'altix', zeroDrivers: ['cpu'], clock: 'manual', ...big });
  m.setSysctl('max_prealloc_order', 0);
  if (args.scrub === 'on') {
    m.setSysctl('scrub_stop', 2);
    m.setSysctl('scrub_start', 5);
    while (m.scrubbing()) m.tick(1e8);
  } else m.setSysctl('scrub_start', m.maxOrder);
  const bytes = Number(args.gb ?? 4) * 2 ** 30;
  const reps = Number(args.reps ?? 3);
  const threads = Number(args.threads ?? 8);
  const v0 = m.now;
  const c0 = cpuMs();
  const t0 = performance.now();
  let pages = 0;
  for (let i = 0; i < reps; i++) {
    const id = m.procs.create().id;
    const { addr, size } = m.procs.mmap(id, bytes);
    pages += m.procs.touch(id, { addr, size, threads }).pages;
    m.procs.exitTimed(id);
  }
  const wallMs = performance.now() - t0;
  return { virtualS: (m.now - v0) / 1e9, wallS: wallMs / 1e3, cpuS: (cpuMs() - c0) / 1e3, pages };
}

const COMMANDS: Record<string, (args: Args) => unknown> = { faults, boot, rss, scrub, hot, pace };

async function main(): Promise<void> {
  const { what, args } = parseArgs(process.argv.slice(2));
  const command = COMMANDS[what];
  if (!command) throw new Error(`model-child: unknown benchmark "${what}" (${Object.keys(COMMANDS).join(', ')})`);
  const result = await command(args);
  if (result !== undefined) process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`model-child: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
