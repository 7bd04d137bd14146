// Bad input over a real mount, table-driven: hundreds of malformed sysctl writes and control
// commands, written with real write(2)s (one Python process does every case and reports JSON;
// bash's printf/echo and dd for what a user types). Each must fail with the documented errno
// (EINVAL, shown by the writer) or `err` line — or, for writes at an offset > 0, succeed and be
// ignored — and leave the whole machine as it was: the text of every file is compared before and
// after (manual clock, so the text is stable) and `check` answers `ok`.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Rng } from '../helpers/rng';
import { q, run, withMount } from '../helpers/mount';
import { parseMeminfo, parseProcFile } from '../../src/uapi';
import { controlBatch } from '../../src/workload/client';
import { READABLE_FILES, SYSCTL_FILES, snapshotFiles } from '../helpers/readers';

const MANUAL = ['--clock', 'manual'];
/** Debian's python3 (also reachable as nobody); else whatever is on PATH. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

// ---- the writer: one Python process, every case --------------------------------------------------

/**
 * Reads a JSON list of cases on stdin; for each: open(path, flags), then every write (os.write,
 * or os.pwrite at an offset), each giving the byte count or the errno's name; then, if asked,
 * read(2) until EOF (the control file's results); then close(2), giving its errno's name if it
 * fails (a control command that failed as it ran). Prints the JSON list of outcomes.
 */
const HARNESS = String.raw`
import base64, errno, json, os, sys
FLAGS = {'w': os.O_WRONLY, 'wt': os.O_WRONLY | os.O_TRUNC, 'rw': os.O_RDWR, 'wa': os.O_WRONLY | os.O_APPEND}
name = lambda e: errno.errorcode.get(e.errno, str(e.errno))
out = []
for c in json.load(sys.stdin):
    r = {'writes': [], 'out': None}
    try:
        fd = os.open(c['path'], FLAGS[c['flags']])
    except OSError as e:
        r['open'] = name(e)
        out.append(r)
        continue
    try:
        for w in c['writes']:
            data = base64.b64decode(w['data'])
            try:
                n = os.write(fd, data) if w.get('offset') is None else os.pwrite(fd, data, w['offset'])
                r['writes'].append(n)
            except OSError as e:
                r['writes'].append(name(e))
        if c.get('read'):
            parts = []
            while True:
                b = os.read(fd, 1 << 20)
                if not b:
                    break
                parts.append(b)
            r['out'] = b''.join(parts).decode('utf-8', 'replace')
    finally:
        try:
            os.close(fd)
        except OSError as e:
            r['close'] = name(e)
    out.append(r)
json.dump(out, sys.stdout)
`;

type Flags = 'w' | 'wt' | 'rw' | 'wa';
type Outcome = number | 'EINVAL' | 'EBUSY';

interface Write {
  data: Buffer;
  offset?: number;
}

interface WireCase {
  path: string;
  flags: Flags;
  writes: { data: string; offset?: number }[];
  read: boolean;
}

interface WireResult {
  writes: (number | string)[];
  out: string | null;
  open?: string;
  close?: string;
}

/**
 * What the writer saw of each write: a control write returns once its lines parse, and the
 * errno of a command that failed as it ran comes from close(2) — so a last write accepted
 * whole, then a failed close, reads as that write failing with the close's errno.
 */
function outcomes(r: WireResult): (number | string)[] {
  if (r.close === undefined || r.writes.length === 0 || typeof r.writes.at(-1) !== 'number') return r.close === undefined ? r.writes : [...r.writes, `close ${r.close}`];
  return [...r.writes.slice(0, -1), r.close];
}

async function runWrites(cases: readonly WireCase[]): Promise<WireResult[]> {
  const r = await run(PYTHON, ['-c', HARNESS], { input: JSON.stringify(cases), timeoutMs: 60_000 });
  assert.equal(r.code, 0, `the python writer failed: ${r.stderr}`);
  const results = JSON.parse(r.stdout) as WireResult[];
  assert.equal(results.length, cases.length);
  return results;
}

const wire = (w: Write): { data: string; offset?: number } =>
  (w.offset === undefined ? { data: w.data.toString('base64') } : { data: w.data.toString('base64'), offset: w.offset });

const bytes = (x: string | Buffer): Buffer => (typeof x === 'string' ? Buffer.from(x, 'utf8') : x);

/** Seeded junk, so a failure names a reproducible case. */
function junk(seed: number, n: number): Buffer {
  const rng = new Rng(seed);
  return Buffer.from(Array.from({ length: n }, () => rng.int(256)));
}

// ---- the machine's whole visible state ------------------------------------------------------------

const snapshot = snapshotFiles;

function assertSameState(before: Map<string, string>, after: Map<string, string>): void {
  for (const [rel, text] of before) assert.equal(after.get(rel), text, `${rel} changed`);
}


// ---- sysctl cases ---------------------------------------------------------------------------------

interface SysctlCase {
  name: string;
  file: string;
  flags: Flags;
  writes: Write[];
  /** Per write: the errno, or the byte count reported. */
  expect: Outcome[];
}

