import type { Machine } from '../model';
import { liveTasks, runningTasks } from './common';

/**
 * /proc/loadavg as fs/proc/loadavg.c prints it: "%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d\n" —
 * the three averages, runnable/all tasks (init, kscrubds, processes), the last pid handed out.
 */
export function render(m: Machine): string {
  const avg = m.loadavg;
  return `${avg.format(0)} ${avg.format(1)} ${avg.format(2)} ${runningTasks(m)}/${liveTasks(m)} ${m.procs.lastPid}\n`;
}
