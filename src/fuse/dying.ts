import { readFileSync } from 'node:fs';

// A client killed between its write and its read waits on nothing when the signal comes; its
// exit then closes its descriptors, and the FLUSH of that close waits in do_exit. A kill(2) of
// the process leaves SIGKILL in the shared pending set, so that wait is interrupted and the
// kernel sends FUSE_INTERRUPT; a signal to one thread (a crash: SIGSEGV, abort(), tgkill) is
// dequeued whole, nothing is pending in the exit, and no INTERRUPT comes. But do_exit (kernel/exit.c)
// sets PF_EXITING (exit_signals) and then `tsk->exit_code = code` before exit_files(), and
// /proc/PID/stat shows both (fs/proc/array.c: flags, field 9; exit_code, field 52, since
// Linux 3.5). A code whose low 7 bits are set is a signal's death (do_group_exit(sig)); an
// exit(2) puts its status in bits 8-15 and leaves them 0.

/** PF_EXITING (include/linux/sched.h): the task is in do_exit. */
const PF_EXITING = 0x4;
/** The fields of /proc/PID/stat after `comm`'s closing ')': state is field 3, so field n is at n - 3. */
const FLAGS_AT = 9 - 3;
const EXIT_CODE_AT = 52 - 3;

/**
 * Does a /proc/PID/stat line say its task is exiting because a signal killed it? `comm` may
 * hold spaces and parentheses, so the fields are those after the last ')'. Anything else — a
 * live task, an exit(2), a line too short (a kernel before 3.5) or unparsable — is no.
 */
export function statSaysKilled(stat: string): boolean {
  const close = stat.lastIndexOf(')');
  if (close < 0) return false;
  const fields = stat.slice(close + 1).trim().split(/\s+/);
  if (fields.length <= EXIT_CODE_AT) return false;
  const flags = Number(fields[FLAGS_AT]);
  const code = Number(fields[EXIT_CODE_AT]);
  if (!Number.isSafeInteger(flags) || !Number.isSafeInteger(code) || flags < 0 || code < 0) return false;
  return (flags & PF_EXITING) !== 0 && (code & 0x7f) !== 0;
}

/**
 * Is the task `pid` (a request's sender, as FUSE names it) exiting, killed by a signal? A
 * sender cannot be reaped while its FLUSH waits (the kernel waits for the reply
 * uninterruptibly), so a missing or unreadable entry means this /proc does not show it (another
 * pid namespace, hidepid): nothing is known, and it keeps waiting, as it did before. pid 0
 * (a sender outside the mount's namespace) likewise.
 */
export function killedInExit(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  return statSaysKilled(stat);
}
