import { describe, expect, it } from 'vitest';
import { formatRate, OwnWalEstimator, WalBudget } from '../../../services/backfill/wal-budget.js';

const MiB = 1024 * 1024;

describe('WAL budget', () => {
  const make = (workers = 1) =>
    new WalBudget({ initial: 2 * MiB, min: MiB / 4, max: 8 * MiB, increaseStep: MiB, workers: () => workers, fallbackBatchBytes: 65_536 });

  it('sleeps so that the process writes its budget: bytes x workers / rate minus the batch time', () => {
    const b = make();
    // 64 KiB at 2 MiB/s is 31.25 ms per batch; the batch took 5 ms.
    expect(b.sleepMsAfter(0.005, 64 * 1024)).toBeCloseTo(26.25, 6);
    // Two workers share the budget: each sleeps twice as long.
    expect(make(2).sleepMsAfter(0.005, 64 * 1024)).toBeCloseTo(57.5, 6);
    // A batch slower than its budget share sleeps nothing; an unmeasured batch counts as the fallback size.
    expect(b.sleepMsAfter(0.05, 64 * 1024)).toBe(0);
    expect(b.sleepMsAfter(0, null)).toBeCloseTo(31.25, 6);
  });

  it('moves AIMD within its bounds', () => {
    const b = make();
    expect(b.decrease()).toBe(MiB);
    expect(b.decrease()).toBe(MiB / 2);
    expect(b.decrease()).toBe(MiB / 4);
    expect(b.atMin).toBe(true);
    for (let i = 0; i < 20; i++) b.increase();
    expect(b.current).toBe(8 * MiB);
    expect(b.atMax).toBe(true);
  });

  it('an operator pin wins until unpinned; neither the guard nor the health controller moves it', () => {
    const b = make();
    b.pin(5 * MiB);
    expect(b.current).toBe(5 * MiB);
    expect(b.decrease()).toBe(5 * MiB);
    expect(b.increase()).toBe(5 * MiB);
    expect(b.atMin && b.atMax).toBe(true);
    b.pin(undefined);
    expect(b.current).toBe(5 * MiB);
    expect(b.decrease()).toBe(2.5 * MiB);
  });

  it('refuses bad bounds and formats rates', () => {
    expect(() => new WalBudget({ initial: 1, min: 10, max: 5, increaseStep: 1, workers: () => 1, fallbackBatchBytes: 1 })).toThrow(
      /0 < min <= max/,
    );
    expect(formatRate(2 * MiB)).toBe('2.0 MiB/s');
    expect(formatRate(256 * 1024)).toBe('256 KiB/s');
  });
});

describe('own WAL estimate', () => {
  it('charges changed rows at the smallest recent WAL per row, never more than measured', () => {
    const e = new OwnWalEstimator(4);
    expect(e.charge(30_000, 100)).toBe(30_000); // 300 bytes/row, the first sample
    // A batch measured during a neighbour's bulk write: 3 MB for 100 rows; charged 100 x 300.
    expect(e.charge(3_000_000, 100)).toBe(30_000);
    expect(e.charge(25_000, 100)).toBe(25_000); // a cleaner sample lowers the estimate
    expect(e.charge(1_000_000, 200)).toBe(50_000);
    // No-op batches (nothing changed) write only their checkpoint row; unmeasured stays unmeasured.
    expect(e.charge(500_000, 0)).toBe(1024);
    expect(e.charge(null, 10)).toBeNull();
    // The window forgets old samples.
    for (let i = 0; i < 4; i++) e.charge(40_000, 100);
    expect(e.charge(40_000, 100)).toBe(40_000);
  });
});
