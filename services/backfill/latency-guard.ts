/**
 * The adaptive latency guard, pure: it turns probe latencies into moves of the duty cycle.
 *
 * 1. Baseline: before the first batch (and again every `rebaselineSeconds`) the backfill is held
 *    while the probe runs for `baselineSeconds`; the p99 of those samples is what foreground latency
 *    looks like without the backfill. The limit is that p99 times `factor`, and at least
 *    `minExcessMs` above it (a 20% rise of a 0.3 ms probe is scheduler noise, not harm).
 * 2. Guarding: samples taken since the last move are judged as one window of `window` samples. As
 *    soon as that window's nearest-rank p99 must exceed the limit (enough samples are over it that
 *    the rest cannot pull it back), the duty cycle is cut (multiplicative decrease) and a new window
 *    starts, so the next judgement sees only samples taken at the new pace.
 *    A full window is also tested for a shift of the whole tail, which a 100-sample p99 (its second
 *    largest value) is too noisy to see: without one, about 10% of the samples exceed the baseline's
 *    p90 and 1% its p99. Clearly more (beyond what chance gives one window in a hundred) cuts the
 *    duty cycle as well; a window no worse than the baseline within one standard deviation raises it
 *    one step (additive increase); anything in between holds it.
 * 3. Over the limit already at the minimum duty cycle: either the backfill still hurts at its
 *    slowest, or the foreground got slower on its own (a traffic peak) and the baseline is stale.
 *    Pausing to measure a fresh baseline tells them apart and is the right response to both.
 *
 * Nothing here reads a clock or a database: the controller feeds samples and the monotonic time.
 */
import { percentile } from './probe-window.js';
import type { PaceLevel } from './duty-cycle.js';

export interface LatencyGuardOptions {
  /** Limit = baseline p99 x factor (> 1). */
  factor: number;
  /** ...and at least this many ms above the baseline p99. */
  minExcessMs: number;
  /** Samples per judgement. */
  window: number;
  baselineSeconds: number;
  /** Re-measure the baseline this often while guarding (0: only at the start and when over at the minimum). */
  rebaselineSeconds: number;
}

export type BaselineReason = 'start' | 'periodic' | 'over-at-minimum';

export type GuardAction =
  | { kind: 'none' }
  | { kind: 'baseline-done'; baselineP99Ms: number; thresholdMs: number; samples: number }
  | { kind: 'rebaseline'; reason: BaselineReason; p99Ms?: number }
  | {
      kind: 'decrease';
      dutyCycle: number;
      p99Ms: number;
      over: number;
      samples: number;
      cause: 'p99' | 'shift';
      overP90?: number;
      overP99?: number;
    }
  | { kind: 'increase'; dutyCycle: number; p99Ms: number };

export interface LatencyGuardState {
  phase: 'baseline' | 'guarding';
  /** Why the current (or last) baseline was measured. */
  baselineReason: BaselineReason;
  /** p99 of the last baseline, ms; null before the first one completes. */
  baselineP99Ms: number | null;
  /** p90 of the last baseline, ms; null before the first one completes. */
  baselineP90Ms: number | null;
  thresholdMs: number | null;
  /** p99 of the last `window` samples, ms (any phase); null before the first sample. */
  p99Ms: number | null;
  /** Samples in the baseline being measured, or in the current judgement window. */
  samples: number;
  /** While measuring a baseline: seconds measured so far. */
  baselineElapsedSeconds?: number;
  /** While re-measuring because the probe was over the limit at the minimum duty cycle: that p99. */
  triggerP99Ms?: number;
}

/** Fewest samples a baseline needs, however long it takes to collect them. */
const MIN_BASELINE_SAMPLES = 20;

/**
 * The shift test of a full window of `n` samples against the baseline's p90 and p99: how many
 * exceedances of each make a cut (the one-sided 99th percentile of the count without a shift, a
 * normal approximation of the binomial, at least 2 over its mean), and how many still allow a step
 * up (the mean plus one standard deviation).
 */
export function shiftBounds(n: number): { cutP90: number; cutP99: number; raiseP90: number; raiseP99: number } {
  const bound = (p: number, z: number) => n * p + z * Math.sqrt(n * p * (1 - p));
  return {
    cutP90: Math.max(Math.ceil(bound(0.1, 2.33)), Math.ceil(n * 0.1) + 2),
    cutP99: Math.max(Math.ceil(bound(0.01, 2.33)) + 1, Math.ceil(n * 0.01) + 2),
    raiseP90: Math.floor(bound(0.1, 1)),
    raiseP99: Math.floor(bound(0.01, 1)),
  };
}

export class LatencyGuard {
  private phase: 'baseline' | 'guarding' = 'baseline';
  private reason: BaselineReason = 'start';
  private phaseStartMs: number;
  private lastBaselineMs: number;
  private baselineSamples: number[] = [];
  private fresh: number[] = [];
  private readonly recent: number[] = [];
  private baselineP99: number | null = null;
  private baselineP90: number | null = null;
  private threshold: number | null = null;
  /** The window p99 that sent the guard back to measuring (over the limit at the minimum). */
  private trigger: number | undefined;

  constructor(
    private readonly options: LatencyGuardOptions,
    private readonly duty: PaceLevel,
    nowMs: number,
  ) {
    if (!(options.factor > 1)) throw new RangeError(`latency guard factor must be above 1, got ${options.factor}`);
    if (!Number.isInteger(options.window) || options.window < 2)
      throw new RangeError(`latency guard window must be an integer of at least 2, got ${options.window}`);
    this.phaseStartMs = nowMs;
    this.lastBaselineMs = nowMs;
  }

