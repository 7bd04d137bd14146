import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions {
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** Pause between checks (ms). */
  intervalMs?: number;
}

/**
 * Bounded polling: call `check` until it returns something other than undefined, or the
 * deadline passes (then resolve undefined). Used instead of fixed sleeps.
 */
export async function pollUntil<T>(
  check: () => T | undefined | Promise<T | undefined>,
  { timeoutMs, intervalMs = 25 }: PollOptions,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result !== undefined) return result;
    if (Date.now() >= deadline) return undefined;
    await sleep(intervalMs);
  }
}
