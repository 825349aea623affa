import { describe, expect, it } from 'vitest';
import { settleVerdict } from '../../../services/reconciler/recheck.js';
import { compareDecimalText } from '../../../services/reconciler/row-diff.js';
import type { Checksum } from '../../../services/reconciler/segment-hash.js';
import {
  DENSE_FRACTION,
  differenceDensity,
  mergedDensity,
  recheckBySegment,
  strategyFor,
} from '../../../services/reconciler/segment-strategy.js';

const c = (rows: number, sum = '1'): Checksum => ({ rows: BigInt(rows), sum1: sum, sum2: sum });

describe('per-segment strategy', () => {
  it('measures the share of rows in differing parts, by the larger side of each part', () => {
    expect(differenceDensity([c(10), c(10), c(10), c(10)], [c(10), c(10), c(10), c(10)])).toBe(0);
    expect(differenceDensity([c(10), c(10), c(10), c(10)], [c(10, '2'), c(10), c(10), c(10)])).toBe(0.25);
    // A part missing on one side counts with the other side's rows.
    expect(differenceDensity([c(0), c(30)], [c(10), c(30)])).toBe(0.25);
    expect(differenceDensity([c(10), c(10)], [c(10, '2'), c(12)])).toBe(1);
    expect(differenceDensity([c(0)], [c(0)])).toBe(0);
  });

  it('merges a segment once differing parts hold at least half its rows, bisects below', () => {
    expect(DENSE_FRACTION).toBe(0.5);
    expect(strategyFor(0)).toBe('bisect');
    expect(strategyFor(0.01)).toBe('bisect');
    expect(strategyFor(0.49)).toBe('bisect');
    expect(strategyFor(0.5)).toBe('merge');
    expect(strategyFor(1)).toBe('merge');
  });

  it('measures a merged segment by its differing rows', () => {
    expect(mergedDensity(500, 1000n, 900n)).toBe(0.5);
    expect(mergedDensity(3, 0n, 0n)).toBe(1);
    expect(mergedDensity(0, 0n, 0n)).toBe(0);
  });

  it('rechecks a segment as a whole only when many of its keys differ', () => {
    expect(recheckBySegment(499, 1000)).toBe(false);
    expect(recheckBySegment(500, 1000)).toBe(true);
    expect(recheckBySegment(600, 100_000)).toBe(false);
    expect(recheckBySegment(5_000, 100_000)).toBe(true);
  });
});

describe('settling without a CDC slot', () => {
  const options = { waitMs: 1000, settleMs: 5000, boundMs: 20_000 };

  it('equal on recheck: resolved', () => {
    expect(settleVerdict({ equal: true, same: false, ageMs: 1000, stableMs: 1000, lastWaitMs: 1000 }, options)).toEqual({
      status: 'resolved',
    });
  });

  it('unchanged but not yet for settleMs: looked at again, the wait doubling but never past the settle time', () => {
    expect(settleVerdict({ equal: false, same: true, ageMs: 1000, stableMs: 1000, lastWaitMs: 1000 }, options)).toEqual({
      status: 'suspect',
      nextCheckInMs: 2000,
    });
    expect(settleVerdict({ equal: false, same: true, ageMs: 3000, stableMs: 3000, lastWaitMs: 2000 }, options)).toEqual({
      status: 'suspect',
      nextCheckInMs: 2000,
    });
  });

  it('unchanged on both sides for settleMs: confirmed', () => {
    expect(settleVerdict({ equal: false, same: true, ageMs: 5000, stableMs: 5000, lastWaitMs: 2000 }, options)).toEqual({
      status: 'confirmed',
    });
  });

  it('a change restarts the stable time; still unsettled at the bound: in flight, never confirmed', () => {
    expect(settleVerdict({ equal: false, same: false, ageMs: 9000, stableMs: 9000, lastWaitMs: 4000 }, options)).toEqual({
      status: 'suspect',
      nextCheckInMs: 5000,
    });
    expect(settleVerdict({ equal: false, same: false, ageMs: 19_000, stableMs: 0, lastWaitMs: 8000 }, options)).toEqual({
      status: 'suspect',
      nextCheckInMs: 1000,
    });
    expect(settleVerdict({ equal: false, same: false, ageMs: 20_000, stableMs: 20_000, lastWaitMs: 1000 }, options)).toEqual({
      status: 'unsettled',
    });
    expect(settleVerdict({ equal: false, same: true, ageMs: 20_000, stableMs: 4000, lastWaitMs: 1000 }, options)).toEqual({
      status: 'unsettled',
    });
  });
});

describe('canonical decimal key order', () => {
  it("orders like PostgreSQL's numeric", () => {
    const sorted = [
      '-Infinity',
      '-1000.1',
      '-500',
      '-2.5',
      '-0.05',
      '0',
      '0.009',
      '0.05',
      '0.5',
      '0.51',
      '1',
      '2',
      '10',
      '1000.1',
      '1000.12',
      '99999999999999999999.5',
      'Infinity',
      'NaN',
    ];
    const shuffled = [...sorted].reverse();
    shuffled.sort(compareDecimalText);
    expect(shuffled).toEqual(sorted);
  });
});
