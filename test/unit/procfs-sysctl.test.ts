import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import { describe, test } from 'node:test';
import { createMachine, type Machine } from '../../src/model';
import { buildProcTree } from '../../src/procfs';
import { ProcError, parseSysctlInt, parseSysctlWrite } from '../../src/uapi';
import { LocalControl } from '../../src/control';
import { LocalClient } from '../../src/workload/client';

// Sysctl writes behave as a 6.x kernel's proc_dointvec_minmax (kernel/sysctl.c); each row below
// is what that code does with the bytes of one write(2) at offset 0.

const INT_MAX = 2 ** 31 - 1;
const FILE = 'vm.scrub_start';

/** [bytes written, value set and bytes reported written] — or 'EINVAL'. */
type Row = readonly [input: string | Buffer, expect: readonly [value: number, consumed?: number] | 'EINVAL', why: string];

const TABLE: readonly Row[] = [
  // accepted
  ['5', [5], 'plain decimal'],
  ['5\n', [5], 'what echo writes'],
  ['  5', [5], 'leading spaces'],
  ['5  \n', [5], 'trailing spaces and newline'],
  ['\t5\t\n', [5], 'tabs'],
  ['\n5\n', [5], 'a leading newline is whitespace too'],
  ['\r\v\f 5\n', [5], 'isspace() before the number'],
  ['5\n\n\n', [5], 'any trailing whitespace'],
  ['0', [0], 'zero'],
  ['00', [0], 'octal zero'],
  ['-0', [0], 'negative zero'],
  ['0x1f', [31], 'hex'],
  ['0X1F\n', [31], 'hex, upper case'],
  ['0xA', [10], 'hex letter'],
  ['010', [8], 'octal'],
  ['0777\n', [511], 'octal, bigger'],
  ['2147483647', [INT_MAX], 'INT_MAX'],
  ['-2147483648', [-INT_MAX - 1], 'INT_MIN'],
  ['0x7fffffff', [INT_MAX], 'INT_MAX in hex'],
  ['-5\n', [-5], 'negative parses (the range check refuses it later)'],
  [`${'0'.repeat(19)}5`, [5], '20 characters is the longest number'],
  [`-${'0'.repeat(18)}5`, [-5], '20 characters counting the sign'],
  ['5 6\n', [5, 2], 'text after whitespace: short count, the rest is an ignored retry'],
  ['5 abc', [5, 2], 'same with letters'],
  ['12\t\t99', [12, 4], 'tabs before the leftover'],
  [Buffer.from([0xa0, 0x35, 0x0a]), [5], 'Latin-1 NBSP is isspace() in the kernel'],
  [`5${' '.repeat(5000)}`, [5, 5001], 'only PAGE_SIZE - 1 bytes are looked at; all whitespace in it'],
  // rejected
  ['', 'EINVAL', 'empty'],
  ['   ', 'EINVAL', 'spaces only'],
  ['\n', 'EINVAL', 'newline only'],
  ['+5', 'EINVAL', 'plus sign'],
  ['5abc', 'EINVAL', 'letters after digits'],
  ['5,6', 'EINVAL', 'comma is not a separator'],
  ['5.0', 'EINVAL', 'no decimals'],
  ['abc', 'EINVAL', 'not a number'],
  ['-', 'EINVAL', 'a lone minus'],
  ['- 5', 'EINVAL', 'minus then space'],
  ['--5', 'EINVAL', 'two minus signs'],
  ['0x', 'EINVAL', '0x without a digit is octal 0 followed by x'],
  ['0x1g', 'EINVAL', 'hex then a non-digit'],
  ['08', 'EINVAL', '8 is not octal'],
  ['09\n', 'EINVAL', '9 is not octal'],
  ['0b101', 'EINVAL', 'no binary'],
  ['1e3', 'EINVAL', 'no exponent'],
  ['5\r\n', 'EINVAL', 'carriage return is not a separator after a number'],
  [Buffer.from('5\0'), 'EINVAL', 'NUL is not a separator'],
  ['2147483648', 'EINVAL', 'INT_MAX + 1'],
  ['-2147483649', 'EINVAL', 'INT_MIN - 1'],
  ['0x80000000', 'EINVAL', 'INT_MAX + 1 in hex'],
  ['99999999999999999999', 'EINVAL', 'beyond unsigned long'],
  [`${'0'.repeat(20)}5`, 'EINVAL', '21 characters is too long even for a small value'],
  [`-${'0'.repeat(19)}5`, 'EINVAL', '21 characters counting the sign'],
  ['\u0665', 'EINVAL', 'only ASCII digits'],
  [`${' '.repeat(5000)}5`, 'EINVAL', 'the number lies past PAGE_SIZE - 1 bytes'],
];

