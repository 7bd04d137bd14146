import { ModelError, ProcError } from './errors';

/**
 * How a fault clears a huge page (folio_zero_user), mount --huge-clear: `pages`, a base page at
 * a time with a rescheduling point between (the kernels up to the multi-page clearing series:
 * clear_gigantic_page, process_huge_page); `extents`, clear_pages() over contiguous extents
 * (the series), as long as the preemption model lets one string instruction run: the whole
 * page under full preemption, 32 MiB at a time otherwise.
 */
export const HUGE_CLEAR_MODES = ['pages', 'extents'] as const;
export type HugeClearMode = (typeof HUGE_CLEAR_MODES)[number];
// Page at a time: the series (clear_pages(), clear_user_pages(), folio_zero_user over extents)
// reached the mm tree in January 2026, after 6.18, the newest kernel a preset models; so
// every modelled kernel clears its hugetlb and THP pages that way, and extents is asked for.
export const DEFAULT_HUGE_CLEAR: HugeClearMode = 'pages';

/** A clear mode by name, or a refusal naming the modes. */
export function parseHugeClear(v: string): HugeClearMode {
  if (!(HUGE_CLEAR_MODES as readonly string[]).includes(v)) {
    throw new ModelError('KSCRUB_BAD_OPTION', `huge clear: "${v}" is not one of ${HUGE_CLEAR_MODES.join(', ')}`);
  }
  return v as HugeClearMode;
}

/**
 * The preemption models the model tells apart (mount --preempt): `full` (CONFIG_PREEMPT: a
 * task may be preempted anywhere outside a spinlock, so one clear_pages() may cover a whole
 * huge page) and `none` (a task runs until it reaches a rescheduling point, so clearing must
 * stop for cond_resched() now and then).
 */
export const PREEMPT_MODELS = ['none', 'full'] as const;
export type PreemptModel = (typeof PREEMPT_MODELS)[number];

// Writes to the hugetlb sysfs files (nr_hugepages, nr_overcommit_hugepages, prezero_enabled,
// zeroable_hugepages) go through kstrtoul(buf, 10, &n), as their kernel store functions do:
// an optional '+', decimal digits only, and at most one trailing newline; anything else —
// empty, whitespace, a sign '-', hex, "5abc", "5 6", a value past 2^64 − 1 — is refused
// (EINVAL here; the kernel gives ERANGE for the overflow, which a write reports the same way
// to a shell). The value must also be a safe integer here: every such count is bounded by
// the pages of the machine long before 2^53.

/** kstrtoul(buf, 10): the value, or EINVAL naming the file and quoting the bytes. */
export function parseKstrtoul(data: Uint8Array, file: string): number {
  let end = data.length;
  if (end > 0 && data[end - 1] === 0x0a) end--;
  let p = 0;
  if (p < end && data[p] === 0x2b) p++;
  const text = Buffer.from(data).toString('utf8');
  const fail = (why: string): never => {
    throw new ProcError('EINVAL', `write ${file}: ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)} ${why}`);
  };
  if (p === end) fail('is not a decimal number');
  let v = 0;
  for (; p < end; p++) {
    const d = data[p]! - 0x30;
    if (d < 0 || d > 9) fail('is not a decimal number');
    v = v * 10 + d;
  }
  if (!Number.isSafeInteger(v)) fail('is out of range');
  return v;
}

/** A hugetlb sysfs count reads as sysfs_emit(buf, "%lu\n", n). */
export function formatCount(n: number): string {
  return `${n}\n`;
}
