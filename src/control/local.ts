import { type Machine, isSysctlName } from '../model';
import { execute } from './execute';
import type { CommandBudget } from './job';
import * as sysctl from '../procfs/sysctl';
import { parseSysctl } from '../uapi';
import { ControlSyntaxError, parseCommand } from '../uapi/grammar';

/**
 * The control protocol without a mount: one line in, its result line out, on a machine in
 * this process. What the control file does for one line, less the file (no batches, no
 * result stream): for runs that need no FUSE (sweep, replay), and that must still go through
 * the same grammar and executors as a client of the mount.
 */
export class LocalControl {
  /** `budget`: as the mount's --max-memory, a command that could pass it is refused before it runs. */
  constructor(readonly machine: Machine, private readonly budget?: CommandBudget) {}

  /** One command line → `ok …` or `err …`. */
  run(line: string): string {
    try {
      const cmd = parseCommand(line);
      const refused = this.budget?.refusal(this.machine, cmd) ?? null;
      return refused === null ? execute(this.machine, cmd) : `err ${cmd.verb}: ${refused}`;
    } catch (err) {
      if (err instanceof ControlSyntaxError) return `err ${err.message}`;
      throw err;
    }
  }

  /** What sys/vm/<name> reads, parsed as a client parses the file. */
  readSysctl(name: string): number {
    if (!isSysctlName(name)) throw new ControlSyntaxError(`no sysctl vm.${name}`);
    return parseSysctl(sysctl.render(this.machine, name), `sys/vm/${name}`);
  }

  /** A write to sys/vm/<name>, through the file's parser and range check (ProcError EINVAL when refused). */
  writeSysctl(name: string, value: number): void {
    if (!isSysctlName(name)) throw new ControlSyntaxError(`no sysctl vm.${name}`);
    sysctl.writeSysctlValue(this.machine, name, value);
  }
}
