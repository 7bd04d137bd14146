import { type FaultCounts, MAX_MAP_BYTES, MAX_PREALLOC_ORDER, MAX_REPS, MAX_THREADS, ModelError, formatCommand, formatSize, kscrubdSysctls } from '../uapi';
import { type Control, ControlClient, WorkloadError, run } from './client';
import { type ConfigPairs, readConfig } from './provenance';

/**
 * pft, after Christoph Lameter's page fault test: each repetition is a new process (an mm)
 * with `threads` threads that map their share of `bytes` as fresh anonymous memory and write
 * `cachelines` lines at the start of every page, in address order; then the process exits.
 * Everything goes through the mount's control file; the times are the model's virtual CPU
 * and wall times, so the table is the simulated machine's, not this host's.
 */
export interface PftOptions {
  bytes: number;
  reps: number;
  threads: readonly number[];
  cachelines: number;
  /** 'off': scrub_start = MAX_ORDER; 'on': scrub_start/scrub_stop below; undefined: leave as is. */
  scrub?: 'on' | 'off';
  scrubStart?: number;
  scrubStop?: number;
  /** vm.max_prealloc_order for the run (anticipatory prefault), when given. */
  prealloc?: number;
  /** Map with MADV_HUGEPAGE: aligned 2 MiB ranges fault as transparent huge pages. */
  thp?: boolean;
  /**
   * Write one byte every `stride` bytes, as pft.c's loop does (its NBPP, 16 KiB), and count
   * every page as pft does: pages = bytes ÷ page size, touched or not. A stride larger than the
   * page must be a multiple of it; one of a page or less writes every page (pft.c on 16 KiB
   * pages), so it is dropped and the run is the every-page run.
   */
  stride?: number;
  /** Wait until kscrubd sleeps before each row. */
  settle: boolean;
  /** Called now and then with a progress message (the CLI shows it on a terminal). */
  progress?: ((msg: string) => void) | undefined;
  /** Called with each row as it finishes. */
  onRow?: ((row: PftRow) => void) | undefined;
}

export interface PftRow extends FaultCounts {
  gb: number;
  rep: number;
  threads: number;
  cachelines: number;
  userS: number;
  systemS: number;
  wallS: number;
  fltPerCpuS: number;
  faultPerWsec: number;
}

const SETTLE_STEP_NS = 100e6;
const SETTLE_MAX_STEPS = 6000; // 10 virtual minutes, or as long in live mode

/** Run pft against the mount at `dir`; sysctls it changed are restored, whatever happens. */
export async function runPft(dir: string, o: PftOptions): Promise<PftRow[]> {
  return (await runPftWithConfig(dir, o)).rows;
}

/** The PftRow fields in table order, for CSV and JSON readers. */
export const PFT_COLUMNS = [
  'gb', 'rep', 'threads', 'cachelines', 'userS', 'systemS', 'wallS', 'fltPerCpuS', 'faultPerWsec',
  'pages', 'faults', 'prezeroed', 'hotZeroed', 'prefaulted', 'oom',
] as const satisfies readonly (keyof PftRow)[];

/**
 * runPft, also returning the daemon's `config` as the run started (after pft's own sysctl
 * settings): what a result needs to say how it was made.
 */
export async function runPftWithConfig(dir: string, o: PftOptions): Promise<{ config: ConfigPairs; rows: PftRow[] }> {
  return runPftOn(new ControlClient(dir), o);
}

