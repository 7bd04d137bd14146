// Strict parsers for every mounted file, after prometheus/procfs's rules (buddyinfo.go,
// meminfo.go, stat.go, zoneinfo.go, loadavg.go) and the kernel's exact padding: one newline at
// the end, no blank lines, `kB` units where the kernel has them, equal bucket counts on every
// buddyinfo line, plain decimal. They are run on the real 6.18 kernel's files too
// (test/unit/procfs.test.ts), so the parsers themselves are known to accept the kernel's format.
// Each throws an AssertionError naming the offending line; a reader that gets a torn or
// half-rendered file fails here.
//
// The second half is a pool of reader threads (worker_threads) that open+read+close the mounted
// files in a loop and parse every read strictly (test/integration/robust-*.test.ts).
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FILES } from '../../src/procfs';

/** Lines of a procfs file: it ends with one newline and has no blank lines. */
export function lines(text: string): string[] {
  assert.ok(text.length > 0, 'the file is not empty');
  assert.ok(text.endsWith('\n'), 'the file ends with a newline');
  const out = text.slice(0, -1).split('\n');
  assert.ok(out.every((l) => l !== ''), 'no blank lines');
  return out;
}

// ---- buddyinfo ----------------------------------------------------------------------------------

export interface BuddyZone {
  node: number;
  zone: string;
  counts: number[];
  zeroed?: number[];
}

/** The label of V6's second line per zone. */
export const ZEROED_LABEL = '        Zeroed Pages  ';

/** `"%6lu "` per order, exactly, and the numbers. */
export function parseCounts(rest: string, what: string): number[] {
  assert.match(rest, /^( {0,5}\d+ )+$/, `${what}: "%6lu " columns`);
  const counts = rest.trim().split(/\s+/).map(Number);
  assert.equal(counts.map((c) => `${String(c).padStart(6)} `).join(''), rest, `${what}: "%6lu " columns`);
  return counts;
}

/** One `Node N, zone NAME` line, by prometheus/procfs buddyinfo.go rules and the kernel's padding. */
export function parseBuddyLine(line: string, buckets: { n: number }): BuddyZone {
  const fields = line.trim().split(/\s+/);
  assert.ok(fields.length >= 4, `invalid number of fields: ${line}`);
  assert.equal(fields[0], 'Node');
  assert.equal(fields[2], 'zone');
  const node = Number(fields[1]!.replace(/,$/, ''));
  const zone = fields[3]!.replace(/,$/, '');
  assert.ok(Number.isInteger(node), `node number in ${line}`);
  const prefix = `Node ${node}, zone ${zone.padStart(8)} `;
  assert.ok(line.startsWith(prefix), `"Node %d, zone %8s " prefix in ${JSON.stringify(line)}`);
  const counts = parseCounts(line.slice(prefix.length), line);
  if (buckets.n < 0) buckets.n = counts.length;
  assert.equal(counts.length, buckets.n, 'mismatch in number of buddyinfo buckets');
  return { node, zone, counts };
}

/** Stock buddyinfo: one line per zone, every line the same number of buckets. */
export function parseBuddyinfoStock(text: string): BuddyZone[] {
  const buckets = { n: -1 };
  return lines(text).map((l) => parseBuddyLine(l, buckets));
}

/** V6 buddyinfo: each zone line followed by its "Zeroed Pages" line, same bucket count. */
export function parseBuddyinfoV6(text: string): BuddyZone[] {
  const all = lines(text);
  assert.equal(all.length % 2, 0, 'zone lines come in pairs');
  const buckets = { n: -1 };
  const zones: BuddyZone[] = [];
  for (let i = 0; i < all.length; i += 2) {
    const z = parseBuddyLine(all[i]!, buckets);
    assert.ok(all[i + 1]!.startsWith(ZEROED_LABEL), `zeroed line after ${all[i]}`);
    z.zeroed = parseCounts(all[i + 1]!.slice(ZEROED_LABEL.length), all[i + 1]!);
    assert.equal(z.zeroed.length, buckets.n, 'mismatch in number of buddyinfo buckets');
    zones.push(z);
  }
  return zones;
}

