import { ModelError } from '../../uapi';
import type { ZeroingPolicyName } from '../../uapi/policies';

/**
 * The files that steer the zeroed-page pool and idle-time zeroing, with the names, defaults and
 * ranges of the code they come from:
 *
 *   kernel/mm/prezero/*   Anolis's mm/prezero.c (sysfs, kstrtoul): `enabled` (the prezero=
 *                         boot parameter's flag), `min_order` 9 (0 … MAX_ORDER−1),
 *                         `max_percent` 50 (0 … 100), `batch_pages` 4096 and `sleep_msecs`
 *                         1000 (0 … UINT_MAX).
 *   vm.idlezero_*         FreeBSD's sys/vm/vm_zeroidle.c (sysctl, an int): `idlezero_enable` 1,
 *                         `idlezero_maxrun` 16 pages zeroed before the idle thread looks for
 *                         runnable work.
 *
 * A machine booted without the policy has no such files (src/procfs); were the on-switch set
 * there anyway, it is refused: its allocator was not built with the zero flag on the block.
 */
export const POLICY_KNOBS = [
  'prezero_enabled', 'prezero_min_order', 'prezero_max_percent', 'prezero_batch_pages', 'prezero_sleep_msecs',
  'idlezero_enable', 'idlezero_maxrun',
] as const;
export type PolicyKnob = (typeof POLICY_KNOBS)[number];

/** How a knob's file parses a write and prints its value. */
export type KnobSyntax = 'sysfs' | 'sysctl';

export interface KnobSpec {
  readonly name: PolicyKnob;
  /** The file inside the mount. */
  readonly path: string;
  readonly syntax: KnobSyntax;
  /** The policy the knob belongs to: its on-switch is refused on a machine booted without it. */
  readonly policy: ZeroingPolicyName;
  readonly min: number;
  readonly max: number;
  /** The value at boot of a machine booted with the policy (without it, the on-switch is 0). */
  readonly initial: number;
  readonly onSwitch: boolean;
}

const UINT_MAX = 2 ** 32 - 1;
const INT_MAX = 2 ** 31 - 1;

/** The knobs of a machine of `maxOrder`. */
export function knobSpecs(maxOrder: number): Readonly<Record<PolicyKnob, KnobSpec>> {
  const prezero = (name: string, min: number, max: number, initial: number, onSwitch = false) =>
    ({ path: `/sys/kernel/mm/prezero/${name}`, syntax: 'sysfs', policy: 'prezero', min, max, initial, onSwitch }) as const;
  const idlezero = (name: string, min: number, max: number, initial: number, onSwitch = false) =>
    ({ path: `/sys/vm/${name}`, syntax: 'sysctl', policy: 'idlezero', min, max, initial, onSwitch }) as const;
  return {
    prezero_enabled: { name: 'prezero_enabled', ...prezero('enabled', 0, 1, 1, true) },
    prezero_min_order: { name: 'prezero_min_order', ...prezero('min_order', 0, maxOrder - 1, Math.min(9, maxOrder - 1)) },
    prezero_max_percent: { name: 'prezero_max_percent', ...prezero('max_percent', 0, 100, 50) },
    prezero_batch_pages: { name: 'prezero_batch_pages', ...prezero('batch_pages', 0, UINT_MAX, 4096) },
    prezero_sleep_msecs: { name: 'prezero_sleep_msecs', ...prezero('sleep_msecs', 0, UINT_MAX, 1000) },
    // FreeBSD's SYSCTL_INT: any int; negative means on, as C's `if (!idlezero_enable)` reads it. The model keeps 0 … 1.
    idlezero_enable: { name: 'idlezero_enable', ...idlezero('idlezero_enable', 0, 1, 1, true) },
    idlezero_maxrun: { name: 'idlezero_maxrun', ...idlezero('idlezero_maxrun', 1, INT_MAX, 16) },
  };
}

/** The knob values a machine boots with. */
export function initialKnobs(specs: Readonly<Record<PolicyKnob, KnobSpec>>, policy: readonly ZeroingPolicyName[]): Record<PolicyKnob, number> {
  const out = {} as Record<PolicyKnob, number>;
  for (const k of POLICY_KNOBS) {
    const s = specs[k];
    out[k] = s.onSwitch && !policy.includes(s.policy) ? 0 : s.initial;
  }
  return out;
}

/** The range and policy checks of a write; the message names the file and quotes the value. */
export function checkKnob(spec: KnobSpec, value: number, policy: readonly ZeroingPolicyName[]): void {
  const file = spec.syntax === 'sysctl' ? `vm.${spec.name}` : spec.path.slice(1);
  if (!Number.isSafeInteger(value) || value < spec.min || value > spec.max) {
    throw new ModelError('KSCRUB_BAD_SYSCTL', `write ${file}: "${value}" is out of range ${spec.min}..${spec.max}`);
  }
  if (spec.onSwitch && value !== 0 && !policy.includes(spec.policy)) {
    throw new ModelError('KSCRUB_BAD_SYSCTL', `write ${file}: the machine booted without the ${spec.policy} policy (mount --zeroing-policy ${spec.policy})`);
  }
}
