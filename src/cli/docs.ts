import { Argument, type Command, type Option } from 'commander';
import { VERSION } from './version';

// The manual page and the shell completions, generated from the commander tree itself, so
// that neither can name an option the CLI lacks or miss one it has. `npm run prepare` writes
// them to man/kscrubfs.1 and completions/ for the package; `kscrubfs man` and
// `kscrubfs completion bash|zsh` print them.

interface Node {
  /** Words after `kscrubfs`: '' for the program, 'trace record' for a nested command. */
  path: string;
  cmd: Command;
}

/** Every command with its path, parents before children, help excluded. */
function walk(program: Command): Node[] {
  const out: Node[] = [];
  const visit = (cmd: Command, path: string): void => {
    out.push({ path, cmd });
    for (const sub of cmd.commands) visit(sub, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  visit(program, '');
  return out;
}

function options(cmd: Command): Option[] {
  return (cmd.options as Option[]).filter((o) => !o.hidden);
}

function usage(cmd: Command): string {
  return cmd.usage();
}

// ---- man page ------------------------------------------------------------------------------

/** roff text: backslashes and hyphens escaped, a leading dot or quote made safe. */
function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1');
}

/** The manual page (man(7) macros). */
export function manPage(program: Command): string {
  const out: string[] = [
    `.TH KSCRUBFS 1 "" "kscrubfs ${VERSION}" "User Commands"`,
    '.SH NAME',
    `kscrubfs \\- ${roff(program.description())}`,
    '.SH SYNOPSIS',
    '.B kscrubfs',
    '\\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff('kscrubfs serves a simulated machine as a procfs over FUSE (kscrubfs mount), drives it (pft, calibrate, sweep, payoff, trace replay), watches it (watch) and runs unmodified tools against it (with-procfs). Every command prints its own help with --help.'),
    '.SH COMMANDS',
  ];
  for (const { path, cmd } of walk(program)) {
    if (path === '' || path === 'help') continue;
    out.push(`.SS "kscrubfs ${roff(path)} ${roff(usage(cmd))}"`, roff(cmd.description()));
    for (const o of options(cmd)) {
      const choices = o.argChoices ? ` (one of: ${o.argChoices.join(', ')})` : '';
      const dflt = o.defaultValue !== undefined && o.defaultValue !== false && !o.negate ? ` (default: ${String(o.defaultValueDescription ?? o.defaultValue)})` : '';
      out.push('.TP', `.B ${roff(o.flags)}`, roff(`${o.description}${choices}${dflt}`));
    }
  }
  out.push(
    '.SH ENVIRONMENT',
    '.TP', '.B KSCRUBFS_MOUNT', roff('The mount point mount, umount, pft, watch and with-procfs use when none is given (default ./mount).'),
    '.TP', '.B DEBUG', roff('DEBUG=kscrubfs:* logs what the daemon and the commands do, on stderr.'),
    '.SH EXIT STATUS',
    roff('0 on success; 1 when a command fails (a mount, a control command, a file); 2 for a usage error or an option the model refuses (--mem 1K); 130 after Ctrl-C. with-procfs and trace record exit with their command\'s status.'),
    '.SH FILES',
    roff('The mount point holds buddyinfo, meminfo, vmstat, zoneinfo, stat, loadavg, uptime, sys/vm/* and control; cat control prints its commands.'),
    '.SH SEE ALSO',
    '.BR fusermount (1),',
    '.BR proc (5)',
    '',
  );
  return out.join('\n');
}

// ---- completions ---------------------------------------------------------------------------

/** Option words that take a value, per path, with their choices if any. */
function optionWords(cmd: Command): { words: string[]; valued: Map<string, readonly string[] | null> } {
  const words: string[] = [];
  const valued = new Map<string, readonly string[] | null>();
  for (const o of options(cmd)) {
    for (const w of [o.short, o.long]) {
      if (w === undefined) continue;
      words.push(w);
      if (o.required || o.optional) valued.set(w, o.argChoices ?? null);
    }
  }
  words.push('--help');
  return { words, valued };
}

function shq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** bash: `source <(kscrubfs completion bash)`, or the file in /etc/bash_completion.d. */
export function bashCompletion(program: Command): string {
  const nodes = walk(program).filter((n) => n.path !== 'help');
  const subs: string[] = [];
  const opts: string[] = [];
  const values: string[] = [];
  for (const { path, cmd } of nodes) {
    const names = cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
    if (names.length > 0) subs.push(`    ${shq(path)}) echo ${shq(names.join(' '))} ;;`);
    const { words, valued } = optionWords(cmd);
    opts.push(`    ${shq(path)}) echo ${shq(words.join(' '))} ;;`);
    for (const [w, choices] of valued) values.push(`    ${shq(`${path}|${w}`)}) ${choices ? `COMPREPLY=($(compgen -W ${shq(choices.join(' '))} -- "$cur"))` : 'COMPREPLY=($(compgen -f -- "$cur"))'}; return ;;`);
  }
  return `# bash completion for kscrubfs ${VERSION} (generated from its commands: kscrubfs completion bash)
_kscrubfs_subs() {
  case "$1" in
${subs.join('\n')}
  esac
}
_kscrubfs_opts() {
  case "$1" in
${opts.join('\n')}
  esac
}
_kscrubfs() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} path="" i w
  COMPREPLY=()
  # The command path: the words that name a command, up to the cursor (after -- only files).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [ "$w" = -- ]; then
      # After --: a command to run (with-procfs, trace record), then its arguments.
      if [ "$i" = $((COMP_CWORD - 1)) ]; then COMPREPLY=($(compgen -c -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
      return
    fi
    case " $(_kscrubfs_subs "$path") " in *" $w "*) path=\${path:+$path }$w ;; esac
  done
  case "$path|$prev" in
${values.join('\n')}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_kscrubfs_opts "$path")" -- "$cur"))
  elif [ -n "$(_kscrubfs_subs "$path")" ]; then
    COMPREPLY=($(compgen -W "$(_kscrubfs_subs "$path")" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F _kscrubfs kscrubfs
`;
}

/** zsh: a file named _kscrubfs on $fpath (or `source <(kscrubfs completion zsh)` after compinit). */
export function zshCompletion(program: Command): string {
  const zq = (text: string): string => text.replace(/[[\]:\\']/g, (c) => (c === "'" ? `'\\''` : `\\${c}`));
  const cases: string[] = [];
  for (const { path, cmd } of walk(program)) {
    if (path === 'help') continue;
    const subs = cmd.commands.filter((c) => c.name() !== 'help');
    const lines: string[] = [];
    if (subs.length > 0) {
      lines.push(`      local -a cmds=(${subs.map((c) => `'${zq(c.name())}:${zq(c.description())}'`).join(' ')})`);
      lines.push(`      _describe command cmds`);
    } else {
      const specs = options(cmd).map((o) => {
        const names = [o.short, o.long].filter((w): w is string => w !== undefined);
        const head = names.length > 1 ? `(${names.join(' ')})'{${names.join(',')}}'` : names[0]!;
        const arg = o.required || o.optional ? `:${zq(o.flags.replace(/^.*?[<[]|[>\]]$/g, '') || 'value')}:${o.argChoices ? `(${o.argChoices.join(' ')})` : '_files'}` : '';
        return `'${head}[${zq(o.description)}]${arg}'`;
      });
      lines.push(`      _arguments -s ${[...specs, "'*:file:_files'"].join(' ')}`);
    }
    cases.push(`    ${shq(path)})\n${lines.join('\n')}\n      ;;`);
  }
  return `#compdef kscrubfs
# zsh completion for kscrubfs ${VERSION} (generated from its commands: kscrubfs completion zsh)
_kscrubfs() {
  local p="" w
  # Walk down the command words: each one that names a command of the current one.
  while (( CURRENT > 2 )); do
    w=\${words[2]}
    case "$(_kscrubfs_path_subs "$p")" in
      *" $w "*) p=\${p:+$p }$w; shift words; (( CURRENT-- )) ;;
      *) break ;;
    esac
  done
  case "$p" in
${cases.join('\n')}
  esac
}
_kscrubfs_path_subs() {
  case "$1" in
${walk(program).filter((n) => n.path !== 'help' && n.cmd.commands.length > 0).map((n) => `    ${shq(n.path)}) echo ${shq(` ${n.cmd.commands.map((c) => c.name()).filter((x) => x !== 'help').join(' ')} `)} ;;`).join('\n')}
    *) echo ' ' ;;
  esac
}
if [ "$funcstack[1]" = "_kscrubfs" ]; then _kscrubfs "$@"; else compdef _kscrubfs kscrubfs; fi
`;
}

/** `kscrubfs man` and `kscrubfs completion bash|zsh`. */
export function registerDocs(program: Command): void {
  program
    .command('man')
    .description('print the manual page (roff; installed with the package as man kscrubfs)')
    .action(() => {
      process.stdout.write(manPage(program));
    });
  program
    .command('completion')
    .description('print a shell completion script: source <(kscrubfs completion bash)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
    });
}
