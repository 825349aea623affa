/**
 * The inspector's and the reader's database reads: values come back exactly as the CDC decodes them
 * (output-function text, not `::text` casts), keys of several columns are looked up in batches, a
 * projected column the table lacks reads as null, and the snapshot's WAL position is reported.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { parseLsn } from '../../../services/core/lsn.js';
import { createRowReader, keyText } from '../../../services/cache-versioner/row-reader.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase('target', 'crr');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query(`CREATE TYPE mood AS ENUM ('ok', 'sad')`);
  await pool.query(`CREATE DOMAIN qty AS int4`);
  await pool.query(`CREATE TABLE lines (
    region text, n int8, paid boolean, code char(4), ip inet, ratio float4, odd float8, raw bytea,
    at timestamptz, tags text[], nums int4[], amount numeric(12,3), feel mood, q qty, doc jsonb,
    PRIMARY KEY (region, n))`);
  await pool.query(`INSERT INTO lines VALUES
    ('eu', 9007199254740993, true, 'ab', '10.0.0.1', 1.1, 'NaN', '\\x0102', '2024-01-01 10:00:00.1+02', '{a,NULL,"x y"}', '{1,NULL,3}', 1.5, 'sad', 7, '{"b": 1, "a": [true]}'),
    ('us', 1, false, NULL, NULL, '-0', '-Infinity', '', '2024-06-30 23:59:59+00', '{}', NULL, 0, 'ok', NULL, 'null')`);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('row reader', () => {
  it('reads rows as change-event values, by multi-column keys, in one snapshot', async () => {
    const reader = createRowReader({ schema: 'public', table: 'lines', keyColumns: ['region', 'n'], projection: undefined });
    const keys = [
      { region: 'eu', n: '9007199254740993' },
      { region: 'us', n: '1' },
      { region: 'eu', n: '2' },
    ];
    const before = parseLsn((await pool.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]?.l ?? '0/0');
    const snapshot = await reader.read(pool, keys);
    expect(snapshot.lsn >= before).toBe(true);
    expect(snapshot.rows.get(keyText(['region', 'n'], keys[0] as Record<string, unknown>))).toEqual({
      region: 'eu',
      n: '9007199254740993',
      paid: true,
      code: 'ab  ',
      ip: '10.0.0.1',
      ratio: 1.1,
      odd: NaN,
      raw: 'AQI=',
      at: '2024-01-01 08:00:00.1+00',
      tags: ['a', null, 'x y'],
      nums: [1, null, 3],
      amount: '1.500',
      feel: 'sad',
      q: 7,
      doc: '{"a": [true], "b": 1}',
    });
    const us = snapshot.rows.get(keyText(['region', 'n'], { region: 'us', n: 1 }));
    expect(us).toMatchObject({ paid: false, code: null, raw: '', tags: [], nums: null, amount: '0.000', doc: 'null' });
    expect(Object.is(us?.ratio, -0)).toBe(true);
    expect(us?.odd).toBe(-Infinity);
    expect(snapshot.rows.get(keyText(['region', 'n'], { region: 'eu', n: '2' }))).toBeNull();
  });

  it('reads a projection, a column the table lacks as null', async () => {
    const reader = createRowReader({
      schema: 'public',
      table: 'lines',
      keyColumns: ['region', 'n'],
      projection: ['n', 'feel', 'not_yet_added'],
    });
    const snapshot = await reader.read(pool, [{ region: 'us', n: 1 }]);
    expect(snapshot.rows.get(keyText(['region', 'n'], { region: 'us', n: 1 }))).toEqual({ n: '1', feel: 'ok', not_yet_added: null });
  });

  it('names a missing table or key column', async () => {
    await expect(
      createRowReader({ schema: 'public', table: 'nope', keyColumns: ['id'], projection: undefined }).read(pool, [{ id: 1 }]),
    ).rejects.toThrow(/nope/);
    await expect(
      createRowReader({ schema: 'public', table: 'lines', keyColumns: ['id'], projection: undefined }).read(pool, [{ id: 1 }]),
    ).rejects.toThrow(/no key column\(s\) id/);
  });
});
