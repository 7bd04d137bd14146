import { KscrubError } from './errors';

// One strict parser per file the mount serves, for every client (watch, pft, trace replay, the
// textfile exporter, the tests). The rules are prometheus/procfs's (buddyinfo.go, meminfo.go,
// stat.go, zoneinfo.go, loadavg.go) and the kernel's own format strings: one newline at the
// end, no blank lines, `kB` where the kernel prints it, "%6lu " buddyinfo columns, plain
// decimal. A real 6.18 kernel's files pass them (test/unit/procfs.test.ts reads its fixture);
// a line they do not expect is an error naming the file, the line and the token — never
// skipped, so a torn or half-rendered read is seen, not averaged in.

/** A file's text did not have the kernel's format. `line` is 1-based (0: the file as a whole). */
export class ProcFormatError extends KscrubError<'KSCRUB_PROC_FORMAT'> {
  constructor(readonly file: string, readonly line: number, readonly token: string, what: string) {
    super('KSCRUB_PROC_FORMAT', `${file}${line > 0 ? ` line ${line}` : ''}: ${what}${token === '' ? '' : `: ${JSON.stringify(token.length > 80 ? `${token.slice(0, 80)}…` : token)}`}`);
  }
}

/** The lines of a proc file, each with its number, and the one way to refuse one. */
class Reader {
  readonly lines: string[];
  constructor(readonly file: string, text: string) {
    if (text.length === 0) this.fail(0, 'is empty', '');
    if (!text.endsWith('\n')) this.fail(0, 'does not end with a newline', text.slice(text.lastIndexOf('\n') + 1));
    this.lines = text.slice(0, -1).split('\n');
    this.lines.forEach((l, i) => {
      if (l === '') this.fail(i + 1, 'is blank', '');
    });
  }

  fail(line: number, what: string, token: string): never {
    throw new ProcFormatError(this.file, line, token, what);
  }

  /** A check on line `line` (1-based). */
  check(ok: unknown, line: number, what: string, token: string): asserts ok {
    if (!ok) this.fail(line, what, token);
  }

  /** One line only (loadavg, uptime). */
  only(): string {
    this.check(this.lines.length === 1, 2, 'has more than one line', this.lines[1] ?? '');
    return this.lines[0]!;
  }
}

/** A check on the file as a whole (line 0). */
function whole(file: string, ok: unknown, what: string): asserts ok {
  if (!ok) throw new ProcFormatError(file, 0, '', what);
}

// ---- buddyinfo ------------------------------------------------------------------------------------

export type BuddyinfoLayout = 'v6' | 'stock';

/** One zone of buddyinfo. */
export interface BuddyZone {
  readonly node: number;
  readonly zone: string;
  /** Free blocks per order as the zone line prints them: NOT_ZEROED in v6, all in stock. */
  readonly counts: readonly number[];
  /** ZEROED blocks per order, from v6's "Zeroed Pages" line; null for stock. */
  readonly zeroed: readonly number[] | null;
  /** All free blocks per order (counts + zeroed). */
  readonly total: readonly number[];
}

/** The label of V6's second line per zone. */
export const ZEROED_LABEL = '        Zeroed Pages  ';

/** `"%6lu "` per order, exactly, and the numbers. */
function columns(r: Reader, n: number, rest: string): number[] {
  r.check(/^( {0,5}\d+ )+$/.test(rest), n, 'expected "%6lu " columns', rest);
  const counts = rest.trim().split(/\s+/).map(Number);
  r.check(counts.map((c) => `${String(c).padStart(6)} `).join('') === rest, n, 'expected "%6lu " columns', rest);
  return counts;
}

/** `Node N, zone NAME` then the columns, with the kernel's "Node %d, zone %8s " prefix. */
function zoneLine(r: Reader, n: number): { node: number; zone: string; counts: number[] } {
  const line = r.lines[n - 1]!;
  const m = /^Node (\d+), zone +(\S+) /.exec(line);
  r.check(m, n, 'expected "Node %d, zone %8s "', line);
  const node = Number(m[1]);
  const zone = m[2]!;
  const prefix = `Node ${node}, zone ${zone.padStart(8)} `;
  r.check(line.startsWith(prefix), n, 'expected "Node %d, zone %8s "', line.slice(0, prefix.length));
  return { node, zone, counts: columns(r, n, line.slice(prefix.length)) };
}

