import { describe, expect, it } from 'vitest';
import { WalRate } from '../../../services/backfill/slot-lag.js';

const MiB = 1024 * 1024;

describe('WalRate', () => {
  it('lag seconds = lag bytes / WAL rate over the window', () => {
    const w = new WalRate(10_000, MiB);
    w.add({ atMs: 0, lsn: 0n });
    w.add({ atMs: 2_000, lsn: BigInt(20 * MiB) }); // 10 MiB/s
    expect(w.bytesPerSecond()).toBe(10 * MiB);
    expect(w.lagSeconds(BigInt(15 * MiB))).toBeCloseTo(1.5);
    expect(w.lagSeconds(0n)).toBe(0);
  });

  it('floors the rate so an idle database does not read as infinite lag', () => {
    const w = new WalRate(10_000, MiB);
    w.add({ atMs: 0, lsn: 1000n });
    w.add({ atMs: 5_000, lsn: 1000n });
    expect(w.bytesPerSecond()).toBe(MiB);
    expect(w.lagSeconds(200n)).toBeLessThan(0.001);
  });

  it('measures over the sliding window only', () => {
    const w = new WalRate(1_000, 1);
    w.add({ atMs: 0, lsn: 0n });
    w.add({ atMs: 1_000, lsn: 100_000n }); // 100 kB/s
    w.add({ atMs: 2_000, lsn: 101_000n });
    w.add({ atMs: 3_000, lsn: 102_000n }); // recent: 1 kB/s
    expect(w.bytesPerSecond()).toBe(1_000);
  });
});
