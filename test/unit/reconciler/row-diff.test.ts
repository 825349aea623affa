import { describe, expect, it } from 'vitest';
import {
  compareBytes,
  compareIntegerText,
  diffRowSets,
  diffSortedRows,
  driftRows,
  keyOrder,
  type DiffCounters,
} from '../../../services/reconciler/row-diff.js';
import type { FetchedRow } from '../../../services/reconciler/segment-hash.js';

function row(kt: string, h: string): FetchedRow {
  return { kt, h, key: [kt], values: [h] };
}

function sorted(rows: FetchedRow[]): FetchedRow[] {
  return [...rows].sort((a, b) => compareBytes(a.kt, b.kt) || (a.h < b.h ? -1 : a.h > b.h ? 1 : 0));
}

async function* iter(rows: FetchedRow[]): AsyncGenerator<FetchedRow> {
  for (const r of rows) yield r;
}

async function diff(s: FetchedRow[], t: FetchedRow[]) {
  const counters: DiffCounters = { matchedRows: 0, sourceRows: 0, targetRows: 0 };
  const out = [];
  for await (const d of diffSortedRows(iter(sorted(s)), iter(sorted(t)), counters)) out.push(d);
  return { out, counters };
}

describe('diffSortedRows', () => {
  it('finds updates and rows exclusive to each side', async () => {
    const { out, counters } = await diff([row('1', 'a'), row('2', 'b'), row('3', 'c')], [row('1', 'a'), row('2', 'x'), row('4', 'd')]);
    expect(out.map((d) => [d.kt, d.updated, d.exclusiveSource, d.exclusiveTarget])).toEqual([
      ['2', 1, 0, 0],
      ['3', 0, 1, 0],
      ['4', 0, 0, 1],
    ]);
    expect(counters).toEqual({ matchedRows: 1, sourceRows: 3, targetRows: 3 });
  });

  it('treats duplicate rows as a multiset: equal counts match, unequal counts differ', async () => {
    const equal = await diff([row('1', 'a'), row('1', 'a')], [row('1', 'a'), row('1', 'a')]);
    expect(equal.out).toEqual([]);
    const unequal = await diff([row('1', 'a'), row('1', 'a')], [row('1', 'a')]);
    expect(unequal.out).toHaveLength(1);
    expect(driftRows(unequal.out[0]!)).toBe(1);
    expect(unequal.out[0]!.exclusiveSource).toBe(1);
    const swapped = await diff([row('1', 'a'), row('1', 'a'), row('1', 'b')], [row('1', 'a'), row('1', 'b'), row('1', 'b')]);
    expect(swapped.out.map((d) => [d.updated, d.sourceHashes, d.targetHashes])).toEqual([[1, ['a'], ['b']]]);
  });

  it('orders keys by UTF-8 bytes (COLLATE "C"), not UTF-16 code units', () => {
    // U+FF21 (3 bytes, EF BC A1) sorts before U+1F600 (4 bytes, F0 ...) by bytes, after it by UTF-16 units.
    expect(compareBytes('\uFF21', '\u{1F600}')).toBeLessThan(0);
    expect('\uFF21' < '\u{1F600}').toBe(false);
  });

  it('in-memory diff agrees with the streaming diff', async () => {
    const s = [row('1', 'a'), row('2', 'b'), row('2', 'b'), row('5', 'e')];
    const t = [row('1', 'z'), row('2', 'b'), row('6', 'f')];
    const streamed = (await diff(s, t)).out;
    const inMemory = diffRowSets(s, t);
    expect([...inMemory.values()].map((d) => [d.kt, d.updated, d.exclusiveSource, d.exclusiveTarget]).sort()).toEqual(
      streamed.map((d) => [d.kt, d.updated, d.exclusiveSource, d.exclusiveTarget]).sort(),
    );
  });
});

describe('key order', () => {
  it('compares integer keys numerically and text keys by bytes, then by hash', () => {
    const order = keyOrder(['integer', 'bytes']);
    const r = (a: string, b: string, h = 'x'): FetchedRow => ({ kt: '', h, key: [a, b], values: [] });
    expect(order(r('9', 'a'), r('10', 'a'))).toBeLessThan(0);
    expect(order(r('-10', 'a'), r('-9', 'a'))).toBeLessThan(0);
    expect(order(r('9223372036854775807', 'a'), r('-9223372036854775808', 'a'))).toBeGreaterThan(0);
    expect(order(r('1', 'B'), r('1', 'a'))).toBeLessThan(0);
    expect(order(r('1', 'a', 'f0'), r('1', 'a', '0f'))).toBeGreaterThan(0);
    expect(order(r('1', 'a', 'ab'), r('1', 'a', 'ab'))).toBe(0);
  });
});

describe('compareIntegerText', () => {
  it('orders canonical integer texts like the numbers', () => {
    const values = ['-9223372036854775808', '-100', '-99', '-1', '0', '1', '9', '10', '99', '100', '9223372036854775807'];
    for (let i = 0; i < values.length; i++) {
      for (let j = 0; j < values.length; j++) {
        expect(Math.sign(compareIntegerText(values[i]!, values[j]!))).toBe(Math.sign(i - j));
      }
    }
  });
});
