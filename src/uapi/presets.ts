// The names a client may ask a mount for, and what the policies it sets mean, in one place:
// pft, trace replay, sweep and calibrate all turn "kscrubd on" into the same sysctl writes.

/** The machines `mount --preset` boots. */
export const PRESETS = ['altix', 'x86_64', 'i386', 'epyc', 'genoa', 'icelake-x', 'skylake-sp'] as const;
export type PresetName = (typeof PRESETS)[number];

/** "kscrubd on": zero free blocks of order ≥ scrub_stop once one of order ≥ scrub_start is free (Lameter's defaults). */
export const KSCRUBD_ON = { scrub_start: 5, scrub_stop: 2 } as const;

export type KscrubdMode = 'on' | 'off';

/**
 * The sysctl writes that put kscrubd in `mode` on a machine of `maxOrder`, in the order to
 * write them: "off" is scrub_start = MAX_ORDER (no free block is big enough to wake it); "on"
 * writes scrub_stop first, so the wake that scrub_start's write causes already sees it.
 */
export function kscrubdSysctls(mode: KscrubdMode, maxOrder: number, on: { scrubStart?: number | undefined; scrubStop?: number | undefined } = {}): Array<readonly ['scrub_start' | 'scrub_stop', number]> {
  if (mode === 'off') return [['scrub_start', maxOrder]];
  return [['scrub_stop', on.scrubStop ?? KSCRUBD_ON.scrub_stop], ['scrub_start', on.scrubStart ?? KSCRUBD_ON.scrub_start]];
}

/** kscrubd's settings as a plot or a help text names them: "off" or "scrub_start 5, scrub_stop 2". */
export function describeKscrubd(scrubStart: number | undefined, scrubStop: number | undefined, maxOrder: number): string {
  return scrubStart !== undefined && scrubStart >= maxOrder ? 'off' : `scrub_start ${scrubStart}, scrub_stop ${scrubStop}`;
}

/** "scrub_start 5, scrub_stop 2": what --scrub on sets when not told otherwise. */
export const KSCRUBD_ON_TEXT = `scrub_start ${KSCRUBD_ON.scrub_start}, scrub_stop ${KSCRUBD_ON.scrub_stop}`;
