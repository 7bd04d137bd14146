import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type Command, ControlSyntaxError, formatCommand, parseCommand } from '../../src/uapi';
import { decodeLine, parseLine } from '../../src/uapi/grammar';

/** The reason parseCommand refuses `line` with (or fails the test). */
function reasonOf(line: string): string {
  try {
    const cmd = parseCommand(line);
    assert.fail(`accepted ${JSON.stringify(line)} as ${JSON.stringify(cmd)}`);
  } catch (err) {
    assert.ok(err instanceof ControlSyntaxError, `${JSON.stringify(line)}: ${String(err)}`);
    return err.message;
  }
}

const T = 'touch mm=1 addr=0x0 size=64K';
const ALLOC_TAKES = '(keys: order, node, count; flags: zero)';
const NUMBER = 'is not a decimal number (no sign, leading zeros or hex)';

// [class, line, the exact reason, or a pattern it must match]
const REJECTED: readonly (readonly [string, string, string | RegExp])[] = [
  // unknown verbs and subverbs
  ['verb', 'allc order=1', /^unknown command "allc" \(commands: tick, alloc, free, drain, bte, check, stats, config, mm, mmap, munmap, touch, fault, faults\)$/],
  ['verb', 'ALLOC order=1', /^unknown command "ALLOC"/],
  ['verb', 'sysctl scrub_start=5', /^unknown command "sysctl"/],
  ['verb', 'help', /^unknown command "help"/],
  ['verb', 'order=1 alloc', /^unknown command "order=1"/],
  ['verb', '=', /^unknown command "="/],
  ['verb', 'tick\u00a0250ms', /^unknown command "tick\u00a0250ms"/],
  ['subverb', 'mm', 'mm: missing subcommand (subcommands: new, list, exit)'],
  ['subverb', 'mm old', 'mm: unknown subcommand "old" (subcommands: new, list, exit)'],
  ['subverb', 'mm New', 'mm: unknown subcommand "New" (subcommands: new, list, exit)'],
  ['subverb', 'mm mm=1', 'mm: unknown subcommand "mm=1" (subcommands: new, list, exit)'],
  // unknown keys
  ['key', 'alloc ordr=1', `alloc: unknown key "ordr" ${ALLOC_TAKES}`],
  ['key', 'alloc Order=1', `alloc: unknown key "Order" ${ALLOC_TAKES}`],
  ['key', 'alloc order=1 size=2', `alloc: unknown key "size" ${ALLOC_TAKES}`],
  ['key', 'alloc =1', `alloc: unknown key "" ${ALLOC_TAKES}`],
  ['key', 'check verbose=1', 'check: unknown key "verbose" (check takes no arguments)'],
  ['key', 'stats x=1', 'stats: unknown key "x" (stats takes no arguments)'],
  ['key', 'tick ns=5', 'tick: unknown key "ns" (tick takes one duration: tick 250ms)'],
  ['key', 'free handle=1', 'free: unknown key "handle" (keys: handles)'],
  ['key', 'mm new mm=1', 'mm new: unknown key "mm" (flags: keep)'],
  ['key', `${T} thread=2`, 'touch: unknown key "thread" (keys: mm, addr, size, threads, lines, stride; flags: read, write, thp)'],
  // unknown flags and stray words
  ['flag', 'alloc order=1 zeroed', `alloc: unknown flag "zeroed" ${ALLOC_TAKES}`],
  ['flag', 'alloc order=1 ZERO', `alloc: unknown flag "ZERO" ${ALLOC_TAKES}`],
  ['flag', 'check now', 'check: unknown flag "now" (check takes no arguments)'],
  ['flag', 'drain all', 'drain: unknown flag "all" (drain takes no arguments)'],
  ['flag', 'mm new extra', 'mm new: unknown flag "extra" (flags: keep)'],
  ['flag', 'mmap mm=1 size=4K rand', 'mmap: unknown flag "rand" (keys: mm, size, addr, hugetlb; flags: random, thp)'],
  ['flag', `${T} writes`, /^touch: unknown flag "writes"/],
  ['flag', 'alloc 3', `alloc: unknown flag "3" ${ALLOC_TAKES}`],
  ['flag', 'tick 2s 3s', 'tick: unexpected "3s" (tick takes one duration: tick 250ms)'],
  // duplicates and conflicts
  ['duplicate', 'alloc order=1 order=2', 'alloc: duplicate key "order"'],
  ['duplicate', 'alloc order=1 count=2 count=2', 'alloc: duplicate key "count"'],
  ['duplicate', 'free handles=1 handles=2', 'free: duplicate key "handles"'],
  ['duplicate', 'munmap mm=1 mm=1 addr=0x0 size=4K', 'munmap: duplicate key "mm"'],
  ['duplicate', 'alloc order=1 zero zero', 'alloc: duplicate flag "zero"'],
  ['duplicate', 'mmap mm=1 size=4K random random', 'mmap: duplicate flag "random"'],
  ['duplicate', 'fault mm=1 addr=0x0 write write', 'fault: duplicate flag "write"'],
  ['conflict', `${T} read write`, 'touch: flags "read" and "write" conflict'],
  ['conflict', 'fault mm=1 addr=0x0 write read', 'fault: flags "write" and "read" conflict'],
  // missing required
  ['missing', 'alloc', 'alloc: missing key "order" (usage: alloc order=<n> [node=<n>] [count=<n>] [zero])'],
  ['missing', 'alloc count=2 zero', /^alloc: missing key "order"/],
  ['missing', 'free', 'free: missing key "handles" (usage: free handles=<h1,h2,...>)'],
  ['missing', 'bte', 'bte: missing key "fail" (usage: bte fail=<n>)'],
  ['missing', 'tick', 'tick: missing duration (tick takes one duration: tick 250ms)'],
  ['missing', 'mm exit', 'mm exit: missing key "mm" (usage: mm exit mm=<id>)'],
  ['missing', 'mmap mm=1', 'mmap: missing key "size" (usage: mmap mm=<id> size=<size> [addr=0x<hex>] [hugetlb=<2M|1G>] [random] [thp])'],
  ['missing', 'mmap size=4K', /^mmap: missing key "mm"/],
  ['missing', 'munmap mm=1 size=4K', /^munmap: missing key "addr"/],
  ['missing', 'touch mm=1 addr=0x0', /^touch: missing key "size" \(usage: touch mm=<id> addr=0x<hex> size=<size> \[threads=<n>\] \[lines=<n>\] \[stride=<size>\] \[read\|write\] \[thp\]\)$/],
  ['missing', 'fault mm=1', /^fault: missing key "addr"/],
  // malformed numbers
  ['number', 'alloc order=', `alloc: order "" ${NUMBER}`],
  ['number', 'alloc order= 1', `alloc: order "" ${NUMBER}`],
  ['number', 'alloc order=x', `alloc: order "x" ${NUMBER}`],
  ['number', 'alloc order=-1', `alloc: order "-1" ${NUMBER}`],
  ['number', 'alloc order=+1', `alloc: order "+1" ${NUMBER}`],
  ['number', 'alloc order=01', `alloc: order "01" ${NUMBER}`],
  ['number', 'alloc order=0x1', `alloc: order "0x1" ${NUMBER}`],
  ['number', 'alloc order=1.0', `alloc: order "1.0" ${NUMBER}`],
  ['number', 'alloc order=1e1', `alloc: order "1e1" ${NUMBER}`],
  ['number', 'alloc order=1_0', `alloc: order "1_0" ${NUMBER}`],
  ['number', 'alloc order==1', `alloc: order "=1" ${NUMBER}`],
  ['number', 'alloc order=\uff11', `alloc: order "\uff11" ${NUMBER}`],
  ['number', 'alloc order="1"', `alloc: order "\\"1\\"" ${NUMBER}`],
  ['number', 'bte fail=-3', `bte: fail "-3" ${NUMBER}`],
  ['number', 'mm exit mm=one', `mm exit: mm "one" ${NUMBER}`],
  ['handles', 'free handles=', 'free: handles is empty'],
  ['handles', 'free handles=1,,2', 'free: handles "1,,2" has an empty entry'],
  ['handles', 'free handles=,1', 'free: handles ",1" has an empty entry'],
  ['handles', 'free handles=1,', 'free: handles "1," has an empty entry'],
  ['handles', 'free handles=1;2', `free: handle "1;2" ${NUMBER}`],
  ['handles', 'free handles=1, 2', 'free: handles "1," has an empty entry'],
  // out of range, too large
  ['range', 'alloc order=18', 'alloc: order "18" is out of range 0..17'],
  ['range', 'alloc order=1 node=256', 'alloc: node "256" is out of range 0..255'],
  ['range', 'alloc order=1 count=0', 'alloc: count "0" is out of range 1..1000000'],
  ['range', 'alloc order=1 count=1000001', 'alloc: count "1000001" is out of range 1..1000000'],
  ['range', 'alloc order=99999999999999999999', 'alloc: order "99999999999999999999" is out of range 0..17'],
  ['range', 'free handles=0', 'free: handle "0" is out of range 1..9007199254740991'],
  ['range', 'free handles=1,9007199254740992', 'free: handle "9007199254740992" is out of range 1..9007199254740991'],
  ['range', 'bte fail=1000001', 'bte: fail "1000001" is out of range 0..1000000'],
  ['range', 'mm exit mm=9007199254740992', 'mm exit: mm "9007199254740992" is out of range 0..9007199254740991'],
  ['range', `${T} threads=0`, 'touch: threads "0" is out of range 1..1024'],
  ['range', `${T} threads=1025`, 'touch: threads "1025" is out of range 1..1024'],
  ['range', `${T} lines=131073`, 'touch: lines "131073" is out of range 1..131072'],
  ['range', `${T} lines=0`, 'touch: lines "0" is out of range 1..131072'],
  ['range', `${T} stride=128T`, 'touch: stride "128T" is out of range 1..70368744177664'],
  ['range', 'tick 25h', 'tick: duration "25h" is out of range 0..86400000000000'],
  ['range', 'tick 99999999999999999999h', 'tick: "99999999999999999999h" is not a duration (try 250ms, 2s, 100us)'],
  ['range', 'mmap mm=1 size=0', 'mmap: size "0" is out of range 1..70368744177664'],
  ['range', 'mmap mm=1 size=1P', 'mmap: size "1P" is out of range 1..70368744177664'],
  ['range', 'mmap mm=1 size=2P', 'mmap: size "2P" is out of range 1..70368744177664'],
  ['range', `${T} stride=0`, 'touch: stride "0" is out of range 1..70368744177664'],
  // addresses
  ['address', 'munmap mm=1 addr=4096 size=4K', 'munmap: addr "4096" is not a hex address (0x...)'],
  ['address', 'munmap mm=1 addr=0X1000 size=4K', 'munmap: addr "0X1000" is not a hex address (0x...)'],
  ['address', 'munmap mm=1 addr=0x size=4K', 'munmap: addr "0x" is not a hex address (0x...)'],
  ['address', 'munmap mm=1 addr=0xg size=4K', 'munmap: addr "0xg" is not a hex address (0x...)'],
  ['address', 'munmap mm=1 addr=-0x10 size=4K', 'munmap: addr "-0x10" is not a hex address (0x...)'],
  ['address', 'fault mm=1 addr=0x20000000000000', 'fault: addr "0x20000000000000" is out of range 0..9007199254740991'],
  // sizes and durations
  ['size', 'mmap mm=1 size=4Q', 'mmap: size "4Q" is not a size (try 4096, 16K, 2M, 1G)'],
  ['size', 'mmap mm=1 size=-4K', 'mmap: size "-4K" is not a size (try 4096, 16K, 2M, 1G)'],
  ['size', 'mmap mm=1 size=', 'mmap: size "" is not a size (try 4096, 16K, 2M, 1G)'],
  ['duration', 'tick 5', 'tick: "5" is not a duration (try 250ms, 2s, 100us)'],
  ['duration', 'tick 2 s', 'tick: "2" is not a duration (try 250ms, 2s, 100us)'],
  ['duration', 'tick -1s', 'tick: "-1s" is not a duration (try 250ms, 2s, 100us)'],
  ['duration', 'tick 1fortnight', 'tick: "1fortnight" is not a duration (try 250ms, 2s, 100us)'],
  // control characters
  ['control', 'alloc order=1\u0000', 'line has a control character U+0000 at column 14'],
  ['control', '\u0001check', 'line has a control character U+0001 at column 1'],
  ['control', 'check\r', 'line has a control character U+000D at column 6'],
  ['control', 'stats \u001b[2J', 'line has a control character U+001B at column 7'],
  ['control', 'check\u007f', 'line has a control character U+007F at column 6'],
  ['control', 'check \u0085', 'line has a control character U+0085 at column 7'],
  ['control', 'alloc\u000border=1', 'line has a control character U+000B at column 6'],
  ['control', '# a comment with a bell \u0007', /^line has a control character U\+0007/],
  // length
  ['length', `check${' '.repeat(4092)}`, 'line is 4097 bytes long (at most 4096)'],
  ['length', `# ${'x'.repeat(5000)}`, 'line is 5002 bytes long (at most 4096)'],
  ['length', `tick 1s # ${'\u00e9'.repeat(2045)}`, 'line is 4100 bytes long (at most 4096)'],
];

