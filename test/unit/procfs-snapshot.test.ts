import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Snapshot } from '../../src/procfs';

// A snapshot serves the bytes of the text it was made with at any offset, whichever way it is
// read: readInto (the adapter's path, which writes a whole first read straight into the reply
// buffer) and read must agree byte for byte.

/** Read all of `s` with readInto in chunks of `chunk`, as a reader with that buffer would. */
function drain(s: Snapshot, chunk: number): { bytes: Buffer; reads: number } {
  const parts: Buffer[] = [];
  let offset = 0;
  for (let reads = 1; ; reads++) {
    const target = Buffer.alloc(chunk);
    const n = s.readInto(target, offset, chunk);
    if (n === 0) return { bytes: Buffer.concat(parts), reads };
    parts.push(target.subarray(0, n));
    offset += n;
  }
}

const TEXTS = {
  ascii: 'MemTotal:        6291456 kB\nMemFree:         6000000 kB\n',
  // 2-, 3- and 4-byte characters, so that chunk edges fall inside them.
  utf8: 'zone é … 𝄞 end\n'.repeat(7),
};

describe('procfs snapshot', () => {
  for (const [name, text] of Object.entries(TEXTS)) {
    const expected = Buffer.from(text, 'utf8');
    test(`when ${name} text is read with readInto in any chunk size then the bytes are the text's`, () => {
      for (let chunk = 1; chunk <= expected.length + 8; chunk++) {
        assert.deepEqual(drain(new Snapshot(text), chunk).bytes, expected, `chunk ${chunk}`);
      }
    });

    test(`when ${name} text is read with read() then the bytes are the text's at every offset`, () => {
      const s = new Snapshot(text);
      for (let offset = 0; offset <= expected.length + 2; offset += 3) {
        assert.deepEqual(s.read(offset, 5), expected.subarray(offset, offset + 5));
      }
    });
  }

  test('when a big buffer takes it whole then the next read is EOF', () => {
    const { bytes, reads } = drain(new Snapshot(TEXTS.ascii), 65536);
    assert.equal(bytes.toString(), TEXTS.ascii);
    assert.equal(reads, 2);
  });

  test('when the buffer is exactly the text\'s size then it still reads whole, then EOF', () => {
    const size = Buffer.byteLength(TEXTS.utf8);
    for (const chunk of [size - 1, size, size + 1, size + 3, size + 4]) {
      assert.deepEqual(drain(new Snapshot(TEXTS.utf8), chunk).bytes, Buffer.from(TEXTS.utf8), `chunk ${chunk}`);
    }
  });

  test('when the first read starts past 0 or past the end then it gets those bytes or none', () => {
    const s = new Snapshot(TEXTS.ascii);
    const target = Buffer.alloc(100);
    assert.equal(s.readInto(target, 9, 8), 8);
    assert.equal(target.subarray(0, 8).toString(), TEXTS.ascii.slice(9, 17));
    assert.equal(s.readInto(target, 10_000, 100), 0);
  });
});
