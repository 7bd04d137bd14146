import { InvalidArgumentError } from 'commander';
import { Option } from 'commander';
import os from 'node:os';
import { HUGE_CLEAR_MODES, MAX_PREALLOC_ORDER, PREEMPT_MODELS, PREFAULT_VARIANT_NAMES, prefaultVariantOrder, type PreemptModel, type ZeroingPolicyName, formatSize, parseSize, parseZeroingPolicy } from '../uapi';

// Option parsers for commander: syntax only ("a positive integer"). Whether 6 nodes fit the
// machine is the model's call (ModelError, exit 2), so the limits live in one place.

/** A decimal integer ≥ `min`; rejects 1.5, 1e3, 0x10, " 4". */
export function integer(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    }
    return n;
  };
}

/** A decimal integer in min..max (`what` names the unit in the message: "cachelines"). */
export function integerIn(min: number, max: number, what: string): (value: string) => number {
  const parse = integer(min);
  return (value) => {
    let n: number | undefined;
    try {
      n = parse(value);
    } catch {
      // one message for both ends: the range
    }
    if (n === undefined || n > max) throw new InvalidArgumentError(`expected ${min}..${max} ${what}, got "${value}"`);
    return n;
  };
}

/**
 * --prealloc: vm.max_prealloc_order as an order 0..MAX_PREALLOC_ORDER, or a published prefault
 * patch by its version (v1, v2, v5: the default each booted with; off = 0). `extra` are further
 * words the command takes ('mount').
 */
export function preallocArg<E extends string>(...extra: E[]): (value: string) => number | E {
  const order = integerIn(0, MAX_PREALLOC_ORDER, 'order');
  return (value) => {
    if ((extra as string[]).includes(value)) return value as E;
    const named = prefaultVariantOrder(value);
    if (named !== null) return named;
    try {
      return order(value);
    } catch {
      throw new InvalidArgumentError(`expected an order 0..${MAX_PREALLOC_ORDER} or one of ${[...PREFAULT_VARIANT_NAMES, ...extra].join(', ')}, got "${value}"`);
    }
  };
}

/** Help for --prealloc, the same wherever the option is. */
export const PREALLOC_HELP = 'vm.max_prealloc_order for the run, an order or a published prefault patch: v1 (3), v2 (4, the patch measured in docs/calibration.md), v5 (1), off (0)';

/** A size in 1..max bytes, in the model's spellings. */
export function byteSizeUpTo(max: number): (value: string) => number {
  return (value) => {
    const n = byteSize(value);
    if (n > max) throw new InvalidArgumentError(`expected at most ${formatSize(max)}, got "${value}"`);
    return n;
  };
}

/** A size > 0 in the model's spellings: 4096, 256M, 1G. */
export function byteSize(value: string): number {
  try {
    const n = parseSize(value, 'bytes');
    if (n <= 0) throw new Error('must be > 0');
    return n;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * --max-memory: more than this process holds already (a budget under it refuses every command
 * and, at a quarter of it for open files' text, every read) and at most the host's memory (a
 * budget past it bounds nothing: the host runs out first).
 */
export function memoryBudget(value: string): number {
  let n: number;
  try {
    n = parseSize(value, 'bytes');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  const held = process.memoryUsage.rss();
  if (n <= held) throw new InvalidArgumentError(`${formatSize(n)} is no more than this process holds already (${formatSize(held)}): every command and every read would be refused`);
  if (n > os.totalmem()) throw new InvalidArgumentError(`${formatSize(n)} is more than this host's memory (${formatSize(os.totalmem())})`);
  return n;
}

/** A finite number > 0: 1, 0.25, 10, 1e6. */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?(e[-+]?\d+)?$/i.test(value) || !Number.isFinite(n) || !(n > 0)) {
    throw new InvalidArgumentError(`expected a number > 0, got "${value}"`);
  }
  return n;
}

/** A comma-separated list of distinct names, each one of `allowed`: "bte,cpu". */
export function nameList(allowed: readonly string[]): (value: string) => string[] {
  return (value) => {
    const names = value.split(',').map((name) => name.trim());
    for (const name of names) {
      if (!allowed.includes(name)) {
        throw new InvalidArgumentError(`"${name}" is not one of ${allowed.join(', ')}`);
      }
    }
    if (new Set(names).size !== names.length) throw new InvalidArgumentError(`"${value}" names a driver twice`);
    return names;
  };
}

/**
 * The mount point a command uses when none is given: $KSCRUBFS_MOUNT, else ./mount (relative to
 * the working directory, as a user who runs `npm start` in a clone expects).
 */
export function defaultMount(): string {
  const dir = process.env.KSCRUBFS_MOUNT;
  return dir !== undefined && dir !== '' ? dir : './mount';
}

/** `--zeroing-policy init_on_free,kscrubd`: policy names (src/uapi/policies.ts), each once. */
export function zeroingPolicyList(value: string): ZeroingPolicyName[] {
  try {
    return [...parseZeroingPolicy(value)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `--huge-clear pages|extents`, shared by mount and policies. */
export function hugeClearOption(): Option {
  return new Option('--huge-clear <mode>', "how a fault clears a huge page: pages (a base page at a time, a rescheduling point between) or extents (clear_pages() over contiguous extents, as long as --preempt allows: the series, newer than any preset's kernel; default pages)").choices(HUGE_CLEAR_MODES);
}

/** `--preempt none|full`, shared by mount and policies. */
export function preemptOption(): Option {
  return new Option('--preempt <model>', "preemption model: full (a clear_pages() may cover a whole huge page) or none (clearing stops for cond_resched() every 32 MiB); default the preset's").choices(PREEMPT_MODELS);
}

/** The machine options those two flags set (only what was given). */
export function hugeClearMachineOptions(o: { hugeClear?: string; preempt?: PreemptModel }): { hugeClear?: string; preempt?: boolean } {
  return {
    ...(o.hugeClear === undefined ? {} : { hugeClear: o.hugeClear }),
    ...(o.preempt === undefined ? {} : { preempt: o.preempt === 'full' }),
  };
}
