import type { Provenance, Unknown } from '../workload/provenance';
import { toCsv, toJson } from '../workload/provenance';
import { CliError } from './errors';

// One place for the result formats every command shares: the table (default), --json (one
// object: provenance, then the rows and whatever else the command has) and --csv (provenance
// as `#` comment lines, a header row, one line per row).

export interface FormatFlags {
  json?: boolean;
  csv?: boolean;
}

/** Refuse --json with --csv before anything runs. */
export function checkFormat(command: string, o: FormatFlags): void {
  if (o.json && o.csv) throw new CliError('KSCRUB_USAGE', `${command}: give --json or --csv, not both`);
}

export interface Result {
  readonly provenance: Provenance | Unknown;
  /** Printed when neither --json nor --csv is given. */
  readonly table: () => string;
  /** The JSON object's body after the provenance (`rows`, and more). */
  readonly json: Readonly<Record<string, unknown>>;
  readonly columns: readonly string[];
  readonly rows: readonly object[];
}

export function formatResult(o: FormatFlags, r: Result): string {
  if (o.json) return toJson(r.provenance, r.json);
  if (o.csv) return toCsv(r.provenance, r.columns, r.rows);
  return r.table();
}
