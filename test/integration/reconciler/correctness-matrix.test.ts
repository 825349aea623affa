/**
 * The correctness matrix: for every case, verification must report exactly the injected drift as
 * confirmed (zero false positives, zero false negatives) and nothing in flight (no writer runs).
 * Cross-database cases use both clusters (source and target); the same-database cases cover
 * same-table and shadow-table migrations. Segments are kept small so every case bisects.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import { bucketChecksums } from '../../../services/reconciler/segment-hash.js';
import { connectPg, openReadSession } from '../../../services/reconciler/snapshot.js';
import { buildSpec, exec, keys, keysWithStatus, query, verify, type SpecInput } from './fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_mx_s'), createTestDatabase('target', 'rc_mx_t')]);
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
});

function cross(name: string, sourceTable: string, targetTable: string, rest: Omit<SpecInput, 'name' | 'source' | 'target'>): SpecInput {
  return {
    name,
    source: { database: src.url, table: sourceTable },
    target: { kind: 'other-database', database: tgt.url, table: targetTable },
    ...rest,
  };
}

/** Runs verification and checks the confirmed drift is exactly `expected`. */
async function expectDrift(input: SpecInput, expected: string[], extra: { controlUrl?: string; schema?: string } = {}) {
  const outcome = await verify(buildSpec(input));
  const controlUrl = extra.controlUrl ?? (input.target.kind === 'other-database' ? input.target.database : input.source.database);
  const confirmed = await keysWithStatus(controlUrl, outcome.result.runId, 'confirmed', extra.schema);
  expect(confirmed).toEqual(expected);
  expect(outcome.result.inFlight).toBe(0);
  expect(outcome.result.passed).toBe(expected.length === 0);
  return outcome;
}

