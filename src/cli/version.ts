import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The package's root: a clone, or where npm installed it (dist/src/cli/ → the root). */
export const PACKAGE_ROOT = path.resolve(__dirname, '../../..');

/** kscrubfs's version, from package.json. */
export const VERSION: string = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** This command line as the user typed it (for a result's provenance). */
export function commandLine(): string {
  return ['kscrubfs', ...process.argv.slice(2)].join(' ');
}
