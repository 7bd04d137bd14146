import { ProcError } from './errors';

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
