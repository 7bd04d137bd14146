import type { Command } from 'commander';
import { type MachineConfig, presetFigures, resolveConfig } from '../model';
import { PRESETS, type PresetName, formatSize } from '../uapi';
import { PUBLISHED } from '../workload/calibration';

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
  figures: { measured: number; fitted: number };
  source: string;
  publishedRows: number;
}

export function presetInfo(name: PresetName): PresetInfo {
  const c = resolveConfig({ preset: name });
  const figures = Object.values(presetFigures(name));
  return {
    name, machine: ABOUT[name].machine, nodes: c.nodes, cpus: c.cpus, memBytes: c.memBytes, pageSize: c.pageSize,
    lineSize: c.lineSize, maxOrder: c.maxOrder, cpuMhz: c.cpuMhz, zones: ZONES[c.zoneLayout], zeroDrivers: c.zeroDrivers,
    moreDrivers: [...(c.cost.clzeroBytesPerNs > 0 ? ['clzero'] : []), ...(c.cost.ntBytesPerNs > 0 ? ['nt'] : [])],
    llc: { bytes: c.cost.cacheBytes, cpus: c.llcCpus },
    kernel: c.splitPtlocks
      ? "2.6.11's allocator with today's fault path: a lock per pte page (split ptlocks), rss in per-CPU counters"
      : `2.6.11: one page_table_lock per mm, ${c.pteBytes}-byte ptes`,
    figures: { measured: figures.filter((f) => f.kind === 'measured').length, fitted: figures.filter((f) => f.kind === 'fitted').length },
    source: ABOUT[name].source,
    publishedRows: PUBLISHED.filter((p) => p.preset === name).length,
  };
}

export function formatPresets(infos: readonly PresetInfo[]): string {
  return infos.map((p) => [
    `${p.name}: ${p.machine}`,
    `  ${p.nodes} node(s), ${p.cpus} CPUs at ${p.cpuMhz} MHz, ${formatSize(p.memBytes)}, ${formatSize(p.pageSize)} pages, ${p.lineSize}-byte lines, MAX_ORDER ${p.maxOrder}`,
    `  zones: ${p.zones}`,
    `  zero drivers: ${p.zeroDrivers.join(', ')} (newest first)${p.moreDrivers.length === 0 ? '' : `; also ${p.moreDrivers.join(', ')}`}`,
    `  last-level cache: ${formatSize(p.llc.bytes)} ${p.llc.cpus === 1 ? 'a CPU' : `shared by ${p.llc.cpus} CPUs`}`,
    `  kernel: ${p.kernel}`,
    `  cost figures: ${p.figures.measured} measured, ${p.figures.fitted} fitted (${p.source})`,
    `  published rows: ${p.publishedRows === 0 ? 'none (nothing to compare with)' : `${p.publishedRows} (docs/calibration.md; kscrubfs calibrate says how far the model is from each)`}`,
  ].join('\n')).join('\n\n') + '\n';
}

export function registerPresets(program: Command): void {
  program
    .command('presets')
    .description('print what each machine preset is: nodes, CPUs, memory, pages, zones, zero drivers, kernel, sources')
    .option('--json', 'print them as one JSON array')
    .action((o: { json?: boolean }) => {
      const infos = PRESETS.map(presetInfo);
      process.stdout.write(o.json === true ? `${JSON.stringify(infos, null, 2)}\n` : formatPresets(infos));
    });
}
