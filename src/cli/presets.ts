import type { Command } from 'commander';
import { type MachineConfig, presetFigures, resolveConfig } from '../model';
import { PRESETS, type PresetName, formatSize } from '../uapi';
import { PUBLISHED, type PresetStanding } from '../workload/calibration';
import { calibrationStanding } from './band';

// `kscrubfs presets`: what each machine is, from the model's own tables (resolveConfig,
// presetFigures, the published rows), so that the list cannot disagree with what mounts.

/** The zones a layout cuts memory into, with their bounds (per node). */
const ZONES: Readonly<Record<MachineConfig['zoneLayout'], string>> = {
  ia64: 'DMA (all memory: ia64 puts everything in ZONE_DMA)',
  x86_64: 'DMA (< 16 MiB), DMA32 (< 4 GiB), Normal',
  i386: 'DMA (< 16 MiB), Normal (lowmem, < 896 MiB), HighMem',
};

/** What each preset stands for and where its figures come from. */
const ABOUT: Readonly<Record<PresetName, { machine: string; source: string }>> = {
  altix: { machine: "SGI Altix 8-way (ia64), the prezeroing patches' own machine", source: 'src/model/cost-altix.ts' },
  x86_64: { machine: 'a generic x86_64 box', source: 'src/model/cost-x86_64.ts' },
  i386: { machine: "Lameter's 2 × Pentium III 450 (440BX), i386 without PAE", source: 'src/model/cost-i386.ts' },
  epyc: { machine: 'a 2-socket AMD EPYC Milan of today', source: 'src/model/cost-epyc.ts' },
  genoa: { machine: 'a 2-socket AMD EPYC Genoa (Zen 4, 2 × 96 cores)', source: 'src/model/cost-genoa.ts' },
  'icelake-x': { machine: 'a 2-socket Intel Xeon Ice Lake-SP (2 × 40 cores)', source: 'src/model/cost-icelake-x.ts' },
  'skylake-sp': { machine: 'a 2-socket Intel Xeon Skylake-SP (2 × 28 cores)', source: 'src/model/cost-skylake-sp.ts' },
};

export interface PresetInfo {
  name: PresetName;
  machine: string;
  nodes: number;
  cpus: number;
  memBytes: number;
  pageSize: number;
  lineSize: number;
  maxOrder: number;
  cpuMhz: number;
  zones: string;
  zeroDrivers: readonly string[];
  /** Drivers the machine also offers (--zero-drivers): CLZERO and movnti where measured. */
  moreDrivers: readonly string[];
  /** Each last-level cache: bytes, and the CPUs that share it. */
  llc: { bytes: number; cpus: number };
  kernel: string;
  figures: { measured: number; fitted: number; derived: number };
  source: string;
  publishedRows: number;
  /** How far the model is from those rows: docs/calibration.md's table of what calibrate prints (null without rows). */
  distance: PresetStanding | null;
}

export function presetInfo(name: PresetName, standing = calibrationStanding()): PresetInfo {
  const c = resolveConfig({ preset: name });
  const figures = Object.values(presetFigures(name));
  return {
    name, machine: ABOUT[name].machine, nodes: c.nodes, cpus: c.cpus, memBytes: c.memBytes, pageSize: c.pageSize,
    lineSize: c.lineSize, maxOrder: c.maxOrder, cpuMhz: c.cpuMhz, zones: ZONES[c.zoneLayout], zeroDrivers: c.zeroDrivers,
    moreDrivers: [...(c.cost.clzeroBytesPerNs > 0 ? ['clzero'] : []), ...(c.cost.ntBytesPerNs > 0 ? ['nt'] : [])],
    llc: { bytes: c.cost.cacheBytes, cpus: c.llcCpus },
    kernel: c.splitPtlocks
      ? `2.6.11's buddy allocator with ${c.kernel}'s watermarks, per-CPU lists (orders 0-3 and THP) and LRU batch, and today's fault path: a lock per pte page (split ptlocks), rss in per-CPU counters`
      : `2.6.11: one page_table_lock per mm, ${c.pteBytes}-byte ptes`,
    figures: { measured: figures.filter((f) => f.kind === 'measured').length, fitted: figures.filter((f) => f.kind === 'fitted').length, derived: figures.filter((f) => f.kind === 'derived').length },
    source: ABOUT[name].source,
    publishedRows: PUBLISHED.filter((p) => p.preset === name).length,
    distance: standing.get(name) ?? null,
  };
}

