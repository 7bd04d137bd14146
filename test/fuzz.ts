// Model fuzz: a seeded random mix of everything the model does — raw alloc/free, processes
// (mm new, mmap, touch with threads, single faults, munmap, exit), ticks, sysctl changes,
// per-cpu drains, BTE failures, and refused calls — over many machine shapes, with check() and
// the accounting invariants after every step. test/unit/fuzz-model.test.ts runs a bounded
// amount in `npm test`; `npm run fuzz` runs longer:
//
//   npm run fuzz -- [--steps N] [--seed S] [--shapes K] [--only I]
//
// Defaults: 2000 steps, 16 shapes, a seed from the clock (printed). --shapes K runs the fixed
// shapes first, then random ones drawn from the seed (K in all); --only I runs shape I alone.
// On a failure it prints the seed, the shape, the step, the last operations and the command
// that replays it, and exits 1 (2 for a usage error).
import { check, createMachine } from '../src/model';
import { ModelError } from '../src/uapi';
import { COST_FIGURES, MACHINE_OPTION_NAMES, checkMachineOptions } from '../src/uapi/bounds';
import type { Machine, MachineOptions, SysctlName } from '../src/model';
import { Rng } from './helpers/rng';
import { TINY, perCpu } from './helpers/model';

export interface Shape {
  readonly name: string;
  readonly opts: MachineOptions;
}

/** Shapes every run covers: the presets, odd sizes, the tiny machine that runs out, MAX_ORDER 2. */
export const FIXED_SHAPES: readonly Shape[] = [
  { name: 'altix 6G (bte, cpu)', opts: {} },
  { name: 'x86_64 4G', opts: { preset: 'x86_64' } },
  { name: 'x86_64 2 nodes 8G', opts: { preset: 'x86_64', mem: '8G', nodes: 2, cpus: 4 } },
  { name: 'x86_64 128M maxOrder 6', opts: { preset: 'x86_64', mem: '128M', nodes: 2, cpus: 2, maxOrder: 6 } },
  { name: 'altix 64K pages', opts: { preset: 'altix', pageSize: '64K', mem: '2G', nodes: 2 } },
  { name: 'tiny 64M (runs out)', opts: TINY },
  { name: 'altix 1 node, cpu zeroing only', opts: { preset: 'altix', mem: '512M', nodes: 1, cpus: 2, zeroDrivers: ['cpu'] } },
  { name: 'x86_64 maxOrder 2', opts: { preset: 'x86_64', mem: '256M', maxOrder: 2, cpus: 3 } },
];

const SIZES = ['4K', '16K', '64K'] as const;

/** A random machine the model accepts: every field drawn from `rng`. */
export function randomShape(rng: Rng, index: number): Shape {
  const preset = rng.next() < 0.5 ? 'altix' : 'x86_64';
  const pageSize = SIZES[rng.int(SIZES.length)]!;
  const pageBytes = { '4K': 4096, '16K': 16384, '64K': 65536 }[pageSize];
  const maxOrder = 2 + rng.int(11);
  const nodes = 1 + rng.int(4);
  const cpus = nodes * (1 + rng.int(3));
  const block = pageBytes * 2 ** (maxOrder - 1);
  const perNode = Math.max(64 * 2 ** 20, 4 * block) * (1 + rng.int(3));
  const zeroDrivers = [['bte', 'cpu'], ['cpu'], ['bte'], []][rng.int(4)]!;
  const opts: MachineOptions = {
    preset, pageSize, maxOrder, nodes, cpus, mem: String(perNode * nodes), zeroDrivers, bootAllocations: rng.next() < 0.7,
  };
  return { name: `random #${index} (${preset}, ${pageSize} pages, MAX_ORDER ${maxOrder}, ${nodes}×${cpus / nodes} CPUs, ${perNode * nodes / 2 ** 20}M, zero ${zeroDrivers.join('+') || 'cpu'})`, opts };
}

