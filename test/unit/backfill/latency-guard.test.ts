import { describe, expect, it } from 'vitest';
import { DutyCycle } from '../../../services/backfill/duty-cycle.js';
import { LatencyGuard, limitFor, shiftBounds, type LatencyGuardOptions } from '../../../services/backfill/latency-guard.js';

const options: LatencyGuardOptions = { factor: 1.2, minExcessMs: 0.2, window: 100, baselineSeconds: 5, rebaselineSeconds: 0 };

/** A guard whose baseline (100 samples of 1 ms, p99 1 ms) is done at t = 5 s; limit 1.2 ms. */
function guarded(o: Partial<LatencyGuardOptions> = {}, duty = new DutyCycle({ initial: 0.25, min: 0.02, max: 0.5 })) {
  const guard = new LatencyGuard({ ...options, ...o }, duty, 0);
  for (let i = 0; i < 100; i++) guard.add(1);
  const done = guard.evaluate(5_000);
  return { guard, duty, done };
}

describe('limitFor', () => {
  it('is the baseline times the factor, and at least minExcessMs above it', () => {
    expect(limitFor(2, { factor: 1.2, minExcessMs: 0.2 })).toBeCloseTo(2.4, 9);
    expect(limitFor(0.5, { factor: 1.2, minExcessMs: 0.2 })).toBeCloseTo(0.7, 9);
  });
});

describe('shiftBounds', () => {
  it('for 100 samples: cut at 17 over the baseline p90 or 5 over its p99; raise at no more than 13 and 1', () => {
    expect(shiftBounds(100)).toEqual({ cutP90: 17, cutP99: 5, raiseP90: 13, raiseP99: 1 });
  });

  it('keeps the cut at least 2 over the mean for small windows', () => {
    const b = shiftBounds(10);
    expect(b.cutP90).toBeGreaterThanOrEqual(3);
    expect(b.cutP99).toBeGreaterThanOrEqual(3);
  });
});

