/**
 * CDC slot lag in seconds, estimated from bytes and the recent WAL rate: the slot is `lagBytes`
 * behind `pg_current_wal_lsn()`, and the database writes WAL at `rate` bytes per second (measured
 * over a sliding window of LSN samples), so the consumer is about `lagBytes / rate` seconds behind.
 * The rate is floored (default 1 MiB/s) so an idle database with a few unacknowledged bytes does not
 * read as an infinite lag.
 */
export interface WalSample {
  atMs: number;
  lsn: bigint;
}

export class WalRate {
  private readonly samples: WalSample[] = [];

  constructor(
    private readonly windowMs = 10_000,
    private readonly floorBytesPerSecond = 1024 * 1024,
  ) {}

  add(sample: WalSample): void {
    this.samples.push(sample);
    const oldest = sample.atMs - this.windowMs;
    // Keep one sample older than the window so the rate always spans the whole window.
    while (this.samples.length > 2 && (this.samples[1]?.atMs ?? Infinity) <= oldest) this.samples.shift();
  }

  /** WAL bytes per second over the window, floored. */
  bytesPerSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.atMs <= first.atMs) return this.floorBytesPerSecond;
    const rate = Number(last.lsn - first.lsn) / ((last.atMs - first.atMs) / 1000);
    return Math.max(this.floorBytesPerSecond, rate);
  }

  /** Estimated seconds of WAL the slot is behind. */
  lagSeconds(lagBytes: bigint): number {
    if (lagBytes <= 0n) return 0;
    return Number(lagBytes) / this.bytesPerSecond();
  }
}
