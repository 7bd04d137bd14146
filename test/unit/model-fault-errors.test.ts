import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_MAP_BYTES, MAX_THREADS, ModelError } from '../../src/uapi';
import type { Machine } from '../../src/model';
import type { ModelErrorCode } from '../../src/uapi';
import { assertChecked, faultFingerprint, tiny } from '../helpers/model';

// Every refused call must throw a ModelError before it changes anything: the fingerprint
// (free lists, per-cpu lists, counters, clock, kscrubd, processes, VMAs, ptes, prefault state)
// is the same before and after.
const PAGE = 4096;

/** A machine with some history: a process with 16 mapped pages of a 32-page mapping, kscrubd awake. */
function busy(): { m: Machine; id: number; addr: number } {
  const m = tiny();
  // No prefault: V2's 16-page runs would map past page 15.
  m.setSysctl('max_prealloc_order', 0);
  const id = m.procs.create().id;
  const { addr } = m.procs.mmap(id, 32 * PAGE);
  m.procs.touch(id, { addr, size: 16 * PAGE });
  m.procs.fault(id, addr + 20 * PAGE, false);
  m.procs.munmap(id, addr + 24 * PAGE, 4 * PAGE); // a hole at pages 24..27
  m.setSysctl('scrub_stop', 0);
  m.setSysctl('scrub_start', 3);
  m.tick(30_000); // kscrubd is mid-burst
  assert.ok(m.scrubbing());
  return { m, id, addr };
}

function refuses(m: Machine, what: string, fn: () => unknown, codes: readonly ModelErrorCode[]): void {
  const before = faultFingerprint(m);
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ModelError, `${what}: throws a ModelError (got ${String(e)})`);
    assert.ok(codes.includes(e.code), `${what}: code ${e.code} is one of ${codes.join(', ')}`);
    return true;
  }, what);
  assert.equal(faultFingerprint(m), before, `${what}: nothing changed`);
}

const SIZE_CODES: readonly ModelErrorCode[] = ['KSCRUB_BAD_SIZE', 'KSCRUB_BAD_ADDRESS'];

