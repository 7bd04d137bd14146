/**
 * The fixed limits, in one place. The model refuses a call past them (and past what the
 * machine itself allows: its MAX_ORDER, nodes, CPUs, cachelines per page), and the control
 * grammar and its clients read the same constants, so a line the grammar accepts is refused,
 * if at all, only for something that depends on the machine it runs on.
 */

/** Threads of one touch (tasks of one mm). */
export const MAX_THREADS = 1024;
/** The largest single mapping, and so the largest size a mapping command takes. */
export const MAX_MAP_BYTES = 2 ** 46;
/**
 * MAX_ORDER: up to ia64's CONFIG_FORCE_MAX_ZONEORDER, 18 (the SN2 kernels' value, orders
 * 0 … 17); the page flags' order field has 5 bits.
 */
export const MIN_MAX_ORDER = 2;
export const MAX_MAX_ORDER = 18;
/** The largest Altix 3000 that ran these kernels: 256 nodes (ia64 NODES_SHIFT 8), 512 CPUs (sn2 NR_CPUS). */
export const MAX_NODES = 256;
export const MAX_CPUS = 1024;
/** Page and cacheline sizes a machine may have (powers of two). */
export const MIN_PAGE_SIZE = 4096;
export const MAX_PAGE_SIZE = 2 ** 21;
export const MIN_LINE_SIZE = 16;
export const MAX_LINE_SIZE = 1024;
/** Cachelines in the biggest page of the smallest lines: what `lines=` can be on any machine. */
export const MAX_LINES_PER_PAGE = MAX_PAGE_SIZE / MIN_LINE_SIZE;
/**
 * vm.max_prealloc_order's ceiling: 2^4 = 16 pages is the smallest run that fills a pagevec
 * (PAGEVEC_SIZE, 14), the most the prefault maps a fault; a higher order would map no more.
 */
export const MAX_PREALLOC_ORDER = 4;
/** Repetitions of one workload row (each a process): past this a run is a typo, not a measurement. */
export const MAX_REPS = 1_000_000;
/** Pages the model addresses (pfns stay well inside 2^53 and its per-section records small). */
export const MAX_PAGES = 2 ** 44;
/** Unread results a control handle holds at most (bytes); see control/file.ts and batch.ts. */
export const OUTPUT_LIMIT = 1 << 20;
/** Processes alive at once: a 2.6 kernel's default pid_max (PID_MAX_DEFAULT, 0x8000); fork fails past it. */
export const PID_MAX_DEFAULT = 0x8000;
