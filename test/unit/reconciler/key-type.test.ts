import { describe, expect, it } from 'vitest';
import { isParityError } from '../../../services/core/errors.js';
import { chooseKeyType, keySideSql } from '../../../services/reconciler/key-type.js';
import type { ColumnType } from '../../../services/reconciler/normalize.js';

const t = (castName: string, family: ColumnType['family'], name = castName): ColumnType => ({ name, castName, family, precision: null });
const INT = t('integer', 'integer');
const BIGINT = t('bigint', 'integer');
const SMALLINT = t('smallint', 'integer');
const OID = t('oid', 'integer');
const NUMERIC = t('numeric', 'numeric', 'numeric(12,2)');
const TEXT = t('text', 'text');
const VARCHAR = t('character varying', 'text', 'character varying(40)');
const CHAR = t('bpchar', 'char', 'character(8)');
const UUID = t('uuid', 'uuid');
const TS = t('timestamp', 'timestamp', 'timestamp without time zone');
const TSTZ = t('timestamptz', 'timestamptz', 'timestamp with time zone');

describe('the common type of a key column', () => {
  it('same type: the columns as they are', () => {
    expect(chooseKeyType('id', UUID, UUID)).toMatchObject({ common: UUID, source: 'column', target: 'column', forceByteOrder: false });
  });

  it('integer widths: the wider type, no cast on either side (cross-type btree operators keep indexes usable)', () => {
    expect(chooseKeyType('id', INT, BIGINT)).toMatchObject({ common: { castName: 'bigint' }, source: 'column', target: 'column' });
    expect(chooseKeyType('id', BIGINT, INT)).toMatchObject({ common: { castName: 'bigint' }, source: 'column', target: 'column' });
    expect(chooseKeyType('id', SMALLINT, INT)).toMatchObject({ common: { castName: 'integer' } });
    // oid has no cross-type operators with the integers: cast to bigint.
    expect(chooseKeyType('id', OID, INT)).toMatchObject({ common: { castName: 'bigint' }, source: 'cast', target: 'column' });
  });

  it('integer vs numeric: numeric, the integer side cast', () => {
    expect(chooseKeyType('id', INT, NUMERIC)).toMatchObject({
      common: { castName: 'numeric', family: 'numeric' },
      source: 'cast',
      target: 'column',
    });
    expect(chooseKeyType('id', NUMERIC, BIGINT)).toMatchObject({ common: { castName: 'numeric' }, source: 'column', target: 'cast' });
  });

  it('text vs varchar: text, both as they are; char(n) is cast and forces byte order', () => {
    expect(chooseKeyType('k', VARCHAR, TEXT)).toMatchObject({
      common: { castName: 'text' },
      source: 'column',
      target: 'column',
      forceByteOrder: false,
    });
    expect(chooseKeyType('k', CHAR, TEXT)).toMatchObject({
      common: { castName: 'text' },
      source: 'cast',
      target: 'column',
      forceByteOrder: true,
    });
  });

  it("uuid vs text: text, the uuid's canonical lower-case text against the text lower-cased, by bytes", () => {
    const plan = chooseKeyType('id', UUID, TEXT);
    expect(plan).toMatchObject({ common: { castName: 'text' }, source: 'cast', target: 'lower', forceByteOrder: true });
    expect(keySideSql('"id"', plan.source, plan.common)).toBe('("id")::text');
    expect(keySideSql('"id"', plan.target, plan.common)).toBe('lower(("id")::text)');
    expect(chooseKeyType('id', VARCHAR, UUID)).toMatchObject({ source: 'lower', target: 'cast' });
  });

  it('a key cast from the spec wins; sides already of that type stay as they are', () => {
    expect(chooseKeyType('id', INT, TEXT, 'text')).toMatchObject({
      common: { castName: 'text' },
      source: 'cast',
      target: 'column',
      forceByteOrder: true,
    });
    expect(chooseKeyType('id', TS, TSTZ, 'timestamptz')).toMatchObject({
      common: { castName: 'timestamptz', family: 'timestamptz' },
      source: 'cast',
      target: 'column',
    });
    expect(chooseKeyType('id', INT, BIGINT, 'numeric')).toMatchObject({
      common: { castName: 'numeric' },
      source: 'cast',
      target: 'cast',
      forceByteOrder: false,
    });
  });

  it('no common type: PARITY_BAD_INPUT naming the column, both types and the spec field', () => {
    for (const [a, b] of [
      [INT, TEXT],
      [UUID, INT],
      [TS, TSTZ],
      [NUMERIC, TEXT],
    ] as const) {
      let caught: unknown;
      try {
        chooseKeyType('order_id', a, b);
      } catch (err) {
        caught = err;
      }
      expect(isParityError(caught, 'PARITY_BAD_INPUT')).toBe(true);
      const e = caught as Error & { hint: string };
      expect(e.message).toContain(`key column "order_id" is ${a.name} on the source and ${b.name} on the target`);
      expect(e.hint).toContain('reconcile.keyCasts.order_id');
    }
  });
});
