import type { Machine } from '../model';
import { runningTasks } from './common';

/**
 * /proc/stat as fs/proc/stat.c show_stat() prints it. CPU times are the simulated CPUs' (user,
 * system — kscrubd's zeroing included —, idle = the rest) in USER_HZ ticks; the other seven
 * columns and softirqs are 0: the model has none of them.
 *
 *   intr           the simulated CPUs' timer interrupts: HZ ticks per CPU per virtual second
 *                  (the only interrupts the model has; the per-IRQ columns are left out)
 *   ctxt           context switches: each workload thread of a touch switched in and out, and
 *                  each kscrubd wake-up and the sleep that ends its burst (page_table_lock
 *                  and zone->lock are spinlocks: waiting on them switches nothing)
 *   btime          a fixed boot time: 2005-02-07 00:00 UTC (the V6 posting day), so that the
 *                  same commands on a manual clock give the same bytes
 *   processes      pids handed out (Processes.lastPid: init and one per process)
 *   procs_running  workload threads on a CPU plus kscrubds in a burst
 */
const USER_HZ = 100;
/** CONFIG_HZ: 1000, x86_64's default (ia64's 1024 would differ by 2.4 %). */
const HZ = 1000;
const BTIME_EPOCH = 1107734400;
/** NR_SOFTIRQS: HI, TIMER, NET_TX, NET_RX, BLOCK, IRQ_POLL, TASKLET, SCHED, HRTIMER, RCU. */
const NR_SOFTIRQS = 10;

/** nsec_to_clock_t(). */
function clockT(ns: number): number {
  return Math.floor(ns / (1e9 / USER_HZ));
}

/** One cpu line: user nice system idle iowait irq softirq steal guest guest_nice. */
function cpuLine(label: string, userNs: number, systemNs: number, idleNs: number): string {
  return `${label} ${clockT(userNs)} 0 ${clockT(systemNs)} ${clockT(idleNs)} 0 0 0 0 0 0\n`;
}

function contextSwitches(m: Machine): number {
  let n = m.cpus.contextSwitches;
  // A wake switches kscrubd in; every wake but a burst still running has switched it out.
  for (const k of m.kscrubd) n += 2 * k.wakes - (k.awake ? 1 : 0);
  return n;
}

export function render(m: Machine): string {
  const cpus = m.cpus;
  const now = m.now;
  let user = 0;
  let system = 0;
  let idle = 0;
  let lines = '';
  for (let i = 0; i < cpus.count; i++) {
    const u = cpus.userNs(i);
    const s = cpus.systemNs(i, now);
    const d = cpus.idleNs(i, now);
    user += u;
    system += s;
    idle += d;
    lines += cpuLine(`cpu${i}`, u, s, d);
  }
  // The kernel sums nanoseconds and converts once: the total is not the sum of the rows.
  return (
    cpuLine('cpu ', user, system, idle) +
    lines +
    `intr ${cpus.count * Math.floor(now / (1e9 / HZ))}\n` +
    `ctxt ${contextSwitches(m)}\n` +
    `btime ${BTIME_EPOCH}\n` +
    `processes ${m.procs.lastPid}\n` +
    `procs_running ${runningTasks(m)}\n` +
    'procs_blocked 0\n' +
    `softirq 0${' 0'.repeat(NR_SOFTIRQS)}\n`
  );
}