/**
 * buddyinfo in either layout: v6 (each zone line counts NOT_ZEROED blocks and is followed by
 * its "Zeroed Pages" line) or stock (one line per zone). `layout` undefined: v6 when the second
 * line is a "Zeroed Pages" line. Every line has the same number of orders.
 */
export function parseBuddyinfo(text: string, layout?: BuddyinfoLayout): BuddyZone[] {
  const r: Reader = new Reader('buddyinfo', text);
  const v6 = layout === undefined ? r.lines[1]?.startsWith(ZEROED_LABEL) === true : layout === 'v6';
  const zones: BuddyZone[] = [];
  let orders = -1;
  const sameOrders = (n: number, counts: readonly number[]): void => {
    if (orders < 0) orders = counts.length;
    r.check(counts.length === orders, n, `expected ${orders} orders, as on line 1`, r.lines[n - 1]!);
  };
  for (let n = 1; n <= r.lines.length; n += v6 ? 2 : 1) {
    const z = zoneLine(r, n);
    sameOrders(n, z.counts);
    let zeroed: number[] | null = null;
    if (v6) {
      const line = r.lines[n] ?? '';
      r.check(line.startsWith(ZEROED_LABEL), n + 1, `expected the "Zeroed Pages" line of node ${z.node} zone ${z.zone}`, line);
      zeroed = columns(r, n + 1, line.slice(ZEROED_LABEL.length));
      sameOrders(n + 1, zeroed);
    }
    const total = zeroed ? z.counts.map((c, o) => c + zeroed[o]!) : z.counts;
    zones.push({ ...z, zeroed, total });
  }
  return zones;
}

// ---- meminfo, vmstat ------------------------------------------------------------------------------

/**
 * meminfo.go's rules (`Key: value kB`, HugePages_* without a unit) with the kernel's 16-wide
 * label and 8-wide value, each key once; and what holds on any machine: MemTotal, MemFree and
 * MemAvailable are there, MemFree ≤ MemTotal, MemZero (the patch's) ≤ MemFree. kB for kB lines.
 */
export function parseMeminfo(text: string): Map<string, number> {
  const r: Reader = new Reader('meminfo', text);
  const out = new Map<string, number>();
  r.lines.forEach((line, i) => {
    const n = i + 1;
    const m = /^([A-Za-z0-9_()]+):( +)(\d+)( kB)?$/.exec(line);
    r.check(m, n, 'expected "Key:  value kB"', line);
    const [, key, , value, unit] = m;
    r.check((unit === undefined) === key!.startsWith('HugePages_'), n, unit === undefined ? 'expected a kB unit' : 'expected no unit', line);
    r.check(line.slice(0, 16) === `${key}:`.padEnd(16), n, 'expected a 16-wide label', line);
    r.check(line.slice(16, 16 + Math.max(8, value!.length)) === value!.padStart(8), n, 'expected an 8-wide value', line);
    r.check(!out.has(key!), n, 'repeats a key', key!);
    out.set(key!, Number(value));
  });
  for (const key of ['MemTotal', 'MemFree', 'MemAvailable']) whole('meminfo', out.has(key), `has no ${key}`);
  whole('meminfo', out.get('MemFree')! <= out.get('MemTotal')!, 'MemFree is more than MemTotal');
  if (out.has('MemZero')) whole('meminfo', out.get('MemZero')! <= out.get('MemFree')!, 'MemZero is more than MemFree');
  return out;
}

/** vmstat: `name value` lines, names unique, nr_free_pages among them. */
export function parseVmstat(text: string): Map<string, number> {
  const r: Reader = new Reader('vmstat', text);
  const out = new Map<string, number>();
  r.lines.forEach((line, i) => {
    const m = /^([a-z0-9_]+) (\d+)$/.exec(line);
    r.check(m, i + 1, 'expected "name value"', line);
    r.check(!out.has(m[1]!), i + 1, 'repeats a name', m[1]!);
    out.set(m[1]!, Number(m[2]));
  });
  whole('vmstat', out.has('nr_free_pages'), 'has no nr_free_pages');
  return out;
}

