import { COUNTERS, type CounterName, counterShown } from './counters';
import { DEFAULT_ZEROING_POLICY, type ZeroingPolicyName } from './policies';

// What a control command's `ok` line carries, key by key: the daemon prints these and a
// client parses a result line back into numbers by the same table.

/** `stats`: the machine's shape and state, then every counter of the table by its vmstat name. */
export const STATS_STATE_KEYS = ['now_ns', 'page_size', 'max_order', 'nodes', 'cpus', 'raw_pages', 'mms', 'kscrubd_awake'] as const;
export type StatsKey = (typeof STATS_STATE_KEYS)[number] | CounterName;
/** `stats`' keys on a machine running `policies`: its counters are those the machine prints. */
export function statsKeys(policies: readonly ZeroingPolicyName[]): readonly StatsKey[] {
  return [...STATS_STATE_KEYS, ...COUNTERS.filter((c) => counterShown(c, policies)).map((c) => c.name)];
}
/** `stats`' keys on a machine of the default policy. */
export const STATS_KEYS: readonly StatsKey[] = statsKeys(DEFAULT_ZEROING_POLICY);
export type Stats = Readonly<Record<StatsKey, number>>;
