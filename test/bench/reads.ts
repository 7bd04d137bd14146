import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pollUntil } from '../../src/daemon/poll';
import {
  compileC, median, num, onClientCpu, pinning, quartiles, ratio, runProgram,
  type BenchOptions, type SectionResult, type Table, type Target,
} from './common';
import { opcodesIn, requestCounts, startKscrubfs, startLxcfs, startMinimal, stopAll, type Server } from './daemons';

// Reads: open + read-to-EOF + close per second, one reader (test/bench/reader.c), on our
// files, on the kernel's /proc/meminfo, on a minimal fuse-native file (the binding's ceiling;
// two identical daemons) and on LXCFS's proc/meminfo. Every figure that matters is a ratio
// measured side by side: each round visits every file once, SLOT seconds each after WARM
// untimed loops, in an order that rotates by one per round; a file's ratio in a round is its
// rate over the mean rate of the two minimal daemons in that round. Tables show medians over
// the rounds; the second minimal daemon against the first is the run's A/A noise floor.
//
// Then the FUSE requests one open+read+close costs: our adapter's counts (SIGUSR2, see
// src/cli/mount.ts), and the kernel's own view from libfuse's debug log on the minimal daemon
// with and without a flush handler (kscrubfs has one: control's close waits for its commands;
// its binding answers every other file's FLUSH without JS) and on LXCFS.

const SLOT_S = 0.04;
const WARM = 30;
const COUNT_LOOPS = 500;

interface Subject {
  readonly key: string;
  readonly label: string;
  readonly file: string;
  /** Whose target this is: ours are judged, the others are references. */
  readonly kind: 'ours' | 'minimal' | 'lxcfs' | 'kernel';
  readonly server?: Server;
}

interface Visit {
  readonly file: number;
  readonly loops: number;
  readonly seconds: number;
  readonly reads: number;
  readonly bytes: number;
}

