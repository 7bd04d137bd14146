// check() is the oracle every fuzz and property test trusts, so each of its rules gets a test
// that breaks exactly that rule on the tiny machine (TINY in test/helpers/model.ts) and expects
// check() to name it. The DMA zone is 512 pristine sections of 8 pages (pfn 0…4095).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOT_ZEROED, PCP_COLD, PCP_HOT, PCP_ZEROED, ZEROED, check, checkSteps, createMachine } from '../../src/model';
import { HP_ZEROED, type HugetlbPool } from '../../src/model/hugetlb';
import type { Machine, Zone } from '../../src/model';
import { KIND_ALLOC, KIND_FREE, KIND_PCP, KIND_SCRUB, pageFlags } from '../../src/model/page';
import { Holder, assertChecked, tiny, zoneNamed } from '../helpers/model';

/** A tiny machine with one order-0 block at pfn 0 of DMA held (DMA then lists 1, 2 and 4 free). */
function held(): { m: Machine; z: Zone; h: Holder; pfn: number } {
  const m = tiny();
  const z = zoneNamed(m, 0, 'DMA');
  const h = new Holder(m);
  const pfn = h.take(z, 0, NOT_ZEROED);
  assert.equal(pfn, 0);
  assertChecked(m, 'before the corruption');
  return { m, z, h, pfn };
}

function broken(m: Machine, expected: RegExp): void {
  const err = check(m);
  assert.ok(err !== null, 'check() finds the corruption');
  assert.match(err, expected);
}