/** pft on any control channel (a mount's control file, or a machine in this process); closes it. */
export async function runPftOn(ctl: Control, o: PftOptions): Promise<{ config: ConfigPairs; rows: PftRow[] }> {
  const saved = new Map<string, number>();
  const set = (name: string, v: number): void => {
    if (!saved.has(name)) saved.set(name, ctl.readSysctl(name));
    ctl.writeSysctl(name, v);
  };
  const restore = (): void => {
    for (const [name, v] of [...saved].reverse()) ctl.writeSysctl(name, v);
  };
  const rows: PftRow[] = [];
  let config: ConfigPairs = {};
  try {
    // The machine's shape, once: MAX_ORDER (scrub_start's "off") and the page size.
    const machine = run(ctl, { verb: 'stats' });
    const maxOrder = machine.max_order;
    const pageSize = machine.page_size;
    if (!(pageSize > 0) || !(maxOrder > 0)) throw new WorkloadError('control stats did not report page_size and max_order');
    const before = readConfig(ctl);
    checkPftOptions(o, pageSize, maxOrder, Number(before.line_size));
    // "kscrubd off" is the machine whose faults zero every page. Free memory zeroed already
    // (an earlier --scrub on) is taken first whatever scrub_start says: the rows would measure
    // prezeroed faults under the name of the base run. Refused before anything changes. Under
    // init_on_free zeroed free memory is the policy itself, and kscrubd off is what it is.
    const zeroPages = Number(machine.nr_zero_pages);
    if (o.scrub === 'off' && zeroPages > 0 && !(before.zeroing_policy ?? '').split(',').includes('init_on_free')) {
      throw new WorkloadError(`pft --scrub off: ${formatSize(zeroPages * pageSize)} of this machine's free memory is already zeroed (MemZero), `
        + 'and faults take it first: the rows would measure prezeroed faults, not a machine without kscrubd. '
        + 'Run it on a fresh machine (kscrubfs umount, then kscrubfs mount again)');
    }
    if (o.scrub !== undefined) for (const [name, v] of kscrubdSysctls(o.scrub, maxOrder, o)) set(name, v);
    if (o.prealloc !== undefined) set('max_prealloc_order', o.prealloc);
    config = readConfig(ctl);
    for (const threads of o.threads) {
      if (o.settle) await settle(ctl, o.progress);
      const row = runRow(ctl, o, threads, pageSize);
      rows.push(row);
      o.onRow?.(row);
    }
  } catch (err) {
    // Restore what can be restored, but report the first failure: when the daemon went away
    // mid-run, the restore fails too, and its message ("nothing is mounted") would hide why.
    try {
      restore();
    } catch {
      // already failing
    }
    ctl.close();
    throw err;
  }
  try {
    restore();
  } finally {
    ctl.close();
  }
  return { config, rows };
}

/**
 * Every number of the run against the limits and the mounted machine, before anything changes
 * or runs: a value the model would refuse at the first (or the tenth) row is refused here, with
 * its range, as a usage error (the model's KSCRUB_BAD_OPTION), and the mount is left as it was.
 */
function checkPftOptions(o: PftOptions, pageSize: number, maxOrder: number, lineSize: number): void {
  const bad = (what: string): never => {
    throw new ModelError('KSCRUB_BAD_OPTION', `pft: ${what}`);
  };
  const inRange = (name: string, v: number, min: number, max: number, why = ''): void => {
    if (!Number.isSafeInteger(v) || v < min || v > max) bad(`${name}=${v} is out of range ${min}..${max}${why}`);
  };
  if (!Number.isSafeInteger(o.bytes) || o.bytes < 1 || o.bytes > MAX_MAP_BYTES) bad(`bytes=${o.bytes} is out of range 1..${formatSize(MAX_MAP_BYTES)} (the largest mapping)`);
  inRange('reps', o.reps, 1, MAX_REPS);
  for (const t of o.threads) inRange('threads', t, 1, MAX_THREADS);
  if (lineSize > 0) inRange('cachelines', o.cachelines, 1, pageSize / lineSize, ` (${lineSize}-byte lines in this machine's ${pageSize}-byte page)`);
  if (o.scrubStart !== undefined) inRange('scrub_start', o.scrubStart, 0, maxOrder, ` (this machine's MAX_ORDER is ${maxOrder})`);
  if (o.scrubStop !== undefined) inRange('scrub_stop', o.scrubStop, 0, maxOrder, ` (this machine's MAX_ORDER is ${maxOrder})`);
  if (o.prealloc !== undefined) inRange('prealloc', o.prealloc, 0, MAX_PREALLOC_ORDER, ' (vm.max_prealloc_order)');
  if (o.stride !== undefined && (!Number.isSafeInteger(o.stride) || o.stride < 1 || o.stride > MAX_MAP_BYTES)) {
    bad(`stride=${o.stride} is out of range 1..${formatSize(MAX_MAP_BYTES)}`);
  }
  if (o.stride !== undefined && o.stride > pageSize && o.stride % pageSize !== 0) {
    bad(`stride=${o.stride} must be this machine's page size (${pageSize}) or less, or a multiple of it`);
  }
}

/**
 * The stride a run touches with on `pageSize` pages: none (every page) when `stride` is a page
 * or less — one byte every `stride` bytes then lands in every page, as pft.c's 16 KiB loop does
 * on the altix's 16 KiB pages — else `stride` itself.
 */
export function touchStride(stride: number | undefined, pageSize: number): number | undefined {
  return stride !== undefined && stride > pageSize ? stride : undefined;
}

