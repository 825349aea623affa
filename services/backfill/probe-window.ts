/**
 * The sliding window of probe latencies behind the `throttle.probe` check: the last `size` durations
 * of the user's probe query, and their p99 by nearest rank. With the default window of 50 samples the
 * p99 is the slowest sample, so one slow probe throttles until it slides out of the window.
 */
export class ProbeWindow {
  private readonly samples: number[] = [];

  constructor(private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`probe window size must be a positive integer, got ${size}`);
  }

  add(durationMs: number): void {
    this.samples.push(durationMs);
    if (this.samples.length > this.size) this.samples.shift();
  }

  get count(): number {
    return this.samples.length;
  }

  /** Nearest-rank p99 in milliseconds, or undefined before the first sample. */
  p99(): number | undefined {
    return percentile(this.samples, 0.99);
  }
}

/** Nearest-rank percentile (q in (0, 1]) of `values`; undefined for an empty list. */
export function percentile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}
