import debugFactory from 'debug';
import { Clock } from './clock';
import { Cpus, LoadAvg } from './sched';
import { NodeBus } from './membw';
import { Llc } from './llc';
import { CostModel } from './cost';
import { VmEvents } from './counters';
import { ModelError } from '../uapi';
import { assert } from './errors';
import { FreeClass, KIND_ALLOC, NOT_ZEROED, ZEROED, classOf, orderPages, pageFlags } from './page';
import { MachineConfig, MachineOptions, NODE_GRANULE_ORDER, ZONE_TYPES, kernelAtLeast, resolveConfig } from './presets';
import { SysctlName, SysctlSpec, checkSysctl, sysctlSpecs } from './sysctl';
import { BteZeroDriver, CpuZeroDriver, ZeroDriver, makeZeroDrivers } from './zero-drivers';
import { Kscrubd } from './kscrubd';
import { Processes } from './mm';
import { LineCosts } from './cacheline';
import { FOLIO_BATCH_SIZE, PAGEVEC_SIZE, Pagevecs } from './pagevec';
import { AllocResult } from './alloc-result';
import { RawBlocks } from './raw';
import { type FreeListener, PCP_COLD, PCP_HOT, PCP_ZEROED, Zone, ZoneName } from './zone';
import { ZeroingPolicy } from './policies/init-on';
import { Hugetlb } from './hugetlb';
import { type KnobSpec, type PolicyKnob, checkKnob, initialKnobs, knobSpecs } from './policies/knobs';
import { IdleZeroRule, PrezeroRule } from './policies/zero-rules';
import { Watermarks, type WmarkSysctlName, zoneWatermarkOk } from './watermarks';
import { attachPcpOrders, drainAll, drainPcp, freePcpOrder, pcpKeeps, pcpOrders, rmqueuePcpOrder } from './pcp-orders';
import type { PageOwner, Parts } from './parts';

const log = debugFactory('kscrubfs:model');

export { AllocResult };

const SLAB_ORDER = 2;

/**
 * The simulated machine: nodes, zones, CPUs, the allocator, kscrubd, time. Pure and
 * deterministic: it does no I/O, reads no clock and draws no random numbers: the same calls give
 * the same state.
 */
export class Machine implements Parts, FreeListener {
  readonly config: MachineConfig;
  readonly cost: CostModel;
  readonly zones: Zone[] = [];
  readonly nodeZones: Zone[][] = [];
  /** Per node: the zones an allocation on that node tries, in order (local first). */
  readonly zonelists: Zone[][] = [];
  readonly cpus: Cpus;
  /** What moving a cacheline between two CPUs costs (the fault path's locks and counters). */
  readonly lines: LineCosts;
  /** Each CPU's LRU pagevec. */
  readonly pagevecs: Pagevecs;
  /** Each node's memory bus (who is zeroing on it). */
  readonly bus: NodeBus;
  /** The last-level caches: what clearing and cold touches fill them with, whose lines they evict. */
  readonly llc: Llc;
  readonly clock: Clock;
  readonly loadavg = new LoadAvg();
  readonly kscrubd: Kscrubd[] = [];
  readonly zeroDrivers: ZeroDriver[];
  readonly cpuZero: CpuZeroDriver;
  /** The zeroing policies booted with (kscrubd, init_on_free, init_on_alloc). */
  readonly policy: ZeroingPolicy;
  /** init_on_free's boot-time wipe: pages cleared, and one CPU's time for it (before the clock starts). */
  readonly bootWipe = { pages: 0, ns: 0 };
  readonly specs: Readonly<Record<SysctlName, SysctlSpec>>;
  readonly sysctl: Record<SysctlName, number>;
  /** The zeroed-page pool's and the idle zeroer's files (policies/knobs.ts). */
  readonly knobSpecs: Readonly<Record<PolicyKnob, KnobSpec>>;
  readonly knobs: Record<PolicyKnob, number>;
  readonly vm = new VmEvents();
  /** Whoever holds allocated blocks (processes, raw blocks, boot slab): check() asks each. */
  readonly owners = new Set<PageOwner>();
  /**
   * Memory the kernel allocated from the buddy lists while booting (slab caches, per-cpu
   * areas, init's page tables): why MemFree < MemTotal on a machine that has run nothing.
   */
  readonly slab: PageOwner & { readonly blocks: number[]; pages: number };
  /**
   * The slowest anonymous fault since it was last set to 0: what an in-process comparison
   * (kscrubfs policies trace) reads when the faults came through control lines, whose results
   * carry no per-fault times. No file shows it.
   */
  slowestFaultNs = 0;
  /** kscrubd threads holding a block while they wait for a CPU of their node (kscrubd.ts). */
  private _kscrubdWaiting = 0;
  get kscrubdWaiting(): number { return this._kscrubdWaiting; }
  /** A kscrubd holding a block starts (+1) or stops (−1) waiting for a CPU of its node. */
  kscrubdWaits(delta: 1 | -1): void {
    this._kscrubdWaiting += delta;
  }
  /** A modern kernel's watermark sysctls and their setup (null on 2.6.11: setupWatermarks()). */
  readonly watermarks: Watermarks | null;
  private readonly bootMinFreeKbytes: number;
  get minFreeKbytes(): number {
    return this.watermarks?.minFreeKbytes ?? this.bootMinFreeKbytes;
  }
  readonly totalPages: number;
  /** Processes (mm), their page tables and tasks, and their counters. */
  readonly procs: Processes;
  /** The control file's raw blocks (`alloc`, `free`). */
  readonly raw: RawBlocks;
  /** hugetlb pools per size and node, khzerod, zeroable_hugepages (hugetlb.ts). */
  readonly hugetlb: Hugetlb;
  /** rmqueuePcpOrder()'s count of blocks a refill moved (reused: one array, not one per allocation). */
  private readonly pcpMoved = [0];
  /** zoneOf()'s last answer. */
  private lastZone: Zone | undefined;

