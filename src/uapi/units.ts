import { ModelError } from './errors';

// Sizes and durations are parsed here and only here, so every entry point (CLI options,
// control commands, presets) accepts the same spellings and reports the same errors.

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, B: 1,
  K: 2 ** 10, KB: 2 ** 10, KIB: 2 ** 10,
  M: 2 ** 20, MB: 2 ** 20, MIB: 2 ** 20,
  G: 2 ** 30, GB: 2 ** 30, GIB: 2 ** 30,
  T: 2 ** 40, TB: 2 ** 40, TIB: 2 ** 40,
  P: 2 ** 50, PB: 2 ** 50, PIB: 2 ** 50,
};

/** "6G", "16K", "4096", "1.5G", "0x1000" → bytes (binary units, like the kernel's memparse). */
export function parseSize(text: string, what = 'size'): number {
  const s = text.trim();
  if (/^0x[0-9a-f]+$/i.test(s)) return checkSize(Number.parseInt(s.slice(2), 16), text, what);
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s);
  const unit = m ? SIZE_UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ModelError('KSCRUB_BAD_SIZE', `${what}: "${text}" is not a size (try 4096, 16K, 6G, 64T)`);
  }
  return checkSize(Math.round(Number(m[1]) * unit), text, what);
}

function checkSize(n: number, text: string, what: string): number {
  if (!Number.isSafeInteger(n)) throw new ModelError('KSCRUB_BAD_SIZE', `${what}: "${text}" is too large`);
  return n;
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, min: 60e9, h: 3600e9,
};

/** "250ms", "2s", "1.5s", "100us" → nanoseconds. A bare number is refused: units are not guessed. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zµ]+)$/i.exec(text.trim());
  const unit = m ? DURATION_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new ModelError('KSCRUB_BAD_DURATION', `${what}: "${text}" is not a duration (try 250ms, 2s, 100us)`);
  }
  const ns = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(ns)) throw new ModelError('KSCRUB_BAD_DURATION', `${what}: "${text}" is too long`);
  return ns;
}

/** 6442450944 → "6 GiB"; exact binary units when they divide evenly, else one decimal. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}