/** The fixed shapes, then random ones from `seed`: `count` in all. */
export function shapesFor(seed: number, count: number): Shape[] {
  const rng = new Rng(seed ^ 0x5eed);
  const out = FIXED_SHAPES.slice(0, count);
  for (let i = out.length; i < count; i++) out.push(randomShape(rng, i));
  return out;
}

/** What a run did, so a test can see that it exercised what it claims. */
export interface FuzzStats {
  steps: number;
  faults: number;
  prefaulted: number;
  cow: number;
  zeroPageMaps: number;
  oom: number;
  prezeroed: number;
  hotZeroed: number;
  munmaps: number;
  exits: number;
  refused: number;
  nomem: number;
  kscrubdBlocks: number;
  bteFallbacks: number;
  maxMms: number;
}

export class FuzzFailure extends Error {
  constructor(
    readonly seed: number, readonly shape: Shape, readonly step: number, readonly op: string,
    readonly history: readonly string[], why: string,
  ) {
    super(`seed=${seed} shape "${shape.name}" ${JSON.stringify(shape.opts)} step ${step} (${op}): ${why}\n  last steps: ${history.slice(-12).join('; ')}`);
    this.name = 'FuzzFailure';
  }
}

const TICKS = [1_000, 50_000, 1e6, 2e7, 3e8, 4e9];
const SYSCTLS: readonly SysctlName[] = ['scrub_start', 'scrub_start', 'scrub_stop', 'scrub_load', 'max_prealloc_order'];

/** Everything a refused call must leave as it was (the model validates before it mutates). */
function fingerprint(m: Machine): string {
  return JSON.stringify({
    now: m.now,
    zones: m.zones.map((z) => [Array.from(z.nrFree[0]!), Array.from(z.nrFree[1]!), z.freePages, z.zeroPages, z.scrubPages, z.pcpPages, z.pgalloc,
      z.pageset.map((sets) => sets.map((p) => p.list.join(',')))]),
    vm: { ...m.vm },
    kscrubd: m.kscrubd.map((k) => [k.awake, k.nextAt, k.blocks, k.pages, k.inFlight()?.pfn ?? -1]),
    raw: m.raw.keys().map((h) => [h, m.raw.get(h)!.pfn, m.raw.get(h)!.order]),
    sysctl: m.sysctl,
    anon: m.procs.nrAnonPages, pt: m.procs.nrPageTablePages, mms: m.procs.nrMms, pid: m.procs.lastPid,
    procs: [...m.procs.mms.values()].map((mm) => [mm.id, mm.rss, mm.vmas.map((v) => [v.start, v.end, v.random]), mm.tasks.map((t) => [t.nextAddr, t.order]),
      [...mm.ptes].map(([pmd, t]) => [pmd, Array.from(t).join(',')])]),
  });
}

