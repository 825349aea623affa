/**
 * The batch bounds of each key form against a real server: a single-column key of a type with a
 * `max` aggregate takes `max` and `count(*)` over its keyset walk, every other key the window count
 * (batch-sql.ts, boundsSelect). Both must give the keys in the index's order (text keys in mixed case,
 * accents and digits follow the collation), no row past the last key, and every row written once
 * by small batches over a hole in the keys.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { batchBoundsSql, type BatchShape } from '../../../services/backfill/batch-sql.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { makeSpec } from './fixtures.js';

const KEYS: { type: string; sql: string; form: 'max' | 'window' }[] = [
  { type: 'bigint', sql: 'g * 7', form: 'max' },
  { type: 'numeric(12,2)', sql: 'g / 4.0', form: 'max' },
  { type: 'text', sql: `(ARRAY['a', 'B', 'é', 'Z', '1'])[1 + g % 5] || lpad(g::text, 6, '0')`, form: 'max' },
  { type: 'timestamp(3) with time zone', sql: `timestamptz '2020-01-01' + g * interval '1.5 second'`, form: 'max' },
  { type: 'uuid', sql: `md5(g::text)::uuid`, form: 'window' },
  { type: 'character varying(20)', sql: `'k' || g`, form: 'window' },
];

describe('backfill batch bounds by key type', () => {
  let db: TestDatabase;
  let c: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfkeys');
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
  });

  afterAll(async () => {
    await c?.end();
    await db?.drop();
  });

  it.each(KEYS)('$type key ($form form): every row written once, in small batches, over a hole in the keys', async (k) => {
    const table = `keys_${k.type.replace(/\W+/g, '_')}`.replace(/_+$/, '');
    await c.query(`CREATE TABLE public.${table} (k ${k.type} PRIMARY KEY, amount integer NOT NULL, doubled bigint)`);
    await c.query(`INSERT INTO public.${table} (k, amount) SELECT ${k.sql}, g FROM generate_series(1, 5000) g`);
    // A hole in the middle of the key order: a range planned there finds no key.
    await c.query(`DELETE FROM public.${table} WHERE k IN (SELECT k FROM public.${table} ORDER BY k OFFSET 2000 LIMIT 1500)`);
    const shape: BatchShape = {
      source: { schema: 'public', table },
      target: { schema: 'public', table },
      key: { columns: ['k'], types: [k.type] },
      targetKey: [],
      columns: [],
    };
    const top = (await c.query(`SELECT k::text AS m FROM public.${table} ORDER BY k DESC LIMIT 1`)).rows[0].m;
    const bounds = batchBoundsSql(shape, null, [top], 100);
    expect(bounds.text.includes('max(')).toBe(k.form === 'max');
    // The bounds' last key and count are those of the first 100 keys in the index's order.
    const first = await c.query(bounds.text, bounds.values);
    const expected = await c.query(`SELECT k::text AS kt FROM public.${table} ORDER BY k LIMIT 100`);
    expect(first.rows).toEqual([{ k0: expected.rows[99].kt, n: '100' }]);
    // Past the last key: no row at all (not a row of nulls).
    const after = batchBoundsSql(shape, [expected.rows[99].kt], [expected.rows[99].kt], 100);
    expect((await c.query(after.text, after.values)).rows).toEqual([]);

    const { spec } = makeSpec({
      name: `keys-${table.replace(/_/g, '-')}`,
      sourceUrl: db.url,
      table,
      key: ['k'],
      mapping: { doubled: 'amount::bigint * 2' },
      // Unpaced: the batch sizes stay within 50-400 keys, many batches per range.
      backfill: '  batchSize: 150\n  minBatchSize: 50\n  maxBatchSize: 400\n  throttle: { pace: { enabled: false } }',
    });
    const run = await runBackfill({ spec, controlServer: false, workers: 2, rangeRows: 300 });
    expect(run).toMatchObject({ outcome: 'completed', rowsDone: 3500, rowsChanged: 3500 });
    const wrong = await c.query(`SELECT count(*)::int AS n FROM public.${table} WHERE doubled IS DISTINCT FROM amount::bigint * 2`);
    expect(wrong.rows[0].n).toBe(0);
    // Each key was walked by exactly one batch: the batches' counts add up to the table.
    const walked = await c.query(`SELECT sum(rows)::int AS n, count(*)::int AS batches FROM parity.backfill_batches`);
    expect(walked.rows[0].n).toBe(3500);
    expect(walked.rows[0].batches).toBeGreaterThan(8);
    await c.query('DROP SCHEMA parity CASCADE');
  });
});