/** Refused by every sysctl (DESIGN §3's classes, and then some), whatever its range. */
const REFUSED_EVERYWHERE: readonly [string, string | Buffer][] = [
  ['a plus sign', '+5'], ['a plus sign and a newline', '+5\n'], ['a plus sign after spaces', '  +5'],
  ['trailing letters', '5abc'], ['trailing letters and a newline', '5abc\n'], ['a comma list', '5,6'], ['a comma list and a newline', '5,6\n'],
  ['a newline only (echo > file)', '\n'], ['one space', ' '], ['tabs and newlines only', '\t\n\t\n'], ['CR LF only', '\r\n'],
  ['VT and FF only', '\v\f'], ['a NBSP only', Buffer.from([0xa0])],
  ['INT_MAX + 1', '2147483648'], ['INT_MAX + 1 and a newline', '2147483648\n'], ['UINT_MAX', '4294967295'],
  ['twenty nines', '99999999999999999999'], ['hex INT_MAX + 1', '0x80000000'], ['hex 2^64', '0x10000000000000000'],
  ['INT_MIN - 1', '-2147483649'], ['INT_MIN (an int, but negative)', '-2147483648'], ['-1', '-1'], ['-1 and a newline', '-1\n'],
  ['negative hex', '-0x1'], ['negative octal', '-01'],
  ['a decimal point', '5.0'], ['an exponent', '1e3'], ['a leading dot', '.5'], ['a bad hex digit', '0x1g'], ['octal 8', '08'], ['octal 19', '019'],
  ['0x alone', '0x'], ['0X alone', '0X\n'], ['0x then a space', '0x 5'], ['a minus alone', '-'], ['a minus and a space', '- 5'], ['two minus signs', '--5'],
  ['an x prefix', 'x5'], ['a word', 'five'], ['a quoted number', '"5"'], ['parentheses', '(5)'], ['a hash', '#5'], ['a semicolon', '5;6'],
  ['a slash', '5/2'], ['an underscore separator', '1_000'], ['a shell substitution', '$(reboot)'],
  ['CR after the number', '5\r'], ['CR LF after the number', '5\r\n'], ['VT after the number', '5\v'], ['FF after the number', '5\f'],
  ['NUL after the number', '5\0'], ['NUL alone', '\0'], ['NUL before the number', '\x005'], ['NBSP after the number', Buffer.from([0x35, 0xa0])],
  ['UTF-8 NBSP after the number', '5\u00a0'], ['a fullwidth digit', '\uff15'], ['an Arabic-Indic digit', '\u0665'],
  ['an ANSI escape', '\x1b[31m5'], ['UTF-16 with a BOM', Buffer.from('\ufeff5', 'utf16le')], ['0xff bytes', Buffer.alloc(16, 0xff)],
  ['binary junk (seed 1)', junk(1, 64)], ['binary junk (seed 2)', junk(2, 512)], ['binary junk (seed 3)', Buffer.concat([Buffer.from('7'), junk(3, 100)])],
  ['21 characters (the kernel stops at 20)', '000000000000000000005'], ['4 KiB of digits', '1'.repeat(4096)], ['4 KiB of zeros', '0'.repeat(4096)],
  ['8 KiB of digits', '7'.repeat(8192)], ['64 KiB of digits', '3'.repeat(65536)], ['4095 spaces, then a digit (past the kernel\'s window)', `${' '.repeat(4095)}5`],
  ['4 KiB of junk (seed 4)', junk(4, 4096)],
];

/** Out of each sysctl's range (and the default values the "unchanged" checks compare with). */
const OUT_OF_RANGE: Readonly<Record<string, readonly string[]>> = {
  'sys/vm/scrub_start': ['19', '19\n', '0x13', '023', '2147483647'],
  'sys/vm/scrub_stop': ['19', '0x13', '99'],
  'sys/vm/scrub_load': ['1001', '0x3e9', '01751', '65536'],
  'sys/vm/max_prealloc_order': ['5', '9', '011', '0x9', '10'],
};
const DEFAULTS: Readonly<Record<string, string>> = {
  'sys/vm/scrub_start': '18', 'sys/vm/scrub_stop': '4', 'sys/vm/scrub_load': '999', 'sys/vm/max_prealloc_order': '4',
};
const FLAG_CYCLE: readonly Flags[] = ['w', 'wt', 'rw', 'wa'];

