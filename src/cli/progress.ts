// The progress line long commands show: on a terminal only (stderr), rewritten in place from
// the first report on, and cleared before anything else is printed; nothing at all when stderr
// is piped or a file. Given how far the run is (done of total), it adds an estimate of the time
// left from the rate so far.

/** A progress report: what runs now, and optionally how many of how many units are done. */
export type Progress = (msg: string, done?: number, total?: number) => void;

let shown = false;

/** "45 s", "3 min 20 s", "1 h 05 min". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The line a report makes: the message, and "ETA …" once something is done. */
export function progressText(msg: string, elapsedMs: number, done?: number, total?: number): string {
  if (done === undefined || total === undefined || !(done > 0) || !(total > done)) return msg;
  return `${msg} — ${Math.round((100 * done) / total)} %, about ${formatDuration((elapsedMs / done) * (total - done))} left`;
}

/** A progress line on stderr, only on a terminal. */
export function progressLine(): Progress | undefined {
  if (!process.stderr.isTTY) return undefined;
  const start = Date.now();
  return (msg, done, total) => {
    shown = true;
    const line = progressText(msg, Date.now() - start, done, total);
    const width = process.stderr.columns ?? 0;
    process.stderr.write(`\r\x1b[K${width > 1 && line.length >= width ? `${line.slice(0, width - 2)}…` : line}`);
  };
}

export function clearProgress(): void {
  if (shown) process.stderr.write('\r\x1b[K');
  shown = false;
}
