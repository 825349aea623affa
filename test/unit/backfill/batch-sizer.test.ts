import { describe, expect, it } from 'vitest';
import { BatchSizer } from '../../../services/backfill/batch-sizer.js';

const sizer = () => new BatchSizer({ initial: 1000, min: 100, max: 50_000, targetSeconds: 0.5 });

describe('BatchSizer', () => {
  it('moves toward the size that takes the target time, at most doubling per step', () => {
    const s = sizer();
    expect(s.observe(1000, 0.05)).toBe(2000); // ideal 10,000, capped at 2x
    expect(s.observe(2000, 0.5)).toBe(2000); // on target
    expect(s.observe(2000, 0.4)).toBe(2500);
  });

  it('at most halves per step, and stays within [min, max]', () => {
    const s = sizer();
    expect(s.observe(1000, 10)).toBe(500);
    expect(s.observe(500, 10)).toBe(250);
    expect(s.observe(250, 10)).toBe(125);
    expect(s.observe(125, 10)).toBe(100);
    const big = new BatchSizer({ initial: 40_000, min: 100, max: 50_000, targetSeconds: 0.5 });
    expect(big.observe(40_000, 0.01)).toBe(50_000);
  });

  it('ignores batches that ended their range early (they say nothing about speed)', () => {
    const s = sizer();
    expect(s.observe(10, 0.001, 1000)).toBe(1000);
    expect(s.observe(0, 0, 1000)).toBe(1000);
  });

  it('an operator pin wins until cleared, then adaptation continues from the pinned size', () => {
    const s = sizer();
    s.pin(300);
    expect(s.current).toBe(300);
    expect(s.isPinned).toBe(true);
    expect(s.observe(300, 0.001)).toBe(300);
    s.pin(undefined);
    expect(s.isPinned).toBe(false);
    expect(s.current).toBe(300);
    expect(s.observe(300, 0.001)).toBe(600);
  });

  it('with a WAL target, takes the smaller of the two ideals (time and WAL bytes)', () => {
    const s = new BatchSizer({ initial: 1000, min: 100, max: 50_000, targetSeconds: 0.05, targetWalBytes: 65_536 });
    // 1000 rows in 10 ms wrote 327,680 bytes: time says 5,000 rows (capped at 2,000), WAL says 200 (floored at 500).
    expect(s.observe(1000, 0.01, 1000, 327_680)).toBe(500);
    expect(s.observe(500, 0.005, 500, 163_840)).toBe(250);
    expect(s.observe(250, 0.004, 250, 81_920)).toBe(200);
    // No WAL measured (or none written): time alone decides.
    expect(s.observe(200, 0.05, 200, null)).toBe(200);
    expect(s.observe(200, 0.025, 200, 0)).toBe(400);
  });
});
