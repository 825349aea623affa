import { describe, expect, it } from 'vitest';
import { etaSeconds, formatDuration, RateWindow, renderProgressLine } from '../../../services/backfill/progress.js';

describe('progress', () => {
  it('rows per second over the sliding window', () => {
    const r = new RateWindow(10_000);
    expect(r.rowsPerSecond()).toBe(0);
    r.add({ atMs: 0, rows: 0 });
    r.add({ atMs: 2_000, rows: 100_000 });
    expect(r.rowsPerSecond()).toBe(50_000);
    r.add({ atMs: 12_500, rows: 100_000 });
    r.add({ atMs: 13_000, rows: 110_000 });
    // Samples older than the window are gone: the rate reflects the last ~10 s.
    expect(r.rowsPerSecond()).toBeCloseTo(10_000 / 11, 0);
  });

  it('ETA from the rate, unknown while nothing moves', () => {
    expect(etaSeconds(250, 1000, 50)).toBe(15);
    expect(etaSeconds(250, 1000, 0)).toBeUndefined();
    expect(etaSeconds(1000, 1000, 0)).toBe(0);
    expect(formatDuration(undefined)).toBe('--');
    expect(formatDuration(59.4)).toBe('59s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3 * 3600 + 5 * 60)).toBe('3h05m');
  });

  it('renders the bar with rows/s, ETA and the pause reason', () => {
    const line = renderProgressLine({
      done: 452_000,
      planned: 1_000_000,
      rowsPerSecond: 98_500,
      eta: 5.6,
      throttle: 'probe_p99: probe p99 80ms',
      width: 10,
    });
    expect(line).toBe('[#####-----]   45.2%  452,000/1,000,000 rows  98,500 rows/s  ETA 6s  (paused: probe_p99: probe p99 80ms)');
  });
});