// ---- stat, loadavg, uptime, sysctls ---------------------------------------------------------------

export interface Stat {
  /** `cpu` (the total) and `cpuN`: user nice system idle iowait irq softirq steal guest guest_nice. */
  readonly cpus: Map<string, number[]>;
  /** The keyed lines after the cpu lines, in order. */
  readonly keys: string[];
  readonly values: Map<string, number[]>;
}

/** stat.go's rules: `cpu` then `cpuN` lines of 10 numeric columns, then `key n …` lines. */
export function parseStat(text: string): Stat {
  const r: Reader = new Reader('stat', text);
  const st: Stat = { cpus: new Map(), keys: [], values: new Map() };
  r.lines.forEach((line, i) => {
    const n = i + 1;
    const fields = line.split(' ');
    if (line.startsWith('cpu')) {
      r.check(st.keys.length === 0, n, 'expected the cpu lines first', line);
      const label = line.startsWith('cpu  ') ? 'cpu' : fields[0]!;
      r.check(/^cpu\d*$/.test(label), n, 'expected "cpu" or "cpuN"', label);
      r.check(!st.cpus.has(label), n, 'repeats a cpu', label);
      const cols = line.slice(label === 'cpu' ? 5 : label.length + 1).split(' ');
      r.check(cols.length === 10, n, 'expected 10 columns', line);
      const bad = cols.find((c) => !/^\d+$/.test(c));
      r.check(bad === undefined, n, 'expected a number', bad ?? '');
      st.cpus.set(label, cols.map(Number));
      return;
    }
    const bad = fields.slice(1).find((f) => !/^\d+$/.test(f));
    r.check(fields.length >= 2 && bad === undefined, n, 'expected "key n …"', bad ?? line);
    r.check(!st.values.has(fields[0]!), n, 'repeats a key', fields[0]!);
    st.keys.push(fields[0]!);
    st.values.set(fields[0]!, fields.slice(1).map(Number));
  });
  whole('stat', st.cpus.has('cpu'), 'has no cpu total line');
  return st;
}

export interface Loadavg {
  readonly avg: readonly [number, number, number];
  /** Runnable tasks (the kernel's nr_running). */
  readonly running: number;
  readonly threads: number;
  readonly lastPid: number;
}

/** loadavg.go: `%lu.%02lu ×3 %u/%d %d`, running ≤ threads. */
export function parseLoadavg(text: string): Loadavg {
  const r: Reader = new Reader('loadavg', text);
  const line = r.only();
  const m = /^(\d+\.\d\d) (\d+\.\d\d) (\d+\.\d\d) (\d+)\/(\d+) (\d+)$/.exec(line);
  r.check(m, 1, 'expected "<1> <5> <15> <running>/<threads> <last pid>"', line);
  const running = Number(m[4]);
  const threads = Number(m[5]);
  r.check(running <= threads, 1, 'has more running tasks than threads', `${running}/${threads}`);
  return { avg: [Number(m[1]), Number(m[2]), Number(m[3])], running, threads, lastPid: Number(m[6]) };
}

/** uptime's `%lu.%02lu %lu.%02lu`: seconds up, idle seconds summed over the CPUs. */
export function parseUptime(text: string): { readonly uptime: number; readonly idle: number } {
  const r: Reader = new Reader('uptime', text);
  const line = r.only();
  const m = /^(\d+\.\d\d) (\d+\.\d\d)$/.exec(line);
  r.check(m, 1, 'expected "<seconds> <idle seconds>"', line);
  return { uptime: Number(m[1]), idle: Number(m[2]) };
}

