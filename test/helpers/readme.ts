import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI, REPO_ROOT } from './mount';

// The README is executed. Every ```console block is a transcript: "$ " lines are commands
// (a command continues on the next lines until bash can parse it), the other lines are what
// they print (stdout and stderr, in order). A block runs as one bash script in a scratch
// directory where `kscrubfs` is on PATH and `scripts/` is the repository's.
//
// A block may be preceded by a directive comment, invisible on GitHub:
//   <!-- readme: live mount="--zero-drivers cpu" vary="in [0-9.]+ s" timeout=60 -->
//   live          the block reads a live clock: compared by shape (numbers may differ, and
//                 so may the spaces around them); without it, output is compared exactly
//   mount="ARGS"  before the block, mount a fresh daemon on ./mount (`kscrubfs mount mount
//                 ARGS --background`), as `npm start` in a second terminal would; the
//                 following blocks share it until the next mount= (unmounted at the end)
//   vary="RE"     text matching RE differs between runs (wall time): ignored on both sides
//   timeout=S     seconds the block may take (default 60)
// Everywhere: the scratch directory's path prints as /home/me/kscrubfs, bash's "line N: "
// prefix on a script's errors is dropped (an interactive shell has none), and so are the
// things that differ on every run anyway: daemon pids and log file names.
//
// Regenerate the expected output after a model change: scripts/update-readme.

export const README = path.join(REPO_ROOT, 'README.md');
/** Where the transcripts pretend to run. */
const SHOWN_CWD = '/home/me/kscrubfs';
const ALWAYS_VARY = [/daemon pid \d+/g, /(?<=\(log )[^)]+(?=\))/g];

export interface Command {
  /** The command's lines, without the "$ " of the first. */
  readonly text: string;
  /** Its expected output lines. */
  readonly output: readonly string[];
}

export interface Block {
  /** Line index (0-based) of the opening fence in README.md. */
  readonly fence: number;
  /** Line index of the closing fence. */
  readonly end: number;
  readonly live: boolean;
  readonly mount?: string;
  readonly vary: readonly RegExp[];
  readonly timeoutMs: number;
  readonly commands: readonly Command[];
}