  /** True while the backfill must hold its batches (a baseline is being measured). */
  get holding(): boolean {
    return this.phase === 'baseline';
  }

  /** One probe duration in ms (a failed probe comes in as its timeout). */
  add(ms: number): void {
    this.recent.push(ms);
    if (this.recent.length > this.options.window) this.recent.shift();
    if (this.phase === 'baseline') this.baselineSamples.push(ms);
    else this.fresh.push(ms);
  }

  /**
   * Judges the samples so far and moves the duty cycle when a judgement is due. `paused` is true
   * while something else holds the backfill (operator, lag, load): samples taken then say nothing
   * about the backfill's pace, so they are dropped and nothing moves (a baseline in progress goes on:
   * an idle backfill is exactly what it measures).
   */
  evaluate(nowMs: number, paused = false): GuardAction {
    if (this.phase === 'baseline') {
      const elapsed = nowMs - this.phaseStartMs;
      if (elapsed < this.options.baselineSeconds * 1000 || this.baselineSamples.length < MIN_BASELINE_SAMPLES) return { kind: 'none' };
      const p99 = percentile(this.baselineSamples, 0.99) as number;
      this.baselineP99 = p99;
      this.baselineP90 = percentile(this.baselineSamples, 0.9) as number;
      this.threshold = limitFor(p99, this.options);
      const samples = this.baselineSamples.length;
      this.baselineSamples = [];
      this.fresh = [];
      this.phase = 'guarding';
      this.lastBaselineMs = nowMs;
      return { kind: 'baseline-done', baselineP99Ms: p99, thresholdMs: this.threshold, samples };
    }
    if (paused) {
      this.fresh = [];
      return { kind: 'none' };
    }
    if (this.options.rebaselineSeconds > 0 && nowMs - this.lastBaselineMs >= this.options.rebaselineSeconds * 1000) {
      return this.startBaseline('periodic', nowMs);
    }
    const threshold = this.threshold as number;
    const over = this.fresh.filter((ms) => ms > threshold).length;
    // The window's nearest-rank p99 is its k-th largest value, k = window - ceil(0.99 window) + 1;
    // once k samples are over the limit, the full window's p99 is over it whatever comes next.
    const k = this.options.window - Math.ceil(0.99 * this.options.window) + 1;
    if (over >= k) {
      const p99 = percentile(this.fresh, 0.99) as number;
      const samples = this.fresh.length;
      if (this.duty.atMin) return this.startBaseline('over-at-minimum', nowMs, p99);
      this.fresh = [];
      return { kind: 'decrease', dutyCycle: this.duty.decrease(), p99Ms: p99, over, samples, cause: 'p99' };
    }
    if (this.fresh.length >= this.options.window) {
      const window = this.fresh;
      const p99 = percentile(window, 0.99) as number;
      this.fresh = [];
      const bounds = shiftBounds(window.length);
      const overP90 = window.filter((ms) => ms > (this.baselineP90 as number)).length;
      const overP99 = window.filter((ms) => ms > (this.baselineP99 as number)).length;
      if (overP90 >= bounds.cutP90 || overP99 >= bounds.cutP99) {
        if (this.duty.atMin) return this.startBaseline('over-at-minimum', nowMs, p99);
        return {
          kind: 'decrease',
          dutyCycle: this.duty.decrease(),
          p99Ms: p99,
          over,
          samples: window.length,
          cause: 'shift',
          overP90,
          overP99,
        };
      }
      if (this.duty.atMax || overP90 > bounds.raiseP90 || overP99 > bounds.raiseP99) return { kind: 'none' };
      return { kind: 'increase', dutyCycle: this.duty.increase(), p99Ms: p99 };
    }
    return { kind: 'none' };
  }

  private startBaseline(reason: BaselineReason, nowMs: number, p99Ms?: number): GuardAction {
    this.phase = 'baseline';
    this.reason = reason;
    this.trigger = p99Ms;
    this.phaseStartMs = nowMs;
    this.baselineSamples = [];
    this.fresh = [];
    return { kind: 'rebaseline', reason, ...(p99Ms !== undefined ? { p99Ms } : {}) };
  }

  state(nowMs: number): LatencyGuardState {
    return {
      phase: this.phase,
      baselineReason: this.reason,
      baselineP99Ms: this.baselineP99,
      baselineP90Ms: this.baselineP90,
      thresholdMs: this.threshold,
      p99Ms: percentile(this.recent, 0.99) ?? null,
      samples: this.phase === 'baseline' ? this.baselineSamples.length : this.fresh.length,
      ...(this.phase === 'baseline' ? { baselineElapsedSeconds: Math.max(0, nowMs - this.phaseStartMs) / 1000 } : {}),
      ...(this.phase === 'baseline' && this.trigger !== undefined ? { triggerP99Ms: this.trigger } : {}),
    };
  }
}

/** The latency limit for a baseline p99: `factor` times it, and at least `minExcessMs` above it. */
export function limitFor(baselineP99Ms: number, o: Pick<LatencyGuardOptions, 'factor' | 'minExcessMs'>): number {
  return Math.max(baselineP99Ms * o.factor, baselineP99Ms + o.minExcessMs);
}