/** A sysctl as proc_dointvec prints it, `%d\n`: one plain decimal int. `file`: its path (sys/vm/scrub_start). */
export function parseSysctl(text: string, file: string): number {
  const r: Reader = new Reader(file, text);
  const line = r.only();
  r.check(/^(0|-?[1-9]\d*)$/.test(line), 1, 'expected one decimal integer', line);
  const v = Number(line);
  r.check(Number.isSafeInteger(v) && v >= -(2 ** 31) && v < 2 ** 31, 1, 'is out of range for an int', line);
  return v;
}

/** A sysfs attribute that prints one unsigned int ("%u\n"). */
export function parseSysfsUint(text: string, file: string): number {
  const r: Reader = new Reader(file, text);
  const line = r.only();
  r.check(/^(0|[1-9]\d*)$/.test(line), 1, 'expected one unsigned decimal integer', line);
  const v = Number(line);
  r.check(v < 2 ** 32, 1, 'is out of range for an unsigned int', line);
  return v;
}

// ---- zoneinfo -------------------------------------------------------------------------------------

export interface ZoneinfoZone {
  readonly node: number;
  readonly zone: string;
  /** `pages free`, boost, min, low, high, promo, spanned, present, managed, cma. */
  readonly header: Map<string, number>;
  protection: number[];
  /** The zone's `nr_*`/`numa_*` stats (empty for an unpopulated zone). */
  readonly stats: Map<string, number>;
  /** Per CPU: count, high, batch, high_min, high_max. */
  readonly pagesets: Map<string, number>[];
  nodeStats?: Map<string, number>;
  startPfn?: number;
}

const ZONE_HEADER = ['boost', 'min', 'low', 'high', 'promo', 'spanned', 'present', 'managed', 'cma'];
const PAGESET_FIELDS = ['count', 'high', 'batch', 'high_min', 'high_max'];

/**
 * zoneinfo.go's blocks, line by line against the kernel's seq_printf formats (mm/vmstat.c
 * zoneinfo_show_print): `Node %d, zone %8s`; per-node stats once per node (`      %-12s %lu`);
 * `  pages free     %lu`; `        %-8s %lu`; protection; for a populated zone its stats,
 * `  pagesets`, `    cpu: %i` with `              %-10s%i` fields and `  vm stats threshold: %d`,
 * then `  node_unreclaimable:  %u` and `  start_pfn:           %lu`. Across zones: the same
 * CPUs and protection length; pages free = nr_free_pages.
 */
