/**
 * The fidelity table shared by the CDC fidelity test (every type in every format) and the Debezium
 * read-back test (every type under the debezium encoding): its columns, the hand-written edge row, the
 * inserts, and the expected values as PostgreSQL itself renders them.
 */
import type { DecodedChange } from '../../../connectors/kafka-sink/serde.js';

export const COLUMNS = `
  id int PRIMARY KEY,
  i2 int2, i4 int4, i8 int8,
  num numeric(30,4), num_any numeric,
  f4 float4, f8 float8,
  t text, vc varchar(20), ch char(5), b bool,
  d date, tm time, ts3 timestamp(3), ts6 timestamp(6), tstz timestamptz, iv interval,
  u uuid, j json, jb jsonb, by bytea,
  ia int4[], ta text[], st order_state, big text`;

/** Hand-written expected values (the documented JS types). */
export const EDGE_ROW = {
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

export const EDGE_INSERT = `INSERT INTO fidelity VALUES (1, -32768, 2147483647, 9223372036854775807, 12345678901234567890.12345, 'NaN',
  1.1, 0.1::float8 + 0.2::float8, E'line1\\nline2 "quoted" \\\\ ünïcødé 🚀', 'short', 'ab', true,
  '2024-02-29', '23:59:59.999999', '2024-02-29 23:59:59.1234', '2024-02-29 23:59:59.123456', '2024-03-01 01:59:59.123456+02',
  '1 year 2 months 3 days 4 hours 5 minutes 6.789 seconds', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{"b": 1,  "a": [1,2]}', '{"b": 1,  "a": [1,2]}',
  '\\x00ff10', '{1,NULL,-3}', '{"a b","c\\"d",NULL,"NULL"}', 'shipped', 'x')`;

export const SPECIAL_FLOATS = `INSERT INTO fidelity (id, f4, f8) VALUES (2, 'NaN', 'Infinity'), (3, '-Infinity', '-0'), (4, '3.4028235e+38', '1e-320')`;

/** Bulk rows whose expected values PostgreSQL computes itself. */
export const BULK_INSERT = `INSERT INTO fidelity
  SELECT g, (g % 32000)::int2, g * 7, g::int8 * 1000000007, (g * 3.14159)::numeric(30,4), g / 7.0,
         (g / 3.0)::float4, g / 7.0::float8, md5(g::text), left(md5(g::text), 20), left(md5(g::text), 3), g % 2 = 0,
         date '2000-01-01' + g, time '00:00' + g * interval '1.000001 second', timestamp '2020-01-01' + g * interval '1.234 second',
         timestamp '2020-01-01' + g * interval '1.234567 second', timestamptz '2020-01-01 00:00+05' + g * interval '0.000123 second',
         g * interval '1 day 1.5 second', md5(g::text)::uuid, json_build_object('g', g, 's', md5(g::text)), jsonb_build_object('g', g, 'arr', ARRAY[g, g + 1]),
         decode(md5(g::text), 'hex'), ARRAY[g, NULL, -g], ARRAY[md5(g::text), 'q"uote'], (ARRAY['new','paid','shipped']::order_state[])[1 + g % 3], repeat('b', g % 50)
    FROM generate_series(10, 209) g`;

/** Expected values from PostgreSQL itself (session in UTC): what each documented JS value must equal. */
export const EXPECTED_SQL = `SELECT id, i2, i4, i8::text AS i8, num::text AS num, num_any::text AS num_any, f4::float8::text AS f4_text, f4::text AS f4, f8::text AS f8,
   t, vc, ch, b, d::text AS d, tm::text AS tm, ts3::text AS ts3, ts6::text AS ts6, tstz::text AS tstz, iv::text AS iv, u::text AS u,
   j::text AS j, jb::text AS jb, replace(encode(by, 'base64'), E'\\n', '') AS by, to_json(ia)::text AS ia, to_json(ta)::text AS ta, st::text AS st, big
   FROM fidelity WHERE id >= 10 ORDER BY id`;

export function expectedFromSql(r: Record<string, unknown>): Record<string, unknown> {
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

/** The last `after` row of key `id` (of one op, if given). */
export function latestAfter(changes: DecodedChange[], id: number, op?: string): Record<string, unknown> | null {
  const mine = changes.filter((c) => c.key?.id === id && (!op || c.envelope.op === op));
  return (mine.at(-1)?.envelope.after as Record<string, unknown> | undefined) ?? null;
}
