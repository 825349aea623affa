import { describe, expect, it } from 'vitest';
import { bucketOf, inRamp, murmur3, routeRead } from '../../../services/client/routing.js';

describe('murmur3', () => {
  it('matches the reference MurmurHash3 x86_32 vectors', () => {
    expect(murmur3('', 0)).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('hello', 0)).toBe(0x248bfa47);
    expect(murmur3('test', 0)).toBe(0xba6bd213);
    expect(murmur3('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
  });
});

describe('percentage ramp', () => {
  const keys = Array.from({ length: 100_000 }, (_, i) => i + 1);

  it.each([1, 10, 50])('puts 100k sequential keys within 2 percentage points of a %s percent ramp', (percent) => {
    const inside = keys.filter((k) => inRamp(k, percent, 'orders-multicurrency')).length;
    expect(Math.abs((inside / keys.length) * 100 - percent)).toBeLessThanOrEqual(2);
  });

  it('is consistent: a key inside a smaller ramp stays inside every larger one', () => {
    const at1 = keys.filter((k) => inRamp(k, 1, 'm'));
    expect(at1.length).toBeGreaterThan(0);
    for (const k of at1) {
      expect(inRamp(k, 10, 'm')).toBe(true);
      expect(inRamp(k, 50, 'm')).toBe(true);
    }
  });

  it('ramps different keys for different migrations (salt)', () => {
    const a = new Set(keys.filter((k) => inRamp(k, 10, 'migration-a')));
    const b = keys.filter((k) => inRamp(k, 10, 'migration-b'));
    const overlap = b.filter((k) => a.has(k)).length / b.length;
    // Independent 10% samples overlap about 10%, far from the 100% of an unsalted hash.
    expect(overlap).toBeLessThan(0.2);
  });

  it('treats 0% and 100% exactly and composite keys as one key', () => {
    expect(keys.some((k) => inRamp(k, 0, 'm'))).toBe(false);
    expect(keys.every((k) => inRamp(k, 100, 'm'))).toBe(true);
    expect(bucketOf(['eu', 42], 'm')).toBe(bucketOf(['eu', 42], 'm'));
    expect(bucketOf(['eu', 42], 'm')).not.toBe(bucketOf(['eu', 43], 'm'));
  });

  it('routes old outside the ramp and the flag path inside it', () => {
    const inside = keys.find((k) => inRamp(k, 10, 'm')) as number;
    const outside = keys.find((k) => !inRamp(k, 10, 'm')) as number;
    expect(routeRead({ read: 'new', readPercent: 10 }, inside, 'm')).toBe('new');
    expect(routeRead({ read: 'dark', readPercent: 10 }, inside, 'm')).toBe('dark');
    expect(routeRead({ read: 'new', readPercent: 10 }, outside, 'm')).toBe('old');
    expect(routeRead({ read: 'old', readPercent: 100 }, inside, 'm')).toBe('old');
  });
});
