import * as fs from 'node:fs';
import { checkTraceHeader, type TraceHeader } from '../uapi/bounds';
import { WorkloadError } from './client';
import { openOutput } from './output-file';

/**
 * The page-fault trace file (`kscrubfs trace record` writes it, `trace replay` reads it).
 *
 *   line 1   "kscrubfs-trace 1\n"                      magic and format version
 *   line 2   one JSON object and "\n"                  the header (TraceHeader)
 *   then     records, each: tag byte, varint dt, payload varints
 *   last     an END record whose payload is a varint length and that many bytes of JSON
 *            (TraceSummary); a file without one (the recorder was killed) reads up to its
 *            last whole record
 *
 * A varint is LEB128 (7 bits a byte, low first, high bit = more); a signed value is zigzag
 * coded first (0, -1, 1, -2 … → 0, 1, 2, 3 …). `dt` is microseconds since the previous record
 * (the first record's: since the recording started).
 * The tag's low 4 bits are the record type, its high 4 bits the type's flags. Addresses are
 * host page numbers (address ÷ header.page_size). Records apply to the *current task*, set by
 * the last TASK record:
 *
 *   TASK   1  tid, process     the current task is tid, of process `process` (a tgid, or the
 *                              pid of a vfork child once it execs); a process is new when first named
 *   CPU    2  cpu              the current task runs on host CPU cpu from now on
 *   FAULT  3  zigzag Δpage     a user page fault at the task's previous fault page + Δ;
 *                              flag 0x10 write, class in bits 0x60: 0 anonymous, 1 file or
 *                              shared (counted, not replayed), 2 unknown (no mapping known)
 *   MAP    4  page, pages      anonymous private memory mapped (mmap, brk, mremap, fork, exec)
 *   UNMAP  5  page, pages      unmapped (munmap, brk, mremap, MAP_FIXED over it)
 *   ZAP    6  page, pages      pages freed, mapping kept (madvise MADV_DONTNEED / REMOVE)
 *   EXEC   7  —                the process's memory is replaced: every mapping goes
 *   EXIT   8  —                the task exits; flag 0x10: the last of its process (mm freed)
 *   LOST   9  count            the kernel dropped `count` events here (buffer overrun)
 *   END   15  length, JSON     the summary; nothing follows
 *
 * A sequential fault is 3 bytes (tag, dt, Δ), so a million faults take a few MB.
 */
export const TRACE_MAGIC = 'kscrubfs-trace 1\n';

export const REC = {
  TASK: 1, CPU: 2, FAULT: 3, MAP: 4, UNMAP: 5, ZAP: 6, EXEC: 7, EXIT: 8, LOST: 9, END: 15,
} as const;
export const FAULT_WRITE = 0x10;
export const EXIT_LAST = 0x10;
/** A fault's class (tag bits 0x60). */
export const FAULT_CLASS = { anon: 0, file: 1, unknown: 2 } as const;
export type FaultClass = keyof typeof FAULT_CLASS;
const CLASS_NAMES: readonly FaultClass[] = ['anon', 'file', 'unknown'];

export type { TraceHeader };

export interface TraceSummary {
  /** CMD's exit code, or 128 + signal number. */
  exit_status: number;
  /** Set when the record was interrupted (a signal): the trace ends early. */
  interrupted: boolean;
  faults: { anon: number; file: number; unknown: number };
  write_faults: number;
  processes: number;
  tasks: number;
  /** Events the kernel dropped (0 means the trace is complete). */
  lost_events: number;
  duration_us: number;
}

/** One decoded record (a plain object per record: the reader is a generator, nothing is kept). */
export type TraceRecord =
  | { type: 'task'; t: number; tid: number; process: number }
  | { type: 'cpu'; t: number; cpu: number }
  | { type: 'fault'; t: number; page: number; write: boolean; cls: FaultClass }
  | { type: 'map' | 'unmap' | 'zap'; t: number; page: number; pages: number }
  | { type: 'exec'; t: number }
  | { type: 'exit'; t: number; last: boolean }
  | { type: 'lost'; t: number; count: number };

