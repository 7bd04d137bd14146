import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kscrubfs, q, run } from '../helpers/mount';

// The man page and completions are generated from the commander tree: every command and
// option the CLI has appears in them, and real bash completes with them.

/** Every command path and its long options, from the CLI's own --help. */
async function tree(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const visit = async (words: string[]): Promise<void> => {
    const help = await kscrubfs([...words, '--help']);
    assert.equal(help.code, 0, help.stderr);
    const options = [...help.stdout.matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!).filter((o) => o !== '--help' && o !== '--version');
    out.set(words.join(' '), options);
    const commands = help.stdout.split(/^Commands:$/m)[1] ?? '';
    for (const m of commands.matchAll(/^ {2}([\w-]+)/gm)) if (m[1] !== 'help') await visit([...words, m[1]!]);
  };
  await visit([]);
  return out;
}

describe('man page and completions', () => {
  let tmp = '';
  let commands = new Map<string, string[]>();
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kscrubfs-docs-'));
    commands = await tree();
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('when the man page is made then it has a section for every command with each of its options, and man shows it without warnings', async () => {
    const page = await kscrubfs(['man']);
    assert.equal(page.code, 0, page.stderr);
    const file = path.join(tmp, 'kscrubfs.1');
    writeFileSync(file, page.stdout);
    const shown = await run('man', ['--warnings', '-l', file], { env: { ...process.env, MANWIDTH: '200' } });
    assert.equal(shown.stderr, '');
    const text = shown.stdout.replace(/\u2010/g, '-');
    assert.ok(commands.size > 12, `${commands.size} commands`);
    for (const [cmd, options] of commands) {
      if (cmd === '') continue;
      const at = text.indexOf(`kscrubfs ${cmd} `);
      assert.ok(at >= 0, `a section for ${cmd}`);
      for (const o of options) assert.ok(text.includes(o), `${cmd}: ${o}`);
    }
  });

  it('when bash completes kscrubfs then it offers the commands, their options and an option\'s choices', async () => {
    const script = (await kscrubfs(['completion', 'bash'])).stdout;
    const file = path.join(tmp, 'kscrubfs.bash');
    writeFileSync(file, script);
    const complete = async (line: string): Promise<string> => {
      const r = await run('bash', ['-c', `source ${q(file)}; COMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _kscrubfs; echo "\${COMPREPLY[*]}"`]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    assert.equal(await complete('kscrubfs tr'), 'trace');
    assert.equal(await complete('kscrubfs trace re'), 'record replay');
    assert.equal(await complete('kscrubfs mount --pres'), '--preset');
    assert.equal(await complete('kscrubfs mount --preset e'), 'epyc');
    assert.equal(await complete('kscrubfs trace replay --scrub o'), 'on off');
    // After --: a command (PATH may hold it twice, /bin and /usr/bin).
    assert.ok((await complete('kscrubfs with-procfs -- fre')).split(' ').includes('free'));
    for (const [cmd, options] of commands) {
      const offered = (await complete(`kscrubfs ${cmd} -`)).split(' ');
      for (const o of options) assert.ok(offered.includes(o), `${cmd || 'kscrubfs'}: ${o} offered`);
    }
  });

  it('when zsh reads its completion then the syntax is sound and every option is in it', async () => {
    const script = (await kscrubfs(['completion', 'zsh'])).stdout;
    const file = path.join(tmp, '_kscrubfs');
    writeFileSync(file, script);
    const check = await run('zsh', ['-n', file]);
    assert.equal(check.code, 0, `zsh -n: ${check.stderr}`);
    assert.match(script, /^#compdef kscrubfs\n/);
    for (const [cmd, options] of commands) {
      for (const o of options) assert.ok(script.includes(o), `${cmd}: ${o}`);
    }
  });
});