/** Either format: V6 when the second line is a "Zeroed Pages" line. */
export function parseBuddyinfo(text: string): BuddyZone[] {
  return text.split('\n')[1]?.startsWith(ZEROED_LABEL) ? parseBuddyinfoV6(text) : parseBuddyinfoStock(text);
}

// ---- meminfo, vmstat ----------------------------------------------------------------------------

/**
 * meminfo.go rules (`Key: value kB`, HugePages_* without a unit) plus the kernel's 16/8 layout,
 * and what must hold on any machine: MemFree ≤ MemTotal, MemZero (the patch's) ≤ MemFree.
 */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of lines(text)) {
    const m = /^([A-Za-z0-9_()]+):( +)(\d+)( kB)?$/.exec(line);
    assert.ok(m, `malformed meminfo line ${JSON.stringify(line)}`);
    const [, key, , value, unit] = m;
    assert.equal(unit === undefined, key!.startsWith('HugePages_'), `unit of ${key}`);
    assert.equal(line.slice(0, 16), `${key}:`.padEnd(16), `16-wide label: ${line}`);
    assert.equal(line.slice(16, 16 + Math.max(8, value!.length)), value!.padStart(8), `8-wide value: ${line}`);
    assert.ok(!out.has(key!), `${key} appears once`);
    out.set(key!, Number(value));
  }
  for (const key of ['MemTotal', 'MemFree', 'MemAvailable']) assert.ok(out.has(key), `meminfo has ${key}`);
  assert.ok(out.get('MemFree')! <= out.get('MemTotal')!, 'MemFree ≤ MemTotal');
  if (out.has('MemZero')) assert.ok(out.get('MemZero')! <= out.get('MemFree')!, 'MemZero ≤ MemFree');
  return out;
}

/** `name value` lines, names unique. */
export function parseVmstat(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of lines(text)) {
    const m = /^([a-z0-9_]+) (\d+)$/.exec(line);
    assert.ok(m, `malformed vmstat line ${JSON.stringify(line)}`);
    assert.ok(!out.has(m[1]!), `${m[1]} appears once`);
    out.set(m[1]!, Number(m[2]));
  }
  assert.ok(out.has('nr_free_pages'), 'vmstat has nr_free_pages');
  return out;
}

// ---- stat, loadavg, uptime, sysctls ----------------------------------------------------------------

export interface Stat {
  cpus: Map<string, number[]>;
  keys: string[];
  values: Map<string, number[]>;
}

/** stat.go rules: `cpu` then `cpuN` lines of 10 numeric columns, then keyed lines. */
export function parseStat(text: string): Stat {
  const st: Stat = { cpus: new Map(), keys: [], values: new Map() };
  for (const line of lines(text)) {
    const fields = line.split(' ');
    if (line.startsWith('cpu')) {
      assert.equal(st.keys.length, 0, `cpu lines come first: ${line}`);
      const label = line.startsWith('cpu  ') ? 'cpu' : fields[0]!;
      assert.match(label, /^cpu\d*$/);
      assert.ok(!st.cpus.has(label), `${label} appears once`);
      const cols = line.slice(label === 'cpu' ? 5 : label.length + 1).split(' ');
      assert.equal(cols.length, 10, `10 columns in ${line}`);
      assert.ok(cols.every((c) => /^\d+$/.test(c)), `numeric columns in ${line}`);
      st.cpus.set(label, cols.map(Number));
      continue;
    }
    assert.ok(fields.length >= 2 && fields.slice(1).every((f) => /^\d+$/.test(f)), `malformed stat line ${line}`);
    assert.ok(!st.values.has(fields[0]!), `${fields[0]} appears once`);
    st.keys.push(fields[0]!);
    st.values.set(fields[0]!, fields.slice(1).map(Number));
  }
  assert.ok(st.cpus.has('cpu'), 'stat has the cpu total line');
  return st;
}

