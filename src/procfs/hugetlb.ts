import type { HugetlbPool, Machine } from '../model';
import { since, withPolicy } from './common';
import { ProcError, parseSysctlWrite } from '../uapi';
import { formatCount, parseKstrtoul } from '../uapi/hugetlb';
import type { ProcFile } from './types';

/**
 * The hugetlb files of one machine, with the kernel's names, modes and formats (mm/hugetlb_sysfs.c,
 * kernel/sysctl.c), plus the two pre-zeroing proposals' files:
 *
 *   sys/kernel/mm/hugepages/hugepages-<size>kB/       per size (hstate_attrs)
 *     nr_hugepages 0644, nr_overcommit_hugepages 0644, free_hugepages, resv_hugepages,
 *     surplus_hugepages 0444; prezero_enabled 0644 and free_huge_pages_zero 0444 (van der Linden)
 *   sys/devices/system/node/node<N>/hugepages/hugepages-<size>kB/   per node (per_node_hstate_attrs)
 *     nr_hugepages 0644, free_hugepages, surplus_hugepages 0444; zeroable_hugepages 0644 (Li Zhe)
 *   sys/vm/nr_hugepages, sys/vm/nr_overcommit_hugepages 0644   /proc/sys/vm, the default size
 *
 * Every count reads "%lu\n". A bad write is EINVAL and changes nothing.
 *
 * Each file exists only where its kernel has it (SINCE): 2.6.11 has /proc/sys/vm/nr_hugepages
 * alone (and meminfo's counts); nr_overcommit_hugepages came with 2.6.24 ("hugetlb: introduce
 * nr_overcommit_hugepages sysctl"), the per-size sysfs directories with 2.6.27 (the multiple
 * hstates and their sysfs interface), the per-node ones with 2.6.33 ("hugetlb: add per node
 * hstate attributes"). The proposals' files exist with their policy: prezero_enabled and
 * free_huge_pages_zero with `khzerod`, zeroable_hugepages with `zeroable_hugepages`.
 */
const SINCE = { overcommitSysctl: '2.6.24', sizeDirs: '2.6.27', nodeDirs: '2.6.33' } as const;

/** Per-size files and their modes (hstate_attrs, then van der Linden's two). */
const SIZE_FILES = {
  nr_hugepages: 0o644, nr_overcommit_hugepages: 0o644, free_hugepages: 0o444, resv_hugepages: 0o444,
  surplus_hugepages: 0o444, prezero_enabled: 0o644, free_huge_pages_zero: 0o444,
} as const;
/** Per-node files and their modes (per_node_hstate_attrs, then Li Zhe's). */
const NODE_FILES = { nr_hugepages: 0o644, free_hugepages: 0o444, surplus_hugepages: 0o444, zeroable_hugepages: 0o644 } as const;
/** /proc/sys/vm's, for the default size. */
const VM_FILES = { nr_hugepages: 0o644, nr_overcommit_hugepages: 0o644 } as const;

const SIZE_DIR = /^\/sys\/kernel\/mm\/hugepages\/hugepages-[1-9]\d*kB\/([a-z_]+)$/;
const NODE_DIR = /^\/sys\/devices\/system\/node\/node(0|[1-9]\d*)\/hugepages\/hugepages-[1-9]\d*kB\/([a-z_]+)$/;
const VM_DIR = /^\/sys\/vm\/([a-z_]+)$/;

/**
 * The mode of a hugetlb file by its path's shape, on any machine (a record's reader has no
 * machine to list them from), or undefined when the path is none of them.
 */
export function hugetlbFileMode(path: string): number | undefined {
  const table = (t: Readonly<Record<string, number>>, name: string | undefined): number | undefined => (name !== undefined && Object.hasOwn(t, name) ? t[name] : undefined);
  return table(SIZE_FILES, SIZE_DIR.exec(path)?.[1]) ?? table(NODE_FILES, NODE_DIR.exec(path)?.[2]) ?? table(VM_FILES, VM_DIR.exec(path)?.[1]);
}

