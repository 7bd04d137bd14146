import type { Machine, SysctlName } from '../model';
import { ModelError, ProcError, parseSysctlWrite } from '../uapi';

/** A sysctl reads as proc_dointvec prints one int: "%d\n". */
export function render(m: Machine, name: SysctlName): string {
  return `${m.sysctl[name]}\n`;
}

/**
 * A write to /sys/vm/<name> at offset 0: parse as the kernel does, then let the model range-check
 * and apply it. Returns the bytes consumed (the kernel's short count when text follows the value
 * after whitespace); throws ProcError EINVAL with the value unchanged.
 */
export function write(m: Machine, name: SysctlName, data: Uint8Array): number {
  // __do_proc_dointvec() returns 0 at once for a zero-length write.
  if (data.length === 0) return 0;
  const { value, consumed } = parseSysctlWrite(data, `vm.${name}`);
  refusedAsEinval(() => m.setSysctl(name, value));
  return consumed;
}

/** Apply a parsed value; the model's refusal (range, policy) reaches the writer as EINVAL, the value kept. */
export function refusedAsEinval(apply: () => void): void {
  try {
    apply();
  } catch (err) {
    if (err instanceof ModelError && err.code === 'KSCRUB_BAD_SYSCTL') throw new ProcError('EINVAL', err.message);
    throw err;
  }
}

/**
 * Set a sysctl of a machine in this process as a client's `echo VALUE > sys/vm/NAME` would:
 * the value's text through the same parser and range check as the file's write, so an
 * in-process writer (sweep, replay, policies) is refused exactly as a client would be.
 */
export function writeSysctlValue(m: Machine, name: SysctlName, value: number): void {
  write(m, name, Buffer.from(`${value}\n`));
}
