import { describe, expect, it } from 'vitest';
import { percentile, ProbeWindow } from '../../../services/backfill/probe-window.js';

describe('ProbeWindow', () => {
  it('keeps the last N samples and reports their nearest-rank p99', () => {
    const w = new ProbeWindow(5);
    expect(w.p99()).toBeUndefined();
    for (const ms of [1, 2, 3, 4, 100]) w.add(ms);
    expect(w.p99()).toBe(100);
    for (const ms of [1, 1, 1, 1, 1]) w.add(ms);
    expect(w.count).toBe(5);
    expect(w.p99()).toBe(1);
  });

  it('p99 over 200 samples ignores the slowest one only', () => {
    const values = Array.from({ length: 200 }, (_, i) => i + 1);
    expect(percentile(values, 0.99)).toBe(198);
    expect(percentile([5], 0.99)).toBe(5);
    expect(percentile([], 0.99)).toBeUndefined();
  });

  it('rejects a window that is not a positive integer', () => {
    expect(() => new ProbeWindow(0)).toThrow(RangeError);
  });
});
