import { ProcError } from './errors';

// Every sysctl write goes through this parser, whoever writes: the FUSE write of
// sys/vm/<name>, and a machine driven in process (LocalControl, for sweep and replay) formats
// its value as the text a client would write and parses it here too.

// ---- parsing: proc_dointvec_minmax() writes, exactly ----------------------------------------------
//
// A 6.x kernel (kernel/sysctl.c: __do_proc_dointvec → proc_skip_spaces, proc_get_long →
// strtoul_lenient(base 0), do_proc_dointvec_conv, then the min/max check) does this with the
// bytes of one write(2) at file position 0:
//
//   1. Look at the first PAGE_SIZE − 1 bytes only.
//   2. Skip leading whitespace: isspace() — ' ' \t \n \v \f \r, and Latin-1 NBSP (0xA0).
//      Nothing left (empty, whitespace only) → EINVAL.
//   3. An optional '-' (only if more bytes follow), then a digit must come: "+5", "-", "- 5",
//      "--5", "x5", ".5" → EINVAL.
//   4. Base 0: "0x"/"0X" followed by a hex digit is hex; any other leading '0' is octal; else
//      decimal. Digits of the base are taken greedily: "08" stops at '8', "0x" alone is octal 0
//      stopping at 'x', "0x1g" is hex 1 stopping at 'g'.
//   5. The number (sign included) must be under 21 characters: "000000000000000000005" (21)
//      → EINVAL, even though its value is small.
//   6. The byte after the number, if any, must be ' ', '\t' or '\n' (proc_wspace_sep): "5abc",
//      "5,6", "5.0", "5\r", "5\0", "08", "0x1g" → EINVAL.
//   7. The value must fit an int: −2147483648 … 2147483647, else EINVAL ("2147483648",
//      "-2147483649", "0x80000000").
//   8. The min/max check (here: the model's Machine.setSysctl) → EINVAL; negatives fail it
//      because every vm.* minimum is 0.
//   9. Trailing whitespace is consumed. Anything after it is not an error: the write returns a
//      short count ("5 6\n" sets 5 and reports 2 bytes); the caller's retry of the rest lands at
//      offset > 0, which sysctl_writes_strict (the default) ignores and reports as written.
//
// Accepted, for example: "5", "5\n", "  5  \n", "\t5\n\n", "\r\v\f5\n", "0x1f" (31), "0X1F",
// "010" (8), "00" (0), "-0" (0), "5 6" (5, short count). The test table lists many more.

/** PAGE_SIZE − 1: the part of one write the kernel looks at. */
const WRITE_WINDOW = 4095;
/** proc_get_long()'s TMPBUFLEN: numbers of TMPBUFLEN − 1 characters or more are refused. */
const TMPBUFLEN = 22;
const INT_MAX = 2 ** 31 - 1;

