import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CLI, run, startDaemon, stopDaemon, waitForMount } from '../helpers/mount';
import { median, num, type BenchOptions, type SectionResult, type Target } from './common';

// Liveness (DESIGN §5): while one long command runs through control, a reader loops
// open+read+close on meminfo; the latency of every read that completed while the command was
// in flight, as median, p99 and max. Target: max ≤ 250 ms. The commands are the issue's
// (sizes cut down so that a run takes minutes, not hours).

const TARGET_MS = 250;

/**
 * python3: the reader thread records each meminfo read's latency; the main thread either
 * writes a batch to control and reads its results, or runs a program (pft). Prints JSON.
 */
const SCRIPT = String.raw`
import json, os, subprocess, sys, threading, time
d, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3]
done = threading.Event()
reads = []
def reader():
    while not done.is_set():
        t0 = time.monotonic()
        with open(os.path.join(d, 'meminfo'), 'rb') as f:
            f.read()
        reads.append((t0, time.monotonic()))
th = threading.Thread(target=reader)
th.start()
start = time.monotonic()
if mode == 'write':
    fd = os.open(os.path.join(d, 'control'), os.O_RDWR)
    os.write(fd, arg.encode())
    out = b''
    while True:
        b = os.read(fd, 65536)
        if not b: break
        out += b
    os.close(fd)
    result = out.decode()
else:
    result = subprocess.run(json.loads(arg), capture_output=True, text=True).stdout
end = time.monotonic()
done.set()
th.join()
lat = [(b - a) * 1000 for a, b in reads if a >= start and b <= end]
print(json.dumps({'seconds': end - start, 'latencies': lat, 'result': result[-300:]}))
`;

interface Probe {
  seconds: number;
  latencies: number[];
  result: string;
}

interface Case {
  readonly name: string;
  readonly args: readonly string[];
  /** Batches written before the measured one (results not measured). */
  readonly setup: readonly string[];
  readonly measured: { readonly write: string } | { readonly run: (dir: string) => string[] };
}

function cases(quick: boolean): Case[] {
  const gib = quick ? 4 : 32;
  const manual = ['--preset', 'x86_64', '--mem', '1T', '--clock', 'manual'];
  const touched = [`mm new keep\nmmap mm=1 size=${gib}G\n`, `touch mm=1 addr=ADDR size=${gib}G\n`];
  return [
    { name: `touch ${gib} GiB`, args: manual, setup: touched.slice(0, 1), measured: { write: touched[1]! } },
    { name: `mm exit of ${gib} GiB`, args: manual, setup: touched, measured: { write: 'mm exit mm=1\n' } },
    {
      name: 'tick 86400s, kscrubd zeroing (scrub_stop 0)', args: manual,
      setup: [`${touched[0]}`, touched[1]!, 'mm exit mm=1\n'],
      measured: { write: 'tick 86400s\n' },
    },
    {
      name: `check after ${quick ? 1 : 3}M raw allocations`, args: manual,
      setup: Array.from({ length: quick ? 1 : 3 }, () => 'alloc order=0 count=1000000\n'),
      measured: { write: 'check\n' },
    },
    {
      name: `pft -g ${quick ? 2 : 16} -t 8 on a live clock`, args: ['--preset', 'x86_64', '--mem', '64G'], setup: [],
      measured: { run: (dir) => [process.execPath, CLI, 'pft', '-m', dir, '-g', String(quick ? 2 : 16), '-t', '8'] },
    },
  ];
}

async function probe(dir: string, mode: 'write' | 'run', arg: string): Promise<Probe> {
  const r = await run('python3', ['-c', SCRIPT, dir, mode, arg], { timeoutMs: 1_800_000 });
  if (r.code !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Probe;
}

/** Write one batch on a fresh control fd; its result lines. */
async function batch(dir: string, text: string): Promise<string> {
  return (await probe(dir, 'write', text)).result;
}

export async function livenessBench(o: BenchOptions): Promise<SectionResult> {
  const rows: (string | number)[][] = [];
  const targets: Target[] = [];
  const data: Record<string, unknown> = {};
  for (const c of cases(o.quick)) {
    o.log(`liveness: ${c.name}`);
    const dir = path.join(o.tmp, 'liveness');
    mkdirSync(dir, { recursive: true });
    const daemon = startDaemon(dir, c.args);
    try {
      await waitForMount(dir, daemon);
      let addr = '';
      for (const s of c.setup) {
        const out = await batch(dir, s.replace('ADDR', addr));
        addr = /addr=(0x[0-9a-f]+)/.exec(out)?.[1] ?? addr;
      }
      if (c.name.startsWith('tick')) {
        await run('sh', ['-c', `echo 0 > ${dir}/sys/vm/scrub_stop && echo 0 > ${dir}/sys/vm/scrub_start`]);
      }
      const p = 'write' in c.measured
        ? await probe(dir, 'write', c.measured.write.replace('ADDR', addr))
        : await probe(dir, 'run', JSON.stringify(c.measured.run(dir)));
      const lat = [...p.latencies].sort((a, b) => a - b);
      const p99 = lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] ?? Number.NaN;
      const max = lat.at(-1) ?? Number.NaN;
      data[c.name] = { seconds: p.seconds, reads: lat.length, median: median(lat), p99, max, result: p.result };
      rows.push([c.name, p.seconds.toFixed(1), num(lat.length), median(lat).toFixed(1), p99.toFixed(1), max.toFixed(1)]);
      targets.push({ what: `max read latency during ${c.name}`, goal: `≤ ${TARGET_MS} ms`, measured: `${max.toFixed(1)} ms (${lat.length} reads)`, met: lat.length > 0 && max <= TARGET_MS });
    } finally {
      await stopDaemon(daemon, dir);
    }
  }
  return {
    name: 'liveness',
    tables: [{
      title: 'meminfo read latency (open+read+close, ms) while one long command runs',
      columns: ['command', 'command s', 'reads', 'median', 'p99', 'max'], rows,
    }],
    targets,
    notes: [
      'Commands run in slices of 8 ms (src/daemon/scheduler.ts); one read is 3–4 FUSE requests (lookup, open, read, release), each answered at the next slice boundary.',
    ],
    data,
  };
}