  constructor(opts: MachineOptions = {}) {
    const cfg = resolveConfig(opts);
    this.config = cfg;
    this.cost = cfg.cost;
    this.clock = new Clock(cfg.clock, cfg.speed);
    this.cpus = new Cpus(cfg.cpus, cfg.nodes, cfg.llcCpus, cfg.nodeBalanceMaxNs, cfg.balanceTimers === true);
    this.lines = new LineCosts(this.cpus.nodeOf, cfg.cost);
    this.pagevecs = new Pagevecs(cfg.cpus, kernelAtLeast(cfg.kernel, '6.18') ? FOLIO_BATCH_SIZE : PAGEVEC_SIZE);
    this.bus = new NodeBus(this.cpus.nodeOf, cfg.cost.fsbBytesPerNs);
    this.llc = new Llc(cfg.cpus, cfg.llcCpus, cfg.cost.cacheBytes, cfg.lineSize);
    this.specs = sysctlSpecs(cfg.maxOrder);
    this.sysctl = {
      scrub_start: this.specs.scrub_start.initial,
      scrub_stop: this.specs.scrub_stop.initial,
      scrub_load: this.specs.scrub_load.initial,
      // Lameter's V2 prefault is part of the patched 2.6.11 the old presets model; a kernel of
      // today never prefaulted anonymous memory, so there the sysctl starts off.
      max_prealloc_order: kernelAtLeast(cfg.kernel, '6.18') ? 0 : this.specs.max_prealloc_order.initial,
    };
    this.zeroDrivers = makeZeroDrivers(cfg.zeroDrivers.filter((d) => d !== 'cpu'), cfg.cost, cfg.pageSize, cfg.cpus / cfg.nodes);
    this.cpuZero = new CpuZeroDriver(cfg.cost, cfg.pageSize, cfg.cpus / cfg.nodes);
    this.policy = new ZeroingPolicy(cfg.zeroingPolicy, this.cpuZero, cfg.pageSize);
    this.knobSpecs = knobSpecs(cfg.maxOrder);
    this.knobs = initialKnobs(this.knobSpecs, cfg.zeroingPolicy);
    this.totalPages = cfg.memBytes / cfg.pageSize;
    this.buildZones();
    this.reserveBootMemory();
    // A modern kernel's lists (zone_batchsize, zone_highsize, 6.7's scaled refills and drains).
    const modern = kernelAtLeast(cfg.kernel, '6.7');
    this.watermarks = modern ? new Watermarks({
      zones: this.zones, nodeZones: this.nodeZones, zoneTypes: ZONE_TYPES[cfg.zoneLayout], pageSize: cfg.pageSize, thpPageblockOrder: this.thpPageblockOrder(),
    }) : null;
    this.watermarks?.boot();
    this.bootMinFreeKbytes = this.watermarks ? 0 : this.setupWatermarks();
    for (const z of this.zones) z.setupPagesets(cfg.pageSize, cfg.cpus, cfg.cpus / cfg.nodes, modern);
    // 5.13's high-order lists beside order 0 (pcp-orders.ts), on every modern kernel's lists.
    if (modern) {
      const orders = pcpOrders(this.thpPageblockOrder(), cfg.maxOrder);
      for (const z of this.zones) attachPcpOrders(z, orders, cfg.cost.cacheBytes / cfg.llcCpus, cfg.pageSize);
    }
    for (let n = 0; n < cfg.nodes; n++) {
      // The node's background zeroing thread: kscrubd, or the pool's kprezerod, or the idle zeroer.
      const rule = this.policy.prezero ? new PrezeroRule(n) : this.policy.idlezero ? new IdleZeroRule(n) : null;
      const k = new Kscrubd(n, rule);
      k.armTimer(this);
      this.kscrubd.push(k);
    }
    this.buildZonelists();
    this.procs = new Processes(this);
    this.raw = new RawBlocks(this);
    this.slab = this.bootAllocations();
    if (this.policy.initOnFree) this.wipeAtBoot();
    this.hugetlb = new Hugetlb(this);
    // FreeBSD starts its idle zeroer runnable: it zeroes from boot until its hysteresis stops it.
    if (this.policy.idlezero) for (let n = 0; n < cfg.nodes; n++) this.idleWakeup(n);
    log('booted %s: %d pages, %d zones', cfg.preset, this.totalPages, this.zones.length);
  }

