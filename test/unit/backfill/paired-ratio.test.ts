import { describe, expect, it } from 'vitest';
import { MIN_PAIRS, pairedRatio } from '../../bench/paired-ratio.js';

/** 100 latencies of `base` ms with `slow` of them at `base * tail`. */
const window = (base: number, tail: number, slow = 2) => Array.from({ length: 100 }, (_, i) => (i < slow ? base * tail : base));

describe('pairedRatio (bench:backfill)', () => {
  it('is within the limit when every pair says the same small ratio', () => {
    // The host's speed moves between pairs (base 1..3 ms): each pair's idle side moves with it.
    const pairs = Array.from({ length: 12 }, (_, k) => ({ running: window(1 + (k % 3), 1.1), idle: window(1 + (k % 3), 1) }));
    const r = pairedRatio(pairs, 1.2);
    expect(r.pairs).toBe(12);
    expect(r.verdict).toBe('within');
    expect(r.ci90?.[1]).toBeLessThanOrEqual(1.2);
  });

  it('is over the limit when every running window is clearly slower', () => {
    const pairs = Array.from({ length: 10 }, () => ({ running: window(2, 1), idle: window(1, 1) }));
    const r = pairedRatio(pairs, 1.2);
    expect(r.ratio).toBe(2);
    expect(r.verdict).toBe('over');
    expect(r.ci90?.[0]).toBeGreaterThan(1.2);
  });

  it('is undecided when one stalled window decides the pooled p99', () => {
    // Nine quiet pairs and one running window with a stall: the pooled ratio is high, but it rests on one pair.
    // (15 stalled transactions of 1,000 running: the pooled p99 is a stalled one whenever that pair is drawn.)
    const pairs = Array.from({ length: 10 }, (_, k) => ({ running: k === 4 ? window(1, 30, 15) : window(1, 1.05), idle: window(1, 1.05) }));
    const r = pairedRatio(pairs, 1.2);
    expect(r.ratio).toBeGreaterThan(1.2);
    expect(r.verdict).toBe('undecided');
  });

  it('gives no interval with too few pairs, and leaves out pairs with an empty side', () => {
    const pairs = [
      ...Array.from({ length: MIN_PAIRS - 1 }, () => ({ running: window(1, 1), idle: window(1, 1) })),
      { running: [], idle: window(1, 1) },
    ];
    expect(pairedRatio(pairs, 1.2)).toEqual({ ratio: 1, ci90: null, pairs: MIN_PAIRS - 1, verdict: 'undecided' });
  });

  it('gives the same interval for the same pairs', () => {
    const pairs = Array.from({ length: 8 }, (_, k) => ({ running: window(1 + k / 10, 1.5, k), idle: window(1, 1.2) }));
    expect(pairedRatio(pairs, 1.2)).toEqual(pairedRatio(pairs, 1.2));
  });
});