describe('LatencyGuard', () => {
  it('holds the backfill while it measures the baseline, for the time and at least 20 samples', () => {
    const guard = new LatencyGuard(options, new DutyCycle({ initial: 0.25, min: 0.02, max: 0.5 }), 0);
    expect(guard.holding).toBe(true);
    for (let i = 0; i < 10; i++) guard.add(1);
    expect(guard.evaluate(6_000)).toEqual({ kind: 'none' }); // time is up, too few samples
    expect(guard.state(6_000)).toMatchObject({ phase: 'baseline', baselineReason: 'start', samples: 10, baselineElapsedSeconds: 6 });
    for (let i = 0; i < 10; i++) guard.add(2);
    const done = guard.evaluate(6_500);
    expect(done).toMatchObject({ kind: 'baseline-done', baselineP99Ms: 2, samples: 20 });
    expect(guard.holding).toBe(false);
    expect(guard.state(6_500)).toMatchObject({ phase: 'guarding', baselineP99Ms: 2, thresholdMs: 2.4, samples: 0 });
  });

  it('cuts the duty cycle as soon as the window p99 must be over the limit (2 of 100 samples)', () => {
    const { guard, duty, done } = guarded();
    expect(done).toMatchObject({ kind: 'baseline-done', thresholdMs: 1.2 });
    for (let i = 0; i < 30; i++) guard.add(1);
    guard.add(5);
    expect(guard.evaluate(6_000)).toEqual({ kind: 'none' }); // one slow sample is the 100th, not the 99th
    guard.add(4);
    const cut = guard.evaluate(6_100);
    expect(cut).toMatchObject({ kind: 'decrease', dutyCycle: 0.125, over: 2, samples: 32 });
    expect(duty.current).toBe(0.125);
    // A new window starts: the slow samples that caused the cut cannot cut again.
    expect(guard.evaluate(6_200)).toEqual({ kind: 'none' });
    expect(guard.state(6_200).samples).toBe(0);
  });

  it('raises the duty cycle one step per full window no worse than the baseline, never above max', () => {
    const { guard, duty } = guarded({}, new DutyCycle({ initial: 0.46, min: 0.02, max: 0.5 }));
    for (let i = 0; i < 99; i++) guard.add(1);
    expect(guard.evaluate(10_000)).toEqual({ kind: 'none' });
    guard.add(1.1); // one sample over the baseline p99 (1 ms) and under the limit: still a clean window
    expect(guard.evaluate(10_100)).toMatchObject({ kind: 'increase', p99Ms: 1 });
    expect(duty.current).toBeCloseTo(0.48, 9);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) guard.add(1);
      guard.evaluate(11_000 + round);
    }
    expect(duty.current).toBe(0.5);
  });

  it('cuts the duty cycle when the window tail has shifted above the baseline, with no sample over the limit', () => {
    // Baseline: 90 samples of 1 ms and 10 of 1.1 ms: p90 1 ms, p99 1.1 ms, limit 1.32 ms.
    const duty = new DutyCycle({ initial: 0.25, min: 0.02, max: 0.5 });
    const guard = new LatencyGuard(options, duty, 0);
    for (let i = 0; i < 100; i++) guard.add(i < 90 ? 1 : 1.1);
    expect(guard.evaluate(5_000)).toMatchObject({ kind: 'baseline-done', baselineP99Ms: 1.1, thresholdMs: 1.32 });
    expect(guard.state(5_000).baselineP90Ms).toBe(1);
    // 30 of 100 samples above the baseline's p90 (10 expected), all under the limit.
    for (let i = 0; i < 100; i++) guard.add(i < 70 ? 1 : 1.05);
    expect(guard.evaluate(10_000)).toMatchObject({ kind: 'decrease', cause: 'shift', dutyCycle: 0.125, overP90: 30, overP99: 0 });
  });

  it('holds the duty cycle on a window between clean and clearly shifted', () => {
    const duty = new DutyCycle({ initial: 0.25, min: 0.02, max: 0.5 });
    const guard = new LatencyGuard(options, duty, 0);
    for (let i = 0; i < 100; i++) guard.add(i < 90 ? 1 : 1.1);
    guard.evaluate(5_000);
    // 15 above the baseline p90: more than one standard deviation over the 10 expected, less than the cut.
    for (let i = 0; i < 100; i++) guard.add(i < 85 ? 1 : 1.05);
    expect(guard.evaluate(10_000)).toEqual({ kind: 'none' });
    expect(duty.current).toBe(0.25);
    expect(guard.state(10_000).samples).toBe(0);
  });

  it('over the limit at the minimum duty cycle: holds the backfill to measure a new baseline', () => {
    const { guard, duty } = guarded({}, new DutyCycle({ initial: 0.02, min: 0.02, max: 0.5 }));
    guard.add(3);
    guard.add(3);
    const action = guard.evaluate(7_000);
    expect(action).toEqual({ kind: 'rebaseline', reason: 'over-at-minimum', p99Ms: 3 });
    expect(guard.holding).toBe(true);
    expect(guard.state(8_000)).toMatchObject({
      phase: 'baseline',
      baselineReason: 'over-at-minimum',
      triggerP99Ms: 3,
      thresholdMs: 1.2,
      baselineElapsedSeconds: 1,
    });
    // The foreground is slower on its own now (3 ms with the backfill held): that becomes the baseline.
    for (let i = 0; i < 100; i++) guard.add(3);
    const fresh = guard.evaluate(12_000);
    expect(fresh).toMatchObject({ kind: 'baseline-done', baselineP99Ms: 3 });
    expect(fresh.kind === 'baseline-done' && fresh.thresholdMs).toBeCloseTo(3.6, 9);
    expect(duty.current).toBe(0.02);
  });

  it('re-measures the baseline every rebaselineSeconds', () => {
    const { guard } = guarded({ rebaselineSeconds: 60 });
    expect(guard.evaluate(64_000)).toEqual({ kind: 'none' });
    expect(guard.evaluate(65_000)).toEqual({ kind: 'rebaseline', reason: 'periodic' });
    expect(guard.holding).toBe(true);
  });

  it('ignores samples taken while something else holds the backfill', () => {
    const { guard, duty } = guarded();
    guard.add(9);
    guard.add(9);
    expect(guard.evaluate(6_000, true)).toEqual({ kind: 'none' });
    expect(duty.current).toBe(0.25);
    guard.add(1);
    expect(guard.evaluate(6_100)).toEqual({ kind: 'none' });
    expect(guard.state(6_100).samples).toBe(1);
  });

  it('refuses a factor of 1 or less and a window under 2', () => {
    const d = new DutyCycle({ initial: 0.25, min: 0.02, max: 0.5 });
    expect(() => new LatencyGuard({ ...options, factor: 1 }, d, 0)).toThrow(RangeError);
    expect(() => new LatencyGuard({ ...options, window: 1 }, d, 0)).toThrow(RangeError);
  });
});