describe('control grammar: rejected lines', () => {
  it('when the table is counted then it holds at least 60 malformed lines of every class', () => {
    assert.ok(REJECTED.length >= 60, `${REJECTED.length} cases`);
    const classes = new Set(REJECTED.map(([c]) => c));
    for (const c of ['verb', 'subverb', 'key', 'flag', 'duplicate', 'conflict', 'missing', 'number', 'handles', 'range', 'address', 'size', 'duration', 'control', 'length']) {
      assert.ok(classes.has(c), c);
    }
  });

  for (const [cls, line, want] of REJECTED) {
    it(`when a line has a bad ${cls} (${JSON.stringify(line.length > 40 ? `${line.slice(0, 40)}…` : line)}) then parseCommand refuses it`, () => {
      const got = reasonOf(line);
      if (typeof want === 'string') assert.equal(got, want);
      else assert.match(got, want);
    });
  }

  const BYTES: readonly (readonly [string, number[]])[] = [
    ['a lone 0xff', [0x63, 0x68, 0x65, 0x63, 0x6b, 0x20, 0xff]],
    ['a truncated sequence', [0x74, 0x69, 0x63, 0x6b, 0x20, 0x32, 0xc2]],
    ['an overlong "/"', [0x73, 0x74, 0x61, 0x74, 0x73, 0x20, 0xc0, 0xaf]],
    ['a UTF-16 surrogate', [0x63, 0x68, 0x65, 0x63, 0x6b, 0x20, 0xed, 0xa0, 0x80]],
    ['Latin-1 text', [0x74, 0x69, 0x63, 0x6b, 0x20, 0x32, 0xb5, 0x73]],
  ];
  for (const [what, bytes] of BYTES) {
    it(`when a line's bytes hold ${what} then decodeLine refuses it as non-UTF-8`, () => {
      assert.throws(() => decodeLine(Uint8Array.from(bytes)), { name: 'ControlSyntaxError', message: 'line is not valid UTF-8' });
    });
  }

  it('when a line is 4097 bytes then decodeLine refuses it before decoding', () => {
    assert.throws(() => decodeLine(Buffer.alloc(4097, 0x20)), { message: 'line is 4097 bytes long (at most 4096)' });
    assert.equal(decodeLine(Buffer.alloc(4096, 0x20)), ' '.repeat(4096));
  });

  it('when parseCommand gets a blank or comment line then it says there is no command', () => {
    for (const line of ['', '   ', '\t', '# alloc order=1', '   # x']) {
      assert.equal(parseLine(line), null);
      assert.equal(reasonOf(line), 'no command (the line is blank or a comment)');
    }
  });
});