  get now(): number {
    return this.clock.now;
  }
  get pageSize(): number {
    return this.config.pageSize;
  }
  get maxOrder(): number {
    return this.config.maxOrder;
  }

  // ---- boot -----------------------------------------------------------------------------------

  /** Zone boundaries as pfns, rounded to whole node granules (presets.ts: as nodes are). */
  private zoneBounds(): { name: ZoneName; end: number }[] {
    const cfg = this.config;
    const sec = 2 ** Math.min(cfg.maxOrder - 1, NODE_GRANULE_ORDER);
    const roundUp = (bytes: number): number => Math.ceil(bytes / cfg.pageSize / sec) * sec;
    if (cfg.zoneLayout === 'ia64') return [{ name: 'DMA', end: Number.POSITIVE_INFINITY }];
    // i386 without PAE: the kernel maps only the first 896 MiB (lowmem); the rest is HighMem.
    if (cfg.zoneLayout === 'i386') {
      return [
        { name: 'DMA', end: roundUp(16 * 2 ** 20) },
        { name: 'Normal', end: roundUp(896 * 2 ** 20) },
        { name: 'HighMem', end: Number.POSITIVE_INFINITY },
      ];
    }
    return [
      { name: 'DMA', end: roundUp(16 * 2 ** 20) },
      { name: 'DMA32', end: roundUp(4 * 2 ** 30) },
      { name: 'Normal', end: Number.POSITIVE_INFINITY },
    ];
  }

  private buildZones(): void {
    const cfg = this.config;
    const perNode = this.totalPages / cfg.nodes;
    const bounds = this.zoneBounds();
    for (let n = 0; n < cfg.nodes; n++) {
      const start = n * perNode;
      const end = start + perNode;
      const mine: Zone[] = [];
      let lo = 0;
      for (const b of bounds) {
        const zs = Math.max(start, lo);
        const ze = Math.min(end, b.end);
        lo = b.end;
        if (ze <= zs) continue;
        const z = new Zone({
          id: this.zones.length, node: n, name: b.name, startPfn: zs, endPfn: ze, maxOrder: cfg.maxOrder,
          mergeLosesZero: this.policy.zeroFlagOnBlock,
        });
        this.zones.push(z);
        mine.push(z);
      }
      this.nodeZones.push(mine);
    }
  }

  /** mem_map at the start of each node's highest lowmem zone, plus the kernel image on node 0. */
  private reserveBootMemory(): void {
    const cfg = this.config;
    const perNode = this.totalPages / cfg.nodes;
    for (let n = 0; n < cfg.nodes; n++) {
      let pages = Math.ceil((perNode * cfg.structPageBytes) / cfg.pageSize) + 3; // + pgdat, a few boot pages
      if (n === 0) pages += Math.ceil(cfg.kernelBytes / cfg.pageSize);
      // The kernel must reach mem_map through its direct mapping: never HighMem.
      const lowmem = this.nodeZones[n]!.filter((x) => x.name !== 'HighMem');
      const z = lowmem[lowmem.length - 1]!;
      // Leave the zone a top-order block, or half of itself when it holds none.
      z.reserveRange(z.startPfn, Math.min(pages, z.spannedPages - Math.min(z.secPages, z.spannedPages / 2)));
    }
  }

  /** min_free_kbytes = sqrt(lowmem kB × 16), shared out by zone size; low/high as 2.6.11. */
  private setupWatermarks(): number {
    const managed = this.zones.reduce((s, z) => s + z.managedPages, 0);
    const kb = (managed * this.pageSize) / 1024;
    const minFree = Math.min(65536, Math.max(128, Math.floor(Math.sqrt(kb * 16))));
    const minPages = Math.floor((minFree * 1024) / this.pageSize);
    for (const z of this.zones) {
      z.setWatermarks(Math.floor((minPages * z.managedPages) / managed));
    }
    return minFree;
  }

