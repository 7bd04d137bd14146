import type { Machine, WmarkSysctlName } from '../model';
import { parseSysctlWrite } from '../uapi';
import { refusedAsEinval } from './sysctl';

// A modern kernel's watermark sysctls (src/model/watermarks.ts): proc_dointvec_minmax files,
// "%d\n" read, one int written; out of range is EINVAL with the value kept.

export function render(m: Machine, name: WmarkSysctlName): string {
  return `${m.watermarks!.value(name)}\n`;
}

export function write(m: Machine, name: WmarkSysctlName, data: Uint8Array): number {
  // __do_proc_dointvec() returns 0 at once for a zero-length write.
  if (data.length === 0) return 0;
  const { value, consumed } = parseSysctlWrite(data, `vm.${name}`);
  refusedAsEinval(() => m.setWatermarkSysctl(name, value));
  return consumed;
}
