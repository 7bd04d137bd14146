import { MAX_PREALLOC_ORDER, ModelError } from '../uapi';
import { PAGEVEC_ORDER, PAGEVEC_SIZE } from './pagevec';

/**
 * The vm sysctls the model owns. Values and ranges live here; procfs only parses text into an
 * integer and formats it back. Ranges are stricter than the 2005 patch (which had none) on
 * purpose: a typo must not turn kscrubd into a busy loop.
 */
export const SYSCTL_NAMES = ['scrub_start', 'scrub_stop', 'scrub_load', 'max_prealloc_order'] as const;
export type SysctlName = (typeof SYSCTL_NAMES)[number];

export interface SysctlSpec {
  readonly name: SysctlName;
  readonly min: number;
  readonly max: number;
  readonly initial: number;
  readonly help: string;
}

/** Specs for a machine with `maxOrder` orders (0 … maxOrder-1). */
export function sysctlSpecs(maxOrder: number): Readonly<Record<SysctlName, SysctlSpec>> {
  return {
    // A value ≥ MAX_ORDER can never be reached by a coalesced block: kscrubd is off (the default).
    scrub_start: { name: 'scrub_start', min: 0, max: maxOrder, initial: maxOrder, help: 'order of a coalesced not-zeroed block that wakes kscrubd (MAX_ORDER = off)' },
    scrub_stop: { name: 'scrub_stop', min: 0, max: maxOrder, initial: 4, help: 'kscrubd zeroes free blocks of this order and above, then sleeps' },
    scrub_load: { name: 'scrub_load', min: 0, max: 1000, initial: 999, help: 'kscrubd does not wake while the 1-minute load average is at or above this' },
    // A run is order-0 pages, at most a pagevec, whatever MAX_ORDER: orders past PAGEVEC_ORDER
    // would map no more, so they are refused, not ignored.
    max_prealloc_order: {
      name: 'max_prealloc_order', min: 0, max: MAX_PREALLOC_ORDER, initial: PAGEVEC_ORDER,
      help: `anticipatory prefault: at most 2^n pages per fault, and at most a pagevec (${PAGEVEC_SIZE}); 0 = off, ${PAGEVEC_ORDER} = the V2 patch as published`,
    },
  };
}

export function isSysctlName(name: string): name is SysctlName {
  return (SYSCTL_NAMES as readonly string[]).includes(name);
}

/** Range check; the message names the sysctl and quotes the value. */
export function checkSysctl(spec: SysctlSpec, value: number): void {
  if (!Number.isSafeInteger(value) || value < spec.min || value > spec.max) {
    throw new ModelError('KSCRUB_BAD_SYSCTL', `write vm.${spec.name}: "${value}" is out of range ${spec.min}..${spec.max}`);
  }
}
