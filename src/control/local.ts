import { type Machine, isSysctlName } from '../model';
import { execute } from './execute';
import { ControlSyntaxError, parseCommand } from '../uapi/grammar';

/**
 * The control protocol without a mount: one line in, its result line out, on a machine in
 * this process. What the control file does for one line, less the file (no batches, no
 * result stream): for runs that need no FUSE (sweep, replay), and that must still go through
 * the same grammar and executors as a client of the mount.
 */
export class LocalControl {
  constructor(readonly machine: Machine) {}

  /** One command line → `ok …` or `err …`. */
  run(line: string): string {
    try {
      return execute(this.machine, parseCommand(line));
    } catch (err) {
      if (err instanceof ControlSyntaxError) return `err ${err.message}`;
      throw err;
    }
  }

  /** What sys/vm/<name> reads. */
  readSysctl(name: string): number {
    if (!isSysctlName(name)) throw new ControlSyntaxError(`no sysctl vm.${name}`);
    return this.machine.sysctl[name];
  }

  /** A write to sys/vm/<name>, range-checked by the model (a ModelError when refused). */
  writeSysctl(name: string, value: number): void {
    if (!isSysctlName(name)) throw new ControlSyntaxError(`no sysctl vm.${name}`);
    this.machine.setSysctl(name, value);
  }
}
