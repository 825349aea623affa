import { describe, expect, it } from 'vitest';
import { replayGuard } from '../../bench/guard-replay.js';

const options = { factor: 1.2, minExcessMs: 0.2, window: 100 };
const baseline = Array.from({ length: 200 }, () => 1);

describe('replayGuard (bench:backfill --guard-probe)', () => {
  it('counts every full window judged, and raises on clean ones', () => {
    const r = replayGuard(
      options,
      baseline,
      Array.from({ length: 300 }, () => 1),
    );
    expect(r).toEqual({ windows: 3, cuts: 0, raises: 3, limit_ms: 1.2 });
  });

  it('counts a cut as soon as two samples are over the limit, and starts a new window', () => {
    // Window 1 is cut at its 20th sample; window 2 then holds 100 clean samples; 20 samples are left over.
    const samples = Array.from({ length: 140 }, (_, i) => (i === 9 || i === 19 ? 5 : 1));
    expect(replayGuard(options, baseline, samples)).toEqual({ windows: 2, cuts: 1, raises: 1, limit_ms: 1.2 });
  });

  it('returns no judgement when the baseline has too few samples', () => {
    expect(replayGuard(options, [1, 1, 1], [1, 2, 3])).toEqual({ windows: 0, cuts: 0, raises: 0, limit_ms: null });
  });
});
