import type { CostModel } from './cost';
import { NO_BTE, NO_BTE_FIGURES } from './cost-no-bte';
import { type Figures, derived, fitted, measured } from './figures';
import { fixedClock } from './cost-clock';
import { I386_FITTED } from './fitted-i386';

/** The Pentium III has no boost: one clock, the board's. */
const i386Clock = (mhz: number) => fixedClock(mhz / 1000, 'a Pentium III (P6) runs at its one clock, the board\'s (no boost), so the clearing rates hold as stated');

/**
 * The `i386` preset's costs: Lameter's second machine, `schroedinger`, a 2-way Pentium III
 * with 384 MB (he called it a PIII-450 on 9 Dec 2004 and "2x Pentium III 500 Mhz" over the
 * published rows; docs/calibration.md has the messages), assumed on an Intel 440BX with PC100
 * SDRAM, running 2.6.10/2.6.11 i386 without PAE (4 KiB pages, 4-byte ptes, 32-byte lines).
 *
 * The data sheets and published measurements fix what they can (measured, below); the rest
 * (the kernel's path lengths, what the 440BX's SDRAM delivers) starts from the estimates below
 * and is fitted by `kscrubfs calibrate --fit i386 --write` over the published rows, within
 * bounds the hardware sets, into fitted-i386.ts. Work the core does is stated in core cycles,
 * and scales with the clock; work the front-side bus and the SDRAM do is stated in
 * nanoseconds, and does not:
 *
 *   core     450 MHz (2.22 ns a cycle), or 500 MHz; P6 core: 3-way decode, 1 store a cycle,
 *            L1D 16 KiB 4-way with 32-byte lines (3-cycle load), L2 512 KiB off-die at half
 *            the core clock (Intel, Pentium III Processor datasheet 244452; Intel Architecture
 *            Optimization Reference Manual 245127, ch. 1 and app. C).
 *   bus      64-bit GTL+ front-side bus at 100 MHz: 800 MB/s peak, 10 ns a bus clock; a 32-byte
 *            line is 4 data transfers; a P6 bus transaction has request, snoop and response
 *            phases before its data (Pentium Pro Family Developer's Manual vol. 1, ch. 4).
 *   memory   440BX with PC100 SDRAM, CL2 (tRCD 2, tCL 2, tRP 2 bus clocks): a line read that
 *            misses every cache costs ≈ 12 bus clocks end to end (bus phases ≈ 5, 440BX
 *            arbitration and SDRAM activate+CAS ≈ 6, data 1 before the critical word comes),
 *            less than lmbench measured on a 790 MHz P6 (174 ns, below): an estimate.
 *            A 32-byte write-back needs ≈ 7 bus clocks (4 data + SDRAM precharge/activate on a
 *            row change, which the 440BX hides only partly): ≈ 0.45 B/ns sustained, a bit over
 *            half the 800 MB/s peak.
 *   trap     a page fault through an interrupt gate into ring 0, 2.6's entry.S (SAVE_ALL: 9
 *            pushes and 2 segment reloads, which are slow on P6), do_page_fault's cr2 read,
 *            RESTORE_ALL and iret back to ring 3: ≈ 300 cycles, the same path as lmbench's
 *            "null syscall" on P6 (0.5–0.7 µs at 400–500 MHz) plus the error code and cr2.
 *
 * clear_page on this kernel and CPU is `rep stosl` (the MMX/3DNow clear is for the K7 only):
 * page-aligned with ECX 1024 it meets every fast-string condition of Intel's SDM vol. 3A
 * §8.2.4 (EDI 8-byte aligned on the Pentium III, ascending, ECX ≥ 64), and in that mode the
 * processor puts "an invalidation on the external bus for the destination address" instead of
 * reading the line, so the core fills L1/L2 at a store a cycle and the bus drains the dirty
 * lines behind it. (Plain stores allocate on write: "the write transaction turns into a read
 * followed by a write", McVoy and Staelin's lmbench paper of the Pentium Pro.) A stream of
 * faults zeroes far more than the 512 KiB L2 holds, so in steady state every zeroed line is
 * written back: clear_page runs at the bus's write-back
 * rate, for one page as for kscrubd's bulk blocks — hence writebackBytesPerNs 0 below (no
 * separate term: the zeroing figure already is the memory-bound rate).
 *
 * What was measured on P6 machines of the era (lmbench under 2.5.68 on a 790 MHz P6, LKML
 * 25 Apr 2003): a null system call 0.44 µs (348 cycles, the same gate, SAVE_ALL, RESTORE_ALL
 * and iret as the trap), main-memory latency 174 ns, memory read 355 MB/s and write-allocate
 * stores 170 MB/s. Nothing of the 440BX itself was found. With these figures a fault that
 * clears its page takes 8–10 µs; the published rows took 8.1 µs a page with every page
 * written and would have taken 32 µs a fault with pft.c's 16 KiB stride, so they wrote every
 * page (docs/calibration.md, "i386: the box, pft's stride and the P6 figures").
 *
 * HIGHMEM: a 256 MB allocation on the 384 MiB box comes from ZONE_NORMAL (lowmem is
 * everything below 896 MiB), and 2.6's i386 kmap_atomic() returns page_address() for a page
 * below highmem_start_page after an inc_preempt_count: clear_user_highpage costs no fixmap
 * pte and no invlpg, so no figure prices one. (On a box of more than 896 MiB, GFP_HIGHUSER
 * takes HighMem first, and each clear would add a set_pte and an invlpg: tens of cycles
 * against the thousands the clear takes.)
 */