/** Invariants beyond check(): pages add up; process bookkeeping agrees with the page tables. */
export function invariants(m: Machine, deep: boolean): string | null {
  const held = m.freePagesTotal() + m.pcpPagesTotal() + m.raw.pages + m.slab.pages + m.procs.nrAnonPages + m.procs.nrPageTablePages;
  if (held !== m.managedPagesTotal()) {
    return `free ${m.freePagesTotal()} + per-cpu ${m.pcpPagesTotal()} + raw ${m.raw.pages} + slab ${m.slab.pages} + anon ${m.procs.nrAnonPages} + pte pages ${m.procs.nrPageTablePages} ≠ managed ${m.managedPagesTotal()}`;
  }
  let rss = 0;
  let tables = 0;
  for (const mm of m.procs.mms.values()) {
    rss += mm.rss;
    tables += mm.ptes.size;
    for (let i = 0; i < mm.vmas.length; i++) {
      const v = mm.vmas[i]!;
      if (v.start % m.pageSize !== 0 || v.end % m.pageSize !== 0 || v.end <= v.start) return `${mm.label}: bad VMA [0x${v.start.toString(16)}, 0x${v.end.toString(16)})`;
      if (i > 0 && mm.vmas[i - 1]!.end > v.start) return `${mm.label}: VMAs overlap at 0x${v.start.toString(16)}`;
    }
    if (deep) {
      let anon = 0;
      const pmdBytes = m.procs.pmdBytes;
      for (const [pmd, table] of mm.ptes) {
        for (let i = 0; i < table.length; i++) {
          if (table[i] === 0) continue;
          const addr = pmd * pmdBytes + i * m.pageSize;
          if (!mm.findVma(addr)) return `${mm.label}: a pte at 0x${addr.toString(16)} is outside every VMA`;
          if (table[i]! >= 2) anon++;
        }
      }
      if (anon !== mm.rss) return `${mm.label}: rss ${mm.rss} but ${anon} anonymous ptes`;
    }
  }
  if (rss !== m.procs.nrAnonPages) return `processes' rss sum to ${rss}, nr_anon_pages is ${m.procs.nrAnonPages}`;
  if (tables !== m.procs.nrPageTablePages) return `processes hold ${tables} pte pages, nr_page_table_pages is ${m.procs.nrPageTablePages}`;
  if (m.procs.mms.size !== m.procs.nrMms) return `${m.procs.mms.size} processes but nr_mms is ${m.procs.nrMms}`;
  if (m.cpus.runningTasks !== 0 || perCpu(m, (c) => m.cpus.inUse(c)).some((u) => u)) return `after a step, ${m.cpus.runningTasks} tasks still run`;
  for (const k of m.kscrubd) if (!k.awake && k.inFlight()) return `kscrubd${k.node} sleeps holding a block`;
  for (const z of m.zones) {
    if (z.zeroPages < 0 || z.zeroPages > z.freePages - z.scrubPages) return `zone ${z.name}@${z.node}: zero_pages ${z.zeroPages} of ${z.freePages}`;
  }
  return null;
}

