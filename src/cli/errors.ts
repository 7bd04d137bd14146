import createDebug from 'debug';
import type { ControlSyntaxError } from '../uapi/grammar';
import type { ProcFormatError } from '../uapi/proc';
import type { ControlResultError } from '../uapi/results';
import type { DaemonErrorCode } from '../daemon/mount-lock';
import type { MountErrorCode } from '../fuse/mount';
import { KscrubError, type ModelErrorCode } from '../uapi';
import type { ProcErrorCode } from '../uapi/errors';
import type { WorkloadError } from '../workload/client';

const log = createDebug('kscrubfs:cli');

/** The commands' own refusals. */
export type CliErrorCode =
  | 'KSCRUB_USAGE'
  | 'KSCRUB_OUTPUT_FAILED'
  | 'KSCRUB_CALIBRATION_OFF'
  | 'KSCRUB_DAEMON_DOWN'
  | 'KSCRUB_NOT_MOUNTED'
  | 'KSCRUB_NOT_KSCRUBFS'
  | 'KSCRUB_UMOUNT_FAILED'
  | 'KSCRUB_BAD_INPUT'
  | MountErrorCode;

/** A refusal the user can act on: printed as `kscrubfs: <message>`, exit status from EXIT_STATUS. */
export class CliError extends KscrubError<CliErrorCode> {}

type KnownCode = ModelErrorCode | DaemonErrorCode | MountErrorCode | CliErrorCode | ProcErrorCode | WorkloadError['code'] | ControlSyntaxError['code']
  | ControlResultError['code'] | ProcFormatError['code'];

/**
 * Exit status of every error code, the one place, as the common convention has it: 2 when the
 * command line asks for something invalid (a usage error, or a machine the model refuses:
 * `--mem 1K`, a bad `--cost` figure), 1 when a command fails (a mount, a control command, a
 * file), as README's exit-code table says. Commander's own usage errors exit 2 as well (main.ts).
 * The compiler checks that every code has a row.
 */
const EXIT_STATUS: Readonly<Record<KnownCode, number>> = {
  KSCRUB_BAD_SIZE: 2, KSCRUB_BAD_DURATION: 2, KSCRUB_BAD_OPTION: 2, KSCRUB_BAD_SYSCTL: 2, KSCRUB_BAD_HANDLE: 2,
  KSCRUB_BAD_ADDRESS: 2, KSCRUB_BAD_MM: 2, KSCRUB_CLOCK_MODE: 2, KSCRUB_NOMEM: 2,
  KSCRUB_MOUNT_BUSY: 1, KSCRUB_MOUNT_FAILED: 1,
  KSCRUB_USAGE: 2, KSCRUB_OUTPUT_FAILED: 1, KSCRUB_CALIBRATION_OFF: 1, KSCRUB_DAEMON_DOWN: 1,
  KSCRUB_NOT_MOUNTED: 1, KSCRUB_NOT_KSCRUBFS: 1, KSCRUB_UMOUNT_FAILED: 1, KSCRUB_BAD_INPUT: 1,
  KSCRUB_EINVAL: 1, KSCRUB_EACCES: 1, KSCRUB_ENOENT: 1, KSCRUB_EISDIR: 1, KSCRUB_ENOTDIR: 1, KSCRUB_EIO: 1,
  KSCRUB_EBUSY: 1, KSCRUB_ENOMEM: 1, KSCRUB_EINTR: 1, KSCRUB_EAGAIN: 1,
  KSCRUB_WORKLOAD: 1, KSCRUB_CONTROL_SYNTAX: 1, KSCRUB_CONTROL_RESULT: 1, KSCRUB_PROC_FORMAT: 1,
};

/** The exit status for an error a command ended with (1 for a bug or an unknown code). */
export function exitCodeFor(err: unknown): number {
  return err instanceof KscrubError ? (EXIT_STATUS as Record<string, number>)[err.code] ?? 1 : 1;
}

/** Print an error the way every command does, and set the exit code. */
export function report(err: unknown): void {
  const message = err instanceof KscrubError ? err.message : `internal error: ${(err as Error)?.stack ?? String(err)}`;
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