/** The kernel's isspace() (lib/ctype.c): _S includes \t \n \v \f \r, space and 0xA0. */
function isspace(b: number | undefined): boolean {
  return b === 0x20 || (b !== undefined && b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

/** proc_wspace_sep: what may follow a number. */
function isSeparator(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a;
}

/** Value of an ASCII digit in any base up to 16, or 16 when it is none. */
function digitValue(b: number | undefined): number {
  if (b === undefined) return 16;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const lower = b | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return 16;
}

export interface SysctlWrite {
  /** The int the write sets (before the sysctl's own range check). */
  readonly value: number;
  /** Bytes the kernel reports written: all of them, or a short count (rule 9). */
  readonly consumed: number;
}

/**
 * Parse one sysctl write as a 6.x kernel's proc_dointvec does (the rules above). `file` names
 * the sysctl in errors: `write vm.scrub_start: "5abc" is not an integer`.
 */
export function parseSysctlWrite(data: Uint8Array, file: string): SysctlWrite {
  const size = Math.min(data.length, WRITE_WINDOW);
  let p = 0;
  while (p < size && isspace(data[p])) p++;
  const fail = (why: string): never => {
    throw new ProcError('EINVAL', `write ${file}: ${quote(data, p, size)} ${why}`);
  };
  if (p === size) fail('is not an integer');

  // proc_get_long(): the number is read from a copy of at most TMPBUFLEN − 1 bytes.
  const left = size - p;
  const tmp = data.subarray(p, p + Math.min(left, TMPBUFLEN - 1));
  let q = 0;
  const neg = tmp[0] === 0x2d && left > 1;
  if (neg) q++;
  if (digitValue(tmp[q]) >= 10) fail('is not an integer');
  let base = 10;
  if (tmp[q] === 0x30) {
    if ((tmp[q + 1]! | 0x20) === 0x78 && digitValue(tmp[q + 2]) < 16) {
      base = 16;
      q += 2;
    } else {
      base = 8;
    }
  }
  let magnitude = 0n;
  for (let d = digitValue(tmp[q]); d < base; d = digitValue(tmp[++q])) magnitude = magnitude * BigInt(base) + BigInt(d);
  if (q === TMPBUFLEN - 1) fail(`is not an integer (${TMPBUFLEN - 2} characters at most)`);
  if (q < left && !isSeparator(data[p + q]!)) fail('is not an integer');
  if (magnitude > BigInt(neg ? INT_MAX + 1 : INT_MAX)) {
    fail(`is out of range for an int (${-INT_MAX - 1}..${INT_MAX})`);
  }
  const value = neg ? -Number(magnitude) || 0 : Number(magnitude);

  let end = p + q;
  while (end < size && isspace(data[end])) end++;
  return { value, consumed: data.length - (size - end) };
}

/**
 * The value one sysctl write sets (the rules above); text after the value and whitespace is
 * ignored, as the kernel leaves it to a retry it then ignores. Ranges are the model's to check.
 */
export function parseSysctlInt(text: string, file: string): number {
  return parseSysctlWrite(Buffer.from(text, 'utf8'), file).value;
}

/** The offending token, quoted: from `p` to the next whitespace, or everything if that is empty. */
function quote(data: Uint8Array, p: number, size: number): string {
  let end = p;
  while (end < size && !isspace(data[end])) end++;
  const bytes = end > p ? data.subarray(p, end) : data.subarray(0, size);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

// ---- parsing: a sysfs store's kstrtoul(buf, 0, &val), exactly --------------------------------------
//
// A sysfs attribute's store() gets the whole write (at most PAGE_SIZE bytes, NUL-terminated)
// and, in the zeroing-policy files (kernel/mm/prezero/*), calls kstrtoul(buf, 0, &val):
//
//   1. An optional '+' ('-' is refused: the value is unsigned). No leading whitespace.
//   2. Base 0: "0x"/"0X" followed by a hex digit is hex, another leading '0' octal, else decimal.
//   3. At least one digit, then digits of the base; a value past 2^64 − 1 is ERANGE (EINVAL
//      to the writer: the store returns -EINVAL whenever kstrtoul fails).
//   4. One '\n' may follow; nothing else may ("5 ", "5\n\n", "5x" → EINVAL).
// The store then range-checks and returns the whole count.

const ULONG_MAX = 2n ** 64n - 1n;

/** Parse one sysfs store as kstrtoul(buf, 0) does; `file` names the file in errors. Ranges are the model's to check. */
export function parseKstrtoul(data: Uint8Array, file: string): SysctlWrite {
  const size = Math.min(data.length, WRITE_WINDOW + 1);
  const fail = (why: string): never => {
    throw new ProcError('EINVAL', `write ${file}: ${quote(data, 0, size)} ${why}`);
  };
  let p = data[0] === 0x2b ? 1 : 0;
  let base = 10;
  if (data[p] === 0x30) {
    if ((data[p + 1]! | 0x20) === 0x78 && digitValue(data[p + 2]) < 16) {
      base = 16;
      p += 2;
    } else base = 8;
  }
  const first = p;
  let value = 0n;
  for (let d = digitValue(data[p]); p < size && d < base; d = digitValue(data[++p])) value = value * BigInt(base) + BigInt(d);
  if (p === first) fail('is not an unsigned integer');
  if (value > ULONG_MAX) fail('is out of range for an unsigned long');
  if (p < size && data[p] === 0x0a) p++;
  if (p < size) fail('is not an unsigned integer');
  return { value: Number(value), consumed: data.length };
}
