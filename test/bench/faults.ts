import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { formatCommand } from '../../src/uapi';
import { ControlClient, run } from '../../src/workload/client';
import { runPft } from '../../src/workload/pft';
import { CLI } from '../helpers/mount';
import {
  compileC, GIB, median, num, onClientCpu, pinning, ratio, runProgram,
  type BenchOptions, type Pinning, type SectionResult, type Target,
} from './common';
import { startKscrubfs, type Server } from './daemons';

// Faults: simulated page faults per second against the real kernel's anonymous fault rate on
// this machine (test/bench/faults.c: map 1 GiB, write a byte per page). Interleaved: each
// round runs the C program once, then one repetition of every simulator configuration, so a
// ratio compares figures taken seconds apart. Medians over the rounds.
//
//   model alone   createMachine + mmap + touch in a worker process (model-child.js faults)
//   end to end    against a mount, through its control file, timed by this client's wall
//                 clock: the `touch` request alone (what faults.c times: the writes), and a
//                 whole pft repetition as runPft — the code `kscrubfs pft` runs — does it
//                 (mm new, mmap, touch, mm exit); and the `kscrubfs pft` command itself,
//                 node's start-up included
//
// All run on the x86_64 preset (4 KiB pages, like the host) with a manual clock; "prefault"
// is vm.max_prealloc_order (4 is the model's default, 0 is one simulated fault per page, as
// the host's kernel does). Every fault-measuring process is pinned to the same CPU.

interface Config {
  readonly key: string;
  readonly label: string;
  readonly threads: number;
  readonly prealloc: number;
}

const CONFIGS: readonly Config[] = [
  { key: 't1-p3', label: '1 thread, prefault order 3 (default)', threads: 1, prealloc: 3 },
  { key: 't1-p0', label: '1 thread, no prefault', threads: 1, prealloc: 0 },
  { key: 't4-p3', label: '4 threads, prefault order 3 (default)', threads: 4, prealloc: 3 },
  { key: 't4-p0', label: '4 threads, no prefault', threads: 4, prealloc: 0 },
];
const MACHINE = ['--preset', 'x86_64', '--mem', '8G'];