export async function readsBench(o: BenchOptions): Promise<SectionResult> {
  const rounds = o.quick ? 5 : 60;
  const pin = await pinning();
  const reader = await compileC('reader', o.tmp);
  const servers: Server[] = [];
  const notes: string[] = [`pinning: ${pin.why}`];
  try {
    o.log('reads: mounting kscrubfs (altix 6 GiB, x86_64 64 TiB), the minimal daemon three times, LXCFS');
    const mnt = (name: string): string => path.join(o.tmp, name);
    const altix = await startKscrubfs('altix 6 GiB', mnt('altix'), ['--clock', 'manual'], pin);
    servers.push(altix);
    const big = await startKscrubfs('x86_64 64 TiB', mnt('x86_64'), ['--preset', 'x86_64', '--mem', '64T', '--clock', 'manual'], pin);
    servers.push(big);
    const minimal = await startMinimal('minimal', mnt('minimal'), [], pin);
    servers.push(minimal);
    const control = await startMinimal('minimal (2nd)', mnt('minimal2'), [], pin);
    servers.push(control);
    // zoneinfo is 14 KB where the others are 1–2 KB: the same minimal daemon with a string
    // that long shows what the size alone costs.
    const sized = await startMinimal('minimal (14 KB)', mnt('minimal14k'), ['--bytes', '14000'], pin);
    servers.push(sized);
    const lxcfs = await startLxcfs(mnt('lxcfs'), pin);
    if (typeof lxcfs === 'string') notes.push(`LXCFS not measured: ${lxcfs}`);
    else servers.push(lxcfs);

    const ours = (server: Server, file: string): Subject => ({
      key: `${server.label}:${file}`, label: `${file} (${server.label})`, file: path.join(server.dir, file), kind: 'ours', server,
    });
    const ourFiles = ['buddyinfo', 'meminfo', 'zoneinfo', 'sys/vm/scrub_start'];
    const subjects: Subject[] = [
      ...ourFiles.map((f) => ours(altix, f)),
      ...ourFiles.map((f) => ours(big, f)),
      { key: 'minimal2', label: 'minimal fuse-native file, 2nd daemon', file: path.join(control.dir, 'file'), kind: 'minimal' },
      { key: 'minimal14k', label: 'minimal fuse-native file, 14 KB string', file: path.join(sized.dir, 'file'), kind: 'minimal' },
      ...(typeof lxcfs === 'string' ? [] : [{ key: 'lxcfs', label: 'LXCFS proc/meminfo', file: path.join(lxcfs.dir, 'proc/meminfo'), kind: 'lxcfs' as const }]),
      { key: 'kernel', label: 'kernel /proc/meminfo', file: '/proc/meminfo', kind: 'kernel' },
    ];
    subjects.unshift({ key: 'minimal', label: 'minimal fuse-native file (direct_io)', file: path.join(minimal.dir, 'file'), kind: 'minimal' });

    // Warm-up: every daemon has compiled its handlers and cached its lookups.
    await runProgram(...onClientCpu(pin, reader, ['-n', '300', ...subjects.map((s) => s.file)]));

    o.log(`reads: ${rounds} interleaved rounds of ${subjects.length} files`);
    const rates = new Map<string, number[]>(subjects.map((s) => [s.key, []]));
    const ratios = new Map<string, number[]>(subjects.map((s) => [s.key, []]));
    const vsLxcfs = new Map<string, number[]>(subjects.map((s) => [s.key, []]));
    const aa: number[] = [];
    const perOpen = new Map<string, { reads: number; bytes: number }>();
    for (let round = 0; round < rounds; round++) {
      const order = subjects.map((_, i) => subjects[(i + round) % subjects.length]!);
      const visits = parseVisits(await runProgram(...onClientCpu(pin, reader, ['-w', String(WARM), '-t', String(SLOT_S), ...order.map((s) => s.file)])));
      const rate = new Map(order.map((s, i) => [s.key, visits[i]!.loops / visits[i]!.seconds]));
      const ref = (rate.get('minimal')! + rate.get('minimal2')!) / 2;
      aa.push(rate.get('minimal2')! / rate.get('minimal')!);
      order.forEach((s, i) => {
        rates.get(s.key)!.push(rate.get(s.key)!);
        ratios.get(s.key)!.push(rate.get(s.key)! / ref);
        if (rate.has('lxcfs')) vsLxcfs.get(s.key)!.push(rate.get(s.key)! / rate.get('lxcfs')!);
        perOpen.set(s.key, { reads: visits[i]!.reads / visits[i]!.loops, bytes: visits[i]!.bytes / visits[i]!.loops });
      });
    }

    o.log('reads: counting FUSE requests per open+read+close');
    const requests = await countRequests(o, reader, pin, subjects, notes);

    const table: Table = {
      title: `open+read+close per second, one reader (${rounds} rounds × ${SLOT_S} s per file; medians, IQR in brackets)`,
      columns: ['file', 'opens/s', '× minimal fuse-native', '× LXCFS', 'bytes', 'read(2)s per open'],
      rows: subjects.map((s) => {
        const [lo, hi] = quartiles(ratios.get(s.key)!);
        const shape = perOpen.get(s.key)!;
        const lx = vsLxcfs.get(s.key)!;
        return [
          s.label, num(median(rates.get(s.key)!)), `${ratio(median(ratios.get(s.key)!))} [${lo.toFixed(2)}–${hi.toFixed(2)}]`,
          lx.length === 0 ? '—' : ratio(median(lx)), num(shape.bytes), shape.reads.toFixed(1),
        ];
      }),
    };
    const targets: Target[] = [];
    for (const s of subjects.filter((x) => x.kind === 'ours')) {
      const r = median(ratios.get(s.key)!);
      targets.push({ what: `${s.label} vs minimal fuse-native`, goal: '≥ 0.90×', measured: ratio(r), met: r >= 0.9 });
      const lx = vsLxcfs.get(s.key)!;
      targets.push(lx.length === 0
        ? { what: `${s.label} vs LXCFS`, goal: '≥ 1.00×', measured: '—', met: undefined, note: notes.find((n) => n.startsWith('LXCFS')) ?? '' }
        : { what: `${s.label} vs LXCFS`, goal: '≥ 1.00×', measured: ratio(median(lx)), met: median(lx) >= 1 });
    }
    const [aaLo, aaHi] = quartiles(aa);
    notes.push(`A/A control: the second minimal daemon read at ${ratio(median(aa))} [${aaLo.toFixed(2)}–${aaHi.toFixed(2)}] of the first — the noise floor of a ratio in this run.`);
    return {
      name: 'reads',
      tables: [table, requests.table],
      targets,
      notes,
      data: {
        rounds, slotSeconds: SLOT_S, pinning: pin,
        rates: Object.fromEntries(rates), ratiosVsMinimal: Object.fromEntries(ratios), ratiosVsLxcfs: Object.fromEntries(vsLxcfs), aa,
        requests: requests.data,
      },
    };
  } finally {
    await stopAll(servers);
  }
}

/** reader's lines: "round file loops seconds reads bytes", in visit order. */
function parseVisits(out: string): Visit[] {
  return out.trim().split('\n').map((line) => {
    const [, file, loops, seconds, reads, bytes] = line.split(' ').map(Number);
    return { file: file!, loops: loops!, seconds: seconds!, reads: reads!, bytes: bytes! };
  });
}

