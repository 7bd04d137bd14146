import { type Machine, type Zone, kscrubdTotals } from '../model';
import { COUNTERS, type CounterName, type CounterSpec, type MachineCountField, counterShown, counterValue } from '../uapi/counters';
import { sumZones } from './common';

// The values of the counter table (src/uapi/counters.ts), read from the model's storage by the
// field each row names: vmstat, zoneinfo and the control file's `stats` print these.

/** The machine's counts the table names: levels the model keeps as state, not as events. */
function machineCounts(m: Machine): Record<MachineCountField, number> {
  return {
    zeroPages: m.zeroPagesTotal(),
    scrubPages: sumZones(m, (z) => z.scrubPages),
    pcpPages: m.pcpPagesTotal(),
    freePages: m.freePagesTotal(),
    anonPages: m.procs.nrAnonPages,
    anonThps: m.procs.nrAnonThps,
  };
}

/** Every counter of the table the machine prints (its zeroing policies'), by name, machine-wide, in table order. */
export function counterValues(m: Machine): Map<CounterName, number> {
  const k = kscrubdTotals(m.kscrubd);
  const counts = machineCounts(m);
  const out = new Map<CounterName, number>();
  for (const c of COUNTERS) {
    if (!counterShown(c, m.config.zeroingPolicy)) continue;
    const raw = c.source === 'vm' ? m.vm[c.field] : c.source === 'kscrubd' ? k[c.field] : counts[c.field];
    out.set(c.name, counterValue(c, raw));
  }
  return out;
}

/** The zone's value of a counter zoneinfo prints per zone. */
export function zoneCounterValue(z: Zone, c: CounterSpec): number {
  if (c.source === 'machine' && c.field === 'zeroPages') return z.zeroPages;
  if (c.source === 'machine' && c.field === 'freePages') return z.freePages;
  throw new Error(`zoneinfo: ${c.name} has no per-zone value`);
}