/** One fuzzing run: `steps` random steps on `shape`, then everything released. Throws FuzzFailure. */
export function fuzzRun(shape: Shape, seed: number, steps: number): FuzzStats {
  const history: string[] = [];
  let m: Machine;
  try {
    m = createMachine({ ...shape.opts, clock: 'manual' });
  } catch (e) {
    throw new FuzzFailure(seed, shape, 0, '(boot)', history, `createMachine threw: ${(e as Error).stack}`);
  }
  const rng = new Rng(seed);
  const ps = m.pageSize;
  const maxLines = ps / m.config.lineSize;
  const small = m.managedPagesTotal() < 50_000;
  const st: FuzzStats = {
    steps: 0, faults: 0, prefaulted: 0, cow: 0, zeroPageMaps: 0, oom: 0, prezeroed: 0, hotZeroed: 0, munmaps: 0, exits: 0,
    refused: 0, nomem: 0, kscrubdBlocks: 0, bteFallbacks: 0, maxMms: 0,
  };
  let lastNow = m.now;

  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const mmIds = (): number[] => [...m.procs.mms.keys()];
  /** A page-aligned range inside a random VMA of a random process, or null. */
  const range = (maxPages: number): { id: number; addr: number; size: number } | null => {
    const ids = mmIds().filter((id) => m.procs.mms.get(id)!.vmas.length > 0);
    if (ids.length === 0) return null;
    const id = pick(ids);
    const v = pick(m.procs.mms.get(id)!.vmas);
    const pages = (v.end - v.start) / ps;
    const first = rng.int(pages);
    const n = 1 + rng.int(Math.min(pages - first, maxPages));
    return { id, addr: v.start + first * ps, size: n * ps };
  };
  const touchResult = (r: ReturnType<Machine['procs']['touch']>): string => {
    st.faults += r.faults;
    st.prefaulted += r.prefaulted;
    st.oom += r.oom;
    st.prezeroed += r.prezeroed;
    st.hotZeroed += r.hotZeroed;
    return `pages=${r.pages} faults=${r.faults} prefaulted=${r.prefaulted} oom=${r.oom}`;
  };

  /** A call the model must refuse with a ModelError, changing nothing. */
  const refused = (): string => {
    const before = fingerprint(m);
    const r = range(4);
    const ids = mmIds();
    const unknownMm = (ids.length ? Math.max(...ids) : 0) + 1 + rng.int(5);
    const calls: [string, () => unknown][] = [
      [`mmExit(${unknownMm})`, () => m.procs.exit(unknownMm)],
      [`mmap(${unknownMm}, ${ps})`, () => m.procs.mmap(unknownMm, ps)],
      [`freeRaw([0])`, () => m.raw.free([0])],
      [`allocRaw(${m.maxOrder}, …)`, () => m.raw.alloc(m.maxOrder, false, 0, 1)],
      [`allocRaw(0, false, ${m.config.nodes}, 1)`, () => m.raw.alloc(0, false, m.config.nodes, 1)],
      [`tick(-1)`, () => m.tick(-1)],
      [`setSysctl(scrub_stop, ${m.maxOrder + 1})`, () => m.setSysctl('scrub_stop', m.maxOrder + 1)],
      [`setSysctl(scrub_load, -1)`, () => m.setSysctl('scrub_load', -1)],
    ];
    if (m.raw.size > 0) {
      const h = [...m.raw.keys()][0]!;
      calls.push([`freeRaw([${h}, ${h}])`, () => m.raw.free([h, h])], [`freeRaw([${h}, 0])`, () => m.raw.free([h, 0])]);
    }
    if (ids.length > 0) calls.push([`mmap(${ids[0]}, 0)`, () => m.procs.mmap(ids[0]!, 0)]);
    if (r) {
      const vma = m.procs.mms.get(r.id)!.findVma(r.addr)!;
      calls.push(
        [`touch(${r.id}, unaligned 0x${(r.addr + 1).toString(16)})`, () => m.procs.touch(r.id, { addr: r.addr + 1, size: ps })],
        [`touch(${r.id}, past the end 0x${vma.end.toString(16)})`, () => m.procs.touch(r.id, { addr: vma.start, size: vma.end - vma.start + ps })],
        [`touch(${r.id}, threads 0)`, () => m.procs.touch(r.id, { addr: r.addr, size: r.size, threads: 0 })],
        [`touch(${r.id}, lines ${maxLines + 1})`, () => m.procs.touch(r.id, { addr: r.addr, size: r.size, lines: maxLines + 1 })],
        [`touch(${r.id}, stride ${ps / 2})`, () => m.procs.touch(r.id, { addr: r.addr, size: r.size, stride: ps / 2 })],
        [`fault(${r.id}, unmapped 0x${vma.end.toString(16)})`, () => m.procs.fault(r.id, vma.end)],
        [`munmap(${r.id}, past the end)`, () => m.procs.munmap(r.id, vma.start, vma.end - vma.start + ps)],
        [`munmap(${r.id}, unaligned)`, () => m.procs.munmap(r.id, r.addr + 8, ps)],
      );
    }
    const [what, call] = pick(calls);
    try {
      call();
    } catch (e) {
      if (!(e instanceof ModelError)) throw e;
      st.refused++;
      const after = fingerprint(m);
      if (after !== before) throw new Error(`refused ${what} (${e.message}) changed the machine`);
      return `${what} → refused`;
    }
    throw new Error(`${what} was accepted`);
  };

  const step = (): string => {
    const r = rng.next();
    const ids = mmIds();
    if (r < 0.06 || ids.length === 0) {
      if (ids.length >= 8) return `mmExit(${ids[0]}) → ${(st.exits++, m.procs.exit(ids[0]!))}`;
      return `mmNew() → ${m.procs.create().id}`;
    }
    if (r < 0.16) {
      const id = pick(ids);
      const pages = rng.next() < 0.9 ? 1 + rng.int(256) : 1 + rng.int(small ? 4096 : 16384);
      const bytes = pages * ps - (rng.next() < 0.2 ? rng.int(ps) : 0);
      const random = rng.next() < 0.2;
      const v = m.procs.mmap(id, bytes, random);
      return `mmap(${id}, ${bytes}${random ? ', random' : ''}) → 0x${v.addr.toString(16)}+${v.size}`;
    }
    if (r < 0.38) {
      const g = range(rng.next() < 0.9 ? 64 : 2048);
      if (!g) return 'touch: nothing mapped';
      const threads = rng.next() < 0.7 ? 1 + rng.int(4) : 1 + rng.int(16);
      const lines = rng.next() < 0.8 ? 1 + rng.int(Math.min(4, maxLines)) : maxLines;
      const write = rng.next() < 0.75;
      const stride = ps * (rng.next() < 0.8 ? 1 : 2 + rng.int(2));
      const zeroPtesBefore = m.vm.faultZeroPage;
      const cowBefore = m.vm.faultCow;
      const res = m.procs.touch(g.id, { addr: g.addr, size: g.size, threads, lines, write, stride });
      st.zeroPageMaps += m.vm.faultZeroPage - zeroPtesBefore;
      st.cow += m.vm.faultCow - cowBefore;
      return `touch(${g.id}, 0x${g.addr.toString(16)}+${g.size}, threads=${threads} lines=${lines} ${write ? 'write' : 'read'} stride=${stride}) → ${touchResult(res)}`;
    }
    if (r < 0.46) {
      const g = range(1);
      if (!g) return 'fault: nothing mapped';
      const write = rng.next() < 0.7;
      const cowBefore = m.vm.faultCow;
      const res = m.procs.fault(g.id, g.addr, write);
      st.cow += m.vm.faultCow - cowBefore;
      return `fault(${g.id}, 0x${g.addr.toString(16)}, ${write ? 'write' : 'read'}) → ${touchResult(res)}`;
    }
    if (r < 0.53) {
      const g = range(rng.next() < 0.7 ? 16 : 4096);
      if (!g) return 'munmap: nothing mapped';
      const bytes = g.size - (rng.next() < 0.2 ? rng.int(ps) : 0);
      st.munmaps++;
      return `munmap(${g.id}, 0x${g.addr.toString(16)}, ${bytes}) → ${m.procs.munmap(g.id, g.addr, bytes)}`;
    }
    if (r < 0.56) {
      const id = pick(ids);
      st.exits++;
      return `mmExit(${id}) → ${m.procs.exit(id)}`;
    }
    const handles = [...m.raw.keys()];
    if (r < 0.65) {
      const order = rng.next() < 0.6 ? 0 : rng.int(m.maxOrder);
      const zero = rng.next() < 0.5;
      const node = rng.int(m.config.nodes);
      const count = small && rng.next() < 0.05 ? Math.ceil(m.managedPagesTotal() / 2 ** order / 2) : 1 + rng.int(8);
      const op = `allocRaw(${order}, ${zero}, ${node}, ${count})`;
      try {
        return `${op} → ${m.raw.alloc(order, zero, node, count).length} handles`;
      } catch (e) {
        if (!(e instanceof ModelError && e.code === 'KSCRUB_NOMEM')) throw e;
        st.nomem++;
        return `${op} → NOMEM`;
      }
    }
    if (r < 0.72 && handles.length > 0) {
      const n = 1 + rng.int(Math.min(handles.length, 16));
      const chosen: number[] = [];
      for (let i = 0; i < n; i++) chosen.push(handles.splice(rng.int(handles.length), 1)[0]!);
      return `freeRaw([${chosen.join(',')}]) → ${m.raw.free(chosen)}`;
    }
    if (r < 0.82) {
      const ns = pick(TICKS) + rng.int(1000);
      return `tick(${ns}) → ${m.tick(ns)}`;
    }
    if (r < 0.9) {
      const name = pick(SYSCTLS);
      const spec = m.specs[name];
      const value = name === 'scrub_load' ? pick([0, 1, 999, 1000]) : spec.min + rng.int(spec.max - spec.min + 1);
      m.setSysctl(name, value);
      return `setSysctl(${name}, ${value})`;
    }
    if (r < 0.93) return `drainPcp() → ${m.drainPcp()}`;
    if (r < 0.95) {
      const n = 1 + rng.int(5);
      m.injectBteFailures(n);
      return `injectBteFailures(${n})`;
    }
    return refused();
  };

  const verify = (i: number, op: string, deep: boolean): void => {
    let why: string | null;
    try {
      why = check(m) ?? invariants(m, deep);
      if (!why && m.now < lastNow) why = `time went back from ${lastNow} to ${m.now}`;
    } catch (e) {
      why = `check threw: ${(e as Error).stack}`;
    }
    lastNow = m.now;
    if (why) throw new FuzzFailure(seed, shape, i, op, history, why);
  };

  for (let i = 0; i < steps; i++) {
    let op: string;
    try {
      op = step();
    } catch (e) {
      throw new FuzzFailure(seed, shape, i, '(the step itself)', history, `threw: ${(e as Error).stack}`);
    }
    history.push(op);
    if (history.length > 50) history.shift();
    st.steps++;
    st.maxMms = Math.max(st.maxMms, m.procs.nrMms);
    verify(i, op, i % 25 === 24);
  }

  // The end: every process exits, every raw block is freed, the lists drain and kscrubd finishes.
  try {
    for (const id of mmIds()) m.procs.exit(id);
    if (m.raw.size > 0) m.raw.free([...m.raw.keys()]);
    m.drainPcp();
    for (let i = 0; m.scrubbing(); i++) {
      if (i >= 100_000) throw new Error('kscrubd never went back to sleep');
      m.tick(1e8);
    }
  } catch (e) {
    throw new FuzzFailure(seed, shape, steps, '(releasing everything)', history, `threw: ${(e as Error).stack}`);
  }
  verify(steps, '(everything released)', true);
  if (m.freePagesTotal() + m.slab.pages !== m.managedPagesTotal() || m.pcpPagesTotal() !== 0 || m.procs.nrAnonPages !== 0 || m.procs.nrPageTablePages !== 0) {
    throw new FuzzFailure(seed, shape, steps, '(everything released)', history,
      `free ${m.freePagesTotal()} + slab ${m.slab.pages} ≠ managed ${m.managedPagesTotal()} (per-cpu ${m.pcpPagesTotal()}, anon ${m.procs.nrAnonPages}, pte pages ${m.procs.nrPageTablePages})`);
  }
  st.kscrubdBlocks = m.kscrubd.reduce((s, k) => s + k.blocks, 0);
  st.bteFallbacks = m.kscrubd.reduce((s, k) => s + k.bteFallbacks, 0);
  return st;
}

