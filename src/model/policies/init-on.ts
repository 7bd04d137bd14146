import type { ZeroingPolicyName } from '../../uapi/policies';
import type { CpuZeroDriver } from '../zero-drivers';

/**
 * The zeroing policies a machine booted with, as the allocator asks them (v5.3+ semantics of
 * mm/page_alloc.c, laid over the model's zeroed/not-zeroed split):
 *
 *   kscrubd        Lameter's V6: free blocks are zeroed in the background (kscrubd.ts); the
 *                  vm.scrub_* sysctls steer it. Without it, no kscrubd ever wakes.
 *   init_on_free   free_pages_prepare() clears every page as it is freed, on the freeing CPU
 *                  (munmap, exit, whoever frees): freed pages go back ZEROED, so a __GFP_ZERO
 *                  allocation finds them zero and skips clearing (prep_new_page's
 *                  free_pages_prezeroed()). memblock frees all memory through the same path at
 *                  boot, so the boot wipes every free page once.
 *   init_on_alloc  post_alloc_hook() clears every allocation, __GFP_ZERO or not; skipped when
 *                  init_on_free is on too (want_init_on_alloc() && !free_pages_prezeroed()).
 *
 * A page freed under init_on_free is cleared page by page (kernel_init_pages → clear_highpage),
 * so it costs the CPU zero driver's one-page price, per page, on the freeing CPU.
 */
export class ZeroingPolicy {
  readonly names: readonly ZeroingPolicyName[];
  readonly kscrubd: boolean;
  readonly initOnFree: boolean;
  /** init_on_alloc's clear applies (it is on, and init_on_free does not make it moot). */
  readonly initOnAlloc: boolean;
  /** Anolis's zeroed-page pool (kprezerod, policies/zero-rules.ts). */
  readonly prezero: boolean;
  /** FreeBSD-style idle zeroing (policies/zero-rules.ts). */
  readonly idlezero: boolean;
  /** The zero flag lives on the free block and a merge with a dirty buddy loses it (prezero, idlezero). */
  readonly zeroFlagOnBlock: boolean;
  /** clear_highpage() of one page by the freeing CPU: local memory, and another node's. */
  readonly clearPageNs: number;
  readonly clearRemotePageNs: number;

  constructor(names: readonly ZeroingPolicyName[], cpuZero: CpuZeroDriver, pageSize: number) {
    this.names = names;
    this.kscrubd = names.includes('kscrubd');
    this.initOnFree = names.includes('init_on_free');
    this.initOnAlloc = names.includes('init_on_alloc') && !this.initOnFree;
    this.prezero = names.includes('prezero');
    this.idlezero = names.includes('idlezero');
    this.zeroFlagOnBlock = this.prezero || this.idlezero;
    this.clearPageNs = cpuZero.zero(pageSize, false).cpuNs;
    this.clearRemotePageNs = cpuZero.zero(pageSize, true).cpuNs;
  }
}