export interface Loadavg {
  avg: [number, number, number];
  running: number;
  threads: number;
  lastPid: number;
}

/** loadavg.go: `%lu.%02lu ×3 %u/%d %d`. */
export function parseLoadavg(text: string): Loadavg {
  const [line, ...rest] = lines(text);
  assert.equal(rest.length, 0, 'loadavg is one line');
  const m = /^(\d+\.\d\d) (\d+\.\d\d) (\d+\.\d\d) (\d+)\/(\d+) (\d+)$/.exec(line!);
  assert.ok(m, `malformed loadavg ${JSON.stringify(line)}`);
  const running = Number(m[4]);
  const threads = Number(m[5]);
  assert.ok(running <= threads, `running ${running} ≤ threads ${threads}`);
  return { avg: [Number(m[1]), Number(m[2]), Number(m[3])], running, threads, lastPid: Number(m[6]) };
}

/** `%lu.%02lu %lu.%02lu`: seconds up, idle seconds summed over the CPUs. */
export function parseUptime(text: string): { uptime: number; idle: number } {
  const [line, ...rest] = lines(text);
  assert.equal(rest.length, 0, 'uptime is one line');
  const m = /^(\d+\.\d\d) (\d+\.\d\d)$/.exec(line!);
  assert.ok(m, `malformed uptime ${JSON.stringify(line)}`);
  return { uptime: Number(m[1]), idle: Number(m[2]) };
}

/** proc_dointvec's `%d\n`: one plain decimal int. */
export function parseSysctl(text: string): number {
  assert.match(text, /^(0|-?[1-9]\d*)\n$/, `malformed sysctl ${JSON.stringify(text)}`);
  const v = Number(text);
  assert.ok(Number.isSafeInteger(v) && v >= -(2 ** 31) && v < 2 ** 31, `sysctl ${v} is an int`);
  return v;
}

// ---- zoneinfo -----------------------------------------------------------------------------------

export interface ZoneinfoZone {
  node: number;
  zone: string;
  /** `pages free`, boost, min, low, high, promo, spanned, present, managed, cma. */
  header: Map<string, number>;
  protection: number[];
  /** The zone's `nr_*`/`numa_*` stats (empty for an unpopulated zone). */
  stats: Map<string, number>;
  /** Per CPU: count, high, batch, high_min, high_max. */
  pagesets: Map<string, number>[];
  nodeStats?: Map<string, number>;
  startPfn?: number;
}

const ZONE_HEADER = ['boost', 'min', 'low', 'high', 'promo', 'spanned', 'present', 'managed', 'cma'];
const PAGESET_FIELDS = ['count', 'high', 'batch', 'high_min', 'high_max'];

/**
 * zoneinfo.go's blocks, checked line by line against the kernel's seq_printf formats
 * (mm/vmstat.c zoneinfo_show_print): `Node %d, zone %8s`; per-node stats once per node
 * (`      %-12s %lu`); `  pages free     %lu`; `        %-8s %lu`; protection; for a populated
 * zone its stats, `  pagesets`, `    cpu: %i` with `              %-10s%i` fields and
 * `  vm stats threshold: %d`, then `  node_unreclaimable:  %u` and `  start_pfn:           %lu`.
 * Across zones: the same CPUs and protection length; pages free = nr_free_pages.
 */
