import { describe, expect, it } from 'vitest';
import { copyField, textArrayLiteral } from '../../../services/reconciler/control-store.js';
import { DecimalSum, postgresDialect } from '../../../services/reconciler/dialect.js';
import { firstInOrder, rowVersionsSuffice } from '../../../services/reconciler/recheck.js';

describe('confirming a dense segment from row versions', () => {
  it('only when every mapping expression is a function of its row', () => {
    expect(rowVersionsSuffice([])).toBe(true);
    expect(rowVersionsSuffice(['note', 'amount * 100', "coalesce(note, '')", 'CASE WHEN a > 0 THEN a END', 'amount::numeric(12,2)'])).toBe(
      true,
    );
    // A function call or an SQL value function may give another value for the same stored row later.
    expect(rowVersionsSuffice(['note', 'lower(note)'])).toBe(false);
    expect(rowVersionsSuffice(['coalesce(updated_at, now())'])).toBe(false);
    expect(rowVersionsSuffice(['coalesce(updated_at, current_timestamp)'])).toBe(false);
    expect(rowVersionsSuffice(['random() > 0.5'])).toBe(false);
  });
});

describe('sample keys of a decided segment', () => {
  it('are the n smallest in order, as a full sort would give them', () => {
    const items = Array.from({ length: 500 }, (_, i) => String((i * 7919) % 1000));
    const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    for (const n of [0, 1, 5, 60, 500, 600]) expect(firstInOrder(items, n, order)).toEqual([...items].sort(order).slice(0, n));
  });
});

describe('COPY text of stored keys', () => {
  it('escapes what COPY and array literals give a meaning to', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField(12)).toBe('12');
    expect(copyField('plain')).toBe('plain');
    expect(copyField('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(textArrayLiteral([])).toBe('{}');
    expect(textArrayLiteral(['1/2', '-3/4'])).toBe('{"1/2","-3/4"}');
    expect(textArrayLiteral(['a"b', 'c\\d', 'NULL'])).toBe('{"a\\"b","c\\\\d","NULL"}');
  });
});

describe('checksums of a merged segment, summed in JS', () => {
  it('are the exact sums of the identity halves, extremes and carries included', () => {
    const values = ['0', '-0', '7', '-5', '999999999', '-1000000000', '9223372036854775807', '-9223372036854775808', '123456789012'];
    // Past the carry point (500,000 additions) with values near the 64-bit bounds.
    for (let i = 0; i < 600_000; i++) values.push(String((i % 2 ? -1n : 1n) * (9223372036854775807n - BigInt(i) * 7919n)));
    const sums = postgresDialect.identitySums();
    let a = 0n;
    let b = 0n;
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      const y = values[values.length - 1 - i]!;
      sums.add(`${x}/${y}`);
      a += BigInt(x);
      b += BigInt(y);
    }
    expect(sums.sums()).toEqual([a, b]);
    const one = new DecimalSum();
    one.add('x-42y', 1, 4);
    expect(one.value()).toBe(-42n);
  });
});
