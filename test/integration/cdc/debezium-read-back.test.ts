/**
 * The Debezium encoding read back: every type of the fidelity table (test/integration/cdc/fidelity.test.ts)
 * streamed with `cdc.encoding: debezium` (Avro through the registry and connect-json) and decoded by the
 * one decoder every consumer uses (connectors/kafka-sink/serde.ts) comes back as the exact values of
 * the exact-text encoding, so the reconciler, the cache versioner and the demo compare the same values
 * whichever encoding the CDC writes. Only what Debezium's encoding does not keep differs, listed here:
 * an interval's months and days (MicroDuration folds them into microseconds, a month 30.4375 days) and
 * a numeric NaN (null). Expected values come from PostgreSQL itself, as in the fidelity test.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedChange } from '../../../connectors/kafka-sink/serde.js';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, runConnector, writeCdcSpec } from './support.js';

const COLUMNS = `
  id int PRIMARY KEY,
  i2 int2, i4 int4, i8 int8,
  num numeric(30,4), num_any numeric,
  f4 float4, f8 float8,
  t text, vc varchar(20), ch char(5), b bool,
  d date, tm time, ts3 timestamp(3), ts6 timestamp(6), tstz timestamptz, iv interval,
  u uuid, j json, jb jsonb, by bytea,
  ia int4[], ta text[], st order_state, big text`;

/** Hand-written expected values (the documented JS types). */
const EDGE_ROW = {
  id: 1,
  i2: -32768,
  i4: 2147483647,
  i8: '9223372036854775807',
  num: '12345678901234567890.1235',
  num_any: 'NaN',
  f4: 1.1,
  f8: 0.30000000000000004,
  t: 'line1\nline2 "quoted" \\ ünïcødé 🚀',
  vc: 'short',
  ch: 'ab   ',
  b: true,
  d: '2024-02-29',
  tm: '23:59:59.999999',
  ts3: '2024-02-29 23:59:59.123',
  ts6: '2024-02-29 23:59:59.123456',
  tstz: '2024-02-29 23:59:59.123456+00',
  iv: '1 year 2 mons 3 days 04:05:06.789',
  u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  j: '{"b": 1,  "a": [1,2]}',
  jb: '{"a": [1, 2], "b": 1}',
  by: Buffer.from([0, 255, 16]).toString('base64'),
  ia: [1, null, -3],
  ta: ['a b', 'c"d', null, 'NULL'],
  st: 'shipped',
  big: 'x',
};

const EDGE_INSERT = `INSERT INTO fidelity VALUES (1, -32768, 2147483647, 9223372036854775807, 12345678901234567890.12345, 'NaN',
  1.1, 0.1::float8 + 0.2::float8, E'line1\\nline2 "quoted" \\\\ ünïcødé 🚀', 'short', 'ab', true,
  '2024-02-29', '23:59:59.999999', '2024-02-29 23:59:59.1234', '2024-02-29 23:59:59.123456', '2024-03-01 01:59:59.123456+02',
  '1 year 2 months 3 days 4 hours 5 minutes 6.789 seconds', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"b": 1,  "a": [1,2]}', '{"b": 1,  "a": [1,2]}',
  '\\x00ff10', '{1,NULL,-3}', '{"a b","c\\"d",NULL,"NULL"}', 'shipped', 'x')`;

const SPECIAL_FLOATS = `INSERT INTO fidelity (id, f4, f8) VALUES (2, 'NaN', 'Infinity'), (3, '-Infinity', '-0'), (4, '3.4028235e+38', '1e-320')`;

/** Bulk rows whose expected values PostgreSQL computes itself. */
const BULK_INSERT = `INSERT INTO fidelity
  SELECT g, (g % 32000)::int2, g * 7, g::int8 * 1000000007, (g * 3.14159)::numeric(30,4), g / 7.0,
         (g / 3.0)::float4, g / 7.0::float8, md5(g::text), left(md5(g::text), 20), left(md5(g::text), 3), g % 2 = 0,
         date '2000-01-01' + g, time '00:00' + g * interval '1.000001 second', timestamp '2020-01-01' + g * interval '1.234 second',
         timestamp '2020-01-01' + g * interval '1.234567 second', timestamptz '2020-01-01 00:00+05' + g * interval '0.000123 second',
         g * interval '1 day 1.5 second', md5(g::text)::uuid, json_build_object('g', g, 's', md5(g::text)), jsonb_build_object('g', g, 'arr', ARRAY[g, g + 1]),
         decode(md5(g::text), 'hex'), ARRAY[g, NULL, -g], ARRAY[md5(g::text), 'q"uote'], (ARRAY['new','paid','shipped']::order_state[])[1 + g % 3], repeat('b', g % 50)
    FROM generate_series(10, 209) g`;

/** Expected values from PostgreSQL itself (session in UTC): what each documented JS value must equal. */
const EXPECTED_SQL = `SELECT id, i2, i4, i8::text AS i8, num::text AS num, num_any::text AS num_any, f4::float8::text AS f4_text, f4::text AS f4, f8::text AS f8,
   t, vc, ch, b, d::text AS d, tm::text AS tm, ts3::text AS ts3, ts6::text AS ts6, tstz::text AS tstz, iv::text AS iv, u::text AS u,
   j::text AS j, jb::text AS jb, replace(encode(by, 'base64'), E'\\n', '') AS by, to_json(ia)::text AS ia, to_json(ta)::text AS ta, st::text AS st, big
   FROM fidelity WHERE id >= 10 ORDER BY id`;

