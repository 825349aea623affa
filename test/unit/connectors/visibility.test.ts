import { describe, expect, test } from 'vitest';
import { fullXid } from '../../../connectors/postgres-source/visibility.js';

describe('fullXid: a decoded 32-bit xid as the 64-bit id of the snapshot functions', () => {
  test('in the reference epoch', () => {
    expect(fullXid(1000, 5000n)).toBe(1000n);
    expect(fullXid(6000, 5000n)).toBe(6000n);
    const epoch3 = 3n * 2n ** 32n;
    expect(fullXid(42, epoch3 + 100n)).toBe(epoch3 + 42n);
  });

  test('across an epoch boundary, on either side of the reference', () => {
    const epoch1 = 2n ** 32n;
    // Reference just past the wrap; the xid from just before it belongs to the previous epoch.
    expect(fullXid(0xffff_fff0, epoch1 + 5n)).toBe(epoch1 - 16n);
    // Reference just before the wrap; an xid just after it (still running) is in the next epoch.
    expect(fullXid(3, epoch1 - 10n)).toBe(epoch1 + 3n);
  });
});
