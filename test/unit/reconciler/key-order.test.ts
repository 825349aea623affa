import { describe, expect, it } from 'vitest';
import { chooseKeyOrder, type CollationInfo } from '../../../services/reconciler/dialect.js';

const icu = (locale: string, version = '153.112'): CollationInfo => ({ provider: 'i', locale, version, deterministic: true });
const libc = (locale: string, version = '2.36'): CollationInfo => ({ provider: 'c', locale, version, deterministic: true });

describe('chooseKeyOrder', () => {
  it('orders non-text keys natively', () => {
    expect(chooseKeyOrder(null, null)).toEqual({ byteOrder: false, nativeIsBytes: true });
  });

  it('orders natively when both sides order by bytes or share one deterministic collation and version', () => {
    expect(chooseKeyOrder(libc('C'), libc('POSIX', ''))).toEqual({ byteOrder: false, nativeIsBytes: true });
    expect(chooseKeyOrder(icu('en-US'), icu('en-US'))).toEqual({ byteOrder: false, nativeIsBytes: false });
  });

  it('falls back to byte order when the collations differ or cannot be trusted', () => {
    expect(chooseKeyOrder(icu('en-US'), libc('C.UTF-8'))).toEqual({ byteOrder: true, nativeIsBytes: false });
    expect(chooseKeyOrder(icu('en-US', '153.112'), icu('en-US', '153.120'))).toEqual({ byteOrder: true, nativeIsBytes: false });
    expect(
      chooseKeyOrder({ ...icu('und-u-ks-level2'), deterministic: false }, { ...icu('und-u-ks-level2'), deterministic: false }),
    ).toEqual({ byteOrder: true, nativeIsBytes: false });
    expect(chooseKeyOrder(libc('C'), null)).toEqual({ byteOrder: true, nativeIsBytes: false });
  });
});
