import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { killedInExit, statSaysKilled } from '../../src/fuse/dying';

/** A /proc/PID/stat line (52 fields) with this comm, flags (field 9) and exit_code (field 52). */
function stat(comm: string, flags: number, exitCode: number): string {
  const after = Array.from({ length: 50 }, () => '0');
  after[0] = 'D';
  after[9 - 3] = String(flags);
  after[52 - 3] = String(exitCode);
  return `4242 (${comm}) ${after.join(' ')}\n`;
}

describe('a FLUSH sender killed in its exit (/proc/PID/stat)', () => {
  it('when the task is exiting (PF_EXITING) with a signal in its exit code then it was killed', () => {
    assert.equal(statSaysKilled(stat('python3', 0x4 | 0x400000, 9)), true);
    // A core-dumping signal sets 0x80 as well.
    assert.equal(statSaysKilled(stat('sh', 0x4, 0x80 | 6)), true);
  });

  it('when the task exits by exit(2), or is not exiting, then it was not killed', () => {
    assert.equal(statSaysKilled(stat('python3', 0x4, 0)), false);
    assert.equal(statSaysKilled(stat('python3', 0x4, 3 << 8)), false);
    assert.equal(statSaysKilled(stat('python3', 0x400000, 9)), false);
  });

  it('when comm holds spaces and parentheses then the fields after the last ")" are read', () => {
    assert.equal(statSaysKilled(stat('a) 4 4 (b', 0x4, 9)), true);
    assert.equal(statSaysKilled(stat(') 0 0 0 0 0 0 4 9 9', 0x0, 0)), false);
  });

  it('when the line is short (a kernel before 3.5) or garbled then it is no', () => {
    assert.equal(statSaysKilled(stat('x', 0x4, 9).split(' ').slice(0, 40).join(' ')), false);
    assert.equal(statSaysKilled('no parenthesis at all'), false);
    assert.equal(statSaysKilled(stat('x', 0x4, 9).replace(/ 9\n$/, ' nine\n')), false);
  });

  it('when the pid is this live process, 0, or names no task then it is no', () => {
    assert.equal(statSaysKilled(readFileSync('/proc/self/stat', 'latin1')), false);
    assert.equal(killedInExit(process.pid), false);
    assert.equal(killedInExit(0), false);
    assert.equal(killedInExit(2 ** 22 + 1), false);
  });
});