  /**
   * Unmovable order-2 kernel allocations on every node: ~0.2 % of the node, at most 256 blocks,
   * so the cost stays flat on huge machines. Not zeroed (the kernel initialises slab itself).
   */
  private bootAllocations(): PageOwner & { blocks: number[]; pages: number } {
    const blocks: number[] = [];
    const perNode = this.totalPages / this.config.nodes;
    const count = this.config.bootAllocations ? Math.min(256, Math.ceil(perNode / 2048)) : 0;
    // With MAX_ORDER 2 (orders 0 and 1) there are no order-2 blocks: take the largest there is.
    const order = Math.min(SLAB_ORDER, this.maxOrder - 1);
    for (let n = 0; n < this.config.nodes; n++) {
      const cpu = this.firstCpuOf(n);
      for (let i = 0; i < count; i++) {
        const pfn = this.allocPages(order, false, n, cpu);
        assert(pfn >= 0, 'boot allocations fit');
        blocks.push(pfn);
      }
    }
    // Boot is not a workload: its allocations are not counted as events.
    for (const z of this.zones) z.resetEvents();
    const owner = {
      label: 'kernel (slab)',
      blocks,
      pages: blocks.length * 2 ** order,
      forEachPage: (fn: (pfn: number) => void): void => blocks.forEach(fn),
    };
    this.owners.add(owner);
    return owner;
  }

  /**
   * init_on_free at boot: memblock hands all memory to the buddy lists through
   * free_pages_prepare(), which clears it, so every free page starts zeroed. Counted (pages,
   * and one CPU's time at clear_page's rate) but not on the clock: the machine's time starts
   * after boot.
   */
  private wipeAtBoot(): void {
    for (const z of this.zones) {
      const pages = z.wipeFree();
      this.bootWipe.pages += pages;
      this.bootWipe.ns += pages * this.policy.clearPageNs;
    }
  }

  /** Local zones highest first, then each other node in turn (nearest first by id distance). */
  private buildZonelists(): void {
    const nodes = this.config.nodes;
    for (let n = 0; n < nodes; n++) {
      const list: Zone[] = [];
      for (let k = 0; k < nodes; k++) list.push(...[...this.nodeZones[(n + k) % nodes]!].reverse());
      this.zonelists.push(list);
    }
  }

