import createDebug from 'debug';
import { MountError } from '../fuse/mount';
import { ModelError } from '../model';
import { WorkloadError } from '../workload/client';

const log = createDebug('kscrubfs:cli');

/** A refusal the user can act on: printed as `kscrubfs: <message>`, exit `exitCode`. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Exit codes: 1 for mount and usage trouble (as commander's own), 2 for a machine the model refuses. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ModelError) return 2;
  if (err instanceof CliError) return err.exitCode;
  return 1;
}

/** Print an error the way every command does, and set the exit code. */
export function report(err: unknown): void {
  const known = err instanceof CliError || err instanceof ModelError || err instanceof MountError || err instanceof WorkloadError;
  const message = known ? (err as Error).message : `internal error: ${(err as Error)?.stack ?? String(err)}`;
  log('%O', err);
  process.stderr.write(`kscrubfs: ${message}\n`);
  process.exitCode = exitCodeFor(err);
}

/** Wrap a commander action so that any failure is reported, never thrown at commander. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      report(err);
    }
  };
}