/** Does bash parse `text` as complete commands? (`bash -n`: the real parser, not a guess.) */
function complete(text: string): boolean {
  if (text.endsWith('\\')) return false;
  // An unterminated here-document parses, with a warning: it is not complete either.
  const r = spawnSync('bash', ['-n'], { input: `${text}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
  return r.status === 0 && r.stderr.length === 0;
}

function directive(line: string | undefined): Pick<Block, 'live' | 'vary' | 'timeoutMs'> & { mount?: string } {
  const m = line?.match(/^<!-- readme:(.*)-->$/);
  if (!m) return { live: false, vary: [], timeoutMs: 60_000 };
  const out: { live: boolean; vary: RegExp[]; timeoutMs: number; mount?: string } = { live: false, vary: [], timeoutMs: 60_000 };
  for (const [, key, quoted, bare] of m[1]!.matchAll(/\s*([a-z]+)(?:=(?:"((?:[^"\\]|\\.)*)"|(\S+)))?/g)) {
    const value = quoted ?? bare;
    if (key === 'live' && value === undefined) out.live = true;
    else if (key === 'mount' && value !== undefined) out.mount = value;
    else if (key === 'vary' && value !== undefined) out.vary.push(new RegExp(value, 'g'));
    else if (key === 'timeout' && value !== undefined && /^\d+$/.test(value)) out.timeoutMs = Number(value) * 1000;
    else throw new Error(`README: bad directive ${key}${value === undefined ? '' : `=${value}`} in ${line}`);
  }
  return out;
}

/** Every ```console block of the README, parsed. */
export function parseReadme(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```console') continue;
    let prev = i - 1;
    while (prev >= 0 && lines[prev] === '') prev--;
    const dir = directive(lines[prev]);
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    if (end === lines.length) throw new Error(`README line ${i + 1}: console block never closed`);
    const commands: { text: string; output: string[] }[] = [];
    for (let j = i + 1; j < end; j++) {
      const line = lines[j]!;
      if (line.startsWith('$ ')) {
        let cmd = line.slice(2);
        while (!complete(cmd) && j + 1 < end) cmd += `\n${lines[++j]}`;
        if (!complete(cmd)) throw new Error(`README line ${j + 1}: command does not parse: ${cmd}`);
        commands.push({ text: cmd, output: [] });
      } else {
        const last = commands.at(-1);
        if (!last) throw new Error(`README line ${j + 1}: output before any "$ " command`);
        last.output.push(line);
      }
    }
    blocks.push({ fence: i, end, ...dir, commands });
    i = end;
  }
  return blocks;
}

/** A scratch directory set up as the README's reader has it: kscrubfs on PATH, scripts/ at hand. */
export async function scratch(): Promise<{ cwd: string; env: NodeJS.ProcessEnv }> {
  const cwd = realpathSync(await mkdtemp(path.join(os.tmpdir(), 'kscrubfs-readme-')));
  const bin = path.join(cwd, '.bin');
  mkdirSync(bin);
  writeFileSync(path.join(bin, 'kscrubfs'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  chmodSync(path.join(bin, 'kscrubfs'), 0o755);
  symlinkSync(path.join(REPO_ROOT, 'scripts'), path.join(cwd, 'scripts'));
  mkdirSync(path.join(cwd, 'mount'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, TERM: 'dumb', NO_COLOR: '1' };
  delete env['DEBUG'];
  return { cwd, env };
}

const MARK = '\x1e@@readme-done@@\x1e\n';

/** Run a block's commands as one bash script; each command's output, as the transcript would show it. */
export function runBlock(block: Block, cwd: string, env: NodeJS.ProcessEnv): Promise<string[][]> {
  const script = ['exec 2>&1', ...block.commands.flatMap((c) => [c.text, `printf '${MARK.replaceAll('\x1e', '\\036').replace('\n', '\\n')}'`]), 'wait'].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`README block at line ${block.fence + 1} took more than ${block.timeoutMs / 1000} s`));
    }, block.timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString().replaceAll(cwd, SHOWN_CWD).replace(/^bash: line \d+: /gm, 'bash: ');
      const parts = text.split(MARK);
      // Whatever a background job printed after the last command belongs to the last command.
      const tail = parts.pop() ?? '';
      if (parts.length > 0) parts[parts.length - 1] += tail;
      resolve(parts.map((p) => (p === '' ? [] : p.replace(/\n$/, '').split('\n'))));
    });
  });
}

function normalize(block: Block, line: string): string {
  let out = line;
  for (const re of [...ALWAYS_VARY, ...block.vary]) out = out.replace(re, '<varies>');
  if (block.live) out = out.replace(/[-+]?\d+(\.\d+)?(e[-+]?\d+)?/gi, '#').replace(/\s+/g, ' ').trimEnd();
  return out;
}

/** Null when the output matches the block, else a diff-like explanation. */
export function mismatch(block: Block, actual: readonly (readonly string[])[]): string | null {
  const want = block.commands.flatMap((c) => c.output).map((l) => normalize(block, l));
  const got = actual.flat().map((l) => normalize(block, l));
  const n = Math.max(want.length, got.length);
  for (let i = 0; i < n; i++) {
    if (want[i] !== got[i]) {
      return `README block at line ${block.fence + 1} (${block.live ? 'compared by shape' : 'exact'}): output line ${i + 1} differs\n`
        + `  README: ${JSON.stringify(want[i] ?? '(no line)')}\n  actual: ${JSON.stringify(got[i] ?? '(no line)')}\n`
        + `whole output:\n${actual.flat().join('\n')}\n(regenerate with scripts/update-readme)`;
    }
  }
  return null;
}

/** The README's lines with `block`'s expected output replaced by `actual`. */
export function rewrite(lines: readonly string[], block: Block, actual: readonly (readonly string[])[]): string[] {
  const body = block.commands.flatMap((c, i) => [...c.text.split('\n').map((l, k) => (k === 0 ? `$ ${l}` : l)), ...(actual[i] ?? [])]);
  return [...lines.slice(0, block.fence + 1), ...body, ...lines.slice(block.end)];
}
