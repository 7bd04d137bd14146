import type { Machine, PolicyKnob } from '../model';
import { parseKstrtoul, parseSysctlWrite } from '../uapi';
import { refusedAsEinval } from './sysctl';

// The zeroed-page pool's and the idle zeroer's files (src/model/policies/knobs.ts): a sysfs
// attribute prints "%u\n" and parses a store with kstrtoul; a sysctl prints "%d\n" and parses
// as proc_dointvec. Both print one unsigned int here, so one render serves both.

export function render(m: Machine, name: PolicyKnob): string {
  return `${m.knobs[name]}\n`;
}

/** One write at offset 0; EINVAL with the value kept when the text or the value is refused. */
export function write(m: Machine, name: PolicyKnob, data: Uint8Array): number {
  const spec = m.knobSpecs[name];
  // Neither a sysctl nor a sysfs store sees a zero-length write.
  if (data.length === 0) return 0;
  const file = spec.syntax === 'sysctl' ? `vm.${name}` : spec.path.slice(1);
  const { value, consumed } = spec.syntax === 'sysfs' ? parseKstrtoul(data, file) : parseSysctlWrite(data, file);
  refusedAsEinval(() => m.setKnob(name, value));
  return consumed;
}