describe('model: check() finds each broken invariant', () => {
  it('when nr_free of a listed order is off by one then check names the list and nr_free', () => {
    const { m, z } = held();
    z.nrFree[NOT_ZEROED]![2]!++;
    broken(m, /^zone DMA \(node 0\): the not zeroed order-2 list has 1 blocks, nr_free 2$/);
  });

  it('when nr_free of the top order disagrees with the pristine sections then check says so', () => {
    const { m, z } = held();
    z.nrFree[NOT_ZEROED]![3]!--;
    broken(m, /nr_free\[not zeroed\]\[3\] is 510 but 511 blocks are free/);
  });

  it('when two free buddies of one order and class sit unmerged then check names both', () => {
    const { m, z, h } = held();
    // Free pfn 0 beside its free buddy pfn 1 without merging them: the rule freeBlock keeps.
    h.pfns.delete(0);
    z.setHead(0, pageFlags(KIND_FREE, 0, NOT_ZEROED));
    z.freeList[NOT_ZEROED]![0]!.push(0);
    z.nrFree[NOT_ZEROED]![0]!++;
    z['freePages']++; // corrupt on purpose: only the zone may write it
    broken(m, /free buddies at pfn 0 and 1 \(order 0, not zeroed\) were not merged/);
  });

  it('when free buddies of different classes sit side by side then check accepts them', () => {
    const { m, z, h } = held();
    h.free(z, 0, 0, ZEROED); // zeroed pfn 0 beside not-zeroed pfn 1: they must not merge
    assert.equal(z.nrFree[ZEROED]![0], 1);
    assertChecked(m);
  });

  it('when a dirty page sits on a zeroed per-cpu list then check says it is not zeroed', () => {
    const { m, z, h, pfn } = held();
    h.pfns.delete(pfn);
    z.pcpPush(z.pageset[0]![PCP_ZEROED]!, pfn, NOT_ZEROED);
    broken(m, /pfn 0 is on cpu0's zeroed list but is not zeroed/);
  });

  it('when a zeroed page sits on a zeroed per-cpu list then check accepts it', () => {
    const { m, z, h, pfn } = held();
    h.pfns.delete(pfn);
    z.setZero(pfn, 1, true); // cleared, as a zero driver would
    z.pcpPush(z.pageset[0]![PCP_ZEROED]!, pfn, ZEROED);
    assertChecked(m);
  });

  it('when a page tagged zeroed on a per-cpu list holds dirty bytes then check says its bytes are not zero', () => {
    // The class and the content disagree: a zeroed refill topped up with a dirty page.
    const { m, z, h, pfn } = held();
    h.pfns.delete(pfn);
    z.pcpPush(z.pageset[0]![PCP_ZEROED]!, pfn, ZEROED);
    broken(m, /^zone DMA \(node 0\): pfn 0 is on cpu0's zeroed list tagged zeroed, but its bytes are not zero$/);
    const { m: m2, z: z2, h: h2 } = held();
    h2.pfns.delete(0);
    z2.pcpPush(z2.pageset[0]![PCP_HOT]!, 0, ZEROED);
    broken(m2, /pfn 0 is on cpu0's hot list tagged zeroed, but its bytes are not zero/);
  });

  it('when a page of a free zeroed block is written then check names the block and the page', () => {
    const { m, z, h } = held();
    const pfn = h.take(z, 2, NOT_ZEROED); // the order-2 block at 4
    h.free(z, pfn, 2, ZEROED);
    assertChecked(m, 'a cleared block on the zeroed lists');
    z.setZero(pfn + 3, 1, false);
    broken(m, /the free zeroed order-2 block at pfn 4 holds pfn 7, whose bytes are not zero/);
  });

  it('when a dirty page sits on the zeroed lists then __GFP_ZERO refuses to hand it out as prezeroed', () => {
    const m = tiny();
    const z = zoneNamed(m, 0, 'DMA32'); // the zone node 0's allocations try first
    const h = new Holder(m);
    const pfn = h.take(z, 0, NOT_ZEROED);
    h.pfns.delete(pfn);
    z.freeBlock(pfn, 0, ZEROED); // tagged zeroed, never cleared: its bytes are the old ones
    broken(m, new RegExp(`the free zeroed order-0 block at pfn ${pfn} holds pfn ${pfn}, whose bytes are not zero`));
    assert.throws(() => m.allocPages(0, true, 0, 0), new RegExp(`pfn ${pfn} was handed out as prezeroed but its bytes are not zero`));
  });

  it('when a section comes off the pristine zeroed list then its pages read as zero, and off the dirty one as not', () => {
    const { z } = held();
    assert.equal(z.isZero(0), false);
    assert.equal(z.isZero(8), false, 'a pristine not-zeroed section');
    const { z: z2, h: h2 } = held();
    const pfn = h2.take(z2, 3, NOT_ZEROED); // a whole section of 8 pages
    h2.free(z2, pfn, 3, ZEROED);
    assert.equal(z2.isZero(pfn + 5), true, 'a pristine zeroed section');
    const again = h2.take(z2, 0, ZEROED);
    assert.equal(again, pfn);
    assert.equal(z2.isZero(pfn + 5), true, 'materialized from the zeroed section');
  });

  it('when kscrubd holds a block whose page says otherwise then check names the kscrubd', () => {
    const m = tiny();
    const k = m.kscrubd[0]!;
    const z = zoneNamed(m, 0, 'DMA');
    const h = new Holder(m);
    const pfn = h.take(z, 0, NOT_ZEROED);
    (k as unknown as { inFlight: () => unknown }).inFlight = () => ({ zone: z, pfn, order: 0 });
    broken(m, /^kscrubd0 holds the order-0 block at pfn 0, but the page says pfn 0 \(kind 3, order 0, not zeroed\)$/);
  });

  it('when a per-cpu list holds a pfn outside its zone then check says so', () => {
    const { m, z } = held();
    z.pageset[0]![PCP_HOT]!.list.push(z.endPfn);
    z['pcpPages']++; // corrupt on purpose: only the zone may write it
    broken(m, new RegExp(`pfn ${z.endPfn} is on cpu0's hot list but outside the zone`));
  });

  it('when a block is misaligned, a tail is marked as a head, or a kind is unknown then check names the page', () => {
    const { m, z, h } = held();
    assert.equal(h.take(z, 0, NOT_ZEROED), 1);
    z.setHead(1, pageFlags(KIND_ALLOC, 1, NOT_ZEROED)); // an order-1 block cannot start at 1
    broken(m, /pfn 1: a allocated block of order 1 is misaligned/);
    const { m: m2, z: z2 } = held();
    z2.setHead(5, pageFlags(KIND_ALLOC, 0, NOT_ZEROED)); // inside the free order-2 block at 4
    broken(m2, /pfn 5 is inside the order-2 block at 4 but is marked as a head/);
    const { m: m3, z: z3, h: h3 } = held();
    h3.pfns.delete(0);
    z3.setHead(0, 7 << 6); // kind 7: none of page.ts's
    broken(m3, /pfn 0 has an unknown kind 7/);
  });

  it('when a section state is unknown, records are missing, or a free top-order block stays materialized then check says so', () => {
    const { m, z } = held();
    z.secState[3] = 9;
    broken(m, /section 3 has unknown state 9/);
    const { m: m2, z: z2 } = held();
    z2.sections.delete(z2.firstSec);
    broken(m2, /section 0 is materialized but has no page records/);
    const { m: m3, z: z3, h: h3 } = held();
    h3.pfns.delete(0);
    const flags = z3.sections.get(z3.firstSec)!;
    flags.fill(0);
    flags[0] = pageFlags(KIND_FREE, 3, NOT_ZEROED);
    for (let o = 0; o < 3; o++) z3.nrFree[NOT_ZEROED]![o] = 0; // the lists' entries are stale now
    broken(m3, /section 0 is one free top-order block but is still materialized/);
  });

  it('when a per-cpu page has an order above 0 then check says so', () => {
    const { m, z, h } = held();
    const pfn = h.take(z, 2, NOT_ZEROED);
    h.pfns.delete(pfn);
    z.setHead(pfn, pageFlags(KIND_PCP, 2, NOT_ZEROED));
    broken(m, /pfn 4 is on a per-cpu list with order 2/);
  });

  it('when one page is on two per-cpu lists then check says so', () => {
    const { m, z, h, pfn } = held();
    h.pfns.delete(pfn);
    z.pcpPush(z.pageset[0]![PCP_HOT]!, pfn, NOT_ZEROED);
    z.pageset[0]![PCP_COLD]!.list.push(pfn);
    z['pcpPages']++; // corrupt on purpose: only the zone may write it
    broken(m, /pfn 0 is on two per-cpu lists/);
  });

  it('when a page says per-cpu but no list has it then check says so', () => {
    const { m, z, h, pfn } = held();
    h.pfns.delete(pfn);
    z.setHead(pfn, pageFlags(KIND_PCP, 0, NOT_ZEROED));
    z['pcpPages']++; // corrupt on purpose: only the zone may write it
    broken(m, /pfn 0 says per-cpu but is on no per-cpu list/);
  });

  it('when a per-cpu list holds a page that is not a per-cpu page then check says so', () => {
    const { m, z, pfn } = held();
    z.pageset[0]![PCP_HOT]!.list.push(pfn);
    broken(m, /pfn 0 is on cpu0's hot list but its page says otherwise/);
  });

  it('when nobody holds an allocated block then check calls it leaked', () => {
    const { m, h, pfn } = held();
    h.pfns.delete(pfn);
    broken(m, /pfn 0 is an allocated order-0 block that nobody holds \(leaked\)/);
  });

  it('when two owners hold one block then check names both', () => {
    const { m, pfn } = held();
    const other = new Holder(m);
    other.pfns.add(pfn);
    broken(m, /pfn 0 is held by both test holder and test holder/);
  });

  it('when an owner holds a page that is not an allocated block head then check says so', () => {
    const { m, h } = held();
    h.pfns.add(1); // the free order-0 block at pfn 1
    broken(m, /test holder holds pfn 1, which is not an allocated block head/);
    const { m: m2, h: h2 } = held();
    h2.pfns.add(2 ** 40); // outside memory
    broken(m2, /holds pfn 1099511627776, which is not an allocated block head \(outside memory\)/);
  });

  it('when an allocated block is still tagged zeroed then check says so', () => {
    const { m, z, pfn } = held();
    z.setHead(pfn, pageFlags(KIND_ALLOC, 0, ZEROED));
    broken(m, /pfn 0 is allocated but still tagged zeroed/);
  });

  it('when a free block is on no free list though nr_free agrees with the lists then check says so', () => {
    const { m, z } = held();
    const list = z.freeList[NOT_ZEROED]![1]!;
    assert.deepEqual(list, [2]);
    list.pop();
    z.nrFree[NOT_ZEROED]![1]!--; // the list and nr_free now agree; the page still says free
    broken(m, /the free not zeroed order-1 block at pfn 2 is on no free list/);
  });

  it('when a block head is lost then check finds the tail page with no head', () => {
    const { m, z, h } = held();
    const pfn = h.take(z, 2, NOT_ZEROED); // the order-2 block at 4, allocated
    h.pfns.delete(pfn);
    z.setHead(pfn, 0); // its pages 4…7 are now all tails
    broken(m, /pfn 4 belongs to no block \(a tail page with no head\)/);
  });

  it('when a page says kscrubd holds it but none does then check says so', () => {
    const { m, z, h, pfn } = held();
    h.pfns.delete(pfn);
    z.setHead(pfn, pageFlags(KIND_SCRUB, 0, NOT_ZEROED));
    broken(m, /pfn 0 says kscrubd holds it, but no kscrubd does/);
  });

  it('when a pristine section has page records then check says so', () => {
    const { m, z } = held();
    z.sections.set(z.firstSec + 5, new Uint16Array(z.secPages));
    broken(m, /section 5 is pristine but has page records/);
  });

  for (const [counter, expected] of [
    ['freePages', /free_pages is 4096 but the free blocks hold 4095/],
    ['zeroPages', /zero_pages is 1 but the zeroed lists hold 0/],
    ['pcpPages', /per-cpu lists hold 0 pages but the zone counts 1/],
    ['reservedPages', /reserved pages are 0 but the zone counts 1/],
    ['scrubPages', /kscrubd holds 0 pages but the zone counts 1/],
    ['giganticPages', /gigantic hugetlb sections hold 0 pages but the zone counts 1/],
  ] as const) {
    it(`when the zone's ${counter} is off by one then check says so`, () => {
      const { m, z } = held();
      z[counter]++;
      broken(m, expected);
    });
  }
});

describe('model: check() finds each broken invariant of a partial section, the block zero flag and the hugetlb pools', () => {
  it('when a page past a partial last section\'s end is marked as a head then check says so', () => {
    // altix, 256 MiB, 16 KiB pages, MAX_ORDER 18: the zone is 16384 pages of one 2^17-page
    // section, materialized at boot; the flags past pfn 16383 must stay 0.
    const m = createMachine({ preset: 'altix', mem: '256M', nodes: 1, cpus: 1, clock: 'manual', bootAllocations: false });
    const z = m.zones[0]!;
    assert.equal(z.secLen(0), 16384);
    assertChecked(m, 'before the corruption');
    z.sections.get(z.firstSec)![16384] = pageFlags(KIND_FREE, 0, NOT_ZEROED);
    broken(m, /^zone DMA \(node 0\): pfn 16384 is past the zone's end but is marked as a head$/);
  });

  it('when the zero flag is on the block (prezero) and free buddies of both classes sit unmerged then check names both', () => {
    // The Anolis-style pool: a buddy merges whatever its flag, and the merge drops the flag.
    const m = tiny({ zeroingPolicy: ['prezero'] });
    const z = zoneNamed(m, 0, 'DMA');
    assert.equal(z.mergeLosesZero, true);
    const h = new Holder(m);
    assert.equal(h.take(z, 0, NOT_ZEROED), 0);
    assertChecked(m, 'before the corruption');
    // Free pfn 0 as zeroed beside its free not-zeroed buddy pfn 1, without the merge freeBlock does.
    h.pfns.delete(0);
    z.setZero(0, 1, true);
    z.setHead(0, pageFlags(KIND_FREE, 0, ZEROED));
    z.freeList[ZEROED]![0]!.push(0);
    z.nrFree[ZEROED]![0]!++;
    z['freePages']++; // corrupt on purpose: only the zone may write them
    z['zeroPages']++;
    broken(m, /^zone DMA \(node 0\): free buddies at pfn 0 and 1 \(order 0, zeroed and not\) were not merged$/);
  });

  /** x86_64, 4 GiB on 2 nodes (MAX_ORDER 11): a 2 MiB page and a 1 GiB page in the pools of node 1. */
  function pools(): { m: Machine; small: HugetlbPool; giant: HugetlbPool } {
    const m = createMachine({ preset: 'x86_64', mem: '4G', nodes: 2, cpus: 2, clock: 'manual', bootAllocations: false });
    const small = m.hugetlb.poolOf(2 ** 21, 'test');
    const giant = m.hugetlb.poolOf(2 ** 30, 'test');
    m.hugetlb.setNrHugepages(small, 1, 1);
    m.hugetlb.setNrHugepages(giant, 1, 1);
    assert.equal(small.nr + giant.nr, 2);
    assertChecked(m, 'before the corruption');
    return { m, small, giant };
  }

  for (const [what, corrupt, expected] of [
    ['nr_hugepages', (p: HugetlbPool) => { p.nrNode[1]!++; }, /^hugetlb hugepages-2048kB node 1: nr_hugepages is 2 but the pool holds 1 pages$/],
    ['free_hugepages', (p: HugetlbPool) => { p.freeNode[1]!--; }, /^hugetlb hugepages-2048kB node 1: free_hugepages is 0 but 1 pages are free$/],
    ['free_huge_pages_zero', (p: HugetlbPool) => { p.zeroNode[1]!++; }, /^hugetlb hugepages-2048kB node 1: free_huge_pages_zero is 1 but 0 free pages are zeroed$/],
    ['resv_hugepages', (p: HugetlbPool) => { p.resv = 2; }, /^hugetlb hugepages-2048kB: resv_hugepages 2 exceeds free_hugepages 1$/],
  ] as const) {
    it(`when a pool's ${what} disagrees with its pages then check names the pool, the node and the counter`, () => {
      const { m, small } = pools();
      corrupt(small);
      broken(m, expected);
    });
  }

  it('when a free pool page counted as zeroed holds dirty bytes then check names the page (the content oracle)', () => {
    const { m, small } = pools();
    let id = -1;
    small.forEachPage((x) => { id = x; });
    // Said zeroed without a clear: what a khzerod or zeroable_hugepages bug would leave.
    small.setState(id, HP_ZEROED);
    small.zeroNode[1]!++;
    const pfn = small.pfn(id);
    broken(m, new RegExp(`^hugetlb hugepages-2048kB: the free zeroed page at pfn ${pfn} holds pfn ${pfn}, whose bytes are not zero$`));
  });

  it('when a section of a gigantic page is given back to the buddy state then check names the page and the section', () => {
    const { m, giant } = pools();
    let pfn = -1;
    giant.forEachPage((x) => { pfn = giant.pfn(x); });
    const z = m.zoneOf(pfn);
    const sec = pfn / z.secPages + 7;
    z.secState[sec - z.firstSec] = 0; // SEC_FREE
    broken(m, new RegExp(`^hugetlb hugepages-1048576kB: the gigantic page at pfn ${pfn} has section ${sec} outside it$`));
  });
});

describe('model: check() in steps', () => {
  it('when checkSteps runs to the end then it yields between owners and zones and returns what check returns', () => {
    const m = tiny();
    let steps = 0;
    const it = checkSteps(m);
    let r = it.next();
    for (; !r.done; r = it.next()) steps++;
    assert.equal(r.value, null);
    // DMA (512 sections: 2 steps of 256) and DMA32 (1536: 6), one step per zone's lists, one per owner.
    assert.equal(steps, m.owners.size + 2 + 2 + 6);
    const { m: bad, h } = held();
    h.pfns.delete(0);
    const steps2 = checkSteps(bad);
    let r2 = steps2.next();
    while (!r2.done) r2 = steps2.next();
    assert.equal(r2.value, check(bad));
    assert.match(String(r2.value), /leaked/);
  });
});