export function parseZoneinfo(text: string): ZoneinfoZone[] {
  const r: Reader = new Reader('zoneinfo', text);
  const all = r.lines;
  const zones: ZoneinfoZone[] = [];
  const nodesWithStats = new Set<number>();
  let i = 0;
  const next = (): string => {
    r.check(i < all.length, all.length, 'ends in the middle of a zone', all[all.length - 1]!);
    return all[i++]!;
  };
  const peek = (): string | undefined => all[i];
  const stat = (line: string, indent: string, width: number): [string, number] => {
    const m = new RegExp(`^${indent}([a-z0-9_]+) +(\\d+)$`).exec(line);
    r.check(m, i, `expected "%-${width}s %lu"`, line);
    r.check(line === `${indent}${m[1]!.padEnd(width)} ${m[2]}`, i, `expected "%-${width}s %lu"`, line);
    return [m[1]!, Number(m[2])];
  };
  while (i < all.length) {
    const head = next();
    const hm = /^Node (\d+), zone +(\S+)$/.exec(head);
    r.check(hm, i, 'expected "Node %d, zone %8s"', head);
    const node = Number(hm[1]);
    const zone: ZoneinfoZone = { node, zone: hm[2]!, header: new Map(), protection: [], stats: new Map(), pagesets: [] };
    r.check(head === `Node ${node}, zone ${zone.zone.padStart(8)}`, i, 'expected "Node %d, zone %8s"', head);
    const where = `node ${node} zone ${zone.zone}`;
    if (peek() === '  per-node stats') {
      r.check(!nodesWithStats.has(node), i + 1, `repeats node ${node}'s per-node stats`, peek()!);
      nodesWithStats.add(node);
      next();
      const nodeStats = new Map<string, number>();
      while (peek()?.startsWith('      ')) {
        const [k, v] = stat(next(), '      ', 12);
        r.check(!nodeStats.has(k), i, `repeats a stat of node ${node}`, k);
        nodeStats.set(k, v);
      }
      r.check(nodeStats.size > 0, i, 'expected per-node stats', peek() ?? '');
      zone.nodeStats = nodeStats;
    }
    const freeLine = next();
    const free = /^ {2}pages free {5}(\d+)$/.exec(freeLine);
    r.check(free, i, `expected "  pages free     %lu" in ${where}`, freeLine);
    zone.header.set('pages free', Number(free[1]));
    for (const key of ZONE_HEADER) {
      const [k, v] = stat(next(), '        ', 8);
      r.check(k === key, i, `expected ${key} in ${where}`, k);
      zone.header.set(k, v);
    }
    const protLine = next();
    const prot = /^ {8}protection: \((\d+(?:, \d+)*)\)$/.exec(protLine);
    r.check(prot, i, `expected "        protection: (%ld, …)" in ${where}`, protLine);
    zone.protection = prot[1]!.split(', ').map(Number);
    const populated = peek() !== undefined && !peek()!.startsWith('Node ');
    if (populated) {
      while (peek()?.startsWith('      ')) {
        const [k, v] = stat(next(), '      ', 12);
        r.check(!zone.stats.has(k), i, `repeats a stat of ${where}`, k);
        zone.stats.set(k, v);
      }
      r.check(zone.stats.get('nr_free_pages') === zone.header.get('pages free'), i, `nr_free_pages is not pages free in ${where}`, String(zone.stats.get('nr_free_pages')));
      const ps = next();
      r.check(ps === '  pagesets', i, `expected "  pagesets" in ${where}`, ps);
      while (peek()?.startsWith('    cpu: ')) {
        const cpu = /^ {4}cpu: (\d+)$/.exec(next());
        r.check(cpu && Number(cpu[1]) === zone.pagesets.length, i, 'expected "    cpu: %i", the CPUs in order', all[i - 1]!);
        const fields = new Map<string, number>();
        for (const key of PAGESET_FIELDS) {
          const line = next();
          const m = /^ {14}([a-z_]+): +(\d+)$/.exec(line);
          r.check(m && m[1] === key && line === `              ${`${key}:`.padEnd(10)}${m[2]}`, i, `expected "              ${key}:" as "%-10s%i"`, line);
          fields.set(key, Number(m[2]));
        }
        const threshold = next();
        r.check(/^ {2}vm stats threshold: \d+$/.test(threshold), i, 'expected "  vm stats threshold: %d"', threshold);
        zone.pagesets.push(fields);
      }
      r.check(zone.pagesets.length > 0, i + 1, `expected the CPUs' pagesets of ${where}`, peek() ?? '');
      const unreclaimable = next();
      r.check(/^ {2}node_unreclaimable: {2}\d+$/.test(unreclaimable), i, 'expected "  node_unreclaimable:  %u"', unreclaimable);
      const spLine = next();
      const sp = /^ {2}start_pfn: {11}(\d+)$/.exec(spLine);
      r.check(sp, i, `expected "  start_pfn:           %lu" in ${where}`, spLine);
      zone.startPfn = Number(sp[1]);
    }
    zones.push(zone);
  }
  const cpus = zones.filter((z) => z.pagesets.length > 0).map((z) => z.pagesets.length);
  whole('zoneinfo', cpus.every((n) => n === cpus[0]), 'lists different CPUs in different zones');
  whole('zoneinfo', zones.every((z) => z.protection.length === zones[0]!.protection.length), 'has protection arrays of different lengths');
  return zones;
}

// ---- every file -----------------------------------------------------------------------------------

/** Parse `text` as the file at `rel` (relative to the mount: buddyinfo, sys/vm/scrub_start) strictly. */
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
      if (rel.startsWith('sys/kernel/mm/prezero/')) return parseSysfsUint(text, rel);
      if (!rel.startsWith('sys/vm/')) throw new ProcFormatError(rel, 0, '', 'is no file kscrubfs serves');
      return parseSysctl(text, rel);
  }
}