/**
 * Requests per open+read+close: our adapter's counts around COUNT_LOOPS loops on each of our
 * files; the kernel's requests (libfuse's debug log) on a traced minimal daemon with and
 * without flush, and on LXCFS in debug mode.
 */
async function countRequests(o: BenchOptions, reader: string, pin: Awaited<ReturnType<typeof pinning>>, subjects: readonly Subject[], notes: string[]): Promise<{ table: Table; data: unknown }> {
  const rows: (string | number)[][] = [];
  const data: Record<string, Record<string, number>> = {};
  const perLoop = (counts: Record<string, number>): Record<string, number> =>
    Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0).map(([op, n]) => [op, n / COUNT_LOOPS]));
  const show = (counts: Record<string, number>): string =>
    Object.entries(counts).map(([op, n]) => `${op} ${Number(n.toFixed(3))}`).join(', ');
  const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

  // The kernel's view: what crosses /dev/fuse, opcode by opcode.
  for (const [label, flags] of [['minimal fuse-native, with a flush handler (as kscrubfs: FLUSH on every close)', ['--flush']], ['minimal fuse-native, no flush handler', []]] as const) {
    const server = await startMinimal(label, path.join(o.tmp, `trace${flags.length}`), ['--trace', ...flags], pin);
    try {
      const counts = await traced(server, reader, pin, path.join(server.dir, 'file'));
      data[label] = counts;
      rows.push([label, 'kernel (libfuse debug log)', show(counts), total(counts).toFixed(2)]);
    } finally {
      await server.stop();
    }
  }
  const lx = await startLxcfs(path.join(o.tmp, 'lxcfs-debug'), pin, true);
  if (typeof lx === 'string') {
    rows.push(['LXCFS proc/meminfo', '—', lx, '—']);
  } else {
    try {
      const counts = await traced(lx, reader, pin, path.join(lx.dir, 'proc/meminfo'));
      data['LXCFS proc/meminfo'] = counts;
      rows.push(['LXCFS proc/meminfo', 'kernel (lxcfs -d)', show(counts), total(counts).toFixed(2)]);
    } finally {
      await lx.stop();
    }
  }
  // Ours, through the adapter's own counters.
  for (const s of subjects.filter((x) => x.kind === 'ours')) {
    const before = await requestCounts(s.server!);
    await runProgram(...onClientCpu(pin, reader, ['-n', String(COUNT_LOOPS), s.file]));
    // RELEASE is asynchronous: the kernel sends it after close(2) returns. Wait for the last.
    const after = await pollUntil(async () => {
      const c = await requestCounts(s.server!);
      return (c.release ?? 0) - (before.release ?? 0) >= COUNT_LOOPS ? c : undefined;
    }, { timeoutMs: 5000, intervalMs: 20 });
    if (!after) throw new Error(`${s.label}: the daemon did not see ${COUNT_LOOPS} releases`);
    const diff = perLoop(Object.fromEntries(Object.keys(after).map((op) => [op, after[op]! - (before[op] ?? 0)])));
    delete diff.failed;
    data[s.key] = diff;
    rows.push([s.label, 'kscrubfs adapter (SIGUSR2)', show(diff), total(diff).toFixed(2)]);
  }
  notes.push('Requests: the adapter cannot tell LOOKUP from GETATTR (libfuse folds both into getattr); the kernel rows can. '
    + 'A flush op that is not implemented costs one FLUSH per mount (answered ENOSYS, then the kernel stops sending it).');
  return {
    table: { title: `FUSE requests per open+read+close (reader with a 64 KiB buffer, ${COUNT_LOOPS} loops)`, columns: ['server', 'counted by', 'requests per loop', 'total'], rows },
    data,
  };
}

/** Requests per loop from a server's libfuse debug log, over COUNT_LOOPS loops after a warm-up. */
async function traced(server: Server, reader: string, pin: Awaited<ReturnType<typeof pinning>>, file: string): Promise<Record<string, number>> {
  // The warm-up takes the one-off requests (INIT, the first lookups, the one ENOSYS FLUSH).
  await runProgram(...onClientCpu(pin, reader, ['-n', '3', file]));
  await sleep(200);
  const start = server.stderr().length;
  await runProgram(...onClientCpu(pin, reader, ['-n', String(COUNT_LOOPS), file]));
  const log = await pollUntil(() => {
    const text = server.stderr().slice(start);
    return (opcodesIn(text).RELEASE ?? 0) >= COUNT_LOOPS ? text : undefined;
  }, { timeoutMs: 10_000, intervalMs: 20 });
  if (log === undefined) throw new Error(`${server.label}: its debug log did not show ${COUNT_LOOPS} RELEASE requests`);
  return Object.fromEntries(Object.entries(opcodesIn(log)).map(([op, n]) => [op, n / COUNT_LOOPS]));
}
