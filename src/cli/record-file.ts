import { closeSync, readFileSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { configPairs } from '../control';
import { digestFiles, RecordingSession, type Digests, type RecordEvent, type Recorder } from '../daemon';
import type { Machine, MachineOptions } from '../model';
import { FILES, type BuddyinfoFormat, type ProcTree } from '../procfs';
import { hugetlbFileMode } from '../procfs/hugetlb';
import { provenance, type Provenance } from '../workload/provenance';
import { formatSize } from '../uapi';
import { checkMachineOptions } from '../uapi/bounds';
import { openPrivateOutput } from '../workload/output-file';
import { CliError } from './errors';
import { commandLine, VERSION } from './version';

// The record file of `mount --record FILE`, JSONL:
//   line 1    {"ev":"header","format":"kscrubfs-record","version":1, options, buddyinfo, config, provenance}
//   then      one event per line, in order (src/daemon/record.ts: open, write, close, advance)
//   last      {"ev":"digest","t":…,"files":{"/buddyinfo":"<sha256>",…}} — written at umount
// `options` are the machine options the mount was given (replay builds the machine from them);
// `config` is the control `config` verb's pairs, which the rebuilt machine must match.

export const RECORD_FORMAT = 'kscrubfs-record';
export const RECORD_VERSION = 1;

export interface RecordHeader {
  readonly ev: 'header';
  readonly format: typeof RECORD_FORMAT;
  readonly version: typeof RECORD_VERSION;
  readonly options: MachineOptions;
  readonly buddyinfo: BuddyinfoFormat;
  readonly config: Readonly<Record<string, string>>;
  readonly provenance: Provenance;
}

export interface DigestLine {
  readonly ev: 'digest';
  /** Virtual time the digests were taken at. */
  readonly t: number;
  readonly files: Digests;
}

export interface SessionRecord {
  readonly header: RecordHeader;
  readonly events: readonly RecordEvent[];
  readonly digest: DigestLine;
}

/** A mount's recording: the wrapped clock and tree, and finish() for the digests at umount. */
export interface Recording {
  readonly syncClock: () => void;
  tree(tree: ProcTree): ProcTree;
  /** Write the digests and close the file (once; later calls do nothing). */
  finish(): void;
}

/**
 * The most a record may grow to (mount --record-max): replay reads a record whole, and V8
 * holds no string past 512 MiB; a mount left recording for days must stop before the disk
 * fills or the record becomes unreadable.
 */
export const MAX_RECORD_BYTES = 256 * 2 ** 20;
/** Room kept at the cap for the line that says the record stops there. */
const CUT_LINE_BYTES = 256;

/** Why a record has no digest: it stopped at its size cap (the last line, `{"ev":"cut",…}`). */
export interface CutLine {
  readonly ev: 'cut';
  readonly t: number;
  readonly cap: number;
}

/**
 * Start recording `machine` into `file` (truncated, 0600: it holds what the 0600 control
 * file was told): the header now, events as they come, until the record reaches `maxBytes`;
 * then a `cut` line, a message on stderr, and nothing more.
 */
export function startRecording(file: string, machine: Machine, options: MachineOptions, buddyinfo: BuddyinfoFormat, syncClock: () => void, maxBytes = MAX_RECORD_BYTES, steps: () => number = () => 0): Recording {
  const abs = path.resolve(file);
  let fd: number | undefined;
  try {
    fd = openPrivateOutput(abs);
  } catch (err) {
    throw new CliError('KSCRUB_OUTPUT_FAILED', `cannot write the record ${abs}: ${(err as Error).message}`);
  }
  let bytes = 0;
  const stop = (): void => {
    if (fd === undefined) return;
    closeSync(fd);
    fd = undefined;
  };
  const write = (text: string): void => {
    bytes += writeSync(fd!, text);
  };
  const line = (obj: unknown): void => {
    if (fd === undefined) return;
    const text = `${JSON.stringify(obj)}\n`;
    if (bytes + Buffer.byteLength(text) + CUT_LINE_BYTES <= maxBytes) {
      write(text);
      return;
    }
    const cut: CutLine = { ev: 'cut', t: machine.now, cap: maxBytes };
    write(`${JSON.stringify(cut)}\n`);
    stop();
    process.stderr.write(`kscrubfs: --record ${abs} reached its cap of ${formatSize(maxBytes)} (mount --record-max) at virtual time ${Math.round(machine.now)} ns: recording stopped, the mount goes on\n`);
  };
  const config = Object.fromEntries(configPairs(machine));
  const header: RecordHeader = {
    ev: 'header', format: RECORD_FORMAT, version: RECORD_VERSION, options, buddyinfo, config,
    provenance: provenance(config, VERSION, commandLine()),
  };
  line(header);
  const recorder: Recorder = { event: line };
  const session = new RecordingSession(machine, syncClock, recorder, steps);
  return {
    syncClock: session.syncClock,
    tree: (t) => session.tree(t),
    finish: () => {
      if (fd === undefined) return;
      session.flush();
      const running = session.running();
      if (running.length > 0) line({ ev: 'stopped', n: session.nextN(), t: machine.now, during: running, steps: steps() });
      const digest: DigestLine = { ev: 'digest', t: machine.now, files: digestFiles(machine, buddyinfo) };
      line(digest);
      stop();
    },
  };
}

// ---- reading: every field checked, so that a bad record is refused with where and why --------

const WRITABLE_FILES = new Set(FILES.filter((f) => f.write !== undefined || f.path === '/control').map((f) => f.path));
const FILE_PATHS = new Set(FILES.map((f) => f.path));
/** FILES, and the hugetlb files a machine has by its sizes and nodes (known by their paths' shape). */
const PATHS = { has: (p: string): boolean => FILE_PATHS.has(p) || hugetlbFileMode(p) !== undefined };
const WRITABLE = { has: (p: string): boolean => WRITABLE_FILES.has(p) || hugetlbFileMode(p) === 0o644 };

type Obj = { readonly [k: string]: unknown };

/** Read and check a record file; a CliError (bad input, exit 1) naming the line for anything wrong. */
export function readRecord(file: string): SessionRecord {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_RECORD_BYTES) throw bad(`${file} holds ${formatSize(size)}, more than the ${formatSize(MAX_RECORD_BYTES)} a record may (mount --record-max): not a record this kscrubfs wrote`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw bad(`cannot read the record ${file}: ${(err as Error).message}`);
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw bad(`${file} is empty: not a kscrubfs record (mount --record FILE writes one)`);
  const parsed = lines.map((l, i): Obj => {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (err) {
      throw bad(`${file}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${file}:${i + 1}: not a JSON object`);
    return v as Obj;
  });
  const header = checkHeader(parsed[0]!, `${file}:1`);
  const last = parsed.at(-1)!;
  if (last.ev === 'cut') {
    throw bad(`${file} stopped at its size cap of ${typeof last.cap === 'number' ? formatSize(last.cap) : '?'} (mount --record-max): the session went on past what it holds, so it cannot be replayed to the end`);
  }
  if (parsed.length < 2 || last.ev !== 'digest') {
    throw bad(`${file} has no digest line at its end: the mount did not stop cleanly (umount or Ctrl-C writes it), or the file was cut`);
  }
  const digest = checkDigest(last, `${file}:${parsed.length}`);
  const events: RecordEvent[] = [];
  for (let i = 1; i < parsed.length - 1; i++) events.push(checkEvent(parsed[i]!, `${file}:${i + 1}`, events.at(-1)?.n ?? 0));
  return { header, events, digest };
}

function bad(message: string): CliError {
  return new CliError('KSCRUB_BAD_INPUT', message);
}

function checkHeader(o: Obj, where: string): RecordHeader {
  if (o.ev !== 'header' || o.format !== RECORD_FORMAT) throw bad(`${where}: not a kscrubfs record header (expected {"ev":"header","format":"${RECORD_FORMAT}",…})`);
  if (o.version !== RECORD_VERSION) throw bad(`${where}: record version ${String(o.version)}; this kscrubfs reads version ${RECORD_VERSION}`);
  try {
    checkMachineOptions(o.options, `${where}: header.options`);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (o.buddyinfo !== 'v6' && o.buddyinfo !== 'stock') throw bad(`${where}: header.buddyinfo must be "v6" or "stock"`);
  if (!isStringRecord(o.config)) throw bad(`${where}: header.config must be an object of strings (the control config pairs)`);
  return { ...(o as unknown as RecordHeader), options: checkMachineOptions(o.options) };
}

function checkDigest(o: Obj, where: string): DigestLine {
  if (!isTime(o.t)) throw bad(`${where}: digest.t must be a virtual time (ns, ≥ 0)`);
  if (!isStringRecord(o.files)) throw bad(`${where}: digest.files must map each file to its sha256`);
  return o as unknown as DigestLine;
}

function checkEvent(o: Obj, where: string, prev: number): RecordEvent {
  const keys = ['ev', 'n', 't', 'fd', 'path', 'offset', 'data', 'b64', 'during', 'of', 'check', 'steps'];
  const extra = Object.keys(o).find((k) => !keys.includes(k));
  if (extra !== undefined) throw bad(`${where}: unknown field "${extra}"`);
  if (!Number.isSafeInteger(o.n) || (o.n as number) <= prev) throw bad(`${where}: n must be an integer above the previous event's (${prev})`);
  if (!isTime(o.t)) throw bad(`${where}: t must be a virtual time (ns, ≥ 0)`);
  const fd = (): void => {
    if (!Number.isSafeInteger(o.fd) || (o.fd as number) < 1) throw bad(`${where}: fd must be a positive integer`);
  };
  const steps = (): void => {
    if (!Number.isSafeInteger(o.steps) || (o.steps as number) < 0) throw bad(`${where}: steps must be an integer ≥ 0`);
  };
  switch (o.ev) {
    case 'open':
    case 'close':
      fd();
      break;
    case 'advance':
      if (o.during !== undefined && (!Number.isSafeInteger(o.during) || (o.during as number) > prev)) throw bad(`${where}: during must name an earlier event`);
      break;
    case 'stopped':
      if (!Array.isArray(o.during) || !o.during.every((d) => Number.isSafeInteger(d) && d <= prev)) throw bad(`${where}: during must list earlier events`);
      if (o.steps !== undefined) steps();
      break;
    case 'interrupt':
      if (!Number.isSafeInteger(o.of) || (o.of as number) < 1 || (o.of as number) > prev) throw bad(`${where}: of must name an earlier event`);
      if (!Number.isSafeInteger(o.check) || (o.check as number) < 1) throw bad(`${where}: check must be an integer ≥ 1`);
      break;
    case 'write':
      if (typeof o.path !== 'string' || !PATHS.has(o.path)) throw bad(`${where}: no file ${JSON.stringify(o.path)} (write.path must be one of the mount's files)`);
      if (!WRITABLE.has(o.path)) throw bad(`${where}: ${o.path} is read-only: it cannot have been written`);
      if (o.path === '/control') fd();
      else if (o.fd !== undefined) throw bad(`${where}: only /control writes carry an fd`);
      if (!Number.isSafeInteger(o.offset) || (o.offset as number) < 0) throw bad(`${where}: offset must be an integer ≥ 0`);
      if ((typeof o.data === 'string') === (typeof o.b64 === 'string')) throw bad(`${where}: a write carries its bytes as exactly one of "data" (text) or "b64"`);
      break;
    default:
      throw bad(`${where}: unknown event ${JSON.stringify(o.ev)} (open, close, write, advance, interrupt, stopped)`);
  }
  return o as unknown as RecordEvent;
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function isStringRecord(v: unknown): v is Readonly<Record<string, string>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
