import { ModelError } from './errors';

// The zeroing policies a machine can boot with (`mount --zeroing-policy`), by the names their
// kernels use: Lameter's kscrubd (the sysctls vm.scrub_*), the v5.3+ boot parameters
// init_on_free=1 / init_on_alloc=1, Anolis's zeroed-page pool `prezero` (boot parameter
// prezero=, sysfs kernel/mm/prezero/*, a kprezerod thread per node) and idle-time zeroing
// `idlezero` (FreeBSD's vm_zeroidle: vm.idlezero_enable, vm.idlezero_maxrun). Several at once
// where kernels combine them: with both init_on_* on, the kernel skips init_on_alloc's clear
// (free_pages_prezeroed()). The two hugetlb pre-zeroing proposals are policies too, because a
// kernel has their files only when built with them: van der Linden's `khzerod` (per-size
// prezero_enabled and free_huge_pages_zero) and Li Zhe's `zeroable_hugepages` (the per-node
// file of that name); neither changes the buddy allocator, so either combines with any other.

export const ZEROING_POLICIES = ['kscrubd', 'init_on_free', 'init_on_alloc', 'prezero', 'idlezero', 'khzerod', 'zeroable_hugepages'] as const;
export type ZeroingPolicyName = (typeof ZEROING_POLICIES)[number];
/** What a machine boots with when not told: today's model, kscrubd steered by its sysctls. */
export const DEFAULT_ZEROING_POLICY: readonly ZeroingPolicyName[] = ['kscrubd'];

/**
 * A policy list as given ("init_on_free,kscrubd" or an array of names) → the names in table
 * order, each once. Refuses an empty list, an unknown name or a name given twice, naming it.
 */
export function parseZeroingPolicy(given: string | readonly string[]): readonly ZeroingPolicyName[] {
  const names = (typeof given === 'string' ? given.split(',') : [...given]).map((s) => s.trim());
  if (names.length === 0 || names.some((n) => n === '')) {
    throw new ModelError('KSCRUB_BAD_OPTION', `zeroing policy: "${names.join(',')}" has an empty name (one or more of ${ZEROING_POLICIES.join(', ')})`);
  }
  for (const n of names) {
    if (!(ZEROING_POLICIES as readonly string[]).includes(n)) {
      throw new ModelError('KSCRUB_BAD_OPTION', `zeroing policy: "${n}" is not one of ${ZEROING_POLICIES.join(', ')}`);
    }
  }
  if (new Set(names).size !== names.length) throw new ModelError('KSCRUB_BAD_OPTION', `zeroing policy: "${names.join(',')}" names a policy twice`);
  // kscrubd keeps zeroed blocks on lists of their own (a dirty block never merges with a
  // zeroed one); prezero and idlezero keep the flag on the block and lose it on merge. One
  // allocator is either kind, not both.
  const flagOnBlock = names.filter((n) => n === 'prezero' || n === 'idlezero');
  if (names.includes('kscrubd') && flagOnBlock.length > 0) {
    throw new ModelError('KSCRUB_BAD_OPTION', `zeroing policy: kscrubd keeps zeroed blocks apart, ${flagOnBlock.join(' and ')} keep${flagOnBlock.length === 1 ? 's' : ''} the zero flag on the block: one allocator cannot do both`);
  }
  // Each node has one background zeroing thread (kprezerod or the idle zeroer), as each kernel has.
  if (flagOnBlock.length > 1) throw new ModelError('KSCRUB_BAD_OPTION', 'zeroing policy: prezero and idlezero are two kernels\' answers; boot one of them');
  return ZEROING_POLICIES.filter((p) => names.includes(p));
}

/** The policy list as `config` and a result's provenance print it: "init_on_free,kscrubd". */
export function formatZeroingPolicy(p: readonly ZeroingPolicyName[]): string {
  return p.join(',');
}

/** Is `p` the default (a machine booted without --zeroing-policy)? */
export function isDefaultZeroingPolicy(p: readonly ZeroingPolicyName[]): boolean {
  return formatZeroingPolicy(p) === formatZeroingPolicy(DEFAULT_ZEROING_POLICY);
}

/**
 * The kernel command line a machine of policy `p` boots with, as /proc/cmdline shows it:
 * the init_on_* and prezero= parameters it sets (kscrubd, idlezero and the hugetlb proposals
 * have no boot parameter: their files steer them).
 */
export function zeroingCmdline(p: readonly ZeroingPolicyName[]): string {
  return p.filter((n) => n === 'init_on_free' || n === 'init_on_alloc' || n === 'prezero').map((n) => `${n}=1`).join(' ');
}