export function parseZoneinfo(text: string): ZoneinfoZone[] {
  const all = lines(text);
  const zones: ZoneinfoZone[] = [];
  const nodesWithStats = new Set<number>();
  let i = 0;
  const next = (): string => {
    assert.ok(i < all.length, 'zoneinfo ends in the middle of a zone');
    return all[i++]!;
  };
  const peek = (): string | undefined => all[i];
  const stat = (line: string, indent: string, width: number): [string, number] => {
    const m = new RegExp(`^${indent}([a-z0-9_]+) +(\\d+)$`).exec(line);
    assert.ok(m, `malformed zoneinfo stat line ${JSON.stringify(line)}`);
    assert.equal(line, `${indent}${m[1]!.padEnd(width)} ${m[2]}`, `"%-${width}s %lu" layout: ${JSON.stringify(line)}`);
    return [m[1]!, Number(m[2])];
  };
  while (i < all.length) {
    const head = next();
    const hm = /^Node (\d+), zone +(\S+)$/.exec(head);
    assert.ok(hm, `zone header expected, got ${JSON.stringify(head)}`);
    const node = Number(hm[1]);
    const zone: ZoneinfoZone = { node, zone: hm[2]!, header: new Map(), protection: [], stats: new Map(), pagesets: [] };
    assert.equal(head, `Node ${node}, zone ${zone.zone.padStart(8)}`, `"Node %d, zone %8s": ${JSON.stringify(head)}`);
    if (peek() === '  per-node stats') {
      assert.ok(!nodesWithStats.has(node), `node ${node} has per-node stats once`);
      nodesWithStats.add(node);
      next();
      zone.nodeStats = new Map();
      while (peek()?.startsWith('      ')) {
        const [k, v] = stat(next(), '      ', 12);
        assert.ok(!zone.nodeStats.has(k), `${k} appears once in node ${node}'s stats`);
        zone.nodeStats.set(k, v);
      }
      assert.ok(zone.nodeStats.size > 0, 'per-node stats are not empty');
    }
    const free = /^ {2}pages free {5}(\d+)$/.exec(next());
    assert.ok(free, `"  pages free     %lu" in node ${node} zone ${zone.zone}`);
    zone.header.set('pages free', Number(free[1]));
    for (const key of ZONE_HEADER) {
      const [k, v] = stat(next(), '        ', 8);
      assert.equal(k, key, `zone header field ${key} in node ${node} zone ${zone.zone}`);
      zone.header.set(k, v);
    }
    const prot = /^ {8}protection: \((\d+(?:, \d+)*)\)$/.exec(next());
    assert.ok(prot, `protection line in node ${node} zone ${zone.zone}`);
    zone.protection = prot[1]!.split(', ').map(Number);
    const populated = peek() !== undefined && !peek()!.startsWith('Node ');
    if (populated) {
      while (peek()?.startsWith('      ')) {
        const [k, v] = stat(next(), '      ', 12);
        assert.ok(!zone.stats.has(k), `${k} appears once in node ${node} zone ${zone.zone}`);
        zone.stats.set(k, v);
      }
      assert.equal(zone.stats.get('nr_free_pages'), zone.header.get('pages free'), `pages free = nr_free_pages in node ${node} zone ${zone.zone}`);
      assert.equal(next(), '  pagesets', `pagesets in node ${node} zone ${zone.zone}`);
      while (peek()?.startsWith('    cpu: ')) {
        const cpu = /^ {4}cpu: (\d+)$/.exec(next());
        assert.ok(cpu, 'malformed "    cpu: %i" line');
        assert.equal(Number(cpu[1]), zone.pagesets.length, 'pagesets list the CPUs in order');
        const ps = new Map<string, number>();
        for (const key of PAGESET_FIELDS) {
          const line = next();
          const m = /^ {14}([a-z_]+): +(\d+)$/.exec(line);
          assert.ok(m && m[1] === key, `pageset field ${key}: ${JSON.stringify(line)}`);
          assert.equal(line, `              ${`${key}:`.padEnd(10)}${m[2]}`, `"%-10s%i" layout: ${JSON.stringify(line)}`);
          ps.set(key, Number(m[2]));
        }
        assert.match(next(), /^ {2}vm stats threshold: \d+$/);
        zone.pagesets.push(ps);
      }
      assert.ok(zone.pagesets.length > 0, `node ${node} zone ${zone.zone} lists its CPUs' pagesets`);
      assert.match(next(), /^ {2}node_unreclaimable: {2}\d+$/);
      const sp = /^ {2}start_pfn: {11}(\d+)$/.exec(next());
      assert.ok(sp, `start_pfn in node ${node} zone ${zone.zone}`);
      zone.startPfn = Number(sp[1]);
    }
    zones.push(zone);
  }
  assert.ok(zones.length > 0, 'zoneinfo has zones');
  const cpus = zones.filter((z) => z.pagesets.length > 0).map((z) => z.pagesets.length);
  assert.ok(cpus.every((n) => n === cpus[0]), 'every populated zone lists the same CPUs');
  assert.ok(zones.every((z) => z.protection.length === zones[0]!.protection.length), 'protection arrays have one length');
  return zones;
}

