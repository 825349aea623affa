import { describe, expect, it } from 'vitest';
import { copyField, textArrayLiteral } from '../../../services/reconciler/control-store.js';
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