function sysctlCases(): SysctlCase[] {
  const cases: SysctlCase[] = [];
  const one = (name: string, file: string, writes: Write[], expect: Outcome[]): void => {
    // O_APPEND puts every write at the end (offset 0: st_size is 0) and makes pwrite ignore its
    // offset, so it only goes with single writes at offset 0.
    const cycle = writes.length > 1 || writes.some((w) => w.offset !== undefined) ? FLAG_CYCLE.slice(0, 3) : FLAG_CYCLE;
    cases.push({ name, file, flags: cycle[cases.length % cycle.length]!, writes, expect });
  };
  for (const file of SYSCTL_FILES) {
    for (const [name, data] of REFUSED_EVERYWHERE) one(name, file, [{ data: bytes(data) }], ['EINVAL']);
    for (const v of OUT_OF_RANGE[file]!) one(`out of range: ${JSON.stringify(v)}`, file, [{ data: bytes(v) }], ['EINVAL']);
    const current = DEFAULTS[file]!;
    // Writes at an offset > 0: ignored, reported as written (sysctl_writes_strict).
    one('a value at offset 1', file, [{ data: bytes('3\n'), offset: 1 }], [2]);
    one('junk at offset 4096', file, [{ data: bytes('junk'), offset: 4096 }], [4]);
    one('a value at offset 2^40', file, [{ data: bytes('5'), offset: 2 ** 40 }], [1]);
    one('4 KiB of junk at offset 7', file, [{ data: junk(5, 4096), offset: 7 }], [4096]);
    // Partial writes: each write(2) stands alone; a failed one does not move the file position.
    one('a value split in two writes (the second lands at an offset and is ignored)', file,
      [{ data: bytes(current) }, { data: bytes('0\n') }], [current.length, 2]);
    one('"5a" then "bc" (both at offset 0, both refused)', file, [{ data: bytes('5a') }, { data: bytes('bc') }], ['EINVAL', 'EINVAL']);
    one('"+" then "+5" (both refused)', file, [{ data: bytes('+') }, { data: bytes('+5') }], ['EINVAL', 'EINVAL']);
    one('a refused write, then junk at offset 1', file, [{ data: bytes('x') }, { data: bytes('y'), offset: 1 }], ['EINVAL', 1]);
    // A write of zero bytes: the kernel's __do_proc_dointvec returns 0 at once.
    one('a write of zero bytes', file, [{ data: Buffer.alloc(0) }], [0]);
  }
  return cases;
}

// ---- control cases --------------------------------------------------------------------------------

interface ControlCase {
  name: string;
  writes: Write[];
  flags: Flags;
  expect: Outcome[];
  /** A result line that must be there (the refused or failed line's reason). */
  reason?: RegExp;
  /** The exact result lines, when the structure matters (skipped lines, ok lines before a failure). */
  lines?: RegExp[];
  /** Check the output some other way. */
  check?: (out: string) => void;
}

const MiB = 2 ** 20;
const PAGE = 16384; // the altix preset

