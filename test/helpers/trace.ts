// A recorded trace made by hand, for the tests that replay one.
import { TraceWriter } from '../../src/workload/trace-format';

/** A program that maps `pages` 4 KiB pages at 0x7f0000000 and writes each once, on one thread, then exits. */
export function writeFillTrace(file: string, pages: number): void {
  const w = new TraceWriter(file, { page_size: 4096, command: ['p'], kernel: 'k', host_cpus: 1, started: 'now', source: 'test' }, 0);
  w.task(1, 100, 100);
  w.cpu(1, 0);
  w.range('map', 2, 0x7f0000000, pages);
  for (let i = 0; i < pages; i++) w.fault(3 + i, 0x7f0000000 + i, true, 'anon');
  w.exit(3 + pages, true);
  w.end(4 + pages, { exit_status: 0, interrupted: false, faults: { anon: pages, file: 0, unknown: 0 }, write_faults: pages, processes: 1, tasks: 1, lost_events: 0, duration_us: 4 + pages });
}
