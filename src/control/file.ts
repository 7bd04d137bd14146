import type { Machine } from '../model';
import { type FileEntry, type FileHandle, ProcError } from '../procfs/types';
import { runBatch } from './batch';
import { MAX_LINE_BYTES, SPECS, usageOf } from './grammar';

// /control as a file. Each open gets its own result queue: two processes never see each
// other's results. Writes are batches (batch.ts); reads hand out queued results like a
// character device.
//
// Offsets. Results are a stream, so a read's offset does not select bytes: a read returns the
// next unread results, as from a character device. One exception, so that ordinary readers
// work: `read` in bash, `head -n1` and Python's buffered files (before a write) read ahead and
// then lseek(2) back over what they did not use (a FUSE file is seekable). So the handle
// remembers where the file position stands after each read and write, and the bytes its last
// read handed out; the next read or write at an offset *inside* that read (0 < position −
// offset < its length) first puts the bytes from there on back in front of the queue. Every
// other offset is ignored: repeated pread(fd, …, 0) still walks the stream, it never loops.

/** Unread results a handle holds at most; a write with this much unread fails EBUSY. */
export const OUTPUT_LIMIT = 1 << 20;

const EMPTY = Buffer.alloc(0);

/** The text a fresh handle reads when nothing has been written to it. */
export function helpText(): string {
  const out = [
    'kscrubfs control: write command lines, then read one result line per command, on the',
    'same open file (exec 3<>control; echo stats >&3; read -r r <&3). Each open file has its',
    'own results.',
    '',
    'A result line starts "ok" or "err <reason>". Blank lines and "#" comments give none.',
    'A write is a batch. If a line does not parse, nothing runs: that line reads',
    '"err <reason>", the others "err skipped: line N of this write was rejected", and the',
    'write fails with EINVAL. Otherwise the commands run in order, each all or nothing; the',
    'first that fails ends the batch (the rest read "err skipped: line N of this write',
    'failed") and the write fails with EINVAL (EIO if check finds a broken invariant).',
    "(bash's echo and printf builtins write line by line, one batch per line; cat writes",
    'a whole file of commands at once. FUSE hands the daemon at most 128 KiB per write, so',
    'a longer write arrives, and runs, as several batches: keep one batch under 128 KiB.)',
    `Unread results are kept up to ${OUTPUT_LIMIT >> 20} MiB; a write beyond that fails with EBUSY.`,
    '',
    `Syntax: verb [key=value | flag]..., separated by spaces or tabs; one command per line,`,
    `at most ${MAX_LINE_BYTES} bytes of UTF-8 without control characters; each key and flag at most`,
    'once. Numbers are decimal (no sign, leading zeros or hex); addresses are 0x hex; sizes',
    'are 4096, 16K, 2M, 1G; durations 250ms, 2s, 100us.',
    '',
  ];
  for (const s of SPECS) out.push(`  ${usageOf(s)}`, `      ${s.summary}`, `      -> ${s.result}`);
  return `${out.join('\n')}\n`;
}

/** Buffers in order; take() hands out bytes from the front. */
class ByteQueue {
  private chunks: Buffer[] = [];
  size = 0;

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.size += b.length;
  }

  unshift(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.unshift(b);
    this.size += b.length;
  }

  take(max: number): Buffer {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < max && this.chunks.length > 0) {
      const head = this.chunks[0]!;
      const n = Math.min(head.length, max - got);
      parts.push(head.subarray(0, n));
      got += n;
      if (n === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
    }
    this.size -= got;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  clear(): void {
    this.chunks = [];
    this.size = 0;
  }
}

class ControlHandle implements FileHandle {
  private readonly out = new ByteQueue();
  /** What the last read handed out (EMPTY after a write), for a seek back into it. */
  private lastRead: Buffer = EMPTY;
  /** Where the file position stands after our last read or write. */
  private pos = 0;
  private written = false;
  private helpShown = false;

  constructor(private readonly machine: Machine, private readonly wallClockMs: () => number) {}

  read(offset: number, length: number): Buffer {
    this.seek(offset);
    if (!this.written && !this.helpShown) {
      this.helpShown = true;
      this.out.push(Buffer.from(helpText()));
    }
    const data = length > 0 ? this.out.take(length) : EMPTY;
    this.lastRead = data;
    this.pos = offset + data.length;
    return data;
  }

  write(data: Buffer, offset: number): number {
    this.seek(offset);
    this.lastRead = EMPTY;
    if (!this.written) {
      this.written = true;
      this.out.clear(); // only unread help can be there
    }
    if (this.out.size >= OUTPUT_LIMIT) {
      throw new ProcError('EBUSY', `control: ${this.out.size} bytes of results are unread (at most ${OUTPUT_LIMIT}); read them first`);
    }
    const { lines, error } = runBatch(this.machine, this.wallClockMs, data);
    if (lines.length > 0) this.out.push(Buffer.from(`${lines.join('\n')}\n`));
    if (error) throw error;
    this.pos = offset + data.length;
    return data.length;
  }

  release(): void {
    this.out.clear();
    this.lastRead = EMPTY;
  }

  /** An offset inside the last read: the caller seeked back over bytes it did not use; give them back. */
  private seek(offset: number): void {
    const back = this.pos - offset;
    if (back > 0 && back < this.lastRead.length) this.out.unshift(this.lastRead.subarray(this.lastRead.length - back));
    this.lastRead = EMPTY;
    this.pos = offset;
  }
}

/** The `/control` entry for buildProcTree: mode 0600, one result queue per open. */
export function controlEntry(machine: Machine, wallClockMs: () => number): FileEntry {
  return {
    path: '/control',
    mode: 0o600,
    writable: true,
    open: (_flags: number): FileHandle => new ControlHandle(machine, wallClockMs),
  };
}