function controlCases(A: number): ControlCase[] {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  const a = hex(A);
  const cases: ControlCase[] = [];
  /** One write of `text` + "\n" that must fail EINVAL; `reason` matches its own err line. */
  const bad = (reason: RegExp, text: string | Buffer, name = JSON.stringify(text.toString().slice(0, 60))): void => {
    const data = Buffer.concat([bytes(text), Buffer.from('\n')]);
    cases.push({ name, writes: [{ data }], flags: 'rw', expect: ['EINVAL'], reason });
  };
  const unknown = (cmd: string): RegExp => new RegExp(`^err unknown command ${escape(JSON.stringify(cmd))} \\(commands: tick, alloc, free, drain, bte, check, stats, config, mm, mmap, munmap, touch, fault, faults\\)$`);
  const notDecimal = (verb: string, what: string, v: string): RegExp =>
    new RegExp(`^err ${verb}: ${what} ${escape(JSON.stringify(v))} is not a decimal number \\(no sign, leading zeros or hex\\)$`);
  const outOfRange = (verb: string, what: string, v: string): RegExp => new RegExp(`^err ${verb}: ${what} ${escape(JSON.stringify(v))} is out of range \\d+\\.\\.\\d+$`);
  const notSize = (verb: string, v: string): RegExp => new RegExp(`^err ${verb}: size ${escape(JSON.stringify(v))} is not a size`);
  const notAddr = (verb: string, v: string): RegExp => new RegExp(`^err ${verb}: addr ${escape(JSON.stringify(v))} is not a hex address`);
  const noMm = (verb: string, id: number): RegExp => new RegExp(`^err ${verb}: no process has mm=${id}$`);
  const unaligned = (verb: string, addr: string): RegExp => new RegExp(`^err ${verb}: addr=${addr} is not page aligned \\(page size ${PAGE}\\)$`);
  const unmapped = (verb: string, addr: string): RegExp => new RegExp(`^err ${verb}: addr=${addr} is not mapped in mm 1$`);
  const ctl = (c: number): RegExp => new RegExp(`^err line has a control character U\\+${c.toString(16).toUpperCase().padStart(4, '0')} at column \\d+$`);

  // Unknown verbs and subverbs.
  for (const v of ['bogus', 'ALLOC', 'Check', 'checks', 'help', 'quit', 'stat', 'ticks', '-check', '=', 'order=1', 'alloc2', 'ché', '检查', '🙂', 'check\ufeff', '"check"', 'check;', "'stats'", '=1', 'stats\u2028']) {
    bad(unknown(v), `${v} order=1`);
  }
  // A UTF-8 BOM at the start of a line is dropped (TextDecoder's default): the line is then checked as usual.
  bad(/^err check: unknown key "order" \(check takes no arguments\)$/, '\ufeffcheck order=1', 'a BOM, then check order=1');
  bad(/^err mm: missing subcommand \(subcommands: new, list, exit\)$/, 'mm');
  bad(/^err mm: unknown subcommand "bogus"/, 'mm bogus');
  bad(/^err mm: unknown subcommand "New"/, 'mm New');
  bad(/^err mm: unknown subcommand "exitt"/, 'mm exitt mm=1');

  // Bad ids and numbers.
  bad(noMm('mm exit', 99), 'mm exit mm=99');
  bad(noMm('mm exit', 0), 'mm exit mm=0');
  for (const v of ['-1', '01', '1.0', '0x1', '1e3', '', 'abc', '+1']) bad(notDecimal('mm exit', 'mm', v), `mm exit mm=${v}`);
  bad(outOfRange('mm exit', 'mm', '99999999999999999999'), 'mm exit mm=99999999999999999999');
  bad(/^err free: no block has handle 99$/, 'free handles=99');
  bad(outOfRange('free', 'handle', '0'), 'free handles=0');
  for (const v of ['1,,2', ',1', '1,']) bad(new RegExp(`^err free: handles ${escape(JSON.stringify(v))} has an empty entry$`), `free handles=${v}`);
  bad(/^err free: handles is empty$/, 'free handles=');
  bad(/^err free: handle 1 is named twice$/, 'free handles=1,1');
  bad(/^err free: no block has handle 99$/, 'free handles=1,2,99', 'all or nothing: handles 1 and 2 are not freed');
  bad(notDecimal('free', 'handle', '-1'), 'free handles=-1');
  bad(/^err free: unknown flag "2"/, 'free handles=1 2');
  for (const v of ['-1', '+1', '1.5', '0x1', '01', '', 'one']) bad(notDecimal('alloc', 'order', v), `alloc order=${v}`);
  bad(outOfRange('alloc', 'order', '64'), 'alloc order=64');
  bad(outOfRange('alloc', 'order', '18'), 'alloc order=18');
  bad(/^err alloc: node=4 is out of range 0\.\.3$/, 'alloc order=1 node=4');
  bad(outOfRange('alloc', 'node', '1024'), 'alloc order=1 node=1024');
  bad(outOfRange('alloc', 'count', '0'), 'alloc order=1 count=0');
  bad(outOfRange('alloc', 'count', '1000001'), 'alloc order=1 count=1000001');

  // Addresses and sizes: unaligned, unmapped, past the mapping, huge.
  bad(unaligned('munmap', hex(A + 1)), `munmap mm=1 addr=${hex(A + 1)} size=16K`);
  bad(unaligned('munmap', hex(A + 8192)), `munmap mm=1 addr=${hex(A + 8192)} size=16K`);
  bad(unmapped('munmap', '0x0'), 'munmap mm=1 addr=0x0 size=16K');
  bad(unmapped('munmap', hex(A + MiB)), `munmap mm=1 addr=${hex(A + MiB)} size=16K`);
  bad(/^err munmap: 0x[0-9a-f]+\+2097152 runs past the end of its mapping/, `munmap mm=1 addr=${a} size=2M`);
  bad(/^err munmap: 0x[0-9a-f]+\+32768 runs past the end of its mapping/, `munmap mm=1 addr=${hex(A + MiB - PAGE)} size=32K`);
  bad(outOfRange('munmap', 'addr', '0xffffffffffffffff'), 'munmap mm=1 addr=0xffffffffffffffff size=16K');
  bad(notAddr('munmap', String(A)), `munmap mm=1 addr=${A} size=16K`);
  bad(notAddr('munmap', '0x'), 'munmap mm=1 addr=0x size=16K');
  bad(notAddr('munmap', '0xg'), 'munmap mm=1 addr=0xg size=16K');
  bad(notAddr('munmap', '-0x4000'), 'munmap mm=1 addr=-0x4000 size=16K');
  bad(outOfRange('munmap', 'size', '0'), `munmap mm=1 addr=${a} size=0`);
  bad(outOfRange('munmap', 'size', '2P'), `munmap mm=1 addr=${a} size=2P`);
  bad(outOfRange('munmap', 'size', '1P'), `munmap mm=1 addr=${a} size=1P`);
  bad(notSize('munmap', '-16K'), `munmap mm=1 addr=${a} size=-16K`);
  bad(notSize('munmap', '16Q'), `munmap mm=1 addr=${a} size=16Q`);
  bad(noMm('munmap', 2), `munmap mm=2 addr=${a} size=16K`);
  bad(/^err munmap: missing key "size"/, `munmap mm=1 addr=${a}`);
  bad(/^err munmap: missing key "addr"/, 'munmap mm=1 size=16K');
  bad(outOfRange('mmap', 'size', '0'), 'mmap mm=1 size=0');
  bad(outOfRange('mmap', 'size', '0.1'), 'mmap mm=1 size=0.1');
  bad(outOfRange('mmap', 'size', '1P'), 'mmap mm=1 size=1P');
  bad(outOfRange('mmap', 'size', '70368744177665'), 'mmap mm=1 size=70368744177665');
  bad(notSize('mmap', '-1'), 'mmap mm=1 size=-1');
  bad(notSize('mmap', '1Q'), 'mmap mm=1 size=1Q');
  bad(noMm('mmap', 99), 'mmap mm=99 size=1M');
  bad(/^err mmap: duplicate flag "random"$/, 'mmap mm=1 size=1M random random');
  bad(/^err mmap: unknown flag "rand"/, 'mmap mm=1 size=1M rand');
  bad(/^err mmap: missing key "size"/, 'mmap mm=1');
  bad(/^err mmap: missing key "mm"/, 'mmap size=1M');
  const touch = `touch mm=1 addr=${a} size=1M`;
  bad(outOfRange('touch', 'threads', '0'), `${touch} threads=0`);
  bad(outOfRange('touch', 'threads', '1025'), `${touch} threads=1025`);
  bad(outOfRange('touch', 'lines', '0'), `${touch} lines=0`);
  bad(/^err touch: lines=129 must be 1\.\.128 \(128-byte lines in a 16384-byte page\)$/, `${touch} lines=129`);
  bad(/^err touch: lines=1000 must be 1\.\.128/, `${touch} lines=1000`);
  bad(outOfRange('touch', 'lines', '131073'), `${touch} lines=131073`);
  bad(/^err touch: stride=8192 must be a multiple of the page size \(16384\)$/, `${touch} stride=8K`);
  bad(/^err touch: stride=24576 must be a multiple/, `${touch} stride=24K`);
  bad(outOfRange('touch', 'stride', '0'), `${touch} stride=0`);
  bad(/^err touch: flags "read" and "write" conflict$/, `${touch} read write`);
  bad(/^err touch: duplicate flag "write"$/, `${touch} write write`);
  bad(/^err touch: unknown key "access"/, `${touch} access=read`);
  bad(/^err touch: 0x[0-9a-f]+\+2097152 runs past the end of its mapping/, `touch mm=1 addr=${a} size=2M`);
  bad(unaligned('touch', hex(A + 1)), `touch mm=1 addr=${hex(A + 1)} size=16K`);
  bad(unaligned('touch', '0x1000'), 'touch mm=1 addr=0x1000 size=16K');
  bad(unmapped('touch', '0x1fffffffffc000'), 'touch mm=1 addr=0x1fffffffffc000 size=16K');
  bad(unaligned('fault', hex(A + 1)), `fault mm=1 addr=${hex(A + 1)}`);
  bad(unaligned('fault', '0x1fffffffffffff'), 'fault mm=1 addr=0x1fffffffffffff');
  bad(unmapped('fault', '0x0'), 'fault mm=1 addr=0x0');
  bad(noMm('fault', 2), `fault mm=2 addr=${a}`);
  bad(/^err fault: duplicate flag "read"$/, `fault mm=1 addr=${a} read read`);
  bad(/^err fault: unknown key "size"/, `fault mm=1 addr=${a} size=16K`);
  bad(/^err fault: missing key "addr"/, 'fault mm=1');

  // Duplicate, missing and unknown keys.
  bad(/^err alloc: duplicate key "order"$/, 'alloc order=1 order=2');
  bad(/^err free: duplicate key "handles"$/, 'free handles=1 handles=2');
  bad(/^err touch: duplicate key "mm"$/, `touch mm=1 mm=1 addr=${a} size=16K`);
  bad(/^err bte: duplicate key "fail"$/, 'bte fail=1 fail=2');
  bad(/^err mmap: duplicate key "size"$/, 'mmap mm=1 size=1M size=2M');
  bad(/^err munmap: duplicate key "addr"$/, `munmap mm=1 addr=${a} addr=${a} size=16K`);
  bad(/^err alloc: duplicate flag "zero"$/, 'alloc order=1 zero zero');
  bad(/^err tick: unexpected "2s"/, 'tick 1s 2s');
  bad(/^err alloc: missing key "order" \(usage: alloc order=<n> \[node=<n>\] \[count=<n>\] \[zero\]\)$/, 'alloc');
  bad(/^err alloc: missing key "order"/, 'alloc count=1');
  bad(/^err free: missing key "handles"/, 'free');
  bad(/^err bte: missing key "fail"/, 'bte');
  bad(/^err mm exit: missing key "mm"/, 'mm exit');
  bad(/^err tick: missing duration/, 'tick');
  bad(/^err alloc: unknown key "zero"/, 'alloc order=1 zero=1');
  bad(/^err alloc: unknown flag "Zero"/, 'alloc order=1 Zero');
  bad(/^err alloc: unknown key "nodes"/, 'alloc order=1 nodes=1');
  bad(/^err alloc: unknown key ""/, 'alloc =1');
  bad(/^err check: unknown flag "now" \(check takes no arguments\)$/, 'check now');
  bad(/^err stats: unknown flag "all"/, 'stats all');
  bad(/^err drain: unknown flag "1"/, 'drain 1');
  bad(/^err bte: unknown flag "now"/, 'bte fail=1 now');
  bad(/^err mm new: unknown flag "mm=1"|^err mm new: unknown key "mm"/, 'mm new mm=1');

  // Durations and BTE failures.
  for (const v of ['1', '-1s', '1x', 's', '1e9ns', '0x10s', '1.5.5s', '99999999999999999999s']) {
    bad(new RegExp(`^err tick: ${escape(JSON.stringify(v))} is not a duration|^err tick: duration ${escape(JSON.stringify(v))} is out of range`), `tick ${v}`);
  }
  bad(/^err tick: duration "25h" is out of range 0\.\.86400000000000$/, 'tick 25h');
  bad(notDecimal('bte', 'fail', '-1'), 'bte fail=-1');
  bad(outOfRange('bte', 'fail', '1000001'), 'bte fail=1000001');
  bad(notDecimal('bte', 'fail', 'x'), 'bte fail=x');

  // NUL bytes, control characters, broken UTF-8.
  bad(ctl(0), 'check\0');
  bad(ctl(0), '\0');
  bad(ctl(0), 'che\0ck');
  bad(ctl(0), 'alloc\0order=1');
  bad(ctl(0x0d), 'check\r', 'a CRLF line ending');
  bad(ctl(0x1b), 'check\x1b[0m');
  bad(ctl(0x7f), 'check\x7f');
  bad(ctl(0x85), 'check\u0085', 'a C1 control (NEL)');
  bad(ctl(0x0b), 'check\v');
  bad(ctl(0x0c), 'check\f');
  bad(ctl(0x08), 'alloc order=1\bcount=2');
  bad(/^err line is not valid UTF-8$/, Buffer.from([0xc3, 0x28]), 'invalid UTF-8');
  bad(/^err line is not valid UTF-8$/, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('check')]), 'a UTF-16 BOM');
  bad(/^err line is not valid UTF-8$/, Buffer.from([0x63, 0xc0, 0xaf]), 'an overlong encoding');
  bad(/^err line is not valid UTF-8$/, Buffer.from([0x63, 0xed, 0xa0, 0x80]), 'a UTF-8 surrogate');
  bad(/^err line is not valid UTF-8$/, Buffer.concat([Buffer.from('stats '), junk(6, 40).map((b) => b | 0x80)]), 'high-bit junk');

  // Very long lines.
  bad(/^err line is 4097 bytes long \(at most 4096\)$/, `check${' '.repeat(4092)}`, 'check padded to 4097 bytes');
  bad(/^err line is 5000 bytes long/, 'a'.repeat(5000), '5000 bytes of a');
  bad(/^err line is 65536 bytes long/, 'x'.repeat(65536), '64 KiB line');
  bad(/^err line is 5007 bytes long/, `stats #${'c'.repeat(5000)}`, 'a comment does not shorten a long line');
  bad(/^err line is \d+ bytes long/, `free handles=${'99,'.repeat(1400)}99`, '1401 handles in one line');
  bad(/^err line is 4098 bytes long/, 'é'.repeat(2049), '2049 two-byte characters');
  bad(/^err free: no block has handle 100$/, `free handles=${Array.from({ length: 800 }, (_, i) => 100 + i).join(',')}`, '800 unknown handles');

  // Batches: one refused line and nothing runs; the first failure ends the rest.
  const batch = (name: string, text: string, lines: RegExp[]): void => {
    cases.push({ name, writes: [{ data: Buffer.from(text) }], flags: 'rw', expect: ['EINVAL'], lines });
  };
  const rejected = (n: number): RegExp => new RegExp(`^err skipped: line ${n} of this write was rejected$`);
  const failed = (n: number): RegExp => new RegExp(`^err skipped: line ${n} of this write failed$`);
  batch('a good alloc, then a bad line', 'alloc order=1\nbogus\n', [rejected(2), unknown('bogus')]);
  batch('mm new, mmap, then a bad free', 'mm new\nmmap mm=1 size=1M\nfree handles=x\n', [rejected(3), rejected(3), notDecimal('free', 'handle', 'x')]);
  batch('ticks, a comment, a blank line, a bad line', 'tick 1s\n# a comment\n\nbogus\ntick 1s\n', [rejected(4), unknown('bogus'), rejected(4)]);
  batch('two bad lines', 'check\nstats\nmm new\nbogus1\nbogus2\n', [rejected(4), rejected(4), rejected(4), unknown('bogus1'), unknown('bogus2')]);
  batch('no final newline (the last line waits for one, and never runs)', 'bogus1\nbogus2', [unknown('bogus1')]);
  batch('CRLF line endings', 'tick 1s\r\ncheck\r\n', [ctl(0x0d), ctl(0x0d)]);
  batch('a failing free first', 'free handles=99\nalloc order=1\n', [/^err free: no block has handle 99$/, failed(1)]);
  batch('a failing mm exit first', 'mm exit mm=99\ntick 1s\nmm new\n', [noMm('mm exit', 99), failed(1), failed(1)]);
  batch('check and stats, then a failing free', 'check\nstats\nfree handles=1,1\nalloc order=3\n',
    [/^ok$/, /^ok now_ns=\d+ page_size=16384 /, /^err free: handle 1 is named twice$/, failed(3)]);
  cases.push({
    name: '1000 good allocs and one bad line', flags: 'rw', expect: ['EINVAL'],
    writes: [{ data: Buffer.from(`${'alloc order=0\n'.repeat(1000)}alloc order=0 count=0\n`) }],
    check: (out) => {
      const lines = out.split('\n').slice(0, -1);
      assert.equal(lines.length, 1001);
      assert.ok(lines.slice(0, 1000).every((l) => l === 'err skipped: line 1001 of this write was rejected'));
      assert.match(lines[1000]!, outOfRange('alloc', 'count', '0'));
    },
  });

  // Partial writes: a line runs when its newline arrives, however it was split; the earlier
  // writes just hand over their bytes.
  const split = (name: string, parts: string[], lines: RegExp[]): void => {
    const expect: Outcome[] = [...parts.slice(0, -1).map((p) => Buffer.byteLength(p)), 'EINVAL'];
    cases.push({ name, writes: parts.map((p) => ({ data: Buffer.from(p) })), flags: 'rw', expect, lines });
  };
  split('"che" + "cks\\n"', ['che', 'cks\n'], [unknown('checks')]);
  split('"alloc order=" + "x\\n"', ['alloc order=', 'x\n'], [notDecimal('alloc', 'order', 'x')]);
  split('"tick 1" + "parsec\\n"', ['tick 1', 'parsec\n'], [/^err tick: "1parsec" is not a duration/]);
  split('"mm " + "o" + "ld\\n"', ['mm ', 'o', 'ld\n'], [/^err mm: unknown subcommand "old"/]);

  // Offsets and open modes.
  cases.push({ name: 'a bad line at offset 100', writes: [{ data: Buffer.from('bogus\n'), offset: 100 }], flags: 'rw', expect: ['EINVAL'], reason: unknown('bogus') });
  cases.push({ name: 'a failing free at offset 2^40', writes: [{ data: Buffer.from('free handles=99\n'), offset: 2 ** 40 }], flags: 'rw', expect: ['EINVAL'], reason: /^err free: no block has handle 99$/ });
  cases.push({ name: 'a bad line on a write-only open', writes: [{ data: Buffer.from('bogus\n') }], flags: 'w', expect: ['EINVAL'] });
  cases.push({ name: 'a bad line on an O_APPEND open', writes: [{ data: Buffer.from('alloc order=1 order=1\n') }], flags: 'wa', expect: ['EINVAL'] });
  // Results that could pass 1 MiB unread: the write is refused before anything runs.
  const stats = 'stats\n'.repeat(2500);
  cases.push({
    name: '2500 stats in one write, then a check', flags: 'rw',
    writes: [{ data: Buffer.from(stats) }, { data: Buffer.from('check\n') }], expect: ['EBUSY', 6],
    check: (out) => {
      const lines = out.split('\n').slice(0, -1);
      assert.equal(lines.length, 2, 'one err line for the refused write, then the check');
      assert.match(lines[0]!, /^err control: the results of this write could take \d+ bytes, more than the 1048576 left/);
      assert.equal(lines[1], 'ok');
    },
  });
  return cases;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function show(b: Buffer): string {
  const s = JSON.stringify(b.toString('latin1'));
  return s.length > 70 ? `${s.slice(0, 67)}…` : s;
}