// [line, the command it means]
const ACCEPTED: readonly (readonly [string, Command])[] = [
  ['tick 250ms', { verb: 'tick', ns: 250e6 }],
  ['tick 2s', { verb: 'tick', ns: 2e9 }],
  ['tick 1.5s', { verb: 'tick', ns: 1.5e9 }],
  ['tick 100us', { verb: 'tick', ns: 100e3 }],
  ['tick 2\u00b5s', { verb: 'tick', ns: 2e3 }],
  ['tick 0ms', { verb: 'tick', ns: 0 }],
  ['tick 24h', { verb: 'tick', ns: 24 * 3600e9 }],
  ['alloc order=3', { verb: 'alloc', order: 3 }],
  ['  alloc\torder=3 \t zero  ', { verb: 'alloc', order: 3, zero: true }],
  ['alloc zero order=0 count=1000000 node=3', { verb: 'alloc', order: 0, zero: true, count: 1000000, node: 3 }],
  ['alloc order=15 node=63 count=1', { verb: 'alloc', order: 15, node: 63, count: 1 }],
  ['alloc order=10 # the rest is a comment: zero count=x', { verb: 'alloc', order: 10 }],
  ['alloc order=1 #zero', { verb: 'alloc', order: 1 }],
  ['free handles=1', { verb: 'free', handles: [1] }],
  ['free handles=3,1,2', { verb: 'free', handles: [3, 1, 2] }],
  ['free handles=9007199254740991', { verb: 'free', handles: [Number.MAX_SAFE_INTEGER] }],
  ['drain', { verb: 'drain' }],
  ['check', { verb: 'check' }],
  ['stats', { verb: 'stats' }],
  ['bte fail=0', { verb: 'bte', fail: 0 }],
  ['bte fail=1000000', { verb: 'bte', fail: 1000000 }],
  ['mm new', { verb: 'mm new' }],
  ['mm\texit mm=0', { verb: 'mm exit', mm: 0 }],
  ['mmap mm=1 size=16K', { verb: 'mmap', mm: 1, size: 16384 }],
  ['mmap mm=1 size=0x4000 random', { verb: 'mmap', mm: 1, size: 16384, random: true }],
  ['mmap mm=2 size=1.5G', { verb: 'mmap', mm: 2, size: 1.5 * 2 ** 30 }],
  ['mmap mm=2 size=64T', { verb: 'mmap', mm: 2, size: 2 ** 46 }],
  ['munmap mm=1 addr=0x2000000000 size=1M', { verb: 'munmap', mm: 1, addr: 0x2000000000, size: 2 ** 20 }],
  ['munmap mm=1 addr=0xABCdef size=4096', { verb: 'munmap', mm: 1, addr: 0xabcdef, size: 4096 }],
  ['touch mm=1 addr=0x0 size=64M', { verb: 'touch', mm: 1, addr: 0, size: 64 * 2 ** 20 }],
  ['touch mm=1 addr=0x0 size=64M threads=8 lines=128 stride=16K write',
    { verb: 'touch', mm: 1, addr: 0, size: 64 * 2 ** 20, threads: 8, lines: 128, stride: 16384, access: 'write' }],
  ['touch read lines=131072 mm=4 size=1 addr=0x1fffffffffffff', { verb: 'touch', mm: 4, addr: Number.MAX_SAFE_INTEGER, size: 1, lines: 131072, access: 'read' }],
  ['fault mm=1 addr=0x4000 read', { verb: 'fault', mm: 1, addr: 0x4000, access: 'read' }],
  ['fault mm=1 addr=0x4000', { verb: 'fault', mm: 1, addr: 0x4000 }],
  [`check${' '.repeat(4091)}`, { verb: 'check' }],
];

