import { readFileSync } from 'node:fs';
import path from 'node:path';

/** kscrubfs's version, from package.json (dist/src/cli/ → the repository root). */
export const VERSION: string = (JSON.parse(readFileSync(path.join(__dirname, '../../../package.json'), 'utf8')) as { version: string }).version;

/** This command line as the user typed it (for a result's provenance). */
export function commandLine(): string {
  return ['kscrubfs', ...process.argv.slice(2)].join(' ');
}