// ---- the tests ------------------------------------------------------------------------------------

describe('robust: malformed input over a real mount', () => {
  test('when ≥100 malformed sysctl writes are made then each is EINVAL (or an ignored offset write) and nothing changes', { timeout: 90_000 }, async (t) => {
    await withMount(MANUAL, async (dir) => {
      const before = await snapshot(dir);
      for (const [file, v] of Object.entries(DEFAULTS)) assert.equal(before.get(file), `${v}\n`);
      const cases = sysctlCases();
      assert.ok(cases.length >= 100, `${cases.length} cases`);
      const results = await runWrites(cases.map((c) => ({ path: path.join(dir, c.file), flags: c.flags, writes: c.writes.map(wire), read: false })));
      const wrong: string[] = [];
      cases.forEach((c, i) => {
        const r = results[i]!;
        if (r.open !== undefined || JSON.stringify(outcomes(r)) !== JSON.stringify(c.expect)) {
          wrong.push(`${c.file} ${c.name} [${c.writes.map((w) => show(w.data)).join(', ')}] (${c.flags}): expected ${JSON.stringify(c.expect)}, got ${r.open ?? JSON.stringify(outcomes(r))}`);
        }
      });
      assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} sysctl writes went wrong`);
      t.diagnostic(`${cases.length} sysctl cases (${cases.reduce((n, c) => n + c.writes.length, 0)} writes)`);
      assertSameState(before, await snapshot(dir));
      assert.deepEqual(await controlBatch(dir, 'check\n'), ['ok']);
    });
  });

  test('when bash, /bin/echo and dd write malformed values then the writer shows Invalid argument and the values stay', { timeout: 60_000 }, async () => {
    await withMount(MANUAL, async (dir) => {
      const before = await snapshot(dir);
      const f = q(path.join(dir, 'sys/vm/scrub_start'));
      const values = ['+5', '5abc', '5,6', ' ', '19', '2147483648', '-1', '0x1g', '5.0', '\\r\\n'];
      const script = [
        ...values.map((v) => `printf -- '${v}' > ${f}; echo "printf ${v}: $?"`),
        `echo > ${f}; echo "echo (newline only): $?"`,
        `echo 1001 > ${q(path.join(dir, 'sys/vm/scrub_load'))}; echo "echo 1001: $?"`,
        `/bin/echo -n 9 > ${q(path.join(dir, 'sys/vm/max_prealloc_order'))}; echo "/bin/echo 9: $?"`,
        `printf '+3' | dd of=${f} conv=notrunc status=none; echo "dd +3: $?"`,
        `printf 'bogus\\n' > ${q(path.join(dir, 'control'))}; echo "control bogus: $?"`,
        // A command that fails as it runs fails the close of the process that wrote it: cat
        // reports it (bash ignores a failed close).
        `echo 'free handles=7' | cat > ${q(path.join(dir, 'control'))}; echo "control free: $?"`,
        // An offset write is ignored and reported written: dd seek=5 exits 0.
        `printf 3 | dd of=${f} bs=1 seek=5 conv=notrunc status=none; echo "dd seek=5: $?"`,
      ].join('\n');
      const r = await run('bash', ['-c', script]);
      const status = r.stdout.split('\n').slice(0, -1);
      assert.equal(status.length, values.length + 7, r.stdout);
      assert.ok(status.slice(0, -1).every((l) => l.endsWith(': 1')), r.stdout);
      assert.equal(status.at(-1), 'dd seek=5: 0');
      const errors = r.stderr.split('\n').slice(0, -1);
      assert.equal(errors.length, values.length + 6, r.stderr);
      assert.ok(errors.every((l) => /(write error|error writing .*): Invalid argument$/.test(l)), r.stderr);
      assertSameState(before, await snapshot(dir));
    });
  });

  test('when ≥100 malformed control commands are written then each is EINVAL with its err line and nothing changes', { timeout: 90_000 }, async (t) => {
    await withMount(MANUAL, async (dir) => {
      // Something for the commands to name: a process with a 1 MiB mapping (16 pages touched) and raw blocks 1..3.
      const setup = await controlBatch(dir, 'mm new keep\nmmap mm=1 size=1M\n');
      const A = Number.parseInt(/^ok addr=(0x[0-9a-f]+) size=1048576$/.exec(setup[1]!)![1]!, 16);
      assert.deepEqual(await controlBatch(dir, `touch mm=1 addr=0x${A.toString(16)} size=256K\nalloc order=2 count=3\nalloc order=0 count=5 zero\n`).then((l) => l.map((x) => x.split(' ')[0])), ['ok', 'ok', 'ok']);
      const before = await snapshot(dir);
      const [stats] = await controlBatch(dir, 'stats\n');
      const cases = controlCases(A);
      const cmds = cases.reduce((n, c) => n + (c.lines?.length ?? 1), 0);
      assert.ok(cases.length >= 100, `${cases.length} cases`);
      const started = Date.now();
      const results = await runWrites(cases.map((c) => ({
        path: path.join(dir, 'control'), flags: c.flags, writes: c.writes.map(wire), read: c.flags === 'rw',
      })));
      const took = Date.now() - started;
      const wrong: string[] = [];
      cases.forEach((c, i) => {
        const r = results[i]!;
        const where = `${c.name}`;
        if (r.open !== undefined || JSON.stringify(outcomes(r)) !== JSON.stringify(c.expect)) {
          wrong.push(`${where}: expected ${JSON.stringify(c.expect)}, got ${r.open ?? JSON.stringify(outcomes(r))} ${JSON.stringify(r.out?.slice(0, 200))}`);
          return;
        }
        if (r.out === null) return;
        const lines = r.out.split('\n').slice(0, -1);
        try {
          if (c.check) c.check(r.out);
          else if (c.lines) {
            assert.equal(lines.length, c.lines.length, 'result lines');
            c.lines.forEach((re, k) => assert.match(lines[k]!, re));
          } else {
            assert.ok(lines.length > 0, 'a result line');
            assert.ok(lines.every((l) => l.startsWith('err ')), 'every result is err');
            if (c.reason) assert.ok(lines.some((l) => c.reason!.test(l)), `a line matches ${c.reason}`);
          }
        } catch (err) {
          wrong.push(`${where}: ${(err as Error).message.split('\n')[0]} — got ${JSON.stringify(lines.map((l) => l.slice(0, 160)))}`);
        }
      });
      assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} control writes went wrong`);
      assertSameState(before, await snapshot(dir));
      const after = await controlBatch(dir, 'check\nstats\n');
      assert.equal(after[0], 'ok');
      assert.equal(after[1], stats);
      assert.match(stats!, / raw_pages=17 mms=1 .* nr_anon_pages=\d+ /);
      t.diagnostic(`${cases.length} control writes (${cmds} result lines) in ${took} ms`);
    });
  });

  test('when an alloc runs out of memory then it is refused whole: ENOMEM, no block kept, MemFree unchanged, check ok', { timeout: 60_000 }, async () => {
    await withMount(MANUAL, async (dir) => {
      const memFree = async (): Promise<number> => parseMeminfo(await readFile(path.join(dir, 'meminfo'), 'utf8')).get('MemFree')!;
      const free = await memFree();
      const [r] = await runWrites([{ path: path.join(dir, 'control'), flags: 'rw', writes: [wire({ data: Buffer.from('alloc order=10 count=1000\n') })], read: true }]);
      assert.deepEqual(r!.writes, [Buffer.byteLength('alloc order=10 count=1000\n')], 'the write is accepted once it parses');
      assert.equal(r!.close, 'ENOMEM', 'close reports how the alloc ended');
      assert.match(r!.out!, /^err alloc: out of memory after \d+ of 1000 order-10 blocks \(nothing kept\)\n$/);
      assert.equal(await memFree(), free);
      const after = await controlBatch(dir, 'check\nstats\n');
      assert.equal(after[0], 'ok');
      assert.match(after[1]!, / raw_pages=0 /);
    });
  });
});