describe('parseSysctlWrite', () => {
  for (const [input, expect, why] of TABLE) {
    const data = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
    const shown = JSON.stringify(data.toString('latin1')).slice(0, 30);
    if (expect === 'EINVAL') {
      test(`when ${shown} is written then EINVAL (${why})`, () => {
        assert.throws(() => parseSysctlWrite(data, FILE), (err: unknown) => err instanceof ProcError && err.errno === 'EINVAL');
      });
    } else {
      const [value, consumed = data.length] = expect;
      test(`when ${shown} is written then ${value} is set and ${consumed} bytes reported (${why})`, () => {
        assert.deepEqual(parseSysctlWrite(data, FILE), { value, consumed });
      });
    }
  }

  test('when a write is refused then the message names the file and quotes the token', () => {
    assert.throws(() => parseSysctlInt('5abc\n', FILE), { errno: 'EINVAL', message: 'write vm.scrub_start: "5abc" is not an integer' });
    assert.throws(() => parseSysctlInt('  \n', FILE), { message: 'write vm.scrub_start: "  \\n" is not an integer' });
    assert.throws(() => parseSysctlInt('2147483648', FILE), { message: /^write vm\.scrub_start: "2147483648" is out of range for an int/ });
  });

  test('when a value is outside the sysctl\'s range then the model refuses it, negatives included', () => {
    // Ranges are the model's (one place); the parser only turns text into an int.
    const m = createMachine({ clock: 'manual' });
    assert.equal(parseSysctlInt('18\n', FILE), 18);
    assert.equal(writeFile(m, '/sys/vm/scrub_start', '18\n'), 3);
    assert.throws(() => writeFile(m, '/sys/vm/scrub_start', '19'), { errno: 'EINVAL', message: 'write vm.scrub_start: "19" is out of range 0..18' });
    assert.throws(() => writeFile(m, '/sys/vm/scrub_start', '-1'), { errno: 'EINVAL', message: 'write vm.scrub_start: "-1" is out of range 0..18' });
    assert.equal(m.sysctl.scrub_start, 18);
  });

  test('when the table is counted then it has at least 30 cases, 15 of them refusals', () => {
    assert.ok(TABLE.length >= 30);
    assert.ok(TABLE.filter((r) => r[1] === 'EINVAL').length >= 15);
  });
});

// ---- writes through the tree ---------------------------------------------------------------------

function tree(m: Machine) {
  return buildProcTree(m, { buddyinfo: 'v6', syncClock: () => undefined });
}

function readFile(m: Machine, path: string): string {
  return tree(m).files.get(path)!.open(constants.O_RDONLY).read(0, 4096).toString();
}

function writeFile(m: Machine, path: string, text: string, offset = 0): number {
  const handle = tree(m).files.get(path)!.open(constants.O_WRONLY);
  const n = handle.write!(Buffer.from(text), offset);
  if (typeof n !== 'number') throw new Error('a sysctl write completes at once');
  return n;
}