describe('correctness matrix (zero false positives, zero false negatives)', () => {
  it('composite keys with a non-C collation (ICU) on one side, default on the other', async () => {
    const tenants = `ARRAY['alpha','Alpha','beta','Beta','émile','Zed','zed','_x','10','9','a b','ä','Ähnlich','ß']`;
    await exec(
      src.url,
      `CREATE TABLE a_src (tenant text COLLATE "en-US-x-icu", id int, amount numeric(12,2), PRIMARY KEY (tenant, id))`,
      `INSERT INTO a_src SELECT t, g, g * 1.25 FROM unnest(${tenants}) t, generate_series(-50, 149) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE a_tgt (tenant text, id int, amount_minor bigint, PRIMARY KEY (tenant, id))`,
      `INSERT INTO a_tgt SELECT t, g, (g * 125)::bigint FROM unnest(${tenants}) t, generate_series(-50, 149) g`,
      `UPDATE a_tgt SET amount_minor = amount_minor + 1 WHERE (tenant, id) IN (('Alpha', -3), ('zed', 149))`,
      `DELETE FROM a_tgt WHERE tenant = 'émile' AND id = 0`,
      `INSERT INTO a_tgt VALUES ('Émile', 5, 625)`,
    );
    const outcome = await expectDrift(
      cross('mx-composite', 'a_src', 'a_tgt', { key: ['tenant', 'id'], mapping: { amount_minor: '(amount * 100)::bigint' } }),
      keys(['Alpha', -3], ['zed', 149], ['émile', 0], ['Émile', 5]),
    );
    expect(outcome.result.sourceRows).toBe(14 * 200);
    expect(outcome.result.targetRows).toBe(14 * 200);
    expect(outcome.result.segments).toBeGreaterThan(3);
  });

  it('text keys under the same ICU collation on both sides (native order)', async () => {
    const key = `CASE WHEN g % 3 = 0 THEN upper('key' || g) WHEN g % 3 = 1 THEN 'Kéy' || g ELSE 'key' || g END`;
    await exec(
      src.url,
      `CREATE TABLE b_src (k text COLLATE "en-US-x-icu" PRIMARY KEY, v int)`,
      `INSERT INTO b_src SELECT ${key}, g FROM generate_series(1, 1500) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE b_tgt (k text COLLATE "en-US-x-icu" PRIMARY KEY, v int)`,
      `INSERT INTO b_tgt SELECT ${key}, g FROM generate_series(1, 1500) g`,
      `UPDATE b_tgt SET v = -1 WHERE k IN ('KEY3', 'Kéy1000')`,
    );
    await expectDrift(cross('mx-icu-native', 'b_src', 'b_tgt', { key: ['k'], mapping: { v: 'v' } }), keys('KEY3', 'Kéy1000'));
  });

  it('keys <= 0 and sparse keys with huge gaps, including the bigint extremes', async () => {
    const keysSql = `SELECT (sign(g) * g::numeric ^ 4 * 1000)::bigint AS k FROM generate_series(-1000, 1000) g UNION SELECT -9223372036854775808 UNION SELECT 9223372036854775807`;
    await exec(src.url, `CREATE TABLE c_src (k bigint PRIMARY KEY, v text)`, `INSERT INTO c_src SELECT k, 'v' || k FROM (${keysSql}) s`);
    await exec(
      tgt.url,
      `CREATE TABLE c_tgt (k bigint PRIMARY KEY, v text)`,
      `INSERT INTO c_tgt SELECT k, 'v' || k FROM (${keysSql}) s`,
      `UPDATE c_tgt SET v = 'x' WHERE k IN (-9223372036854775808, 0, 9223372036854775807, 16000)`,
      `DELETE FROM c_tgt WHERE k = -100000000000`,
      `INSERT INTO c_tgt VALUES (-5, 'only in target')`,
    );
    const outcome = await expectDrift(
      cross('mx-sparse', 'c_src', 'c_tgt', { key: ['k'], mapping: { v: 'v' } }),
      keys('-9223372036854775808', '0', '9223372036854775807', '16000', '-100000000000', '-5'),
    );
    // Boundaries come from the index: ~2003 rows in segments of 400 whatever the gaps.
    expect(outcome.result.segments).toBeGreaterThanOrEqual(5);
    expect(outcome.result.segments).toBeLessThanOrEqual(7);
  });

  it('uuid on one side, upper-case text on the other', async () => {
    await exec(
      src.url,
      `CREATE TABLE d_src (id int PRIMARY KEY, ref uuid)`,
      `INSERT INTO d_src SELECT g, md5(g::text)::uuid FROM generate_series(1, 600) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE d_tgt (id int PRIMARY KEY, ref text)`,
      `INSERT INTO d_tgt SELECT g, upper(md5(g::text)::uuid::text) FROM generate_series(1, 600) g`,
      `UPDATE d_tgt SET ref = upper(md5('other')::uuid::text) WHERE id = 77`,
    );
    await expectDrift(cross('mx-uuid', 'd_src', 'd_tgt', { key: ['id'], mapping: { ref: 'ref' } }), keys(77));
  });

  it('timestamp(6) vs timestamp(3): the declared rounding decides', async () => {
    await exec(
      src.url,
      `CREATE TABLE e_src (id int PRIMARY KEY, ts timestamp(6), tz timestamptz)`,
      `INSERT INTO e_src SELECT g, timestamp '2024-01-01' + g * interval '1 second' + (g * 7 % 1000) * interval '1 microsecond', timestamptz '2024-06-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 800) g`,
    );
    await exec(tgt.url, `CREATE TABLE e_tgt (id int PRIMARY KEY, ts timestamp(3), tz timestamp)`);
    const rows = await query<{ id: number; ts: string; tz: string }>(
      src.url,
      `SELECT id, ts::text, (tz AT TIME ZONE 'Europe/Paris')::text AS tz FROM e_src`,
    );
    await exec(
      tgt.url,
      `INSERT INTO e_tgt SELECT * FROM jsonb_to_recordset('${JSON.stringify(rows)}'::jsonb) AS r(id int, ts timestamp, tz timestamp)`,
      `UPDATE e_tgt SET ts = ts + interval '1 ms' WHERE id = 400`,
    );
    const mapping = { ts: 'ts', tz: 'tz' };
    await expectDrift(
      cross('mx-ts-round', 'e_src', 'e_tgt', { key: ['id'], mapping, normalize: { timestampRounding: 'round', timeZone: 'Europe/Paris' } }),
      keys(400),
    );
    // Truncating instead flags exactly the rows the target rounded up when it stored them.
    const roundedUp = await query<{ id: number }>(
      src.url,
      `SELECT id FROM e_src WHERE ts::timestamp(3) <> date_trunc('milliseconds', ts) OR id = 400`,
    );
    expect(roundedUp.length).toBeGreaterThan(100);
    await expectDrift(
      cross('mx-ts-trunc', 'e_src', 'e_tgt', {
        key: ['id'],
        mapping,
        normalize: { timestampRounding: 'truncate', timeZone: 'Europe/Paris' },
      }),
      keys(...roundedUp.map((r) => r.id)),
    );
  });

  it('float8 vs numeric, -0 and NaN', async () => {
    await exec(
      src.url,
      `CREATE TABLE f_src (id int PRIMARY KEY, v float8)`,
      `INSERT INTO f_src SELECT g, g * 0.1 FROM generate_series(1, 600) g`,
      `INSERT INTO f_src VALUES (1001, 1.0 / 3), (1002, 1e300), (1003, '-0'), (1004, 'NaN'), (1005, 'Infinity'), (1006, 0.1 + 0.2), (1007, 0.1), (1008, 0.1), (1009, 'NaN')`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE f_tgt (id int PRIMARY KEY, v numeric)`,
      `INSERT INTO f_tgt SELECT g, round(g * 0.1, 1) FROM generate_series(1, 600) g`,
      `INSERT INTO f_tgt VALUES (1001, 0.333333333333333333333), (1002, 1e300), (1003, 0), (1004, 'NaN'), (1005, 'Infinity'), (1006, 0.3), (1007, 0.100000000000000001), (1008, 0.1000000001), (1009, 0)`,
    );
    // 1007 differs beyond 15 significant digits (equal); 1008 within them and 1009 is NaN vs 0 (drift).
    await expectDrift(cross('mx-float', 'f_src', 'f_tgt', { key: ['id'], mapping: { v: 'v' } }), keys(1008, 1009));
  });

  it('NULL vs empty string, both settings', async () => {
    await exec(
      src.url,
      `CREATE TABLE g_src (id int PRIMARY KEY, note text)`,
      `INSERT INTO g_src SELECT g, CASE WHEN g % 50 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 500) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE g_tgt (id int PRIMARY KEY, note varchar(20))`,
      `INSERT INTO g_tgt SELECT g, CASE WHEN g % 50 = 0 THEN '' ELSE 'n' || g END FROM generate_series(1, 500) g`,
      `UPDATE g_tgt SET note = 'changed' WHERE id = 7`,
    );
    await expectDrift(
      cross('mx-null-empty', 'g_src', 'g_tgt', { key: ['id'], mapping: { note: 'note' }, normalize: { nullEqualsEmpty: true } }),
      keys(7),
    );
    await expectDrift(
      cross('mx-null-strict', 'g_src', 'g_tgt', { key: ['id'], mapping: { note: 'note' } }),
      keys(7, ...Array.from({ length: 10 }, (_, i) => (i + 1) * 50)),
    );
  });

  it('char(n) padding against trimmed text', async () => {
    await exec(
      src.url,
      `CREATE TABLE h_src (id int PRIMARY KEY, code char(10))`,
      `INSERT INTO h_src SELECT g, 'c' || g FROM generate_series(1, 500) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE h_tgt (id int PRIMARY KEY, code text)`,
      `INSERT INTO h_tgt SELECT g, 'c' || g FROM generate_series(1, 500) g`,
      `UPDATE h_tgt SET code = 'c9 x' WHERE id = 9`,
    );
    await expectDrift(cross('mx-char', 'h_src', 'h_tgt', { key: ['id'], mapping: { code: 'code' } }), keys(9));
  });

  it('json formatting and key order against jsonb', async () => {
    await exec(
      src.url,
      `CREATE TABLE i_src (id int PRIMARY KEY, doc json)`,
      `INSERT INTO i_src SELECT g, ('{"b" :  ' || g || ',  "a":[1, 2.50],"a":[1,2.50]}')::json FROM generate_series(1, 500) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE i_tgt (id int PRIMARY KEY, doc jsonb)`,
      `INSERT INTO i_tgt SELECT g, ('{"a":[1,2.50],"b":' || g || '}')::jsonb FROM generate_series(1, 500) g`,
      `UPDATE i_tgt SET doc = '{"a":[1,2.5],"b":42}' WHERE id = 42`,
    );
    await expectDrift(cross('mx-json', 'i_src', 'i_tgt', { key: ['id'], mapping: { doc: 'doc' } }), keys(42));
  });

  it('duplicate rows: equal counts match, unequal counts are drift, even in a group larger than the threshold', async () => {
    const common = `(1, 'a'), (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (4, 'e')`;
    await exec(
      src.url,
      `CREATE TABLE j_src (k int, v text)`,
      `CREATE INDEX ON j_src (k)`,
      `INSERT INTO j_src VALUES ${common}, (2, 'b')`,
      `INSERT INTO j_src SELECT 5, 'dup' FROM generate_series(1, 60)`,
      `INSERT INTO j_src SELECT g, 'v' FROM generate_series(6, 300) g`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE j_tgt (k int, v text)`,
      `CREATE INDEX ON j_tgt (k)`,
      `INSERT INTO j_tgt VALUES ${common}`,
      `INSERT INTO j_tgt SELECT 5, 'dup' FROM generate_series(1, 61)`,
      `INSERT INTO j_tgt SELECT g, 'v' FROM generate_series(6, 300) g`,
    );
    const outcome = await expectDrift(cross('mx-dups', 'j_src', 'j_tgt', { key: ['k'], mapping: { v: 'v' } }), keys(2, 5));
    expect(outcome.result.exclusiveSource).toBe(1);
    expect(outcome.result.exclusiveTarget).toBe(1);
  });

  it('one differing row among 100k: found by bisection, fetching few rows', async () => {
    await exec(
      src.url,
      `CREATE TABLE k_src (id int PRIMARY KEY, v int, label text)`,
      `INSERT INTO k_src SELECT g, g % 977, 'l' || (g % 13) FROM generate_series(1, 100000) g`,
      `ANALYZE k_src`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE k_tgt (id int PRIMARY KEY, v int, label text)`,
      `INSERT INTO k_tgt SELECT g, g % 977, 'l' || (g % 13) FROM generate_series(1, 100000) g`,
      `UPDATE k_tgt SET label = 'changed' WHERE id = 73123`,
      `ANALYZE k_tgt`,
    );
    const outcome = await expectDrift(
      cross('mx-100k', 'k_src', 'k_tgt', {
        key: ['id'],
        mapping: { v: 'v', label: 'label' },
        reconcile: { segmentRows: 20000, bisectionThreshold: 200 },
      }),
      keys(73123),
    );
    const fetched = await query<{ n: string }>(
      tgt.url,
      `SELECT sum(fetched_rows)::text AS n FROM parity.verify_segments WHERE run_id = $1`,
      [outcome.result.runId],
    );
    expect(Number(fetched[0]!.n)).toBeLessThanOrEqual(2 * 200);
    expect(outcome.result.sourceRows).toBe(100000);
  });

  it('dense drift: segments diffed row by row straight away keep exact results and the same checksums', async () => {
    await exec(src.url, `CREATE TABLE m_src (id int PRIMARY KEY, v int)`, `INSERT INTO m_src SELECT g, g FROM generate_series(1, 3000) g`);
    await exec(
      tgt.url,
      `CREATE TABLE m_tgt (id int PRIMARY KEY, v int)`,
      `INSERT INTO m_tgt SELECT g, CASE WHEN g % 3 = 0 THEN -g ELSE g END FROM generate_series(1, 3000) g`,
    );
    const input = cross('mx-dense', 'm_src', 'm_tgt', { key: ['id'], mapping: { v: 'v' } });
    const outcome = await expectDrift(input, keys(...Array.from({ length: 1000 }, (_, i) => (i + 1) * 3)), {});
    // With one job, every segment after the first ran in dense mode: its checksums came from the
    // streamed row identities and must equal what the database computes.
    const jobs1 = await verify(buildSpec({ ...input, name: 'mx-dense-1' }), { jobs: 1 });
    expect(jobs1.result.confirmedDrift).toBe(1000);
    const segments = await query<{
      seg_no: number;
      lo: string[] | null;
      hi: string[] | null;
      source_rows: string;
      source_sum1: string;
      source_sum2: string;
      target_sum1: string;
    }>(
      tgt.url,
      `SELECT seg_no, lo, hi, source_rows::text, source_sum1::text, source_sum2::text, target_sum1::text FROM parity.verify_segments WHERE run_id = $1 ORDER BY seg_no`,
      [jobs1.result.runId],
    );
    expect(segments.length).toBeGreaterThan(3);
    const loaded = buildSpec(input);
    const sourceDb = await openReadSession(connectPg, src.url, postgresDialect, 'test');
    const targetDb = await openReadSession(connectPg, tgt.url, postgresDialect, 'test');
    try {
      const projection = await buildProjection(loaded.spec, sourceDb, targetDb, postgresDialect);
      for (const seg of segments) {
        const [sums] = await bucketChecksums(sourceDb, projection, projection.source, { lo: seg.lo, hi: seg.hi }, []);
        expect({ seg: seg.seg_no, rows: sums!.rows.toString(), sum1: sums!.sum1, sum2: sums!.sum2 }).toEqual({
          seg: seg.seg_no,
          rows: seg.source_rows,
          sum1: seg.source_sum1,
          sum2: seg.source_sum2,
        });
        const [tsums] = await bucketChecksums(targetDb, projection, projection.target, { lo: seg.lo, hi: seg.hi }, []);
        expect(tsums!.sum1).toBe(seg.target_sum1);
      }
    } finally {
      await Promise.all([sourceDb.end(), targetDb.end()]);
    }
    expect(outcome.result.updated).toBe(1000);
  });

  it('same-table migration: the new columns checked against the mapping of the old ones', async () => {
    await exec(
      src.url,
      `CREATE TABLE orders (id bigint PRIMARY KEY, total_amount integer, total_amount_minor bigint, currency text)`,
      `INSERT INTO orders SELECT g, g * 3, g * 3, 'USD' FROM generate_series(-200, 1200) g`,
      `UPDATE orders SET total_amount_minor = NULL WHERE id = 5`,
      `UPDATE orders SET currency = 'EUR' WHERE id = -200`,
      `UPDATE orders SET total_amount_minor = total_amount_minor + 1 WHERE id = 1200`,
    );
    await expectDrift(
      {
        name: 'mx-same-table',
        source: { database: src.url, table: 'orders' },
        target: { kind: 'same-table' },
        key: ['id'],
        mapping: { total_amount_minor: 'total_amount::bigint', currency: `'USD'::text` },
      },
      keys(5, -200, 1200),
    );
  });

  it('shadow table in the same database, with its own control database', async () => {
    await exec(
      src.url,
      `CREATE TABLE people (id int PRIMARY KEY, name text)`,
      `INSERT INTO people SELECT g, 'person ' || g FROM generate_series(1, 900) g`,
      `CREATE TABLE people_v2 (id int PRIMARY KEY, display_name text)`,
      `INSERT INTO people_v2 SELECT g, upper('person ' || g) FROM generate_series(1, 900) g WHERE g <> 10`,
      `UPDATE people_v2 SET display_name = 'X' WHERE id = 11`,
    );
    await expectDrift(
      {
        name: 'mx-shadow',
        source: { database: src.url, table: 'people' },
        target: { kind: 'shadow-table', table: 'people_v2' },
        key: ['id'],
        mapping: { display_name: 'upper(name)' },
        control: { database: tgt.url, schema: 'parity_ctl' },
      },
      keys(10, 11),
      { controlUrl: tgt.url, schema: 'parity_ctl' },
    );
  });
});