describe('fault: refused calls change nothing', () => {
  test('when the mm id names no process then every call is refused with KSCRUB_BAD_MM', () => {
    const { m, addr } = busy();
    for (const bad of [0, 2, -1, 1.5, Number.NaN]) {
      refuses(m, `touch mm=${bad}`, () => m.procs.touch(bad, { addr, size: PAGE }), ['KSCRUB_BAD_MM']);
      refuses(m, `fault mm=${bad}`, () => m.procs.fault(bad, addr), ['KSCRUB_BAD_MM']);
      refuses(m, `mmap mm=${bad}`, () => m.procs.mmap(bad, PAGE), ['KSCRUB_BAD_MM']);
      refuses(m, `munmap mm=${bad}`, () => m.procs.munmap(bad, addr, PAGE), ['KSCRUB_BAD_MM']);
      refuses(m, `exit mm=${bad}`, () => m.procs.exit(bad), ['KSCRUB_BAD_MM']);
    }
    assertChecked(m);
  });

  test('when an exited process is named then it is refused with KSCRUB_BAD_MM', () => {
    const { m, id, addr } = busy();
    m.procs.exit(id);
    refuses(m, 'touch after exit', () => m.procs.touch(id, { addr, size: PAGE }), ['KSCRUB_BAD_MM']);
    refuses(m, 'exit twice', () => m.procs.exit(id), ['KSCRUB_BAD_MM']);
  });

  test('when an address is not page aligned then it is refused with KSCRUB_BAD_ADDRESS', () => {
    const { m, id, addr } = busy();
    for (const a of [addr + 1, addr + PAGE / 2, addr + 17 * PAGE + 8, -PAGE, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      refuses(m, `touch addr=${a}`, () => m.procs.touch(id, { addr: a, size: PAGE }), ['KSCRUB_BAD_ADDRESS']);
      refuses(m, `fault addr=${a}`, () => m.procs.fault(id, a), ['KSCRUB_BAD_ADDRESS']);
      refuses(m, `munmap addr=${a}`, () => m.procs.munmap(id, a, PAGE), ['KSCRUB_BAD_ADDRESS']);
    }
  });

  test('when an address is not mapped then it is refused with KSCRUB_BAD_ADDRESS', () => {
    const { m, id, addr } = busy();
    const unmapped = [0, addr - PAGE, addr + 24 * PAGE, addr + 27 * PAGE, addr + 32 * PAGE, addr + 2 ** 30];
    for (const a of unmapped) {
      refuses(m, `touch 0x${a.toString(16)}`, () => m.procs.touch(id, { addr: a, size: PAGE }), ['KSCRUB_BAD_ADDRESS']);
      refuses(m, `read 0x${a.toString(16)}`, () => m.procs.fault(id, a, false), ['KSCRUB_BAD_ADDRESS']);
      refuses(m, `munmap 0x${a.toString(16)}`, () => m.procs.munmap(id, a, PAGE), ['KSCRUB_BAD_ADDRESS']);
    }
    // Ranges that start mapped but run into the hole or past the end.
    refuses(m, 'touch into the hole', () => m.procs.touch(id, { addr, size: 25 * PAGE }), ['KSCRUB_BAD_ADDRESS']);
    refuses(m, 'touch past the end', () => m.procs.touch(id, { addr: addr + 28 * PAGE, size: 5 * PAGE }), ['KSCRUB_BAD_ADDRESS']);
    refuses(m, 'munmap past the end', () => m.procs.munmap(id, addr + 28 * PAGE, 5 * PAGE), ['KSCRUB_BAD_ADDRESS']);
    refuses(m, 'munmap across the hole', () => m.procs.munmap(id, addr + 20 * PAGE, 10 * PAGE), ['KSCRUB_BAD_ADDRESS']);
  });

  test('when a size is 0, negative, fractional or huge then it is refused', () => {
    const { m, id, addr } = busy();
    for (const s of [0, -PAGE, Number.NaN, 1.5, MAX_MAP_BYTES + 1, 2 ** 60, Number.POSITIVE_INFINITY]) {
      refuses(m, `mmap size=${s}`, () => m.procs.mmap(id, s), SIZE_CODES);
      refuses(m, `touch size=${s}`, () => m.procs.touch(id, { addr, size: s }), SIZE_CODES);
      refuses(m, `munmap size=${s}`, () => m.procs.munmap(id, addr, s), SIZE_CODES);
    }
  });

  test('when lines is out of 1..page/line then the touch is refused with KSCRUB_BAD_OPTION', () => {
    const { m, id, addr } = busy();
    const maxLines = PAGE / 64;
    for (const lines of [0, -1, maxLines + 1, 1.5, Number.NaN]) {
      refuses(m, `lines=${lines}`, () => m.procs.touch(id, { addr, size: 4 * PAGE, lines }), ['KSCRUB_BAD_OPTION']);
    }
    const fresh = m.procs.create().id;
    const { addr: a2 } = m.procs.mmap(fresh, PAGE);
    assert.equal(m.procs.touch(fresh, { addr: a2, size: PAGE, lines: maxLines }).faults, 1, `lines=${maxLines} is allowed`);
  });

  test('when the stride is not a page multiple then the touch is refused with KSCRUB_BAD_OPTION', () => {
    const { m, id, addr } = busy();
    for (const stride of [0, -PAGE, 64, PAGE / 2, PAGE + 1, 1.5 * PAGE, Number.NaN, 2 ** 60]) {
      refuses(m, `stride=${stride}`, () => m.procs.touch(id, { addr, size: 4 * PAGE, stride }), ['KSCRUB_BAD_OPTION']);
    }
  });

  test('when threads is out of 1..MAX_THREADS then the touch is refused with KSCRUB_BAD_OPTION', () => {
    const { m, id, addr } = busy();
    for (const threads of [0, -1, 1.5, MAX_THREADS + 1, Number.NaN]) {
      refuses(m, `threads=${threads}`, () => m.procs.touch(id, { addr, size: 4 * PAGE, threads }), ['KSCRUB_BAD_OPTION']);
    }
  });

  test('when every check passes then the same machine still faults normally', () => {
    const { m, id, addr } = busy();
    const r = m.procs.touch(id, { addr: addr + 16 * PAGE, size: 8 * PAGE });
    assert.ok(r.faults > 0);
    assertChecked(m);
  });
});