/** "28 of 44 flt/cpu/s and fault/wsec within band; rms ln(model ÷ published) 0.195", as calibrate prints it. */
function formatStanding(d: PresetStanding): string {
  return `${d.within} of ${d.targets} flt/cpu/s and fault/wsec within band; rms ln(model ÷ published) ${d.rms.toFixed(3)}`;
}

export function formatPresets(infos: readonly PresetInfo[]): string {
  return infos.map((p) => [
    `${p.name}: ${p.machine}`,
    `  ${p.nodes} node(s), ${p.cpus} CPUs at ${p.cpuMhz} MHz, ${formatSize(p.memBytes)}, ${formatSize(p.pageSize)} pages, ${p.lineSize}-byte lines, MAX_ORDER ${p.maxOrder}`,
    `  zones: ${p.zones}`,
    `  zero drivers: ${p.zeroDrivers.join(', ')} (newest first)${p.moreDrivers.length === 0 ? '' : `; also ${p.moreDrivers.join(', ')}`}`,
    `  last-level cache: ${formatSize(p.llc.bytes)} ${p.llc.cpus === 1 ? 'a CPU' : `shared by ${p.llc.cpus} CPUs`}`,
    `  kernel: ${p.kernel}`,
    `  cost figures: ${p.figures.measured} measured, ${p.figures.fitted} fitted${p.figures.derived === 0 ? '' : `, ${p.figures.derived} the same as another`} (${p.source})`,
    `  published rows: ${p.publishedRows === 0 ? 'none (nothing to compare with)' : `${p.publishedRows} (docs/calibration.md)`}`,
    ...(p.distance === null ? [] : [`  model vs published: ${formatStanding(p.distance)} (docs/calibration.md's table of kscrubfs calibrate)`]),
  ].join('\n')).join('\n\n') + '\n';
}

/** The presets as one Markdown table (the README's): a line each. */
export function formatPresetTable(infos: readonly PresetInfo[]): string {
  const rows = infos.map((p) => [
    `\`${p.name}\``, p.machine, `${p.cpus} on ${p.nodes} node${p.nodes === 1 ? '' : 's'}`, formatSize(p.memBytes), formatSize(p.pageSize), p.zeroDrivers.join(', '),
    p.kernel.startsWith('2.6.11:') ? '2.6.11' : '2.6.11 buddy lists; 6.18 watermarks, pcp and split ptlocks',
    p.publishedRows === 0 ? '—' : String(p.publishedRows),
    p.distance === null ? '—' : `${p.distance.within} of ${p.distance.targets}`,
    p.distance === null ? '—' : p.distance.rms.toFixed(3),
  ]);
  const head = ['preset', 'machine', 'CPUs', 'memory', 'pages', 'zeroing', 'fault path', 'published rows', 'columns within band', 'rms ln(model ÷ published)'];
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n') + '\n';
}

export function registerPresets(program: Command): void {
  program
    .command('presets')
    .description('print what each machine preset is: nodes, CPUs, memory, pages, zones, zero drivers, kernel, sources')
    .option('--json', 'print them as one JSON array')
    .option('--markdown', "print them as one Markdown table (the README's)")
    .action((o: { json?: boolean; markdown?: boolean }) => {
      const standing = calibrationStanding();
      const infos = PRESETS.map((name) => presetInfo(name, standing));
      process.stdout.write(o.json === true ? `${JSON.stringify(infos, null, 2)}\n` : o.markdown === true ? formatPresetTable(infos) : formatPresets(infos));
    });
}
