import type { Machine } from '../model';
import { secondsCentis } from './common';

/**
 * /proc/uptime as fs/proc/uptime.c prints it: "%lu.%02lu %lu.%02lu\n" — virtual time since
 * boot, and the idle time summed over all CPUs (so it can exceed the uptime).
 */
export function render(m: Machine): string {
  let idle = 0;
  for (let cpu = 0; cpu < m.cpus.count; cpu++) idle += m.cpus.idleNs(cpu, m.now);
  return `${secondsCentis(m.now)} ${secondsCentis(idle)}\n`;
}