export function hugetlbFiles(m: Machine): ProcFile[] {
  const rows: ProcFile[] = [];
  const h = m.hugetlb;
  for (const pool of h.pools) {
    const dir = `/sys/kernel/mm/hugepages/${pool.hs.dir}`;
    const name = (f: string): string => `${dir}/${f}`;
    const present = since(SINCE.sizeDirs);
    const khzerod = withPolicy('khzerod');
    rows.push(
      { path: name('nr_hugepages'), mode: SIZE_FILES.nr_hugepages, render: () => formatCount(pool.nr), write: (mm, d) => setNr(mm, pool, d, name('nr_hugepages')), present },
      { path: name('nr_overcommit_hugepages'), mode: SIZE_FILES.nr_overcommit_hugepages, render: () => formatCount(pool.overcommit), write: (_m, d) => setOvercommit(pool, d, name('nr_overcommit_hugepages')), present },
      { path: name('free_hugepages'), mode: SIZE_FILES.free_hugepages, render: () => formatCount(pool.free), present },
      { path: name('resv_hugepages'), mode: SIZE_FILES.resv_hugepages, render: () => formatCount(pool.resv), present },
      { path: name('surplus_hugepages'), mode: SIZE_FILES.surplus_hugepages, render: () => formatCount(pool.surplus), present },
      { path: name('prezero_enabled'), mode: SIZE_FILES.prezero_enabled, render: () => formatCount(pool.prezero ? 1 : 0), write: (mm, d) => setPrezero(mm, pool, d, name('prezero_enabled')), present: khzerod },
      { path: name('free_huge_pages_zero'), mode: SIZE_FILES.free_huge_pages_zero, render: () => formatCount(pool.freeZero), present: khzerod },
    );
  }
  for (let n = 0; n < m.config.nodes; n++) {
    for (const pool of h.pools) {
      const dir = `/sys/devices/system/node/node${n}/hugepages/${pool.hs.dir}`;
      const name = (f: string): string => `${dir}/${f}`;
      const present = since(SINCE.nodeDirs);
      rows.push(
        { path: name('nr_hugepages'), mode: NODE_FILES.nr_hugepages, render: () => formatCount(pool.nrNode[n]!), write: (mm, d) => setNr(mm, pool, d, name('nr_hugepages'), n), present },
        { path: name('free_hugepages'), mode: NODE_FILES.free_hugepages, render: () => formatCount(pool.freeNode[n]!), present },
        { path: name('surplus_hugepages'), mode: NODE_FILES.surplus_hugepages, render: () => formatCount(pool.surplusNode[n]!), present },
        { path: name('zeroable_hugepages'), mode: NODE_FILES.zeroable_hugepages, render: (mm) => formatCount(mm.hugetlb.zeroable(pool, n)), write: (mm, d) => zeroable(mm, pool, n, d, name('zeroable_hugepages')), present: withPolicy('zeroable_hugepages') },
      );
    }
  }
  const def = h.pools[0];
  if (def) {
    rows.push(
      { path: '/sys/vm/nr_hugepages', mode: VM_FILES.nr_hugepages, render: () => formatCount(def.nr), write: (mm, d) => setNrSysctl(mm, def, d) },
      {
        path: '/sys/vm/nr_overcommit_hugepages', mode: VM_FILES.nr_overcommit_hugepages, render: () => formatCount(def.overcommit),
        write: (_m, d) => sysctlWrite(d, 'vm.nr_overcommit_hugepages', (v) => { checkOvercommit(def, v, 'vm.nr_overcommit_hugepages'); def.overcommit = v; }),
        present: since(SINCE.overcommitSysctl),
      },
    );
  }
  return rows;
}

/** A count written to nr_hugepages (of a size, or of a size on one node). */
function setNr(m: Machine, pool: HugetlbPool, data: Uint8Array, file: string, node?: number): number | Promise<number> {
  if (data.length === 0) return 0;
  const count = parseKstrtoul(data, file);
  return sliced(m.hugetlb.resizeSteps(pool, count, node), data.length);
}