describe('sysctl files', () => {
  test('when a sysctl is read then it is "%d\\n" of the model\'s value', () => {
    const m = createMachine({ clock: 'manual' });
    assert.equal(readFile(m, '/sys/vm/scrub_start'), `${m.maxOrder}\n`);
    assert.equal(readFile(m, '/sys/vm/scrub_stop'), '4\n');
    assert.equal(readFile(m, '/sys/vm/scrub_load'), '999\n');
    assert.equal(readFile(m, '/sys/vm/max_prealloc_order'), '4\n');
  });

  test('when 5 is written to scrub_start then the next read shows it and kscrubd wakes', () => {
    const m = createMachine({ clock: 'manual' });
    assert.equal(writeFile(m, '/sys/vm/scrub_start', '5\n'), 2);
    assert.equal(readFile(m, '/sys/vm/scrub_start'), '5\n');
    assert.equal(m.sysctl.scrub_start, 5);
    assert.ok(m.kscrubd.every((k) => k.awake));
  });

  test('when hex is written then the decimal value reads back', () => {
    const m = createMachine({ clock: 'manual' });
    writeFile(m, '/sys/vm/scrub_load', '0x10\n');
    assert.equal(readFile(m, '/sys/vm/scrub_load'), '16\n');
  });

  for (const [text, message] of [
    ['19\n', /^write vm\.scrub_start: "19" is out of range 0\.\.18$/],
    ['-1\n', /^write vm\.scrub_start: "-1" is out of range 0\.\.18$/],
    ['5abc\n', /^write vm\.scrub_start: "5abc" is not an integer$/],
    ['\n', /^write vm\.scrub_start: "\\n" is not an integer$/],
  ] as const) {
    test(`when ${JSON.stringify(text)} is written then EINVAL and the value is unchanged`, () => {
      const m = createMachine({ clock: 'manual' });
      writeFile(m, '/sys/vm/scrub_start', '7');
      assert.throws(() => writeFile(m, '/sys/vm/scrub_start', text), (err: unknown) => {
        assert.ok(err instanceof ProcError);
        assert.equal(err.errno, 'EINVAL');
        assert.match(err.message, message);
        return true;
      });
      assert.equal(readFile(m, '/sys/vm/scrub_start'), '7\n');
    });
  }

  test('when a write lands at an offset past 0 then it is ignored and reported written', () => {
    const m = createMachine({ clock: 'manual' });
    assert.equal(writeFile(m, '/sys/vm/scrub_stop', '2\n', 1), 2);
    assert.equal(writeFile(m, '/sys/vm/scrub_stop', 'junk', 3), 4);
    assert.equal(readFile(m, '/sys/vm/scrub_stop'), '4\n');
  });

  test('when "2 6" is written then 2 is set and 2 bytes are reported, as the kernel does', () => {
    const m = createMachine({ clock: 'manual' });
    assert.equal(writeFile(m, '/sys/vm/max_prealloc_order', '2 6\n'), 2);
    assert.equal(m.sysctl.max_prealloc_order, 2);
  });

  test('when nothing is written then nothing happens', () => {
    const m = createMachine({ clock: 'manual' });
    assert.equal(writeFile(m, '/sys/vm/scrub_start', ''), 0);
    assert.equal(m.sysctl.scrub_start, m.maxOrder);
  });
});

describe('sysctl writers: one parser', () => {
  test('when an in-process client (sweep, replay, policies) writes a sysctl then the file\'s parser and range check decide, as for echo VALUE > file', () => {
    const outcome = (f: () => void, m: Machine): string => {
      try {
        f();
        return `set ${m.sysctl.scrub_start}`;
      } catch (err) {
        return err instanceof ProcError ? `${err.errno}: ${err.message}` : `other: ${String(err)}`;
      }
    };
    for (const value of [5, 0, -1, 99, 2.5, 1e21, Number.NaN, 2 ** 31]) {
      const viaFile = createMachine({ clock: 'manual' });
      const viaClient = createMachine({ clock: 'manual' });
      const client = new LocalClient(new LocalControl(viaClient));
      const file = outcome(() => writeFile(viaFile, '/sys/vm/scrub_start', `${value}\n`), viaFile);
      const local = outcome(() => new LocalControl(viaClient).writeSysctl('scrub_start', value), viaClient);
      assert.equal(local, file, `${value}`);
      if (value === 5) assert.equal(local, 'set 5');
      if (value === 99 || value === -1 || Number.isNaN(value)) assert.match(local, /^EINVAL: .*scrub_start/, `${value}`);
      // A refused write keeps the old value, and the client reads it back through the file's text.
      assert.equal(client.readSysctl('scrub_start'), viaFile.sysctl.scrub_start, `${value}`);
    }
  });
});
