import { POLICY_KNOBS, SYSCTL_NAMES, WMARK_SYSCTL_NAMES, type Machine, knobSpecs } from '../model';
import { since, withPolicy } from './common';
import * as buddyinfo from './buddyinfo';
import { hugetlbFiles } from './hugetlb';
import type { ProcFile } from './types';
import * as loadavg from './loadavg';
import * as meminfo from './meminfo';
import * as policyKnobs from './policy-knobs';
import * as stat from './stat';
import * as sysctl from './sysctl';
import * as uptime from './uptime';
import * as vmstat from './vmstat';
import * as watermarks from './watermarks';
import * as zoneinfo from './zoneinfo';

/** The only list of paths: getattr, readdir, open and write all come from it (via buildProcTree). */
export const FILES: readonly ProcFile[] = [
  { path: '/buddyinfo', mode: 0o444, render: (m, o) => buddyinfo.render(m, o.buddyinfo) },
  { path: '/meminfo', mode: 0o444, render: meminfo.render },
  { path: '/vmstat', mode: 0o444, render: vmstat.render },
  { path: '/zoneinfo', mode: 0o444, render: zoneinfo.render },
  { path: '/stat', mode: 0o444, render: stat.render },
  { path: '/loadavg', mode: 0o444, render: loadavg.render },
  { path: '/uptime', mode: 0o444, render: uptime.render },
  { path: '/control', mode: 0o600 },
  // vm.scrub_* are the kscrubd patch's (a kernel without it has none); max_prealloc_order is
  // the prefault patch's, which the model offers on every machine.
  ...SYSCTL_NAMES.map((name): ProcFile => ({
    path: `/sys/vm/${name}`,
    mode: 0o644,
    render: (m) => sysctl.render(m, name),
    write: (m, data) => sysctl.write(m, name, data),
    ...(name.startsWith('scrub_') && { present: withPolicy('kscrubd') }),
  })),
  // The modern watermark sysctls (2.6.11 had min_free_kbytes too; the model shows it where
  // it sets the watermarks the kernel's way, on 6.18 presets).
  ...WMARK_SYSCTL_NAMES.map((name): ProcFile => ({
    path: `/sys/vm/${name}`,
    mode: 0o644,
    render: (m) => watermarks.render(m, name),
    write: (m, data) => watermarks.write(m, name, data),
    present: since('6.7'),
  })),
  // Their paths do not depend on the machine (only their ranges do): any MAX_ORDER will do here.
  ...POLICY_KNOBS.map((name): ProcFile => ({
    path: knobSpecs(11)[name].path,
    mode: 0o644,
    render: (m) => policyKnobs.render(m, name),
    write: (m, data) => policyKnobs.write(m, name, data),
    present: withPolicy(knobSpecs(11)[name].policy),
  })),
];

/** Is `f` a file of this machine? */
export function present(f: ProcFile, m: Machine): boolean {
  return f.present === undefined || f.present(m);
}

/** The rows of FILES this machine has, in table order (what a record digests). */
export function fixedFilesFor(m: Machine): readonly ProcFile[] {
  return FILES.filter((f) => present(f, m));
}

/**
 * Every file of this machine: FILES, then the rows whose paths depend on the machine's shape
 * (the hugetlb sizes it has, and its nodes), each only where this machine's kernel or policies
 * have it.
 */
export function filesFor(m: Machine): readonly ProcFile[] {
  return [...FILES, ...hugetlbFiles(m)].filter((f) => present(f, m));
}
