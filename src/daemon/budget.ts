import os from 'node:os';
import type { Machine } from '../model';
import { formatSize } from '../uapi';
import type { Command } from '../uapi';

// The daemon's memory budget (mount --max-memory): a command that could take the daemon past
// it is refused before it starts, so nothing is half done and the host never has to kill the
// daemon. What a command may take is an upper bound from its arguments (a touch's pages, an
// alloc's blocks, an mmap's VMA), priced at what the model spends per page (test/bench: ≤ 16
// bytes of page records, plus 8 bytes of pte per page when the pte page is full), doubled for
// safety; what the daemon holds now is its resident size.

/** Bytes one newly touched or allocated page may cost the model (page records, pte, slack). */
const BYTES_PER_PAGE = 48;
/** One VMA record and its place in the sorted list. */
const BYTES_PER_MMAP = 256;
/**
 * One raw block of `alloc`, measured at ≈94 bytes resident (17 bytes of typed arrays, at up
 * to twice that while they grow; its handle in the result array and text); doubled. Its
 * pages cost nothing more: page state lives in per-section arrays made at boot.
 */
const BYTES_PER_RAW_BLOCK = 192;
/** One process (`mm new`): its mm and its session entry, measured at ≈1.4 KB resident; doubled. */
const BYTES_PER_MM = 3072;

/** The default budget: half the host's memory, at most 4 GiB. */
export function defaultMaxMemory(): number {
  return Math.min(4 * 2 ** 30, Math.floor(os.totalmem() / 2));
}

export class MemoryBudget {
  constructor(readonly maxBytes: number, private readonly resident: () => number = () => process.memoryUsage.rss()) {}

  /** Why `cmd` may not run (an `err` reason, without the verb), or null when it fits. */
  refusal(m: Machine, cmd: Command): string | null {
    const need = this.need(m, cmd);
    if (need === 0) return null;
    const held = this.resident();
    if (held + need <= this.maxBytes) return null;
    this.lastRefusal = `could need ${formatSize(need)} more of the daemon's memory; it holds ${formatSize(held)} of its budget `
      + `${formatSize(this.maxBytes)} (mount --max-memory); nothing ran`;
    return this.lastRefusal;
  }

  /** The latest refusal (replay says so: a refused command is why a replay differs). */
  lastRefusal: string | null = null;

  /** An upper bound on the memory `cmd` adds (0: nothing worth counting). */
  need(m: Machine, cmd: Command): number {
    const freePages = m.freePagesTotal();
    switch (cmd.verb) {
      case 'touch': {
        const stride = cmd.stride ?? m.pageSize;
        return Math.min(Math.ceil(cmd.size / stride), freePages) * BYTES_PER_PAGE;
      }
      case 'alloc':
        return Math.min(cmd.count ?? 1, Math.floor(freePages / 2 ** cmd.order)) * BYTES_PER_RAW_BLOCK;
      case 'mm new':
        return BYTES_PER_MM;
      case 'mmap':
        return BYTES_PER_MMAP;
      default:
        return 0;
    }
  }
}