/** Per-shape seeds: distinct, reproducible from the run's seed. */
export function shapeSeed(seed: number, index: number): number {
  return (seed + Math.imul(index, 0x9e3779b1)) >>> 0;
}

// ---- numbers from outside -------------------------------------------------------------------------

const OUTSIDE_KEYS = [...MACHINE_OPTION_NAMES, '__proto__', 'constructor', 'toString', 'colour', 'mem', 'cost', 'cost'];
const OUTSIDE_NUMBERS = [0, -1, 0.5, 1, 2, 3, 5, 16, 4096, 1e-21, 1e-9, 1e3, 1e9, 1e15, 1e300, -0, Number.MAX_SAFE_INTEGER, 2 ** 46];

/** A value of any JSON type, often an edge of some range. */
function outsideValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 1 ? 6 : 8)) {
    case 0: return OUTSIDE_NUMBERS[rng.int(OUTSIDE_NUMBERS.length)];
    case 1: return ['altix', 'x86_64', 'live', 'manual', '6G', '64T', '1K', '16K', 'bte', '', 'x'][rng.int(11)];
    case 2: return rng.next() < 0.5;
    case 3: return null;
    case 4: return rng.int(4096);
    case 5: return `${rng.int(64)}${['', 'K', 'M', 'G', 'T', 'P'][rng.int(6)]}`;
    case 6: return Array.from({ length: rng.int(3) }, () => outsideValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) {
        const k = rng.next() < 0.7 ? COST_FIGURES[rng.int(COST_FIGURES.length)]! : OUTSIDE_KEYS[rng.int(OUTSIDE_KEYS.length)]!;
        Object.defineProperty(o, k, { value: outsideValue(rng, depth + 1), enumerable: true, configurable: true, writable: true });
      }
      return o;
    }
  }
}

