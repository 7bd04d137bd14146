import { COUNTERS, type CounterName } from './counters';

// What a control command's `ok` line carries, key by key: the daemon prints these and a
// client parses a result line back into numbers by the same table.

/** `stats`: the machine's shape and state, then every counter of the table by its vmstat name. */
export const STATS_STATE_KEYS = ['now_ns', 'page_size', 'max_order', 'nodes', 'cpus', 'raw_pages', 'mms', 'kscrubd_awake'] as const;
export type StatsKey = (typeof STATS_STATE_KEYS)[number] | CounterName;
export const STATS_KEYS: readonly StatsKey[] = [...STATS_STATE_KEYS, ...COUNTERS.map((c) => c.name)];
export type Stats = Readonly<Record<StatsKey, number>>;
