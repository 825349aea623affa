/**
 * Fidelity: every PostgreSQL type the issue lists travels through the real connector, Kafka and the
 * registry (Avro, JSON Schema and Protobuf, the last read back by a Confluent-framing Protobuf decoder)
 * and decodes to exactly the documented JS value. Expected values are
 * written out by hand for the edge cases, and derived by PostgreSQL itself (to_json, encode) for bulk
 * rows, so the check never goes through the connector's own conversion code.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST } from '../../../services/core/change-event.js';
import type { DecodedChange } from '../../../connectors/kafka-sink/serde.js';
import { createTestDatabase, STACK, type TestDatabase, uniqueName } from '../../support/stack.js';
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

function latestAfter(changes: DecodedChange[], id: number, op?: string): Record<string, unknown> | null {
  const mine = changes.filter((c) => c.key?.id === id && (!op || c.envelope.op === op));
  return (mine.at(-1)?.envelope.after as Record<string, unknown> | undefined) ?? null;
}

for (const format of ['avro', 'json', 'protobuf'] as const) {
  describe(`fidelity (${format})`, () => {
    let db: TestDatabase;
    let client: pg.Client;
    const slot = uniqueName(`fid_${format}`);
    const prefix = uniqueName(`fid${format}`);

    beforeAll(async () => {
      db = await createTestDatabase('source', 'cdcfid');
      client = new pg.Client({ connectionString: db.url, options: '-c timezone=UTC -c extra_float_digits=1' });
      await client.connect();
      await client.query(`CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped')`);
      await client.query(`CREATE TABLE fidelity (${COLUMNS})`);
      await client.query(`CREATE TABLE fidelity_full (${COLUMNS.replace('order_state', 'text')})`);
      await client.query('ALTER TABLE fidelity_full REPLICA IDENTITY FULL');
    });

    afterAll(async () => {
      await client?.end();
      await db?.drop();
      await deleteTopics([`${prefix}.public.fidelity`, `${prefix}.public.fidelity_full`]);
    });

    it('decodes every type exactly, NULLs as null, an unchanged TOASTed value as the placeholder', async () => {
      const spec = writeCdcSpec({
        database: db.url,
        table: 'fidelity',
        slot,
        topicPrefix: prefix,
        format,
        tables: ['public.fidelity_full'],
        snapshot: 'never',
      });
      const running = await runConnector(spec);
      try {
        await client.query(EDGE_INSERT);
        await client.query(SPECIAL_FLOATS);
        await client.query('INSERT INTO fidelity (id) VALUES (5)');
        await client.query(BULK_INSERT);
        // A large incompressible value is TOASTed out of line; updating another column leaves it unsent.
        await client.query(`UPDATE fidelity SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g) WHERE id = 1`);
        await client.query('UPDATE fidelity SET i4 = 1 WHERE id = 1');
        await client.query(
          `INSERT INTO fidelity_full (id, big, t) VALUES (1, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g), 'before')`,
        );
        await client.query(`UPDATE fidelity_full SET t = 'after' WHERE id = 1`);

        const expectedCount = 1 + 3 + 1 + 200 + 2;
        const changes = await readTopic(`${prefix}.public.fidelity`, (c) => c.length >= expectedCount);
        expect(changes.length).toBe(expectedCount);

        // Edge row, hand-written expectations.
        expect(latestAfter(changes, 1, 'c')).toEqual(EDGE_ROW);

        // NaN, infinities, -0, float4 max, a float8 subnormal.
        const f2 = latestAfter(changes, 2)!;
        expect(Number.isNaN(f2.f4)).toBe(true);
        expect(f2.f8).toBe(Infinity);
        const f3 = latestAfter(changes, 3)!;
        expect(f3.f4).toBe(-Infinity);
        expect(Object.is(f3.f8, -0)).toBe(true);
        const f4 = latestAfter(changes, 4)!;
        expect(f4.f4).toBe(3.4028235e38);
        expect(f4.f8).toBe(1e-320);

        // All NULLs.
        const nulls = latestAfter(changes, 5)!;
        expect(
          Object.entries(nulls)
            .filter(([k]) => k !== 'id')
            .every(([, v]) => v === null),
        ).toBe(true);

        // Bulk rows against PostgreSQL's own rendering.
        const { rows } = await client.query(EXPECTED_SQL);
        expect(rows.length).toBe(200);
        for (const r of rows) expect(latestAfter(changes, r.id as number, 'c')).toEqual(expectedFromSql(r));

        // Unchanged TOAST under REPLICA IDENTITY DEFAULT: explicit placeholder, never undefined.
        const updates = changes.filter((c) => c.key?.id === 1 && c.envelope.op === 'u');
        expect(updates).toHaveLength(2);
        const last = updates[1]!.envelope;
        expect(last.after!.big).toBe(UNCHANGED_TOAST);
        expect(last.after!.i4).toBe(1);
        expect(last.before).toBeNull();
        expect(Object.values(last.after!).includes(undefined)).toBe(false);
        // The first update did change it: the full value was sent.
        expect((updates[0]!.envelope.after!.big as string).length).toBe(128_000);

        // REPLICA IDENTITY FULL: complete before-image and the TOASTed value carried over.
        const full = await readTopic(`${prefix}.public.fidelity_full`, (c) => c.length >= 2);
        const u = full.find((c) => c.envelope.op === 'u')!.envelope;
        expect(u.before!.t).toBe('before');
        expect(u.after!.t).toBe('after');
        expect((u.after!.big as string).length).toBe(128_000);
        expect(u.after!.big).toBe(u.before!.big);

        // Envelope and headers.
        const first = changes.find((c) => c.key?.id === 1)!;
        expect(first.envelope.source).toMatchObject({
          connector: 'postgresql',
          schema: 'public',
          table: 'fidelity',
          snapshot: 'false',
          db: db.name,
          name: prefix,
        });
        expect(first.envelope.source.txId).toBeGreaterThan(0);
        expect(first.position.ordinal).toBe(0);
        expect(first.envelope.source.sequence).toMatch(/^[0-9A-F]+\/[0-9A-F]+:0$/);

        // The subjects carry the format asked for (TopicNameStrategy), not a silent fallback.
        const registered = (await (
          await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${prefix}.public.fidelity-value/versions/latest`)
        ).json()) as { schemaType?: string; schema: string };
        expect(registered.schemaType ?? 'AVRO').toBe({ avro: 'AVRO', json: 'JSON', protobuf: 'PROTOBUF' }[format]);
        if (format === 'protobuf') expect(registered.schema).toMatch(/^syntax = "proto3";\npackage [\w.]+\.public\.fidelity;/);
      } finally {
        await running.stop();
      }
    });
  });
}
