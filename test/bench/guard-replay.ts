/**
 * What the backfill's latency guard would decide over recorded probe samples (bench:backfill
 * --guard-probe): the product's LatencyGuard, its baseline measured on `baseline` (samples taken with
 * no backfill), then fed `samples` one by one and judged after each, as the pacer does. The level it
 * moves never reaches a bound, so every judgement counts: `cuts` (the p99 over the limit, or the tail
 * shifted) and `raises` out of `windows` judged. Over samples taken with no backfill either, every
 * cut is one the guard makes for the host's noise alone.
 */
import type { PaceLevel } from '../../services/backfill/duty-cycle.js';
import { LatencyGuard, type LatencyGuardOptions } from '../../services/backfill/latency-guard.js';

export interface GuardReplay {
  windows: number;
  cuts: number;
  raises: number;
  /** The limit the baseline gave, ms (null: too few baseline samples). */
  limit_ms: number | null;
}

/** A level with room both ways, so the guard never stops at a bound. */
const unbounded = (): PaceLevel => ({
  current: 1,
  atMin: false,
  atMax: false,
  sleepMsAfter: () => 0,
  decrease: () => 1,
  increase: () => 1,
});

export function replayGuard(
  options: Pick<LatencyGuardOptions, 'factor' | 'minExcessMs' | 'window'>,
  baseline: readonly number[],
  samples: readonly number[],
): GuardReplay {
  const guard = new LatencyGuard({ ...options, baselineSeconds: 1, rebaselineSeconds: 0 }, unbounded(), 0);
  for (const ms of baseline) guard.add(ms);
  const done = guard.evaluate(1_000);
  if (done.kind !== 'baseline-done') return { windows: 0, cuts: 0, raises: 0, limit_ms: null };
  const out: GuardReplay = { windows: 0, cuts: 0, raises: 0, limit_ms: done.thresholdMs };
  for (const ms of samples) {
    guard.add(ms);
    const a = guard.evaluate(1_000);
    if (a.kind === 'decrease') out.cuts++;
    else if (a.kind === 'increase') out.raises++;
    if (a.kind !== 'none' || guard.state(1_000).samples === 0) out.windows++;
  }
  return out;
}
