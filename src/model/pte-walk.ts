import type { Mm, ProcessTable } from './mm-types';
import type { Runner } from './runner';

/**
 * How a touch's runners walk their addresses: the pte page each is in (remembered per runner:
 * a runner goes through its share in address order, a PMD at a time, and pte pages live as
 * long as the mm), the index of an address in it, and the next address.
 */
export class PteWalk {
  private readonly pmdBytes: number;

  constructor(
    private readonly procs: ProcessTable,
    private readonly mm: Mm,
    /** Distance between a range runner's addresses. */
    private readonly stride: number,
    private readonly ps: number,
  ) {
    this.pmdBytes = procs.pmdBytes;
  }

  /** The pte page covering `addr`, if there is one yet; one found is remembered by the runner. */
  peek(r: Runner, addr: number): Float64Array | null {
    if (addr >= r.tableStart && addr < r.tableEnd) return r.table;
    const table = this.procs.ptePeek(this.mm, addr);
    if (!table) return null;
    this.remember(r, addr, table);
    return table;
  }

  remember(r: Runner, addr: number, table: Float64Array): void {
    const pmdBytes = this.pmdBytes;
    r.table = table;
    r.tableStart = Math.floor(addr / pmdBytes) * pmdBytes;
    r.tableEnd = r.tableStart + pmdBytes;
  }

  /**
   * Index of `addr`'s pte in the runner's pte page (peek found it). Not `%`: addresses
   * pass 2^31, and V8's double `%` is a libm fmod call.
   */
  index(r: Runner, addr: number): number {
    return (addr - r.tableStart) / this.ps;
  }

  /** On to the runner's next address: a stride on in a range, the next entry in a list. */
  advance(r: Runner): void {
    const list = r.list;
    if (list === null) {
      r.addr += this.stride;
      return;
    }
    const i = ++r.li;
    if (i >= list.length) {
      r.addr = r.end;
      return;
    }
    r.addr = list[i]!;
    r.write = r.writes![i] === 1;
    if (r.addr < r.vma.start || r.addr >= r.vma.end) r.vma = this.mm.findVma(r.addr)!;
  }
}
