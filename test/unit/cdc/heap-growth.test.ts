import { describe, expect, it } from 'vitest';
import { CDC_HEAP_GROWING_PERCENT, limitHeapGrowth } from '../../../services/cdc/cli.js';

describe('parity cdc run heap growth', () => {
  it('sets its V8 heap growing factor unless node was started with one of its own', () => {
    expect(CDC_HEAP_GROWING_PERCENT).toBeGreaterThan(0);
    expect(limitHeapGrowth(['--max-semi-space-size=16'])).toBe(true);
    expect(limitHeapGrowth([])).toBe(true);
    // The operator's flag wins, in either spelling V8 accepts.
    expect(limitHeapGrowth(['--max-semi-space-size=16', '--heap-growing-percent=200'])).toBe(false);
    expect(limitHeapGrowth(['--heap_growing_percent=200'])).toBe(false);
    // A flag that only starts the same way is not it.
    expect(limitHeapGrowth(['--heap-growing-percentage-of-nothing'])).toBe(true);
  });
});