function runRow(ctl: Control, o: PftOptions, threads: number, pageSize: number): PftRow {
  let user = 0;
  let sys = 0;
  let wall = 0;
  const row = { faults: 0, prezeroed: 0, hotZeroed: 0, prefaulted: 0, oom: 0 };
  /** Pages the touches got through: past the machine's memory a thread stops at its OOM. */
  let pages = 0;
  const stride = touchStride(o.stride, pageSize);
  for (let r = 0; r < o.reps; r++) {
    o.progress?.(`threads ${threads}: repetition ${r + 1} of ${o.reps}`);
    const mm = run(ctl, { verb: 'mm new' }).mm;
    try {
      const map = run(ctl, { verb: 'mmap', mm, size: o.bytes, ...(o.thp === true && { thp: true }) });
      const addr = map.addr;
      const t = run(ctl, {
        verb: 'touch', mm, addr, size: o.bytes, threads, lines: o.cachelines, access: 'write',
        ...(stride !== undefined && { stride }),
      });
      user += t.user_ns;
      sys += t.sys_ns;
      wall += t.wall_ns;
      row.faults += t.faults;
      row.prezeroed += t.prezeroed;
      row.hotZeroed += t.hot_zeroed;
      row.prefaulted += t.prefaulted;
      row.oom += t.oom;
      // pft computes its pages (bytes ÷ page size): every page a stride spans counts.
      pages += t.pages * (stride === undefined ? 1 : stride / pageSize);
    } catch (err) {
      // The process exits either way; if that fails too (the daemon is gone), the first error tells why.
      try {
        ctl.call(formatCommand({ verb: 'mm exit', mm }));
      } catch {
        // already failing
      }
      throw err;
    }
    // pft times each process from fork to wait: its exit (exit_mmap on one CPU) counts too.
    const exit = run(ctl, { verb: 'mm exit', mm });
    sys += exit.sys_ns;
    wall += exit.wall_ns;
  }
  // Rates are over the pages actually faulted in, not the pages asked for.
  return {
    gb: o.bytes / 2 ** 30, rep: o.reps, threads, cachelines: o.cachelines,
    userS: user / 1e9, systemS: sys / 1e9, wallS: wall / 1e9,
    fltPerCpuS: pages / ((user + sys) / 1e9), faultPerWsec: pages / (wall / 1e9),
    pages, ...row,
  };
}

/** Until kscrubd sleeps: tick a manual clock, or wait for a live one. */
export async function settle(ctl: Control, progress?: (msg: string) => void): Promise<void> {
  let manual = true;
  for (let i = 0; i < SETTLE_MAX_STEPS; i++) {
    if (run(ctl, { verb: 'stats' }).kscrubd_awake === 0) return;
    progress?.('settling: waiting for kscrubd to finish zeroing');
    if (manual) {
      try {
        ctl.call(formatCommand({ verb: 'tick', ns: SETTLE_STEP_NS }));
        continue;
      } catch (err) {
        if (!(err instanceof WorkloadError) || !/live/.test(err.message)) throw err;
        manual = false;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, SETTLE_STEP_NS / 1e6));
  }
  throw new WorkloadError('kscrubd did not go to sleep within 10 minutes; not starting the run');
}

/** The table as pft prints it, columns aligned. */
export function formatPftTable(rows: readonly PftRow[]): string {
  const body = rows.map(rowCells);
  const widths = PFT_HEAD.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [tableLine(PFT_HEAD, widths), ...body.map((b) => tableLine(b, widths))].join('\n') + '\n';
}

/**
 * pft's table a row at a time, each printed as it finishes, as Lameter's pft does (so that
 * `| tee` shows progress): columns as wide as the header and the rows so far.
 */
export function pftTableStream(write: (text: string) => void): (row: PftRow) => void {
  let widths: number[] | undefined;
  return (row) => {
    const cells = rowCells(row);
    const first = widths === undefined;
    widths = PFT_HEAD.map((h, i) => Math.max(widths?.[i] ?? h.length, cells[i]!.length));
    write(`${first ? `${tableLine(PFT_HEAD, widths)}\n` : ''}${tableLine(cells, widths)}\n`);
  };
}

const PFT_HEAD = [' Gb', 'Rep', 'Threads', 'User', 'System', 'Wall', 'flt/cpu/s', 'fault/wsec'] as const;

function rowCells(r: PftRow): string[] {
  return [
    Number.isInteger(r.gb) ? String(r.gb) : r.gb.toFixed(2),
    String(r.rep),
    String(r.threads),
    `${r.userS.toFixed(3)}s`,
    `${r.systemS.toFixed(3)}s`,
    `${r.wallS.toFixed(3)}s`,
    r.fltPerCpuS.toFixed(3),
    r.faultPerWsec.toFixed(3),
    ...(r.oom > 0 ? [`OOM: ${r.oom} thread(s) ran out of memory; rates over the ${r.pages} pages faulted`] : []),
  ];
}

function tableLine(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i < widths.length ? c.padStart(widths[i]!) : ` ${c}`)).join(' ');
}