// ---- every file ---------------------------------------------------------------------------------

/** Every mounted file a reader may read (paths relative to the mount): all but /control. */
export const READABLE_FILES: readonly string[] = FILES.filter((f) => f.render !== undefined).map((f) => f.path.slice(1));
/** The writable sysctls, relative to the mount. */
export const SYSCTL_FILES: readonly string[] = FILES.filter((f) => f.write !== undefined).map((f) => f.path.slice(1));

/** Parse `text` as the file at `rel` (relative to the mount) strictly; throws AssertionError. */
export function parseProcFile(rel: string, text: string): unknown {
  switch (rel) {
    case 'buddyinfo': return parseBuddyinfo(text);
    case 'meminfo': return parseMeminfo(text);
    case 'vmstat': return parseVmstat(text);
    case 'zoneinfo': return parseZoneinfo(text);
    case 'stat': return parseStat(text);
    case 'loadavg': return parseLoadavg(text);
    case 'uptime': return parseUptime(text);
    default:
      assert.ok(rel.startsWith('sys/vm/'), `no strict parser for ${rel}`);
      return parseSysctl(text);
  }
}

// ---- reader threads -------------------------------------------------------------------------------

export interface ReaderOptions {
  /** Files to read, relative to the mount (default: READABLE_FILES). */
  files?: readonly string[];
  /** Bytes per read(2), one per reader in turn (default: a mix from 333 B to 128 KiB). */
  chunkSizes?: readonly number[];
  /** Stop at the first failed syscall (the daemon going away) instead of counting it. */
  stopOnError?: boolean;
  /** Hard stop, ms from start: a reader never outlives it (default 10 minutes). */
  maxMs?: number;
}

export interface ReaderReport {
  reader: number;
  reads: number;
  bytes: number;
  perFile: Record<string, number>;
  /** Reads that returned text the strict parser refused (at most 20 kept; `malformedCount` has all). */
  malformed: { file: string; message: string; text: string }[];
  malformedCount: number;
  /** Failed syscalls (at most 20 kept). */
  errors: { file: string; code: string; message: string }[];
  errorCount: number;
  /** Why the loop ended. */
  ended: 'stopped' | 'error' | 'deadline';
  elapsedMs: number;
}

export interface ReaderPool {
  /** Reads done so far by all readers. */
  reads(): number;
  /** Ask every reader to stop after its current file; resolves with their reports. */
  stop(): Promise<ReaderReport[]>;
  /** Resolves when every reader has ended by itself (stopOnError, or the deadline). */
  readonly done: Promise<ReaderReport[]>;
}

interface ReaderWorkerData {
  kscrubfsReader: true;
  dir: string;
  files: readonly string[];
  chunk: number;
  index: number;
  stopOnError: boolean;
  maxMs: number;
  shared: SharedArrayBuffer;
}

const DEFAULT_CHUNKS = [65536, 4096, 1000, 131072, 4096, 333, 65536, 7919];

/**
 * Start `n` reader threads on the mount at `dir`. Each loops over the files: open, read to EOF
 * in its chunk size, close, parse strictly. Real blocking syscalls on their own threads, so the
 * daemon sees `n` concurrent readers (the test's own event loop stays free).
 */
