import type { Machine } from '../model';
import { flatString, kb, sumZones } from './common';

/**
 * /proc/meminfo with a 6.18 kernel's fields in its order (fs/proc/meminfo.c), plus the
 * prezeroing patch's `MemZero:` right after `MemFree:`. Layout as show_val_kb() prints it: the
 * label padded to 16 columns (colon included), the value right-aligned in 8, then " kB"; the
 * HugePages_* counts have no unit. Fields the model has no meaning for read 0.
 *
 *   MemTotal      managed pages (boot reservations excluded)
 *   MemFree       free pages: the buddy lists plus blocks kscrubd holds while zeroing them
 *                 (per-cpu lists are not free, as in the kernel)
 *   MemZero       free pages on ZEROED lists
 *   MemAvailable  MemFree − totalreserve_pages (each zone's high watermark plus, on 6.18,
 *                 its largest lowmem_reserve; there is no page cache to reclaim), never below 0
 *   Active(anon), Active, AnonPages
 *                 anonymous pages mapped by processes (2.6.11 put them on the active list)
 *   AnonHugePages anonymous pages mapped by huge PMDs (THP; they are in AnonPages too)
 *   PageTables    page-table pages of processes (with the ones deposited for huge PMDs)
 *   CommitLimit   MemTotal × vm.overcommit_ratio (50) / 100 + swap (none)
 *   Committed_AS  anonymous pages: the model never overcommits, so what is committed is mapped
 */
type Field = readonly [label: string, kB: number];

export function render(m: Machine): string {
  const managed = m.managedPagesTotal();
  const free = m.freePagesTotal();
  const reserve = m.watermarks?.totalReservePages() ?? sumZones(m, (z) => z.watermarkHigh);
  const anon = kb(m, m.procs.nrAnonPages);
  const fields: Field[] = [
    ['MemTotal', kb(m, managed)],
    ['MemFree', kb(m, free)],
    ['MemZero', kb(m, m.zeroPagesTotal())],
    ['MemAvailable', kb(m, Math.max(0, free - reserve))],
    ['Buffers', 0],
    ['Cached', 0],
    ['SwapCached', 0],
    ['Active', anon],
    ['Inactive', 0],
    ['Active(anon)', anon],
    ['Inactive(anon)', 0],
    ['Active(file)', 0],
    ['Inactive(file)', 0],
    ['Unevictable', 0],
    ['Mlocked', 0],
    ['SwapTotal', 0],
    ['SwapFree', 0],
    ['Zswap', 0],
    ['Zswapped', 0],
    ['Dirty', 0],
    ['Writeback', 0],
    ['AnonPages', anon],
    ['Mapped', 0],
    ['Shmem', 0],
    ['KReclaimable', 0],
    ['Slab', kb(m, m.slab.pages)],
    ['SReclaimable', 0],
    ['SUnreclaim', kb(m, m.slab.pages)],
    ['KernelStack', 0],
    ['PageTables', kb(m, m.procs.nrPageTablePages)],
    ['SecPageTables', 0],
    ['NFS_Unstable', 0],
    ['Bounce', 0],
    ['WritebackTmp', 0],
    ['CommitLimit', kb(m, Math.floor((managed * OVERCOMMIT_RATIO) / 100))],
    ['Committed_AS', anon],
    ['VmallocTotal', 0],
    ['VmallocUsed', 0],
    ['VmallocChunk', 0],
    ['Percpu', 0],
    // Huge pages are counted in AnonPages too, as the kernel does; here in kB of whole PMDs.
    ['AnonHugePages', kb(m, m.procs.nrAnonThps * (m.procs.ptrsPerPte))],
    ['ShmemHugePages', 0],
    ['ShmemPmdMapped', 0],
    ['FileHugePages', 0],
    ['FilePmdMapped', 0],
    ['Balloon', 0],
  ];
  let out = '';
  for (const [label, value] of fields) out += valKb(label, value);
  // hugetlb_report_meminfo(): the default size's counts without a unit, its page size, then
  // Hugetlb: every size's pool in kB.
  const def = m.hugetlb.defaultPool;
  const counts: [string, number][] = [
    ['HugePages_Total', def?.nr ?? 0], ['HugePages_Free', def?.free ?? 0], ['HugePages_Rsvd', def?.resv ?? 0], ['HugePages_Surp', def?.surplus ?? 0],
  ];
  for (const [label, v] of counts) out += `${`${label}:`.padEnd(16)}${String(v).padStart(8)}\n`;
  out += `${`Hugepagesize:`.padEnd(16)}${String(hugePageBytes(m) / 1024).padStart(8)} kB\n`;
  out += valKb('Hugetlb', m.hugetlb.totalBytes / 1024);
  for (const label of ['DirectMap4k', 'DirectMap2M', 'DirectMap1G']) out += valKb(label, 0);
  return out;
}

/**
 * The default hugetlb page size the kernel reports even with no huge pages reserved: a PMD's
 * worth on x86 (2 MiB; 4 MiB on i386 without PAE, 1024 four-byte ptes), HPAGE_SHIFT_DEFAULT
 * (28: 256 MiB) on ia64, whose huge pages are not PMD-mapped.
 */
function hugePageBytes(m: Machine): number {
  const def = m.hugetlb.defaultPool;
  if (def) return def.hs.bytes;
  return m.config.zoneLayout === 'ia64' ? 2 ** 28 : m.procs.ptrsPerPte * m.pageSize;
}

/** vm.overcommit_ratio's default. */
const OVERCOMMIT_RATIO = 50;

/**
 * show_val_kb(): "%-16s%8lu kB" with the colon inside the 16 columns. Most fields read 0: their
 * lines are made once (flat), so a render concatenates a few dozen pieces instead of several
 * per line — the pieces, not the formatting, were most of what an open cost (test/bench).
 */
function valKb(label: string, kB: number): string {
  if (kB === 0) return (ZERO_LINES[label] ??= flatString(valKbText(label, 0)));
  return valKbText(label, kB);
}

function valKbText(label: string, kB: number): string {
  return `${`${label}:`.padEnd(16)}${String(kB).padStart(8)} kB\n`;
}

const ZERO_LINES: Record<string, string> = {};