const zigzag = (n: number): number => (n >= 0 ? 2 * n : -2 * n - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

/** Writes a trace to a file as records come, in 64 KiB chunks. */
export class TraceWriter {
  private readonly fd: number;
  private buf = Buffer.alloc(64 * 1024);
  private len = 0;
  private lastUs = 0;
  /** Current task and its previous fault page (for Δ), as the reader will track them. */
  private tid = -1;
  private readonly lastPage = new Map<number, number>();
  private readonly cpuOf = new Map<number, number>();
  readonly file: string;

  /** `startUs`: the time records count from (negative: the first record's). */
  constructor(file: string, header: TraceHeader, startUs: number) {
    this.file = file;
    try {
      this.fd = openOutput(file, 'truncate');
    } catch (err) {
      throw new WorkloadError(`trace record: cannot write ${file}: ${(err as Error).message}`);
    }
    this.lastUs = startUs;
    this.raw(Buffer.from(`${TRACE_MAGIC}${JSON.stringify(header)}\n`));
  }

  /** Make `tid` (of `process`) the current task, and say so if it was not. */
  task(us: number, tid: number, process: number, force = false): void {
    if (tid === this.tid && !force) return;
    this.tid = tid;
    this.head(REC.TASK, 0, us);
    this.varint(tid);
    this.varint(process);
  }

  cpu(us: number, cpu: number): void {
    if (this.cpuOf.get(this.tid) === cpu) return;
    this.cpuOf.set(this.tid, cpu);
    this.head(REC.CPU, 0, us);
    this.varint(cpu);
  }

  fault(us: number, page: number, write: boolean, cls: FaultClass): void {
    const prev = this.lastPage.get(this.tid) ?? 0;
    this.lastPage.set(this.tid, page);
    this.head(REC.FAULT, (write ? FAULT_WRITE : 0) | (FAULT_CLASS[cls] << 5), us);
    this.varint(zigzag(page - prev));
  }

  range(type: 'map' | 'unmap' | 'zap', us: number, page: number, pages: number): void {
    this.head(type === 'map' ? REC.MAP : type === 'unmap' ? REC.UNMAP : REC.ZAP, 0, us);
    this.varint(page);
    this.varint(pages);
  }

  exec(us: number): void {
    this.head(REC.EXEC, 0, us);
  }

  exit(us: number, last: boolean): void {
    this.head(REC.EXIT, last ? EXIT_LAST : 0, us);
    this.lastPage.delete(this.tid);
    this.cpuOf.delete(this.tid);
  }

  lost(us: number, count: number): void {
    this.head(REC.LOST, 0, us);
    this.varint(count);
  }

  /** Write the END record and close the file. */
  end(us: number, summary: TraceSummary): void {
    const json = Buffer.from(JSON.stringify(summary));
    this.head(REC.END, 0, us);
    this.varint(json.length);
    this.raw(json);
    this.flush();
    fs.closeSync(this.fd);
  }

  /** Close without an END record (a reader then reports the trace as cut short). */
  abandon(): void {
    try {
      this.flush();
      fs.closeSync(this.fd);
    } catch {
      // already failing
    }
  }

  private head(type: number, flags: number, us: number): void {
    if (this.lastUs < 0) this.lastUs = us; // a negative start: the first record's time is 0
    this.byte(type | flags);
    const dt = Math.max(0, Math.round(us - this.lastUs));
    this.lastUs += dt;
    this.varint(dt);
  }

  private varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`trace: varint ${n} out of range`);
    while (n >= 0x80) {
      this.byte((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.byte(n);
  }

  private byte(b: number): void {
    if (this.len === this.buf.length) this.flush();
    this.buf[this.len++] = b;
  }

  private raw(b: Buffer): void {
    this.flush();
    fs.writeSync(this.fd, b);
  }

  private flush(): void {
    if (this.len > 0) fs.writeSync(this.fd, this.buf, 0, this.len);
    this.len = 0;
  }
}

/** A trace read whole (a few MB for a million faults): its header, records and summary. */
export interface Trace {
  header: TraceHeader;
  /** null when the file has no END record (the recorder died): the records up to there. */
  summary: TraceSummary | null;
  records(): Generator<TraceRecord>;
}

export function readTrace(file: string): Trace {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    throw new WorkloadError(`trace replay: cannot read ${file}: ${(err as Error).message}`);
  }
  if (data.subarray(0, TRACE_MAGIC.length).toString('latin1') !== TRACE_MAGIC) {
    throw new WorkloadError(`trace replay: ${file} is not a kscrubfs trace (it does not start with "${TRACE_MAGIC.trim()}")`);
  }
  const nl = data.indexOf(0x0a, TRACE_MAGIC.length);
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8', TRACE_MAGIC.length, nl < 0 ? data.length : nl));
  } catch {
    throw new WorkloadError(`trace replay: ${file}: its header line is not JSON`);
  }
  let header: TraceHeader;
  try {
    header = checkTraceHeader(parsed, `trace replay: ${file}`);
  } catch (err) {
    throw new WorkloadError((err as Error).message);
  }
  const body = nl + 1;
  // One pass to find the END record's summary; records() decodes again, lazily.
  let summary: TraceSummary | null = null;
  for (const r of decode(data, body, file, (s) => { summary = s; })) void r;
  return { header, summary, records: () => decode(data, body, file, () => undefined) };
}