export function startReaders(dir: string, n: number, opts: ReaderOptions = {}): ReaderPool {
  // [0] stop flag, [1 + i] reads of reader i.
  const shared = new SharedArrayBuffer(4 * (n + 1));
  const flags = new Int32Array(shared);
  const chunks = opts.chunkSizes ?? DEFAULT_CHUNKS;
  const workers = Array.from({ length: n }, (_, index) => {
    const data: ReaderWorkerData = {
      kscrubfsReader: true, dir, files: opts.files ?? READABLE_FILES, chunk: chunks[index % chunks.length]!, index,
      stopOnError: opts.stopOnError ?? false, maxMs: opts.maxMs ?? 600_000, shared,
    };
    return new Worker(__filename, { workerData: data, execArgv: [] });
  });
  const done = Promise.all(workers.map((w, index) => new Promise<ReaderReport>((resolve, reject) => {
    let report: ReaderReport | undefined;
    w.on('message', (r: ReaderReport) => { report = r; });
    w.on('error', reject);
    w.on('exit', (code) => (report ? resolve(report) : reject(new Error(`reader ${index} exited (${code}) without a report`))));
  })));
  done.catch(() => undefined); // observed by whoever awaits it
  return {
    reads: () => {
      let s = 0;
      for (let i = 1; i <= n; i++) s += Atomics.load(flags, i);
      return s;
    },
    stop: () => {
      Atomics.store(flags, 0, 1);
      return done;
    },
    done,
  };
}

function runReader(d: ReaderWorkerData): ReaderReport {
  const flags = new Int32Array(d.shared);
  const start = Date.now();
  const report: ReaderReport = {
    reader: d.index, reads: 0, bytes: 0, perFile: {}, malformed: [], malformedCount: 0, errors: [], errorCount: 0,
    ended: 'stopped', elapsedMs: 0,
  };
  const buf = Buffer.alloc(d.chunk);
  // Readers start at different files so that every file is under concurrent reads.
  let k = d.index;
  for (;;) {
    if (Atomics.load(flags, 0) !== 0) break;
    if (Date.now() - start > d.maxMs) {
      report.ended = 'deadline';
      break;
    }
    const file = d.files[k++ % d.files.length]!;
    let text: string;
    try {
      text = readWhole(path.join(d.dir, file), buf);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      report.errorCount++;
      if (report.errors.length < 20) report.errors.push({ file, code: e.code ?? 'unknown', message: e.message });
      if (d.stopOnError) {
        report.ended = 'error';
        break;
      }
      continue;
    }
    report.reads++;
    report.bytes += text.length;
    report.perFile[file] = (report.perFile[file] ?? 0) + 1;
    Atomics.add(flags, 1 + d.index, 1);
    try {
      parseProcFile(file, text);
    } catch (err) {
      report.malformedCount++;
      if (report.malformed.length < 20) report.malformed.push({ file, message: (err as Error).message, text: text.slice(0, 2000) });
    }
  }
  report.elapsedMs = Date.now() - start;
  return report;
}

/** open, read(2) in `buf`-sized pieces until one returns 0, close. */
function readWhole(file: string, buf: Buffer): string {
  const fd = openSync(file, 'r');
  try {
    const parts: Buffer[] = [];
    for (;;) {
      const got = readSync(fd, buf, 0, buf.length, null);
      if (got === 0) break;
      parts.push(Buffer.from(buf.subarray(0, got)));
    }
    return Buffer.concat(parts).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

if (!isMainThread && (workerData as Partial<ReaderWorkerData> | null)?.kscrubfsReader === true) {
  parentPort!.postMessage(runReader(workerData as ReaderWorkerData));
}

/** Every readable file's text, each parsed strictly on the way (a torn file throws). */
export async function snapshotFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const rel of READABLE_FILES) {
    const text = await readFile(path.join(dir, rel), 'utf8');
    parseProcFile(rel, text);
    out.set(rel, text);
  }
  return out;
}
