/**
 * The pace of a worker: the share of wall time it spends inside batches. After a batch of `t`
 * seconds a worker at duty cycle `d` sleeps `t * (1 - d) / d` (gh-ost's --nice-ratio `r` is the duty
 * cycle `1 / (1 + r)`), so the database gets idle gaps between batches and the backfill's write-ahead
 * log arrives in small bursts instead of a continuous stream that every OLTP commit has to flush
 * behind.
 *
 * The latency guard moves the duty cycle AIMD-style, as TCP moves its window: multiplicatively down
 * when foreground latency rises (one step cuts the pressure at once), additively up while it stays
 * near its baseline (a slow probe for spare capacity), always within [min, max].
 */
export interface DutyCycleOptions {
  /** Starting duty cycle, in (0, 1]. */
  initial: number;
  min: number;
  max: number;
  /** Added per step up (default 0.02: from 0.1 to 0.2 in five clean windows). */
  increaseStep?: number;
  /** Multiplied per step down (default 0.5). */
  decreaseFactor?: number;
}

/**
 * What the latency guard and the health controller move: a duty cycle, or a WAL budget
 * (wal-budget.ts). `current` is the level in its own unit (a share of time, or bytes/s).
 */
export interface PaceLevel {
  readonly current: number;
  readonly atMin: boolean;
  readonly atMax: boolean;
  /** How long a worker sleeps after a batch of `batchSeconds` that wrote `walBytes` (null: not measured), ms. */
  sleepMsAfter(batchSeconds: number, walBytes?: number | null): number;
  decrease(): number;
  increase(): number;
}

export class DutyCycle implements PaceLevel {
  private duty: number;
  private readonly step: number;
  private readonly factor: number;

  constructor(private readonly options: DutyCycleOptions) {
    const { min, max } = options;
    if (!(min > 0 && min <= max && max <= 1)) throw new RangeError(`duty cycle bounds need 0 < min <= max <= 1, got [${min}, ${max}]`);
    this.step = options.increaseStep ?? 0.02;
    this.factor = options.decreaseFactor ?? 0.5;
    if (!(this.step > 0)) throw new RangeError(`increaseStep must be positive, got ${this.step}`);
    if (!(this.factor > 0 && this.factor < 1)) throw new RangeError(`decreaseFactor must be in (0, 1), got ${this.factor}`);
    this.duty = clamp(options.initial, min, max);
  }

  /** The current duty cycle, in [min, max]. */
  get current(): number {
    return this.duty;
  }

  get atMin(): boolean {
    return this.duty <= this.options.min;
  }

  get atMax(): boolean {
    return this.duty >= this.options.max;
  }

  /** How long to sleep after a batch that took `batchSeconds`, in ms (0 at a duty cycle of 1). */
  sleepMsAfter(batchSeconds: number): number {
    if (!(batchSeconds > 0)) return 0;
    return (batchSeconds * 1000 * (1 - this.duty)) / this.duty;
  }

  /** Foreground latency rose: multiplicative decrease. Returns the new duty cycle. */
  decrease(): number {
    this.duty = clamp(this.duty * this.factor, this.options.min, this.options.max);
    return this.duty;
  }

  /** Foreground latency stayed near its baseline: additive increase. Returns the new duty cycle. */
  increase(): number {
    this.duty = clamp(this.duty + this.step, this.options.min, this.options.max);
    return this.duty;
  }
}

/** gh-ost's nice ratio for a duty cycle: seconds slept per second of batch. */
export function niceRatio(dutyCycle: number): number {
  return (1 - dutyCycle) / dutyCycle;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