/** A record cut off by the end of the file: a recorder that was killed wrote it half. */
class CutShort extends Error {}

function* decode(data: Buffer, start: number, file: string, onEnd: (s: TraceSummary) => void): Generator<TraceRecord> {
  try {
    yield* decodeRecords(data, start, file, onEnd);
  } catch (err) {
    if (!(err instanceof CutShort)) throw err;
  }
}

function* decodeRecords(data: Buffer, start: number, file: string, onEnd: (s: TraceSummary) => void): Generator<TraceRecord> {
  let p = start;
  let t = 0;
  let tid = -1;
  const lastPage = new Map<number, number>();
  const bad = (what: string): never => {
    throw new WorkloadError(`trace replay: ${file} is damaged at byte ${p}: ${what}`);
  };
  const varint = (): number => {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (p >= data.length) throw new CutShort();
      const b = data[p++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
      if (scale > 2 ** 56) bad('a number is too long');
    }
  };
  while (p < data.length) {
    const tag = data[p++]!;
    t += varint();
    switch (tag & 0x0f) {
      case REC.TASK: {
        tid = varint();
        yield { type: 'task', t, tid, process: varint() };
        break;
      }
      case REC.CPU:
        yield { type: 'cpu', t, cpu: varint() };
        break;
      case REC.FAULT: {
        const page = (lastPage.get(tid) ?? 0) + unzigzag(varint());
        lastPage.set(tid, page);
        const cls = CLASS_NAMES[(tag >> 5) & 3] ?? bad(`fault class ${(tag >> 5) & 3}`);
        yield { type: 'fault', t, page, write: (tag & FAULT_WRITE) !== 0, cls };
        break;
      }
      case REC.MAP:
      case REC.UNMAP:
      case REC.ZAP: {
        const type = (tag & 0x0f) === REC.MAP ? 'map' : (tag & 0x0f) === REC.UNMAP ? 'unmap' : 'zap';
        const page = varint();
        yield { type, t, page, pages: varint() };
        break;
      }
      case REC.EXEC:
        yield { type: 'exec', t };
        break;
      case REC.EXIT:
        lastPage.delete(tid);
        yield { type: 'exit', t, last: (tag & EXIT_LAST) !== 0 };
        break;
      case REC.LOST:
        yield { type: 'lost', t, count: varint() };
        break;
      case REC.END: {
        const n = varint();
        if (p + n > data.length) throw new CutShort();
        try {
          onEnd(JSON.parse(data.toString('utf8', p, p + n)) as TraceSummary);
        } catch (err) {
          if (err instanceof WorkloadError) throw err;
          bad('the summary is not JSON');
        }
        return;
      }
      default:
        bad(`unknown record type ${tag & 0x0f}`);
    }
  }
}
