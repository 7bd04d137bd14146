import { existsSync } from 'node:fs';
import path from 'node:path';
import type FuseNative from 'fuse-native';

// Which fuse-native binary the daemon runs. fuse-native's own prebuild hands JS neither who
// sent a request nor the kernel's FUSE_INTERRUPT. native/fuse-native.c is its C with both added
// (native/README.md); scripts/build-native.sh builds it at setup and install. When that build
// is there, fuse-native's JS loads it instead of its prebuild (node-gyp-build reads
// FUSE_NATIVE_PREBUILD, a directory holding build/Release/fuse.node); when it is not (no
// compiler), the stock prebuild runs and callers are unknown: no per-user caps, no
// cancellation (README, "Lifetime, limits and logs").

/** The package's native/ directory (this file is dist/src/fuse/binding.js). */
export const NATIVE_DIR = path.resolve(__dirname, '../../../native');
const BUILT = path.join(NATIVE_DIR, 'build/Release/fuse.node');

interface CallerBinding {
  fuse_native_caller(request: Buffer, out: Uint32Array): void;
  fuse_native_interrupted(request: Buffer): number;
}

function load(): { Fuse: typeof FuseNative; binding: CallerBinding | null } {
  const built = existsSync(BUILT);
  if (built) process.env['FUSE_NATIVE_PREBUILD'] = NATIVE_DIR;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Fuse = require('fuse-native') as typeof FuseNative;
  if (!built) return { Fuse, binding: null };
  // The same file fuse-native loaded: Node hands back that one module.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const b = require(BUILT) as Partial<CallerBinding>;
  const ok = typeof b.fuse_native_caller === 'function' && typeof b.fuse_native_interrupted === 'function';
  return { Fuse, binding: ok ? (b as CallerBinding) : null };
}

const loaded = load();
export const Fuse = loaded.Fuse;

/** A FUSE request being served: who sent it, and whether the kernel has since interrupted it. */
export interface Request {
  /** The sender's uid, gid and pid (libfuse's fuse_get_context()). */
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  /** Has the kernel sent FUSE_INTERRUPT for it (its sender got a signal)? False once answered. */
  interrupted(): boolean;
  /** It has been answered (the adapter calls this as it replies). */
  answered(): void;
}

/** Does this binary tell who sent each request and pass the kernel's interrupts on? */
export const callersKnown = loaded.binding !== null;

/**
 * Wrap a Fuse instance's per-op handlers (before it mounts) so that `current()` names the
 * request whose handler is running. fuse-native calls each handler with the request's
 * thread-local block first; nothing else of it changes.
 */
export function trackRequests(fuse: FuseNative): () => Request | null {
  const binding = loaded.binding;
  if (!binding) return () => null;
  const handlers = (fuse as unknown as { _handlers: (((...args: unknown[]) => unknown) | undefined)[] })._handlers;
  let native: Buffer | null = null;
  handlers.forEach((h, op) => {
    if (!h) return;
    handlers[op] = function (this: unknown, request: unknown, ...rest: unknown[]) {
      native = request as Buffer;
      try {
        return h.call(this, request, ...rest);
      } finally {
        native = null;
      }
    };
  });
  const ids = new Uint32Array(3);
  return () => {
    if (!native) return null;
    const block = native;
    binding.fuse_native_caller(block, ids);
    let answered = false;
    return {
      uid: ids[0]!, gid: ids[1]!, pid: ids[2]!,
      // After its reply the block serves the thread's next request: never ask it then.
      interrupted: () => !answered && binding.fuse_native_interrupted(block) === 1,
      answered: () => void (answered = true),
    };
  };
}