export const I386_MHZ = 450;

/**
 * The clock the i386 figures were fitted at: the rows' "2x Pentium III 500 Mhz". The generated
 * file holds nanoseconds at that clock; work the core does is that many cycles at any other.
 */
export const I386_FIT_MHZ = 500;

/** The figures fitted to the i386 rows: written by `kscrubfs calibrate --fit i386 --write`, and only by it. */
const F = I386_FITTED.values;

/**
 * i386 costs for a Pentium III at `mhz` (450 or 500 in practice; any clock the board ran).
 * Each comment gives the first guess the fit starts from (fitted-i386.ts `start`, in cycles
 * at 500 MHz); the value is the fit's.
 */
export function i386Cost(mhz = I386_MHZ): CostModel {
  // Core work is cycles: the fit's nanoseconds at 500 MHz, as cycles at this clock (computed
  // as the cycle-stated bounds are, so a figure on its bound stays on it).
  const cyc = 1000 / mhz; // ns per core cycle
  const core = (ns: number): number => ((ns * I386_FIT_MHZ) / 1000) * cyc;
  const lineMissNs = F.lineMissNs; // first guess ≈ 12 FSB clocks: a line from SDRAM (above)
  const zeroBytesPerNs = F.zeroBytesPerNs; // first guess 0.45: 32 B per ≈ 7 FSB clocks of write-back (above)
  return {
    // Gate, SAVE_ALL, cr2, RESTORE_ALL, iret: ≈ 300 cycles (above).
    trapNs: core(F.trapNs),
    // do_page_fault: down_read(mmap_sem), find_vma (mmap_cache hit), handle_mm_fault, the
    // two-level walk (pgd → pte, no pmd without PAE): ≈ 350 instructions of branchy kernel
    // code at the P6's ≈ 1 IPC on it.
    handlerNs: core(F.handlerNs),
    // spin_lock is `lock; decb`: a locked read-modify-write drains the P6 store buffer
    // (≈ 20 cycles); then read the pte and unlock: ≈ 40.
    ptlCheckNs: core(F.ptlCheckNs),
    // set_pte, page_add_anon_rmap (a locked inc of _mapcount), lru_cache_add_active (a
    // pagevec slot), mm->rss++, update_mmu_cache: ≈ 120 cycles.
    ptlSetNs: core(F.ptlSetNs),
    // The other CPU holds the lock line Modified: our read snoops HITM and the line comes
    // over the shared bus with an implicit write-back — a memory transaction's latency.
    lineBounceNs: F.lineBounceNs,
    // One node: no remote transfer ever happens (the figure is unused).
    lineRemoteNs: lineMissNs,
    // struct page is 32 bytes on i386 (flags, _count, _mapcount, private, mapping, index,
    // lru): one line; list_add onto the LRU writes the neighbour's lru too: 2.
    structPageLines: F.structPageLines,
    // buffered_rmqueue's per-cpu fast path: local_irq_save/restore (pushf/cli/popf) and a
    // list_del: ≈ 200 cycles with __alloc_pages' zonelist walk and watermark check.
    pcpAllocNs: core(F.pcpAllocNs),
    // __rmqueue + list moves per page under zone->lock, irqs off: ≈ 60 cycles.
    buddyPerPageNs: core(F.buddyPerPageNs),
    // __pagevec_lru_add_active per page under zone->lru_lock: SetPageLRU/Active, list_add: ≈ 40.
    lruPerPageNs: core(F.lruPerPageNs),
    zeroBytesPerNs,
    // One extent rate for every size: rep stosl has no size-dependent mode on P6.
    zeroHugeBytesPerNs: zeroBytesPerNs,
    zeroGiantBytesPerNs: zeroBytesPerNs,
    zeroRunBytesPerNs: zeroBytesPerNs,
    ...i386Clock(mhz).value,
    // 512 KiB L2 (Katmai).
    cacheBytes: 512 * 2 ** 10,
    writebackBytesPerNs: 0,
    // One node, one memory controller: nothing is remote.
    remoteFactor: 1,
    // The shared 100 MHz FSB. The model counts two bus bytes per byte zeroed (read for
    // ownership, then write-back); P6 fast strings skip the read, so the bus's write-back rate
    // is what two counted bytes a zeroed byte come to: first guess 0.9, one CPU zeroing fills
    // the bus, two share it.
    fsbBytesPerNs: F.fsbBytesPerNs,
    lineMissNs,
    // The 440BX's host bus takes four transactions at a time (its 4-deep in-order queue).
    missesInFlight: 4,
    // rep stosl is the only clear this kernel has on P6 (no SSE2 movnti, no CLZERO).
    ntBytesPerNs: 0,
    clzeroBytesPerNs: 0,
    // The line the program writes after hot zeroing is in L1 (the page is 4 KiB of a 16 KiB
    // L1): 3 cycles, plus the DTLB miss on the new pte, walked through L1/L2: ≈ 12 cycles.
    lineHitNs: core(F.lineHitNs),
    // pft's loop per page: an add, a store, a compare and a branch: ≈ 8 cycles.
    userPageNs: core(F.userPageNs),
    // zap_pte_range + free_hot_page per page at exit: ≈ 150 cycles and the page's cold
    // struct page line (first guess 420 ns); part core, part memory, so it is held at the
    // value fitted at 500 MHz whatever the clock.
    freePageNs: F.freePageNs,
    // No block-transfer engine on a PC (the driver is never registered; figures unused).
    ...NO_BTE,
    // try_to_wake_up → reschedule IPI through the local APIC → schedule() on the other CPU:
    // lmbench's lat_ctx on P6 is 2–5 µs; with the IPI and the idle loop's exit, ≈ 5,000 cycles.
    wakeupNs: core(F.wakeupNs),
  };
}

