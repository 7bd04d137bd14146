import type { Command } from 'commander';
import { configPairs } from '../control';
import { defaultMaxMemory, MemoryBudget, replayEvents } from '../daemon';
import { createMachine, type Machine } from '../model';
import { formatSize, KscrubError, parseSize } from '../uapi';
import { fixedFilesFor } from '../procfs';
import { action, CliError } from './errors';
import { memoryBudget } from './options';
import { readRecord } from './record-file';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('re-run a session recorded by mount --record FILE on a fresh in-process machine and compare every file: exit 0 when identical, 1 naming the first that differs')
    .argument('<file>', 'the record (JSONL) that mount --record wrote')
    .option('--max-memory <size>', `the replay's memory budget, as mount's: a command that could pass it is refused (default: half the host's memory, at most 4G; here ${formatSize(defaultMaxMemory())})`, memoryBudget)
    .action(action(replay));
}

async function replay(file: string, flags: { maxMemory?: number }): Promise<void> {
  const budget = new MemoryBudget(flags.maxMemory ?? defaultMaxMemory());
  const record = readRecord(file);
  const { header, events, digest } = record;
  const stopped = events.find((e) => e.ev === 'stopped');
  // A record without the step count (older kscrubfs) cannot say where to stop the command.
  if (stopped?.ev === 'stopped' && stopped.steps === undefined) {
    const cmds = stopped.during.map((n) => {
      const w = events.find((e) => e.n === n);
      const text = w?.ev === 'write' ? (w.data ?? '(bytes)').trim().split('\n')[0] : '?';
      return `event ${n} (${JSON.stringify(text)}${w?.ev === 'write' && (w.data ?? '').trim().includes('\n') ? ' …' : ''})`;
    });
    throw new CliError('KSCRUB_BAD_INPUT', `${file}: the session was stopped while the commands of ${cmds.join(', ')} were still running; `
      + 'its digests show the machine part way through them, and the record does not say after which step (an older kscrubfs wrote it), so replay cannot stop there');
  }
  let machine: Machine;
  try {
    machine = createMachine(header.options);
  } catch (err) {
    if (err instanceof KscrubError) throw new CliError('KSCRUB_BAD_INPUT', `${file}: the recorded machine options are refused: ${err.message}`);
    throw err;
  }
  // The same options must make the same machine: a record from another model version may not.
  const now = Object.fromEntries(configPairs(machine));
  for (const key of new Set([...Object.keys(header.config), ...Object.keys(now)])) {
    if (header.config[key] !== now[key]) {
      throw new CliError('KSCRUB_BAD_INPUT', `${file}: the recorded machine cannot be rebuilt: config ${key} was ${header.config[key] ?? '(absent)'}, this kscrubfs makes ${now[key] ?? '(absent)'}`);
    }
  }
  let out: Awaited<ReturnType<typeof replayEvents>>;
  try {
    out = await replayEvents(machine, header.buddyinfo, events, budget);
  } catch (err) {
    if (err instanceof KscrubError && err.code === 'KSCRUB_BAD_INPUT') throw new CliError('KSCRUB_BAD_INPUT', `${file}: ${err.message}`);
    throw err;
  } finally {
    // The session needed more than this replay may hold: say that first, it is why the files differ.
    if (budget.lastRefusal !== null) process.stderr.write(`kscrubfs: replay of ${file}: a command was refused: ${budget.lastRefusal}\n`);
  }
  const files = fixedFilesFor(machine);
  for (const { path } of files) {
    const want = digest.files[path];
    const got = out.digests[path];
    if (want !== got) {
      process.stderr.write(`kscrubfs: replay of ${file} differs: ${path} (recorded sha256 ${want?.slice(0, 12) ?? 'none'}, replayed ${got?.slice(0, 12)}; virtual time recorded ${ns(digest.t)} ns, replayed ${ns(out.now)} ns)\n`);
      process.exitCode = 1;
      return;
    }
  }
  process.stdout.write(`kscrubfs: replay of ${file}: ${events.length} events, ${files.length} files identical at ${ns(out.now)} ns\n`);
}

/** The model's clock can hold a fraction of a nanosecond (epyc's costs); say whole ones, as control's now_ns does. */
const ns = (t: number): string => String(Math.round(t));
