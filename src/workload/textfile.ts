import { renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { COUNTERS, exportedMetric } from '../uapi';
import { WorkloadError } from './client';
import type { Sample } from './watch-files';

// node_exporter's textfile collector format (Prometheus text exposition 0.0.4) for what its
// own buddyinfo collector cannot read: V6's zeroed / not-zeroed split per node, zone and order,
// and every counter of the table (src/uapi/counters.ts) from vmstat, with its help text. Written by
// `kscrubfs watch --textfile DIR`; node_exporter --collector.textfile.directory=DIR serves it.

/** The file name in DIR (node_exporter reads every *.prom there). */
export const TEXTFILE = 'kscrubfs.prom';

const label = (v: string | number): string => `"${String(v).replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`;

/** One sample as textfile metrics; a stock buddyinfo (no split) gives totals only. */
export function renderTextfile(s: Sample): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, lines: readonly string[]): void => {
    if (lines.length === 0) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
  };
  const split = s.buddy.every((z) => z.zeroed !== null);
  family('kscrubfs_free_blocks', 'gauge',
    split ? 'Free blocks per node, zone, order and class (zeroed / not_zeroed), from V6 buddyinfo' : 'Free blocks per node, zone and order (stock buddyinfo: no zeroed split)',
    s.buddy.flatMap((z) => z.total.flatMap((total, order) => {
      const at = `node=${label(z.node)},zone=${label(z.zone)},order=${label(order)}`;
      if (!z.zeroed) return [`kscrubfs_free_blocks{${at},class="all"} ${total}`];
      const zeroed = z.zeroed[order]!;
      return [`kscrubfs_free_blocks{${at},class="not_zeroed"} ${total - zeroed}`, `kscrubfs_free_blocks{${at},class="zeroed"} ${zeroed}`];
    })));
  const memZero = s.meminfo.get('MemZero');
  family('kscrubfs_memory_zero_bytes', 'gauge', 'MemZero: free memory on the zeroed lists', memZero === undefined ? [] : [`kscrubfs_memory_zero_bytes ${memZero * 1024}`]);
  // Every counter of the table, by its vmstat name (a kernel without the patch has none of its own).
  for (const c of COUNTERS) {
    const v = s.vmstat.get(c.name);
    const { name, divisor } = exportedMetric(c);
    family(name, c.kind, c.help, v === undefined ? [] : [`${name} ${v / divisor}`]);
  }
  for (const [name, v] of s.sysctl) family(`kscrubfs_sysctl_vm_${name}`, 'gauge', `vm.${name}`, [`kscrubfs_sysctl_vm_${name} ${v}`]);
  family('kscrubfs_uptime_seconds', 'gauge', "the machine's clock when the files were read", [`kscrubfs_uptime_seconds ${s.uptimeS}`]);
  return `${out.join('\n')}\n`;
}

/** Write DIR/kscrubfs.prom atomically (a temporary file renamed), as node_exporter asks. */
export function writeTextfile(dir: string, s: Sample): void {
  const file = path.join(dir, TEXTFILE);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // A fresh name, never a symlink planted under it (wx: O_CREAT | O_EXCL fails on any existing name).
    rmSync(tmp, { force: true });
    writeFileSync(tmp, renderTextfile(s), { flag: 'wx' });
    renameSync(tmp, file);
  } catch (err) {
    throw new WorkloadError(`watch --textfile: cannot write ${file}: ${(err as Error).message}`);
  }
}
