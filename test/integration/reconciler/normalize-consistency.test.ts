/**
 * SQL-side and JS-side normalization must agree byte for byte: batch verification normalizes inside
 * PostgreSQL, stream verification normalizes decoded change events in JS. Each case feeds the same
 * value to both: to PostgreSQL as a typed literal, to JS the way the change-event serde hands it over
 * (int2/int4 and floats as numbers, int8 and numeric as exact text, timestamps as ISO text in UTC,
 * char(n) with its padding, bytea as base64, booleans as booleans).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import {
  comparisonRule,
  jsNormalize,
  sqlNormalize,
  type ColumnType,
  type NormalizeOptions,
} from '../../../services/reconciler/normalize.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';

let db: TestDatabase;
let client: pg.Client;

const DEFAULTS: NormalizeOptions = {
  timestampPrecision: 6,
  timestampRounding: 'truncate',
  nullEqualsEmpty: false,
  floatDigits: 15,
  trimChar: true,
  timeZone: 'UTC',
};

beforeAll(async () => {
  db = await createTestDatabase('source', 'rc_norm');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  for (const sql of postgresDialect.sessionSetup()) await client.query(sql);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

async function typeOf(castType: string): Promise<ColumnType> {
  const r = await client.query(`SELECT NULL::${castType} AS v LIMIT 0`);
  const f = r.fields[0]!;
  return postgresDialect.describeType(client, f.dataTypeID, f.dataTypeModifier);
}

/** The value as the CDC serde delivers it, read from PostgreSQL's own text output. */
async function serdeValue(literal: string | null, castType: string, type: ColumnType): Promise<unknown> {
  if (literal === null) return null;
  const { rows } = await client.query(
    `SELECT CASE WHEN $2 = 'bytea' THEN encode($1::${castType}::text::bytea, 'base64') ELSE concat($1::${castType}) END AS t`,
    [literal, type.family],
  );
  const t = String(rows[0].t);
  switch (type.family) {
    case 'float4':
    case 'float8':
      return t === 'NaN' ? NaN : t === 'Infinity' ? Infinity : t === '-Infinity' ? -Infinity : t === '-0' ? -0 : Number(t);
    case 'integer':
      return castType === 'bigint' ? t : Number(t);
    case 'bool':
      return t === 't' || t === 'true';
    default:
      return t;
  }
}

interface Case {
  /** The side whose value is normalized. */
  type: string;
  /** The type of the other side (decides the rule). */
  other: string;
  values: Array<string | null>;
  options?: Partial<NormalizeOptions>;
}