export interface OutsideStats {
  readonly cases: number;
  readonly accepted: number;
  readonly refused: number;
}

/**
 * Random machine options as a record header or a sweep spec may hold them — every key of
 * MachineOptions and some that are not (`__proto__` among them), values of every JSON type at
 * the edges of their ranges — through the one validator and on to createMachine. Each must be
 * taken (and then boot) or refused with a ModelError; a TypeError or anything else is a bug.
 */
export function fuzzOutside(seed: number, cases: number): OutsideStats {
  const rng = new Rng(seed);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < cases; i++) {
    const raw: Record<string, unknown> = {};
    for (let k = rng.int(4); k >= 0; k--) {
      Object.defineProperty(raw, OUTSIDE_KEYS[rng.int(OUTSIDE_KEYS.length)]!, { value: outsideValue(rng), enumerable: true, configurable: true, writable: true });
    }
    // Small machines, so that the ones taken boot quickly.
    if (rng.next() < 0.7) raw.mem = '256M';
    try {
      const opts = checkMachineOptions(raw);
      createMachine({ ...opts, clock: 'manual' });
      accepted++;
    } catch (err) {
      if (!(err instanceof ModelError)) throw new Error(`case ${i} (seed ${seed}): ${JSON.stringify(raw)} ended in ${(err as Error).stack}`);
      refused++;
    }
  }
  return { cases, accepted, refused };
}

