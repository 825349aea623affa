/**
 * The row reader's conversion of a result row (services/cache-versioner/row-reader.ts): values by the
 * column's converter, SQL NULL as null, and a value the converter refuses named by table and column.
 */
import { describe, expect, it } from 'vitest';
import { type ColumnReader, convertRow } from '../../../services/cache-versioner/row-reader.js';
import { ParityError } from '../../../services/core/errors.js';

const refuses = (): never => {
  throw new ParityError('PARITY_DECODE', 'malformed array text at 14', { hint: 'look at the value' });
};

const columns: ColumnReader[] = [
  { name: 'id', present: true, convert: Number },
  { name: 'tags', present: true, convert: refuses },
];

describe('convertRow', () => {
  it('converts each column by its converter, in order of the aliases, NULL as null', () => {
    expect(convertRow('public.lines', columns.slice(0, 1), { c0: '7' }, 'c')).toEqual({ id: 7 });
    expect(convertRow('public.lines', columns, { k0: null, k1: null }, 'k')).toEqual({ id: null, tags: null });
  });

  it("names the table and the column of a value the converter refuses, keeping the converter's code and hint", () => {
    let caught: unknown;
    try {
      convertRow('public.lines', columns, { c0: '7', c1: '{{(1,1)};{(2,2)}}' }, 'c');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParityError);
    const err = caught as ParityError;
    expect(err.message).toBe('table public.lines, column tags: malformed array text at 14');
    expect(err.code).toBe('PARITY_DECODE');
    expect(err.hint).toBe('look at the value');
    expect(err.details).toMatchObject({ table: 'public.lines', column: 'tags' });
  });

  it('wraps a plain error from a converter as PARITY_DECODE, naming table and column', () => {
    const plain: ColumnReader = {
      name: 'at',
      present: true,
      convert: () => {
        throw new RangeError('bad date');
      },
    };
    expect(() => convertRow('sales.orders', [plain], { c0: 'x' }, 'c')).toThrow('table sales.orders, column at: bad date');
  });
});