/** /proc/sys/vm/nr_hugepages is proc_doulongvec_minmax: the sysctl parser, a value ≥ 0. */
function setNrSysctl(m: Machine, pool: HugetlbPool, data: Uint8Array): number | Promise<number> {
  if (data.length === 0) return 0;
  const { value, consumed } = parseSysctlValue(data, 'vm.nr_hugepages');
  return sliced(m.hugetlb.resizeSteps(pool, value), consumed);
}

function parseSysctlValue(data: Uint8Array, file: string): { value: number; consumed: number } {
  const r = parseSysctlWrite(data, file);
  if (r.value < 0) throw new ProcError('EINVAL', `write ${file}: ${r.value} is negative`);
  return r;
}

function sysctlWrite(data: Uint8Array, file: string, apply: (v: number) => void): number {
  if (data.length === 0) return 0;
  const { value, consumed } = parseSysctlValue(data, file);
  apply(value);
  return consumed;
}

/** How long one slice of a write's work may hold the daemon's thread. */
const SLICE_MS = 4;

/**
 * Run a write's steps: to the end now if one slice finishes them (the write returns its
 * count), else slice by slice between turns of the event loop, so readers and other writers
 * are answered meanwhile (the write's promise resolves at the end). The steps leave the
 * machine consistent at every yield; run alone, slicing never changes the outcome.
 */
function sliced(steps: Generator<void, unknown, void>, written: number): number | Promise<number> {
  const slice = (): boolean => {
    const t0 = performance.now();
    for (;;) {
      if (steps.next().done === true) return true;
      if (performance.now() - t0 > SLICE_MS) return false;
    }
  };
  if (slice()) return written;
  return (async (): Promise<number> => {
    do await new Promise((resolve) => setImmediate(resolve));
    while (!slice());
    return written;
  })();
}

/** nr_overcommit_hugepages_store refuses gigantic sizes (no surplus pages can be made of them). */
function checkOvercommit(pool: HugetlbPool, v: number, file: string): void {
  if (pool.hs.gigantic && v !== 0) throw new ProcError('EINVAL', `write ${file}: ${pool.hs.dir} pages are gigantic: they cannot be overcommitted`);
}

function setOvercommit(pool: HugetlbPool, data: Uint8Array, file: string): number {
  if (data.length === 0) return 0;
  const v = parseKstrtoul(data, file);
  checkOvercommit(pool, v, file);
  pool.overcommit = v;
  return data.length;
}

function setPrezero(m: Machine, pool: HugetlbPool, data: Uint8Array, file: string): number {
  if (data.length === 0) return 0;
  const v = parseKstrtoul(data, file);
  if (v > 1) throw new ProcError('EINVAL', `write ${file}: ${v} is not 0 or 1`);
  m.hugetlb.setPrezero(pool, v === 1);
  return data.length;
}

/** zeroable_hugepages: N in [0, what the file reads], zeroed in the writer's context. */
function zeroable(m: Machine, pool: HugetlbPool, node: number, data: Uint8Array, file: string): number | Promise<number> {
  if (data.length === 0) return 0;
  const v = parseKstrtoul(data, file);
  const max = m.hugetlb.zeroable(pool, node);
  if (v > max) throw new ProcError('EINVAL', `write ${file}: ${v} is more than the ${max} free huge pages that can be zeroed now`);
  const start = m.now;
  const steps = m.hugetlb.zeroInWriterSteps(pool, node, v);
  // The write returns when the writer has zeroed the pages: a manual clock moves on by that
  // long (a live one is already past it by the time the writer could look).
  function* thenClock(): Generator<void, void, void> {
    const ns = yield* steps;
    if (m.clock.mode === 'manual') m.advanceTo(Math.max(m.now, start + ns));
  }
  return sliced(thenClock(), data.length);
}
