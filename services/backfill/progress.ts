/**
 * Progress: rows per second over a sliding window of (time, rows) samples, the ETA that follows,
 * and the one-line bar drawn on a TTY. The samples are the run's total rows (all processes), read
 * from the checkpoints, so the rate and ETA are the run's, not one process's.
 */
export interface ProgressSample {
  atMs: number;
  rows: number;
}

export class RateWindow {
  private readonly samples: ProgressSample[] = [];

  constructor(private readonly windowMs = 10_000) {}

  add(sample: ProgressSample): void {
    this.samples.push(sample);
    while (this.samples.length > 2 && (this.samples[1]?.atMs ?? Infinity) <= sample.atMs - this.windowMs) this.samples.shift();
  }

  /** Rows per second over the window; 0 before two samples. */
  rowsPerSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs <= first.atMs) return 0;
    return Math.max(0, (last.rows - first.rows) / ((last.atMs - first.atMs) / 1000));
  }
}

/** Seconds left at `rowsPerSecond`; undefined while the rate is unknown (or zero, e.g. throttled). */
export function etaSeconds(done: number, planned: number, rowsPerSecond: number): number | undefined {
  if (done >= planned) return 0;
  if (rowsPerSecond <= 0) return undefined;
  return (planned - done) / rowsPerSecond;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressLine {
  done: number;
  planned: number;
  rowsPerSecond: number;
  eta: number | undefined;
  /** Why the backfill is paused, when it is. */
  throttle?: string;
  width?: number;
}

/** `[########------]  45.2%  452,000/1,000,000 rows  98,500 rows/s  ETA 5s  (paused: ...)` */
export function renderProgressLine(p: ProgressLine): string {
  const width = p.width ?? 24;
  const ratio = p.planned > 0 ? Math.min(1, p.done / p.planned) : 1;
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  const parts = [
    bar,
    `${(ratio * 100).toFixed(1).padStart(5)}%`,
    `${n(p.done)}/${n(p.planned)} rows`,
    `${n(p.rowsPerSecond)} rows/s`,
    `ETA ${formatDuration(p.eta)}`,
  ];
  if (p.throttle) parts.push(`(paused: ${p.throttle})`);
  return parts.join('  ');
}

/**
 * Draws the progress line on a TTY stream, rewriting it in place; `clear` and `redraw` let log lines
 * interleave without tearing the bar. On a non-TTY stream it draws nothing (metrics and logs remain).
 */
export class ProgressBar {
  private last = '';
  private active: boolean;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    enabled = true,
  ) {
    this.active = enabled && stream.isTTY === true;
  }

  get enabled(): boolean {
    return this.active;
  }

  update(line: ProgressLine): void {
    if (!this.active) return;
    const columns = this.stream.columns ?? 120;
    this.last = renderProgressLine(line).slice(0, Math.max(20, columns - 1));
    this.stream.write(`\r\x1b[2K${this.last}`);
  }

  clear(): void {
    if (this.active && this.last) this.stream.write('\r\x1b[2K');
  }

  redraw(): void {
    if (this.active && this.last) this.stream.write(this.last);
  }

  /** Leaves the final line in place and stops drawing. */
  finish(): void {
    if (this.active && this.last) this.stream.write('\n');
    this.active = false;
  }
}