export const I386_COST: CostModel = i386Cost();

/**
 * Where each i386 figure comes from, for a Pentium III at `mhz`. The data sheets fix the
 * cache and the bus; how many cycles the kernel's paths take and what the 440BX's SDRAM
 * delivers were estimates (above), so they are fitted over the i386 rows of
 * docs/calibration.md within bounds stated in core cycles (core work) or bus terms (memory).
 */
export function i386Figures(mhz = I386_MHZ): Figures {
  const cyc = 1000 / mhz;
  const cycles = (lo: number, hi: number, why: string) => fitted(lo * cyc, hi * cyc, `${why}: ${lo}–${hi} cycles`, 'i386');
  return {
    // Not below a null system call's entry and exit, which lmbench measured on a P6.
    trapNs: cycles(348, 800, 'interrupt gate, SAVE_ALL with two segment reloads, cr2, RESTORE_ALL, iret: at least a null system call, 348 cycles by lmbench on a 790 MHz P6'),
    handlerNs: cycles(150, 1000, 'do_page_fault, find_vma, handle_mm_fault and the two-level walk at ≈ 1 IPC'),
    ptlCheckNs: cycles(20, 150, 'a locked decb (drains the store buffer) and a pte read'),
    ptlSetNs: cycles(50, 400, 'set_pte, a locked _mapcount inc, a pagevec slot, rss++'),
    lineBounceNs: fitted(60, 250, 'a HITM snoop on the shared 100 MHz bus: 6–25 bus clocks', 'i386'),
    lineRemoteNs: measured('unused: one node, so no remote transfer ever happens (440BX: one memory controller)'),
    structPageLines: fitted(1, 3, "struct page is 32 bytes on i386, one 32-byte line, plus the LRU neighbour's links", 'i386'),
    pcpAllocNs: cycles(60, 500, 'local_irq_save/restore, the zonelist walk and watermark check, a list_del'),
    buddyPerPageNs: cycles(20, 200, '__rmqueue and a list move per page under zone->lock'),
    lruPerPageNs: cycles(15, 150, 'SetPageLRU/Active and a list_add per page under zone->lru_lock'),
    // The core is not the limit: in fast-string mode REP STOSD stores about 5 bytes a clock on
    // PPro/PII/PIII (Agner Fog, "How to optimize for the Pentium family of microprocessors",
    // §26.3), 2.5 GB/s at 500 MHz, three times what the bus takes.
    zeroBytesPerNs: fitted(0.25, 0.8, "rep stosl's write-back to PC100 SDRAM: at most the 64-bit 100 MHz bus's 800 MB/s, at least under a third of it (lmbench on a 790 MHz P6: reads 355 MB/s, write-allocate stores 170 MB/s)", 'i386'),
    // One rate, not three: a bound of their own would let a band move kscrubd's 4 MiB clears
    // apart from the page clear they are made of.
    zeroHugeBytesPerNs: derived('zeroBytesPerNs', 'no huge-page clearing of anonymous memory on 2.6.11 i386, and rep stosl has no size-dependent mode on P6: the page clear rate'),
    zeroGiantBytesPerNs: derived('zeroBytesPerNs', 'no extent-dependent mode of rep stos on P6: a 4 MiB block clears at the page clear rate'),
    zeroRunBytesPerNs: derived('zeroBytesPerNs', 'no gigantic pages on 2.6.11 i386: a run of pages clears as its pages'),
    ...i386Clock(mhz).figures,
    cacheBytes: measured('datasheet: the Pentium III (Katmai) has a 512 KiB off-die L2 (Intel Pentium III Processor datasheet, order 244452)'),
    writebackBytesPerNs: measured('no separate term: P6 fast-string stores invalidate the destination line instead of reading it (Intel SDM vol. 3, "Out-of-Order Stores For String Operations"), so clear_page is memory-bound and its rate already is the write-back rate'),
    remoteFactor: measured('one node, one memory controller: nothing is remote'),
    fsbBytesPerNs: fitted(0.4, 1.6, "the shared 100 MHz, 64-bit bus (800 MB/s peak) counted twice per zeroed byte, as the model counts it: 0.4–1.6", 'i386'),
    lineMissNs: fitted(90, 250, 'a line from PC100 SDRAM through the 440BX: request and snoop phases, activate and CAS at CL2, then data, 9–25 bus clocks (lmbench main memory on a 790 MHz P6: 174 ns)', 'i386'),
    missesInFlight: measured("datasheet: the 82443BX keeps at most four host-bus transactions outstanding (a 4-deep in-order queue; Intel 440BX AGPset 82443BX Host Bridge datasheet, order 290633), as many as the P6's non-blocking L1 has misses in flight"),
    ntBytesPerNs: measured('unavailable: no non-temporal clear_page on 2.6.11 i386 for P6 (movnti is SSE2)'),
    clzeroBytesPerNs: measured('unavailable: CLZERO is an AMD Zen instruction'),
    lineHitNs: cycles(3, 40, 'an L1 hit after hot zeroing and a DTLB miss walked through the caches'),
    userPageNs: cycles(4, 60, "pft's loop per page: an add, a store, a compare and a branch, up to a DTLB miss"),
    freePageNs: fitted(150 * cyc / 2 + 60, 600 * cyc + 250, "zap_pte_range and free_hot_page per page plus the cold struct page line", 'i386'),
    ...NO_BTE_FIGURES,
    wakeupNs: cycles(1000, 20_000, 'try_to_wake_up, a reschedule IPI through the local APIC and schedule() on the other CPU'),
  };
}

export const I386_FIGURES: Figures = i386Figures();
