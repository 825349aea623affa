/**
 * The WAL budget of one `backfill run` process (`pace.mode: wal-rate`, the default): the bytes of
 * write-ahead log per second its workers may add. After a batch that wrote `w` bytes (measured on the
 * server with pg_current_wal_insert_lsn) in `t` seconds, a worker sleeps `w × workers / rate − t`, so
 * the process as a whole writes about `rate` bytes/s whatever the row width, the mapping's CPU cost
 * or the number of workers.
 *
 * Why WAL rather than time: what a foreground commit pays for the backfill is flushing the
 * backfill's WAL before its own commit record (`IO:WALSync`, `LWLock:WALWrite`), so WAL per second is
 * the cost itself; a duty cycle only bounds it indirectly (a 2.5 ms batch can write 20 KiB or 2 MiB).
 *
 * The latency guard and the health controller move the budget like the duty cycle (AIMD: halve on
 * harm, add `increaseStep` on a clean window, within [min, max]); an operator can pin it
 * (`ctl set wal-rate=N`), which stops both from moving it until `set wal-rate=auto`.
 */
import type { PaceLevel } from './duty-cycle.js';

export interface WalBudgetOptions {
  /** Starting budget, bytes/s. */
  initial: number;
  min: number;
  max: number;
  /** Added per step up, bytes/s. */
  increaseStep: number;
  /** Multiplied per step down (default 0.5). */
  decreaseFactor?: number;
  /** Workers currently in service in this process (they share the budget). */
  workers: () => number;
  /** WAL assumed for a batch whose WAL was not measured. */
  fallbackBatchBytes: number;
}

export class WalBudget implements PaceLevel {
  private rate: number;
  private pinned: number | undefined;
  private readonly factor: number;

  constructor(private readonly o: WalBudgetOptions) {
    if (!(o.min > 0 && o.min <= o.max)) throw new RangeError(`WAL budget bounds need 0 < min <= max, got [${o.min}, ${o.max}]`);
    if (!(o.increaseStep > 0)) throw new RangeError(`WAL budget increaseStep must be positive, got ${o.increaseStep}`);
    this.factor = o.decreaseFactor ?? 0.5;
    if (!(this.factor > 0 && this.factor < 1)) throw new RangeError(`decreaseFactor must be in (0, 1), got ${this.factor}`);
    this.rate = clamp(o.initial, o.min, o.max);
  }

  /** Bytes per second the process may write now (the pinned value while pinned). */
  get current(): number {
    return this.pinned ?? this.rate;
  }

  get isPinned(): boolean {
    return this.pinned !== undefined;
  }

  get atMin(): boolean {
    return this.pinned !== undefined || this.rate <= this.o.min;
  }

  get atMax(): boolean {
    return this.pinned !== undefined || this.rate >= this.o.max;
  }

  /** Pins the budget (operator); `undefined` returns control to the guard from the pinned value. */
  pin(rate: number | undefined): void {
    if (rate === undefined) {
      if (this.pinned !== undefined) this.rate = clamp(this.pinned, this.o.min, this.o.max);
      this.pinned = undefined;
      return;
    }
    this.pinned = Math.max(1, rate);
  }

  sleepMsAfter(batchSeconds: number, walBytes: number | null = null): number {
    const bytes = walBytes !== null && walBytes >= 0 ? walBytes : this.o.fallbackBatchBytes;
    const workers = Math.max(1, this.o.workers());
    const ms = ((bytes * workers) / this.current) * 1000 - Math.max(0, batchSeconds) * 1000;
    return ms > 0 ? ms : 0;
  }

  decrease(): number {
    if (this.pinned === undefined) this.rate = clamp(this.rate * this.factor, this.o.min, this.o.max);
    return this.current;
  }

  increase(): number {
    if (this.pinned === undefined) this.rate = clamp(this.rate + this.o.increaseStep, this.o.min, this.o.max);
    return this.current;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** `2.0 MiB/s`-style text for status and logs. */
export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1024 * 1024) return `${(bytesPerSecond / 1024 / 1024).toFixed(1)} MiB/s`;
  return `${Math.round(bytesPerSecond / 1024)} KiB/s`;
}

/**
 * The batch's own WAL, estimated. pg_current_wal_insert_lsn() is cluster-wide, so what a batch
 * "wrote" includes every concurrent writer's WAL; pacing on it would make a busy foreground (or a
 * neighbour's bulk load) stretch the backfill's sleeps without bound. The smallest WAL per changed
 * row over the recent batches is the closest to the backfill's own cost (a batch with no concurrent
 * writer shows it exactly), so a batch counts as `changed x that`, never more than measured.
 */
export class OwnWalEstimator {
  private readonly perRow: number[] = [];

  constructor(private readonly window = 32) {}

  /** Bytes to charge the budget for a batch that measured `walBytes` and changed `changed` rows. */
  charge(walBytes: number | null, changed: number): number | null {
    if (walBytes === null) return null;
    if (changed <= 0) return Math.min(walBytes, 1024); // a no-op batch writes its checkpoint row only
    this.perRow.push(walBytes / changed);
    if (this.perRow.length > this.window) this.perRow.shift();
    return Math.min(walBytes, changed * Math.min(...this.perRow));
  }
}