export async function faultsBench(o: BenchOptions): Promise<SectionResult> {
  const rounds = o.quick ? 2 : 9;
  const pin = await pinning();
  const faults = await compileC('faults', o.tmp);
  const workers = new Map<string, ModelWorker>();
  let server: Server | undefined;
  try {
    for (const c of CONFIGS) workers.set(c.key, await ModelWorker.start([...MACHINE, '--threads', String(c.threads), '--prealloc', String(c.prealloc)], pin));
    // The daemon takes the fault-measuring CPU too: the simulation runs inside it.
    server = await startKscrubfs('x86_64 8 GiB', path.join(o.tmp, 'pft'), [...MACHINE, '--clock', 'manual'], { ...pin, serverCpu: pin.clientCpu });
    const dir = server.dir;
    // Warm-ups: JIT in every worker and in the daemon.
    // Warm-ups: the JIT needs a few GiB before the fault path runs at full speed (measured:
    // 2.2, 2.6, 5.2, then 7.0 M pages per second on the first four; touch() itself is still
    // re-optimized now and then after that).
    for (const w of workers.values()) for (let i = 0; i < 6; i++) await w.rep();
    await runPft(dir, { bytes: GIB, reps: 6, threads: [1, 4], cachelines: 1, settle: false });

    const kernel: number[] = [];
    const model = new Map<string, number[]>(CONFIGS.map((c) => [c.key, []]));
    const modelCpu = new Map<string, number[]>(CONFIGS.map((c) => [c.key, []]));
    const e2e = new Map<string, number[]>(CONFIGS.map((c) => [c.key, []]));
    const pft = new Map<string, number[]>(CONFIGS.map((c) => [c.key, []]));
    const cli: number[] = [];
    const ratios = new Map<string, number[]>();
    const push = (key: string, v: number): void => {
      if (!ratios.has(key)) ratios.set(key, []);
      ratios.get(key)!.push(v);
    };
    o.log(`faults: ${rounds} rounds of the real kernel against ${CONFIGS.length} model and ${CONFIGS.length + 1} end-to-end configurations`);
    for (let round = 0; round < rounds; round++) {
      const [pages, seconds] = (await runProgram(...onClientCpu(pin, faults, ['1', '1']))).trim().split(' ').map(Number);
      const real = pages! / seconds!;
      kernel.push(real);
      for (const c of CONFIGS) {
        const r = await workers.get(c.key)!.rep();
        const rate = r.pages / (r.wallMs / 1e3);
        model.get(c.key)!.push(rate);
        modelCpu.get(c.key)!.push(r.pages / (r.cpuMs / 1e3));
        push(`model:${c.key}`, rate / real);
      }
      for (const c of CONFIGS) {
        const rate = touchThroughControl(dir, c);
        e2e.get(c.key)!.push(rate);
        push(`e2e:${c.key}`, rate / real);
        const t0 = performance.now();
        const [row] = await runPft(dir, { bytes: GIB, reps: 1, threads: [c.threads], cachelines: 1, prealloc: c.prealloc, settle: false });
        const whole = row!.pages / ((performance.now() - t0) / 1e3);
        pft.get(c.key)!.push(whole);
        push(`pft:${c.key}`, whole / real);
      }
      const t0 = performance.now();
      await runProgram(process.execPath, [CLI, 'pft', '-m', dir, '-g', '1', '-t', '1', '--json']);
      const rate = GIB / 4096 / ((performance.now() - t0) / 1e3);
      cli.push(rate);
      push('cli', rate / real);
    }

    const realRate = median(kernel);
    const rows: (string | number)[][] = [['real kernel (faults.c: 1 GiB, a byte per 4 KiB page, THP off)', num(realRate), '', '1.00×']];
    const targets: Target[] = [];
    for (const c of CONFIGS) {
      const r = median(ratios.get(`model:${c.key}`)!);
      rows.push([`model alone, ${c.label}`, num(median(model.get(c.key)!)), num(median(modelCpu.get(c.key)!)), ratio(r)]);
      targets.push({ what: `model alone, ${c.label}`, goal: '≥ 10× the real kernel', measured: ratio(r), met: r >= 10 });
    }
    for (const c of CONFIGS) {
      const r = median(ratios.get(`e2e:${c.key}`)!);
      rows.push([`end to end, touch through control, ${c.label}`, num(median(e2e.get(c.key)!)), '', ratio(r)]);
      targets.push({ what: `end to end (touch through control), ${c.label}`, goal: '≥ 10× the real kernel', measured: ratio(r), met: r >= 10 });
    }
    for (const c of CONFIGS) {
      rows.push([`end to end, whole pft repetition (runPft), ${c.label}`, num(median(pft.get(c.key)!)), '', ratio(median(ratios.get(`pft:${c.key}`)!))]);
    }
    const cliRatio = median(ratios.get('cli')!);
    rows.push(['`kscrubfs pft -g 1 -t 1` command, start-up included', num(median(cli)), '', ratio(cliRatio)]);
    return {
      name: 'faults',
      tables: [{
        title: `page faults per second, 1 GiB per repetition (${rounds} interleaved rounds; medians; ratio = median of per-round ratios)`,
        columns: ['what', 'pages/s (wall)', 'pages/s (CPU)', '× real kernel'],
        rows,
      }],
      targets,
      notes: [
        'A simulated page is one the host kernel would fault once; with prefault order 3 the model maps up to 8 pages per simulated trap, as Lameter\'s patch did.',
        'The whole-repetition rows also count mm new, mmap and mm exit (freeing 1 GiB again) and their round trips; the command row also starts node.',
      ],
      data: {
        rounds, kernel, model: Object.fromEntries(model), modelCpu: Object.fromEntries(modelCpu), touch: Object.fromEntries(e2e), pft: Object.fromEntries(pft), cli,
        ratios: Object.fromEntries(ratios),
      },
    };
  } finally {
    for (const w of workers.values()) w.close();
    await server?.stop();
  }
}

/**
 * One pft repetition by hand through the control file, timing only the `touch` request:
 * pages per wall second as this client sees it (FUSE round trip included).
 */
function touchThroughControl(dir: string, c: Config): number {
  const ctl = new ControlClient(dir);
  try {
    ctl.writeSysctl('max_prealloc_order', c.prealloc);
    const mm = run(ctl, { verb: 'mm new' }).mm;
    try {
      const addr = run(ctl, { verb: 'mmap', mm, size: GIB }).addr;
      const t0 = performance.now();
      const r = run(ctl, { verb: 'touch', mm, addr, size: GIB, threads: c.threads, lines: 1, access: 'write' });
      return r.pages / ((performance.now() - t0) / 1e3);
    } finally {
      ctl.call(formatCommand({ verb: 'mm exit', mm }));
    }
  } finally {
    ctl.close();
  }
}

interface Rep {
  pages: number;
  faults: number;
  wallMs: number;
  cpuMs: number;
  exitMs: number;
}

/** A model-child.js faults worker: one repetition per rep() (see model-child.ts). */
class ModelWorker {
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly lines: AsyncIterator<string>, private readonly rl: Interface) {}

  static async start(args: readonly string[], pin: Pinning): Promise<ModelWorker> {
    const [file, argv] = onClientCpu(pin, process.execPath, [path.join(__dirname, 'model-child.js'), 'faults', ...args]);
    const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const rl = createInterface({ input: child.stdout });
    const worker = new ModelWorker(child, rl[Symbol.asyncIterator](), rl);
    const first = await worker.lines.next();
    if (first.done) throw new Error(`model-child faults ${args.join(' ')} exited: ${err.trim()}`);
    return worker;
  }

  async rep(): Promise<Rep> {
    this.child.stdin.write('rep\n');
    const line = await this.lines.next();
    if (line.done) throw new Error('model-child faults worker exited');
    return JSON.parse(line.value) as Rep;
  }

  close(): void {
    this.rl.close();
    this.child.stdin.end();
  }
}