// ---- npm run fuzz ---------------------------------------------------------------------------------

interface Args {
  steps: number;
  seed: number;
  shapes: number;
  only?: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { steps: 2000, seed: Date.now() % 2 ** 31, shapes: 16 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const value = inline ?? argv[++i];
    const n = Number(value);
    if (!['--steps', '--seed', '--shapes', '--only'].includes(flag)) usage(`unknown option ${flag}`);
    if (value === undefined || !Number.isSafeInteger(n) || n < 0) usage(`${flag} needs a whole number, got ${JSON.stringify(value)}`);
    if (flag === '--steps') args.steps = n;
    if (flag === '--seed') args.seed = n;
    if (flag === '--shapes') args.shapes = n;
    if (flag === '--only') args.only = n;
  }
  if (args.steps < 1 || args.shapes < 1) usage('--steps and --shapes must be at least 1');
  if (args.only !== undefined && args.only >= args.shapes) usage(`--only ${args.only} is not below --shapes ${args.shapes}`);
  return args;
}

function usage(why: string): never {
  process.stderr.write(`fuzz: ${why}\nusage: npm run fuzz -- [--steps N] [--seed S] [--shapes K] [--only I]\n`);
  process.exit(2);
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  const shapes = shapesFor(a.seed, a.shapes);
  const started = Date.now();
  process.stdout.write(`fuzz: seed ${a.seed}, ${a.steps} steps on each of ${a.only === undefined ? shapes.length : 1} shapes\n`);
  let total = 0;
  for (let i = 0; i < shapes.length; i++) {
    if (a.only !== undefined && i !== a.only) continue;
    const shape = shapes[i]!;
    const t0 = Date.now();
    try {
      const st = fuzzRun(shape, shapeSeed(a.seed, i), a.steps);
      total += st.steps;
      process.stdout.write(`  ok  #${i} ${shape.name}: ${st.faults} faults, ${st.prefaulted} prefaulted, ${st.cow} COW, ${st.oom} OOM, `
        + `${st.munmaps} munmaps, ${st.exits} exits, ${st.refused} refused, ${st.kscrubdBlocks} blocks scrubbed (${Date.now() - t0} ms)\n`);
    } catch (e) {
      process.stdout.write(`  FAIL #${i} ${shape.name}\n`);
      process.stderr.write(`fuzz: ${(e as Error).message}\n`);
      process.stderr.write(`fuzz: seed ${a.seed}; replay with: npm run fuzz -- --seed ${a.seed} --shapes ${a.shapes} --steps ${a.steps} --only ${i}\n`);
      process.exitCode = 1;
      return;
    }
  }
  process.stdout.write(`fuzz: ${total} steps passed in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${a.seed})\n`);
}

if (require.main === module) main();