function expectedFromSql(r: Record<string, unknown>): Record<string, unknown> {
  return {
    id: r.id,
    i2: r.i2,
    i4: r.i4,
    i8: r.i8,
    num: r.num,
    num_any: r.num_any,
    // float4 text is its shortest exact form; the decoded number is Number(that text).
    f4: Number(r.f4),
    f8: Number(r.f8),
    t: r.t,
    vc: r.vc,
    ch: r.ch,
    b: r.b,
    d: r.d,
    tm: r.tm,
    ts3: r.ts3,
    ts6: r.ts6,
    tstz: r.tstz,
    iv: r.iv,
    u: r.u,
    j: r.j,
    jb: r.jb,
    by: r.by,
    ia: JSON.parse(r.ia as string),
    ta: JSON.parse(r.ta as string),
    st: r.st,
    big: r.big,
  };
}

/** What Debezium's encoding cannot keep: the interval as microseconds, folded back as hours. */
const MICROS_PER_MONTH = 2_629_800_000_000n;
const LOSSY_SQL = `SELECT id, (extract(year from iv) * 12 + extract(month from iv))::bigint AS months, extract(day from iv)::bigint AS days,
   ((extract(hour from iv) * 3600 + extract(minute from iv) * 60) * 1000000 + extract(microseconds from iv))::bigint AS micros
   FROM fidelity WHERE id >= 10 OR id = 1`;

function durationHours(months: bigint, days: bigint, micros: bigint): string {
  const total = months * MICROS_PER_MONTH + days * 86_400_000_000n + micros;
  const negative = total < 0n;
  const abs = negative ? -total : total;
  const s = abs / 1_000_000n;
  const frac = abs % 1_000_000n;
  const pad = (n: bigint) => String(n).padStart(2, '0');
  return `${negative ? '-' : ''}${pad(s / 3600n)}:${pad((s / 60n) % 60n)}:${pad(s % 60n)}${frac === 0n ? '' : `.${String(frac).padStart(6, '0').replace(/0+$/, '')}`}`;
}

function latestAfter(changes: DecodedChange[], id: number, op?: string): Record<string, unknown> | null {
  const mine = changes.filter((c) => c.key?.id === id && (!op || c.envelope.op === op));
  return (mine.at(-1)?.envelope.after as Record<string, unknown> | undefined) ?? null;
}

for (const format of ['avro', 'connect-json'] as const) {
  describe(`Debezium encoding read back (${format})`, () => {
    let db: TestDatabase;
    let client: pg.Client;
    const slot = uniqueName(`dbzrb_${format.replace('-', '_')}`);
    const prefix = uniqueName(`dbzrb${format.replace('-', '')}`);

    beforeAll(async () => {
      db = await createTestDatabase('source', 'dbzrb');
      client = new pg.Client({ connectionString: db.url, options: '-c timezone=UTC -c extra_float_digits=1' });
      await client.connect();
      await client.query(`CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped')`);
      await client.query(`CREATE TABLE fidelity (${COLUMNS})`);
    });

    afterAll(async () => {
      await client?.end();
      await db?.drop();
      await deleteTopics([`${prefix}.public.fidelity`]);
    });

    it('every type decodes to the exact-text values, but for what the encoding does not keep', async () => {
      const spec = writeCdcSpec({
        database: db.url,
        table: 'fidelity',
        slot,
        topicPrefix: prefix,
        format,
        encoding: 'debezium',
        snapshot: 'never',
      });
      const running = await runConnector(spec);
      try {
        await client.query(EDGE_INSERT);
        await client.query(SPECIAL_FLOATS);
        await client.query('INSERT INTO fidelity (id) VALUES (5)');
        await client.query(BULK_INSERT);
        await client.query('DELETE FROM fidelity WHERE id = 5');
        const expectedCount = 1 + 3 + 1 + 200 + 1;
        const changes = await readTopic(`${prefix}.public.fidelity`, (c) => c.length >= expectedCount);
        expect(changes.length).toBe(expectedCount);

        const lossy = new Map(
          (await client.query<{ id: number; months: string; days: string; micros: string }>(LOSSY_SQL)).rows.map((r) => [
            r.id,
            durationHours(BigInt(r.months), BigInt(r.days), BigInt(r.micros)),
          ]),
        );
        // Edge row: as the exact-text encoding writes it, the interval as its length, numeric NaN as null.
        expect(latestAfter(changes, 1, 'c')).toEqual({ ...EDGE_ROW, iv: lossy.get(1), num_any: null });

        const f2 = latestAfter(changes, 2)!;
        expect(Number.isNaN(f2.f4)).toBe(true);
        expect(f2.f8).toBe(Infinity);
        const f3 = latestAfter(changes, 3)!;
        expect(f3.f4).toBe(-Infinity);
        expect(Object.is(f3.f8, -0)).toBe(true);
        const f4 = latestAfter(changes, 4)!;
        expect(f4.f4).toBe(3.4028235e38);
        expect(f4.f8).toBe(1e-320);

        const nulls = latestAfter(changes, 5, 'c')!;
        expect(Object.entries(nulls).filter(([k, v]) => k !== 'id' && v !== null)).toEqual([]);

        const { rows } = await client.query(EXPECTED_SQL);
        expect(rows.length).toBe(200);
        for (const r of rows)
          expect(latestAfter(changes, r.id as number, 'c')).toEqual({ ...expectedFromSql(r), iv: lossy.get(r.id as number) });

        // A delete under REPLICA IDENTITY DEFAULT: the key, every other column null (none is NOT NULL here).
        const deleted = changes.find((c) => c.envelope.op === 'd')!;
        expect(deleted.key).toEqual({ id: 5 });
        expect(deleted.envelope.before).toMatchObject({ id: 5, i4: null });
        expect(deleted.envelope.source.snapshot).toBe('false');
      } finally {
        await running.stop();
      }
    });
  });
}