describe('control grammar: accepted lines', () => {
  for (const [line, want] of ACCEPTED) {
    it(`when the line is ${JSON.stringify(line.length > 50 ? `${line.slice(0, 50)}…` : line)} then it parses to its command`, () => {
      assert.deepEqual(parseCommand(line), want);
    });
  }

  it('when any accepted command is formatted then the line parses back to the same command', () => {
    for (const [, cmd] of ACCEPTED) assert.deepEqual(parseCommand(formatCommand(cmd)), cmd, formatCommand(cmd));
  });
});

describe('control grammar: formatCommand', () => {
  const CASES: readonly (readonly [Command, string])[] = [
    [{ verb: 'tick', ns: 250e6 }, 'tick 250ms'],
    [{ verb: 'tick', ns: 3e9 }, 'tick 3s'],
    [{ verb: 'tick', ns: 1500 }, 'tick 1500ns'],
    [{ verb: 'tick', ns: 0 }, 'tick 0ns'],
    [{ verb: 'alloc', zero: true, count: 2, order: 3 }, 'alloc order=3 count=2 zero'],
    [{ verb: 'alloc', order: 3, zero: false }, 'alloc order=3'],
    [{ verb: 'free', handles: [4, 5, 6] }, 'free handles=4,5,6'],
    [{ verb: 'mm new' }, 'mm new'],
    [{ verb: 'mm exit', mm: 7 }, 'mm exit mm=7'],
    [{ verb: 'mmap', mm: 1, size: 1.5 * 2 ** 30, random: true }, 'mmap mm=1 size=1536M random'],
    [{ verb: 'mmap', mm: 1, size: 5000 }, 'mmap mm=1 size=5000'],
    [{ verb: 'munmap', mm: 1, addr: 0x7f0000, size: 2 ** 40 }, 'munmap mm=1 addr=0x7f0000 size=1T'],
    [{ verb: 'touch', mm: 2, addr: 0, size: 2 ** 20, threads: 4, access: 'read', stride: 32768 }, 'touch mm=2 addr=0x0 size=1M threads=4 stride=32K read'],
    [{ verb: 'fault', mm: 2, addr: 0x4000, access: 'write' }, 'fault mm=2 addr=0x4000 write'],
  ];
  for (const [cmd, line] of CASES) {
    it(`when ${JSON.stringify(cmd)} is formatted then the line is "${line}"`, () => {
      assert.equal(formatCommand(cmd), line);
    });
  }

  const BAD: readonly (readonly [string, unknown, RegExp])[] = [
    ['a negative order', { verb: 'alloc', order: -1 }, /^alloc: order "-1" is not a decimal number/],
    ['a fractional count', { verb: 'alloc', order: 1, count: 1.5 }, /^alloc: count "1.5"/],
    ['no handles', { verb: 'free', handles: [] }, /^free: handles is empty$/],
    ['a missing key', { verb: 'mmap', mm: 1 }, /^mmap: missing key "size"/],
    ['an unknown access', { verb: 'fault', mm: 1, addr: 0, access: 'exec' }, /^fault: access "exec" is not one of read, write$/],
    ['an unknown verb', { verb: 'reboot' }, /^unknown command "reboot"$/],
    ['a negative address', { verb: 'fault', mm: 1, addr: -16 }, /^fault: addr "-16" is not a hex address/],
    ['a tick too long', { verb: 'tick', ns: 25 * 3600e9 }, /^tick: duration "90000s" is out of range/],
  ];
  for (const [what, cmd, want] of BAD) {
    it(`when a command has ${what} then formatCommand throws instead of writing a line the file refuses`, () => {
      assert.throws(() => formatCommand(cmd as Command), (err: unknown) => err instanceof ControlSyntaxError && want.test(err.message));
    });
  }
});
