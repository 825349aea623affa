import { describe, expect, it } from 'vitest';
import { DutyCycle, niceRatio } from '../../../services/backfill/duty-cycle.js';

describe('DutyCycle', () => {
  it('sleeps so that batches fill the duty cycle of wall time', () => {
    const d = new DutyCycle({ initial: 0.25, min: 0.02, max: 0.5 });
    expect(d.sleepMsAfter(0.01)).toBeCloseTo(30, 9); // 10 ms batch + 30 ms sleep = 25%
    expect(d.sleepMsAfter(0)).toBe(0);
    expect(new DutyCycle({ initial: 1, min: 0.5, max: 1 }).sleepMsAfter(0.5)).toBe(0);
  });

  it('halves on a decrease and adds a step on an increase (AIMD), within [min, max]', () => {
    const d = new DutyCycle({ initial: 0.25, min: 0.02, max: 0.3 });
    expect(d.decrease()).toBe(0.125);
    expect(d.increase()).toBeCloseTo(0.145, 9);
    for (let i = 0; i < 10; i++) d.decrease();
    expect(d.current).toBe(0.02);
    expect(d.atMin).toBe(true);
    for (let i = 0; i < 100; i++) d.increase();
    expect(d.current).toBe(0.3);
    expect(d.atMax).toBe(true);
  });

  it('honours its own step and factor, and clamps the start', () => {
    const d = new DutyCycle({ initial: 0.9, min: 0.1, max: 0.6, increaseStep: 0.1, decreaseFactor: 0.8 });
    expect(d.current).toBe(0.6);
    expect(d.decrease()).toBeCloseTo(0.48, 9);
    expect(d.increase()).toBeCloseTo(0.58, 9);
  });

  it('refuses bounds that cannot hold a duty cycle', () => {
    expect(() => new DutyCycle({ initial: 0.5, min: 0, max: 1 })).toThrow(RangeError);
    expect(() => new DutyCycle({ initial: 0.5, min: 0.6, max: 0.5 })).toThrow(RangeError);
    expect(() => new DutyCycle({ initial: 0.5, min: 0.1, max: 1.5 })).toThrow(RangeError);
    expect(() => new DutyCycle({ initial: 0.5, min: 0.1, max: 1, decreaseFactor: 1 })).toThrow(RangeError);
  });

  it('converts to gh-ost nice ratios', () => {
    expect(niceRatio(0.5)).toBe(1);
    expect(niceRatio(0.2)).toBeCloseTo(4, 9);
    expect(niceRatio(1)).toBe(0);
  });
});