  zoneOf(pfn: number): Zone {
    // Frees and faults come in runs from one zone: try the last answer first.
    if (this.lastZone?.contains(pfn)) return this.lastZone;
    // buildZones() made them in pfn order: a binary search, not a scan (512 zones on the
    // biggest altix, where 64 threads' faults and frees alternate between nodes).
    const zones = this.zones;
    let lo = 0;
    let hi = zones.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (zones[mid]!.startPfn <= pfn) lo = mid;
      else hi = mid - 1;
    }
    const z = zones[lo];
    if (z !== undefined && z.contains(pfn)) {
      this.lastZone = z;
      return z;
    }
    throw new ModelError('KSCRUB_BAD_ADDRESS', `pfn ${pfn} is outside memory`);
  }

  // ---- allocation -----------------------------------------------------------------------------

  /**
   * __alloc_pages: try the node's zonelist above the low watermark, then above min; fail
   * rather than go below min anywhere. `zero` is __GFP_ZERO. Returns the head pfn or -1;
   * when it succeeds, `served` (if given) says how. A modern kernel's slow path, before it
   * fails, drains every CPU's per-cpu lists and tries once more
   * (__alloc_pages_direct_reclaim: pages "pinned on the per-cpu lists", a THP among them).
   */
  allocPages(order: number, zero: boolean, node: number, cpu: number, served?: AllocResult, cold = false): number {
    const pfn = this.getPageFromFreelist(order, zero, node, cpu, served, cold);
    if (pfn >= 0 || this.watermarks === null || this.pcpPagesTotal() === 0) {
      if (pfn < 0) this.vm.allocFail++;
      return pfn;
    }
    this.drainPcp();
    const again = this.getPageFromFreelist(order, zero, node, cpu, served, cold);
    if (again < 0) this.vm.allocFail++;
    return again;
  }

  /** get_page_from_freelist(): the zonelist's two passes (low, then min); -1 when both fail. */
  private getPageFromFreelist(order: number, zero: boolean, node: number, cpu: number, served: AllocResult | undefined, cold: boolean): number {
    const zl = this.zonelists[node]!;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < zl.length; i++) {
        const z = zl[i]!;
        const mark = pass === 0 ? z.watermarkLow : z.watermarkMin;
        // zone_watermark_ok() for order 0 is the one comparison (every fault comes here);
        // lowmem_reserve[] (allocReserve) is 0 on 2.6.11, whose high orders halve the mark.
        if (order === 0 ? z.freePages - z.scrubPages <= mark + z.allocReserve : this.watermarks ? !zoneWatermarkOk(z, order, mark) : !z.watermarkOk(order, mark)) continue;
        const pfn = this.bufferedRmqueue(z, order, zero, cpu, cold, served);
        if (pfn >= 0) {
          this.zoneStatistics(zl[0]!, z, cpu);
          return pfn;
        }
      }
    }
    return -1;
  }

  /** zone_statistics(): the NUMA events of an allocation `preferred`'s zonelist served from z. */
  private zoneStatistics(preferred: Zone, z: Zone, cpu: number): void {
    z.countNuma(z.node === preferred.node, z.node === this.cpus.nodeOf[cpu]);
    if (z.node !== preferred.node) preferred.foreign();
  }

  /**
   * buffered_rmqueue as the prezeroing patch (V4–V6) has it. `zero` is __GFP_ZERO and
   * zone->zero_pages ≥ 2^order, decided once at the top:
   *   order 0   the per-cpu list of that class (zeroed if `zero`, else hot or cold), refilled by
   *             rmqueue_bulk from that class only — it stops when the class runs out
   *   then      if no page came: under zone->lock, one block of that class, else one of the
   *             other (page by page: no per-cpu batch); taking the other clears `zero`, so a
   *             __GFP_ZERO request clears what it got (prep_zero_page), zeroed or not, and a
   *             plain one uses a zeroed page dirty (wasted)
   * A zeroed per-cpu list is not looked at while the zone has no zeroed pages left.
   */
  private bufferedRmqueue(z: Zone, order: number, zero: boolean, cpu: number, cold: boolean, served: AllocResult | undefined): number {
    // init_on_alloc: post_alloc_hook clears every allocation, as if each asked for __GFP_ZERO.
    const clear = zero || this.policy.initOnAlloc;
    const pages = orderPages(order);
    const zeroOk = clear && z.zeroPages >= pages;
    let fellBack = false;
    let locked = 0;
    let pfn = -1;
    let cls: FreeClass = NOT_ZEROED;
    if (order === 0) {
      const p = z.pageset[cpu]![zeroOk ? PCP_ZEROED : cold ? PCP_COLD : PCP_HOT]!;
      if (p.list.length <= p.low) {
        const moved = z.rmqueueBulk(p, z.pcpAllocBatch(p), zeroOk ? ZEROED : NOT_ZEROED);
        this.vm.pcpRefillPages += moved;
        locked += moved;
      }
      pfn = z.pcpPop(p);
      z.pcpAllocated(p);
      // The page's flags say which class it came with; it is allocated from now on.
      if (pfn >= 0) cls = classOf(z.swapHead(pfn, pageFlags(KIND_ALLOC, 0, NOT_ZEROED)));
    } else if (!zeroOk && pcpKeeps(z.pageset[cpu]![PCP_HOT]!, order)) {
      // A modern kernel's high-order per-cpu list (a zeroed block kscrubd made is taken below).
      pfn = rmqueuePcpOrder(z, z.pageset[cpu]![PCP_HOT]!, order, this.pcpMoved);
      this.vm.pcpRefillPages += this.pcpMoved[0]! * pages;
      locked += this.pcpMoved[0]!;
      if (pfn >= 0) cls = classOf(z.swapHead(pfn, pageFlags(KIND_ALLOC, order, NOT_ZEROED)));
    }
    if (pfn < 0) {
      const allocated = pageFlags(KIND_ALLOC, order, NOT_ZEROED);
      cls = zeroOk ? ZEROED : NOT_ZEROED;
      pfn = z.takeBlock(order, cls, allocated);
      if (pfn < 0) {
        cls = zeroOk ? NOT_ZEROED : ZEROED;
        pfn = z.takeBlock(order, cls, allocated);
        fellBack = true;
      }
      if (pfn < 0) return -1;
      locked += 1;
      z.setHead(pfn, pageFlags(KIND_ALLOC, order, NOT_ZEROED));
    }
    z.countAlloc(pages);
    // A page off a list of its own class keeps what it is; one __rmqueue fell back to is
    // cleared if asked for, even a zeroed one (zero = 0 in the patch: prep_zero_page again).
    const prezeroed = clear && cls === ZEROED && !fellBack;
    const hotZeroed = clear && !prezeroed;
    const wasted = !clear && cls === ZEROED;
    if (prezeroed) this.vm.allocPrezeroed += pages;
    else if (hotZeroed) {
      if (zero) this.vm.allocHotZeroed += pages;
      else this.vm.initOnAllocPages += pages;
    } else if (wasted) this.vm.allocZeroWasted += pages;
    // The content oracle: a page handed to __GFP_ZERO from the zeroed lists must be zero; one
    // zeroed for it now (prep_zero_page, priced by the caller) is zero from here on.
    if (prezeroed) {
      // (The message is built only on failure: this runs for every prezeroed page.)
      for (let i = 0; i < pages; i++) if (!z.isZero(pfn + i)) assert(false, `pfn ${pfn + i} was handed out as prezeroed but its bytes are not zero`);
    } else if (hotZeroed) z.setZero(pfn, pages, true);
    if (served) {
      served.zone = z;
      served.prezeroed = prezeroed;
      served.hotZeroed = hotZeroed;
      served.wasted = wasted;
      served.lockedPages = locked;
    }
    return pfn;
  }

  /**
   * Free an allocated block: order 0 goes to the CPU's hot list (drained in batches above
   * `high`), bigger blocks straight to the buddy lists. Freed memory is dirty: NOT_ZEROED.
   * Precondition: `pfn` heads an allocated block of `order` that its owner has let go of.
   */
  freePages(pfn: number, order: number, cpu: number): void {
    const z = this.zoneOf(pfn);
    // The message is built only on failure: describe() is dear and this is every free.
    if (z.pageFlagsAt(pfn) !== pageFlags(KIND_ALLOC, order, NOT_ZEROED)) assert(false, `free of pfn ${pfn} order ${order}: ${z.describe(pfn)}`);
    this.vm.pgfree += orderPages(order);
    if (this.policy.initOnFree) return this.freeZeroed(z, pfn, order, cpu);
    const hot = z.pageset[cpu]![PCP_HOT]!;
    if (order === 0) {
      z.pcpPush(hot, pfn, NOT_ZEROED);
      const drain = z.pcpFreeCount(hot);
      if (drain > 0) this.vm.pcpDrainPages += drainPcp(z, hot, drain, 0, this, false);
      return;
    }
    if (pcpKeeps(hot, order)) {
      this.vm.pcpDrainPages += freePcpOrder(z, hot, pfn, order, NOT_ZEROED, this, false);
      return;
    }
    this.coalesced(z, z.freeBlock(pfn, order, NOT_ZEROED), NOT_ZEROED);
  }

  /**
   * freePages(pfn + i, 0, cpu) for i = 0 … n − 1, in that order: a zap's run of consecutive
   * pfns, each heading an allocated order-0 block. On a 2.6.11 per-cpu list and a policy
   * whose wake reads only the order a free reached, the run is pushed and drained at once
   * (Zone.pcpFreeRun), leaving everything as the page-by-page frees do; else page by page.
   */
  freePageRun(pfn: number, n: number, cpu: number): void {
    const z = this.zoneOf(pfn);
    const hot = z.pageset[cpu]![PCP_HOT]!;
    if (n === 1 || this.policy.initOnFree || hot.modern || this.everyFree || z.secOf(pfn) !== z.secOf(pfn + n - 1)) {
      for (let i = 0; i < n; i++) this.freePages(pfn + i, 0, cpu);
      return;
    }
    const allocated = pageFlags(KIND_ALLOC, 0, NOT_ZEROED);
    if (!z.allFlagged(pfn, n, allocated)) {
      for (let i = 0; i < n; i++) if (z.pageFlagsAt(pfn + i) !== allocated) assert(false, `free of pfn ${pfn + i} order 0: ${z.describe(pfn + i)}`);
    }
    this.vm.pgfree += n;
    this.vm.pcpDrainPages += z.pcpFreeRun(hot, pfn, n, this);
  }

  /**
   * freePages() under init_on_free: free_pages_prepare clears the block on the freeing CPU
   * (its cost is counted in initOnFreeNs; the zap that freed it charges it), then it goes back
   * ZEROED: a single page to the CPU's list of zeroed pages (drained as the hot list is), a
   * block to the zeroed buddy lists.
   */
  private freeZeroed(z: Zone, pfn: number, order: number, cpu: number): void {
    const pages = orderPages(order);
    z.setZero(pfn, pages, true);
    // free_pages_prepare clears with clear_page: cached stores on the freeing CPU.
    this.llc.clear(cpu, this.cpuZero.fills(pages * this.pageSize));
    this.vm.initOnFreePages += pages;
    this.vm.initOnFreeNs += pages * (z.node === this.cpus.nodeOf[cpu] ? this.policy.clearPageNs : this.policy.clearRemotePageNs);
    if (order === 0) {
      const pz = z.pageset[cpu]![PCP_ZEROED]!;
      z.pcpPush(pz, pfn, ZEROED);
      const drain = z.pcpFreeCount(pz);
      if (drain > 0) this.vm.pcpDrainPages += z.freePagesBulk(pz, drain, this, true);
      return;
    }
    const hot = z.pageset[cpu]![PCP_HOT]!;
    if (pcpKeeps(hot, order)) {
      this.vm.pcpDrainPages += freePcpOrder(z, hot, pfn, order, ZEROED, this, true);
      return;
    }
    this.coalesced(z, z.freeBlock(pfn, order, ZEROED), ZEROED);
  }

  /** FreeListener: idlezero's wake reads the zone after each page freed; kscrubd's only the order reached. */
  get everyFree(): boolean {
    return this.policy.idlezero;
  }

  /** free_pages_bulk (Zone.freePagesBulk) freed a block that ended in `order` in z. */
  blockFreed(z: Zone, order: number, cls: FreeClass): void {
    this.coalesced(z, order, cls);
  }

  /** A free ended in a block of `order`: big enough and dirty wakes the node's kscrubd. */
  private coalesced(z: Zone, order: number, cls: FreeClass): void {
    if (this.policy.idlezero) return this.idleWakeup(z.node);
    if (!this.policy.kscrubd) return;
    const start = this.sysctl.scrub_start;
    if (cls !== NOT_ZEROED || order < start || start >= this.maxOrder) return;
    const k = this.kscrubd[z.node]!;
    if (k.awake || this.loadavg.one() >= this.sysctl.scrub_load) return;
    if (k.wake(this.now, this.cost.wakeupNs)) log('kscrubd%d woken by an order-%d block in %s', z.node, order, z.name);
  }

  /** vm_page_zero_idle_wakeup(): a free wakes the node's idle zeroer when its hysteresis says zero. */
  private idleWakeup(node: number): void {
    const k = this.kscrubd[node]!;
    if (k.awake || !(k.rule as IdleZeroRule).check(this)) return;
    if (k.wake(this.now, this.cost.wakeupNs)) log('idle zeroer %d woken by a free', node);
  }

  /** Return every per-cpu list of the given CPUs (all when omitted) to the buddy lists. */
  drainPcp(onlyIdle = false): number {
    let n = 0;
    for (const z of this.zones) {
      for (let cpu = 0; cpu < this.config.cpus; cpu++) {
        if (onlyIdle && this.cpus.inUse(cpu)) continue;
        for (const p of z.pageset[cpu]!) n += drainAll(z, p, this, this.policy.initOnFree);
      }
    }
    this.vm.pcpDrainPages += n;
    return n;
  }

  /** The CPU a request made on no CPU of its own (the control file, boot) runs on: the node's first. */
  firstCpuOf(node: number): number {
    return (node * this.config.cpus) / this.config.nodes;
  }

  /** A touch's threads left their CPUs at time t: a kscrubd waiting for one takes it. */
  cpusReleased(t: number): void {
    if (this.kscrubdWaiting === 0) return;
    for (const k of this.kscrubd) {
      if (!k.waiting) continue;
      const cpu = this.cpus.mostIdle(k.node, t);
      if (!this.cpus.inUse(cpu)) k.runOn(this, cpu, t);
    }
  }

  // ---- time -----------------------------------------------------------------------------------

  /**
   * Run everything in the background (kscrubd, load sampling) up to virtual time t, in time
   * order, and make t the present. Time never goes back. (2.6.11 has no periodic drain of the
   * per-cpu lists: they drain when they pass `high`, or by `drainPcp`.)
   */
  advanceTo(t: number): void {
    if (!Number.isFinite(t)) assert(false, `advanceTo(${t}): time must be finite`);
    if (t < this.clock.now) return;
    for (;;) {
      let next = this.loadavg.nextSample;
      let who = -1;
      for (let n = 0; n < this.kscrubd.length; n++) {
        const at = this.kscrubd[n]!.nextAt;
        if (at < next) { next = at; who = n; }
      }
      const huge = this.hugetlb.nextAt();
      if (huge < next) { next = huge; who = -2; }
      if (next > t) break;
      this.clock.advance(Math.max(this.clock.now, next));
      if (who === -2) this.hugetlb.advance(next);
      else if (who >= 0) this.kscrubd[who]!.advance(this, next);
      else {
        const moved = this.loadavg.sample(this.cpus.runningTasks + this.kscrubd.filter((k) => k.awake).length);
        // Nothing changes the running tasks before the next kscrubd event or t.
        if (!moved) this.loadavg.skipStillSamples(Math.min(t, this.nextKscrubdAt()));
      }
    }
    this.clock.advance(t);
  }

  /**
   * Nothing in the background is due before t (nextBackgroundAt() said so): advanceTo(t)
   * would only move the clock, so move it (the event loop's fast path).
   */
  skipTo(t: number): void {
    this.clock.advance(t);
  }

  /**
   * When the next background event is due: advanceTo(t) for any t before it only moves the
   * clock. The fault simulation asks once and again after whatever may change it (advanceTo,
   * a free that may wake kscrubd).
   */
  nextBackgroundAt(): number {
    return Math.min(this.loadavg.nextSample, this.nextKscrubdAt());
  }

  /** The next kscrubd or khzerod event. */
  private nextKscrubdAt(): number {
    let next = this.hugetlb.nextAt();
    for (let n = 0; n < this.kscrubd.length; n++) {
      const at = this.kscrubd[n]!.nextAt;
      if (at < next) next = at;
    }
    return next;
  }

  /** The control file's `tick`: manual clock only. Returns the new time. */
  tick(ns: number): number {
    if (this.clock.mode !== 'manual') {
      throw new ModelError('KSCRUB_CLOCK_MODE', 'tick: the clock is live (mount with --clock manual to step it)');
    }
    if (!Number.isFinite(ns) || ns < 0) {
      throw new ModelError('KSCRUB_BAD_DURATION', `tick: ${ns} is not a duration (a finite number of ns ≥ 0)`);
    }
    this.advanceTo(this.clock.now + ns);
    return this.clock.now;
  }

  /** Live mode: catch virtual time up with the wall clock the caller read. */
  syncWall(wallMs: number): void {
    if (this.clock.mode === 'live') this.advanceTo(this.clock.followWall(wallMs));
  }

  /** Is any kscrubd running a burst? */
  scrubbing(): boolean {
    return this.kscrubd.some((k) => k.awake);
  }

  /** Each zeroing thread's bursts so far: zeroingSettled's mark. */
  zeroingBursts(): number[] {
    return this.kscrubd.map((k) => k.bursts);
  }

  /**
   * Has background zeroing nothing left to do since `mark` (zeroingBursts())? No thread is in
   * a burst, and each timer-driven one (kprezerod, unless disabled) has woken since and zeroed
   * nothing: the pool is as full as its settings make it.
   */
  zeroingSettled(mark: readonly number[]): boolean {
    return this.kscrubd.every((k, i) => !k.awake && (k.rule?.name !== 'kprezerod' || !Number.isFinite(k.nextAt) || (k.bursts > mark[i]! && k.lastBurstBlocks === 0)));
  }

  /**
   * Write a zeroing-policy file's value after its checks (range; the policy's on-switch only
   * on a machine booted with the policy). As the kernels do: prezero's `enabled` starts or
   * stops each node's kprezerod; `sleep_msecs` wakes them at once; `idlezero_enable` lets the
   * idle zeroer run at the next free.
   */
  setKnob(name: PolicyKnob, value: number): void {
    checkKnob(this.knobSpecs[name], value, this.config.zeroingPolicy);
    this.knobs[name] = value;
    log('%s = %d', this.knobSpecs[name].path, value);
    if (!this.policy.prezero) return;
    for (const k of this.kscrubd) {
      if (name === 'prezero_enabled') k.armTimer(this);
      if (name === 'prezero_sleep_msecs' && !k.awake && this.knobs.prezero_enabled === 1) k.wake(this.now, this.cost.wakeupNs);
    }
  }

  // ---- sysctls --------------------------------------------------------------------------------

  /** Set a sysctl after a range check; scrub_start below MAX_ORDER wakes every node's kscrubd. */
  setSysctl(name: SysctlName, value: number): void {
    checkSysctl(this.specs[name], value);
    this.sysctl[name] = value;
    log('sysctl vm.%s = %d', name, value);
    // The write wakes every node's kscrubd through the same load gate as a wake from the free
    // path (the patch's scrub_pgdat waits while avenrun[0] >= scrub_load).
    if (name === 'scrub_start' && this.policy.kscrubd && value < this.maxOrder && this.loadavg.one() < this.sysctl.scrub_load) {
      for (const k of this.kscrubd) if (k.wake(this.now, this.cost.wakeupNs)) log('kscrubd%d woken by vm.scrub_start', k.node);
    }
  }

  /**
   * Write a modern kernel's watermark sysctl after its range check: every zone's watermarks
   * are worked out again, and the per-cpu lists' limits with them (setup_per_zone_wmarks()
   * ends in zone_pcp_update()).
   */
  setWatermarkSysctl(name: WmarkSysctlName, value: number): void {
    if (!this.watermarks) throw new ModelError('KSCRUB_BAD_SYSCTL', `write vm.${name}: this kernel (${this.config.kernel}) has no such sysctl`);
    if (!this.watermarks.set(name, value)) return;
    log('sysctl vm.%s = %d', name, value);
    for (const z of this.zones) z.updatePagesetLimits(this.pageSize, this.config.cpus / this.config.nodes);
  }

  /**
   * pageblock_order when a modern kernel starts khugepaged: THP is possible (8-byte ptes, and
   * a PMD's order below MAX_ORDER), pageblocks being min(HPAGE_PMD_ORDER, MAX_PAGE_ORDER).
   */
  private thpPageblockOrder(): number | null {
    const cfg = this.config;
    const pmdOrder = Math.log2(cfg.pageSize / cfg.pteBytes);
    if (cfg.pteBytes !== 8 || pmdOrder >= cfg.maxOrder) return null;
    return Math.min(pmdOrder, cfg.maxOrder - 1);
  }

  /** Inject `count` failures into the next BTE transfers (robustness tests). */
  injectBteFailures(count: number): void {
    for (const d of this.zeroDrivers) if (d instanceof BteZeroDriver) d.failNext += count;
  }

  // ---- totals ---------------------------------------------------------------------------------

  freePagesTotal(): number {
    return this.zones.reduce((s, z) => s + z.freePages, 0);
  }
  zeroPagesTotal(): number {
    return this.zones.reduce((s, z) => s + z.zeroPages, 0);
  }
  managedPagesTotal(): number {
    return this.zones.reduce((s, z) => s + z.managedPages, 0);
  }
  pcpPagesTotal(): number {
    return this.zones.reduce((s, z) => s + z.pcpPages, 0);
  }
  /** Materialized sections (memory the model spends per-page records on). */
  materializedSections(): number {
    return this.zones.reduce((s, z) => s + z.sections.size, 0);
  }
}

export function createMachine(opts: MachineOptions = {}): Machine {
  return new Machine(opts);
}