const CASES: Case[] = [
  { type: 'numeric', other: 'integer', values: ['10.50', '-0.000', '123456789012345678901234.5600', 'NaN', '0.00012', null] },
  { type: 'bigint', other: 'numeric(20,2)', values: ['9223372036854775807', '-9223372036854775808', '0'] },
  { type: 'integer', other: 'numeric', values: ['-2147483648', '42'] },
  {
    type: 'double precision',
    other: 'numeric',
    values: [
      '0.1',
      '0.30000000000000004',
      '-0',
      'NaN',
      'Infinity',
      '-Infinity',
      '1e300',
      '1.2345678901234567',
      '5e-324',
      '123456789012345680000',
      '0.12345',
      '-2.5e-7',
    ],
  },
  {
    type: 'numeric',
    other: 'double precision',
    values: ['0.1', '0.300000000000000', '1.23456789012345678901', '-0.0000001234567890123456', 'NaN', '99999999999999999999'],
  },
  { type: 'real', other: 'numeric', values: ['0.1', '1.2345679', '3.4028235e38', '-0', '16777217'] },
  { type: 'double precision', other: 'numeric', values: ['0.12345', '0.99999', '123.456'], options: { floatDigits: 4 } },
  {
    type: 'timestamp(6)',
    other: 'timestamp(3)',
    values: [
      '2024-01-01 10:00:00.1234',
      '2000-01-01 00:00:00.0005',
      '1999-12-31 23:59:59.9995',
      '0044-03-15 12:00:00.999999 BC',
      'infinity',
      '-infinity',
      '1960-06-01 00:00:00.999999',
    ],
  },
  {
    type: 'timestamp(6)',
    other: 'timestamp(3)',
    values: ['2024-01-01 10:00:00.1235', '2000-01-01 00:00:00.0005', '1999-12-31 23:59:59.9995', '1960-06-01 00:00:00.9995'],
    options: { timestampRounding: 'round' },
  },
  {
    type: 'timestamptz',
    other: 'timestamp',
    values: ['2024-07-01 12:00:00.123456+00', '2024-01-01 00:30:00+02', '1950-03-01 12:00:00-05', 'infinity'],
  },
  {
    type: 'timestamptz',
    other: 'timestamp',
    values: ['2024-07-01 12:00:00.123456+00', '2024-10-27 00:30:00+00', '2024-10-27 01:30:00+00'],
    options: { timeZone: 'Europe/Paris' },
  },
  {
    type: 'timestamp',
    other: 'timestamptz',
    values: ['2024-07-01 12:00:00.123456'],
    options: { timestampPrecision: 0, timestampRounding: 'round' },
  },
  { type: 'date', other: 'date', values: ['2024-02-29', '0001-01-01 BC', 'infinity'] },
  { type: 'date', other: 'timestamp', values: ['2024-02-29'] },
  { type: 'character(6)', other: 'text', values: ['ab', '', 'abcdef', null] },
  { type: 'character(6)', other: 'text', values: ['ab', ''], options: { trimChar: false } },
  { type: 'text', other: 'character(6)', values: ['ab  ', 'ab', ''] },
  { type: 'text', other: 'varchar', values: ['', 'x', null, ' lead'], options: { nullEqualsEmpty: true } },
  { type: 'text', other: 'varchar', values: ['', 'x', null] },
  { type: 'uuid', other: 'text', values: ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'] },
  { type: 'text', other: 'uuid', values: ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'] },
  {
    type: 'json',
    other: 'jsonb',
    values: ['{"b": 1.0,   "a":[1e2, "x\\u00e9"], "a": 3}', '[ ]', '"s\\/"', '{"é": 1, "ab": {"y": null, "x": false}}'],
  },
  { type: 'jsonb', other: 'json', values: ['{"b":1.50E+1, "a":[1,2]}'] },
  { type: 'text', other: 'jsonb', values: ['{ "k" : [ 1 , 2 ] }'] },
  { type: 'boolean', other: 'boolean', values: ['true', 'false'] },
  { type: 'bytea', other: 'bytea', values: ['\\x00ff10', '\\x'] },
  { type: 'integer', other: 'text', values: ['17'] },
];

describe('normalization: PostgreSQL and JS agree', () => {
  for (const c of CASES) {
    it(`${c.type} vs ${c.other} ${c.options ? JSON.stringify(c.options) : ''}`, async () => {
      const type = await typeOf(c.type);
      const other = await typeOf(c.other);
      const rule = comparisonRule(type, other, { ...DEFAULTS, ...c.options });
      for (const literal of c.values) {
        const sql = sqlNormalize(`$1::${c.type}`, type, rule);
        const { rows } = await client.query(`SELECT ${sql} AS n`, [literal]);
        const fromSql = rows[0].n as string | null;
        const fromJs = jsNormalize(await serdeValue(literal, c.type, type), type, rule);
        expect({ literal, rule: rule.kind, value: fromJs }).toEqual({ literal, rule: rule.kind, value: fromSql });
      }
    });
  }

  it('normalizes equal data from different representations to the same text', async () => {
    const pairs: Array<[string, string, string, string, Partial<NormalizeOptions>?]> = [
      ['numeric(12,2)', '10.50', 'numeric', '10.5'],
      ['double precision', '0.1', 'numeric', '0.1'],
      ['double precision', '-0', 'numeric', '0'],
      ['double precision', 'NaN', 'numeric', 'NaN'],
      ['timestamp(6)', '2024-01-01 10:00:00.1235', 'timestamp(3)', '2024-01-01 10:00:00.124', { timestampRounding: 'round' }],
      ['timestamptz', '2024-07-01 14:00:00+02', 'timestamp', '2024-07-01 12:00:00'],
      ['character(8)', 'abc', 'text', 'abc'],
      ['uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'text', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'],
      ['json', '{"b":2,"a":1}', 'jsonb', '{"a": 1, "b": 2}'],
    ];
    for (const [ta, va, tb, vb, options] of pairs) {
      const a = await typeOf(ta);
      const b = await typeOf(tb);
      const rule = comparisonRule(a, b, { ...DEFAULTS, ...options });
      const { rows } = await client.query(`SELECT ${sqlNormalize(`$1::${ta}`, a, rule)} AS x, ${sqlNormalize(`$2::${tb}`, b, rule)} AS y`, [
        va,
        vb,
      ]);
      expect({ pair: `${ta} ${va} / ${tb} ${vb}`, x: rows[0].x }).toEqual({ pair: `${ta} ${va} / ${tb} ${vb}`, x: rows[0].y });
    }
  });
});
