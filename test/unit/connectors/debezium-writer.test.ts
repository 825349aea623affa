/**
 * The compiled Avro writer of the debezium encoding (connectors/kafka-sink/debezium-writer.ts) against
 * its reference, serde's avsc path: for the same registered schema and the same event, the same bytes,
 * or (where avsc refuses a value) the same refusal. Rows come from PostgreSQL text through the Debezium
 * type mapping (connectors/postgres-source/debezium-types.ts), so the values are the ones the CDC hands
 * the encoder: every type the mapping knows, under each of Debezium's type options, with NULLs, column
 * defaults, extremes, NaN and infinities, int64s near 2^63, unicode, empty arrays; then random rows.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DEBEZIUM_TYPE_DEFAULTS,
  type DebeziumTypeOptions,
  type PgColumnFacts,
  debeziumColumn,
} from '../../../connectors/postgres-source/debezium-types.js';
import type { ConnectStruct, ConnectValue } from '../../../services/core/connect-schema.js';
import { type TableShape, tableShape } from '../../../services/core/table-shape.js';
import { type RegistryClient, type TableEncoder, avroType, createChangeEncoder } from '../../../connectors/kafka-sink/serde.js';
import {
  debeziumAvroSchemas,
  debeziumSchemas,
  exactValue,
  fieldTypeOfAvro,
  renamedRow,
} from '../../../connectors/kafka-sink/debezium-serde.js';
import { envelope, sourceBlock, transactionBlock } from '../../../connectors/kafka-sink/debezium-envelope.js';
import { compileAvroWriter, debeziumAvroWriterFromEnv } from '../../../connectors/kafka-sink/debezium-writer.js';
import { ParityError } from '../../../services/core/errors.js';

const DIR = fileURLToPath(new URL('../../conformance/debezium-3.6.0/', import.meta.url));
/** The all-types table Debezium 3.6.0 itself was run on (its catalog facts and its rows as PostgreSQL text). */
const captured = JSON.parse(readFileSync(`${DIR}all-types.pg-text.json`, 'utf8')) as {
  columnsAfter: PgColumnFacts[];
  states: { rows: Record<string, Record<string, string | null>> }[];
};

const registry: RegistryClient = { register: async (subject) => (subject.endsWith('-key') ? 7 : 9) };

const fact = (name: string, type: string, extra: Partial<PgColumnFacts> = {}): PgColumnFacts => ({
  name,
  type,
  typmod: -1,
  notNull: false,
  ...extra,
});
const numericTypmod = (p: number, s: number) => ((p << 16) | (s & 0x7ff)) + 4;

/** Every type the mapping knows, beyond the captured table: arrays of them, typmods, defaults, NOT NULL. */
const EXTRA_FACTS: PgColumnFacts[] = [
  fact('k_text', 'text', { notNull: true }),
  fact('i8_default', 'int8', { defaultExpr: '9223372036854775807' }),
  fact('i4_default', 'int4', { defaultExpr: '(-5)' }),
  fact('txt_default', 'text', { defaultExpr: "'new'::text" }),
  fact('num_default', 'numeric', { typmod: numericTypmod(12, 2), defaultExpr: '0.00' }),
  fact('bool_default', 'bool', { defaultExpr: 'true' }),
  fact('date_default', 'date', { defaultExpr: "'2024-01-01'::date" }),
  fact('num_neg_scale', 'numeric', { typmod: numericTypmod(5, -2) }),
  fact('ltree', 'ltree'),
  fact('bit1', 'bit', { typmod: 1 }),
  fact('bits8', 'bit', { typmod: 8 }),
  fact('t3', 'time', { typmod: 3 }),
  fact('ts6', 'timestamp', { typmod: 6 }),
  fact('tstz0', 'timestamptz', { typmod: 0 }),
  fact('hs', 'hstore'),
  fact('a_i8', 'int8', { array: true }),
  fact('a_num', 'numeric', { array: true, typmod: numericTypmod(10, 3) }),
  fact('a_numvar', 'numeric', { array: true }),
  fact('a_date', 'date', { array: true }),
  fact('a_ts', 'timestamp', { array: true }),
  fact('a_tstz', 'timestamptz', { array: true }),
  fact('a_uuid', 'uuid', { array: true }),
  fact('a_bytea', 'bytea', { array: true }),
  fact('a_enum', 'mood', { array: true, enumLabels: ['sad', 'ok', 'happy'] }),
  fact('a_f4', 'float4', { array: true }),
  fact('a_f8', 'float8', { array: true }),
  fact('a_bool', 'bool', { array: true }),
  fact('a_json', 'jsonb', { array: true }),
  fact('a_iv', 'interval', { array: true }),
  fact('unknown', 'tsvector'),
];

/** PostgreSQL text values per column type (the edges; NULL is added for optional columns). */
const LONG_TEXT = `${'ünïcode ✓ 😀 '.repeat(12)}end`;
const TEXTS: Record<string, string[]> = {
  int2: ['-32768', '32767', '0'],
  int4: ['-2147483648', '2147483647', '0', '-1', '1073741824'],
  int8: ['-9223372036854775808', '9223372036854775807', '9007199254740993', '4503599627370496', '-4503599627370497', '0', '-1'],
  oid: ['0', '4294967295'],
  float4: ['NaN', 'Infinity', '-Infinity', '-0', '3.4028235e+38', '1.1', '1e-45'],
  float8: ['NaN', 'Infinity', '-Infinity', '-0', '1.7976931348623157e+308', '5e-324', '0.1'],
  numeric: ['-399841.62', '0.00', '9999999999.99', '-0.01', 'NaN', '3.14159265358979323846', '-123456789012345678901234567890.5', '1e-20'],
  money: ['$1,234.56', '-$12.34', '$0.00'],
  bool: ['t', 'f'],
  text: ['', 'hello', 'ünïcode ✓ 😀', LONG_TEXT, 'a'.repeat(64), `${'a'.repeat(62)}ü`, '__debezium_unavailable_value'],
  varchar: ['v', ''],
  bpchar: ['ab   '],
  date: ['2024-02-29', '0001-01-01 BC', 'infinity', '-infinity', '1970-01-01', '200000-12-31'],
  time: ['00:00:00', '24:00:00', '13:45:56.123456', '13:45:56.123'],
  timetz: ['13:45:56+02', '00:00:00.5-03:30'],
  timestamp: ['2024-02-29 13:45:56.123456', 'infinity', '-infinity', '0001-01-01 00:00:00 BC', '200000-12-31 23:59:59.999999'],
  timestamptz: ['2024-02-29 11:45:56.12345+00', 'infinity', '-infinity', '1970-01-01 00:00:00+00'],
  interval: ['1 year 2 mons 3 days 04:05:06.789', '-1 days', '-00:00:01', '290000 years', '00:00:00'],
  uuid: ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
  json: ['{"a": [1, 2, "ü"]}', 'null'],
  jsonb: ['{"b": [1, 2]}', '"str"'],
  xml: ['<a>1</a>'],
  ltree: ['a.b.c'],
  bytea: ['\\x', '\\xdeadbeef00ff', `\\x${'ab'.repeat(300)}`],
  bit: ['101', '000', '1', '10101010'],
  varbit: ['', '1101'],
  point: ['(1.5,-2)', '(0,0)'],
  hstore: ['"a"=>"1", "b"=>NULL, "2"=>"x"', ''],
  inet: ['192.168.0.1'],
  cidr: ['10.0.0.0/8'],
  macaddr: ['08:00:2b:01:02:03'],
  int4range: ['[1,5)', 'empty'],
  mood: ['happy', 'sad'],
  tsvector: ["'a' 'b'"],
};
const ARRAY_TEXTS: Record<string, string[]> = {
  int4: ['{}', '{1,NULL,3}', '{-2147483648}'],
  int8: ['{}', '{9223372036854775807,NULL,-9223372036854775808}'],
  text: ['{}', '{"a b",NULL,"ü",""}'],
  numeric: ['{}', '{1.50,-2.00,NULL,NaN}', '{3.14159,-1e-5}'],
  date: ['{2024-02-29,infinity,-infinity,NULL}'],
  timestamp: ['{"2024-02-29 13:45:56.5",infinity}'],
  timestamptz: ['{"2024-02-29 11:45:56+00",NULL}'],
  uuid: ['{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'],
  bytea: ['{"\\\\xdead",NULL}', '{}'],
  mood: ['{happy,sad}', '{}'],
  float4: ['{NaN,Infinity,-0,1.5}'],
  float8: ['{NaN,-Infinity,0.1}'],
  bool: ['{t,f,NULL}'],
  jsonb: ['{"{\\"a\\": 1}",NULL}'],
  interval: ['{"1 day","-00:00:01"}'],
};

function textsFor(f: PgColumnFacts): string[] {
  const base = f.type.startsWith('_') ? f.type.slice(1) : f.type;
  const isArray = f.array === true || f.type.startsWith('_');
  const pool = isArray ? ARRAY_TEXTS[base] : TEXTS[base];
  return pool ?? [];
}

interface Table {
  shape: TableShape;
  facts: PgColumnFacts[];
  convert: Map<string, (text: string) => ConnectValue>;
}

/** A debezium-encoded table of `facts` under `options` (columns Debezium leaves out are left out). */
function table(name: string, facts: PgColumnFacts[], options: DebeziumTypeOptions, keys: string[]): Table {
  const convert = new Map<string, (text: string) => ConnectValue>();
  const kept: PgColumnFacts[] = [];
  const columns = facts.flatMap((f) => {
    const column = debeziumColumn({ ...f, key: keys.includes(f.name) }, options);
    if (!column) return [];
    convert.set(f.name, column.fromText);
    kept.push(f);
    return [{ name: f.name, kind: 'string' as const, connect: column.schema }];
  });
  return { shape: tableShape('p', 'public', name, columns, keys, 'debezium'), facts: kept, convert };
}

const ALL_FACTS = [...captured.columnsAfter, ...EXTRA_FACTS];
const MODES: [string, DebeziumTypeOptions][] = [
  ['defaults', DEBEZIUM_TYPE_DEFAULTS],
  [
    'double, adaptive_time_microseconds, base64, string intervals, hstore map, unknown types',
    {
      ...DEBEZIUM_TYPE_DEFAULTS,
      'decimal.handling.mode': 'double',
      'time.precision.mode': 'adaptive_time_microseconds',
      'binary.handling.mode': 'base64',
      'interval.handling.mode': 'string',
      'hstore.handling.mode': 'map',
      'include.unknown.datatypes': true,
    },
  ],
  [
    'string decimals, connect time precision, hex',
    { ...DEBEZIUM_TYPE_DEFAULTS, 'decimal.handling.mode': 'string', 'time.precision.mode': 'connect', 'binary.handling.mode': 'hex' },
  ],
];

async function encoders(shape: TableShape): Promise<{ compiled: TableEncoder; avsc: TableEncoder }> {
  return {
    compiled: await createChangeEncoder({ registry, format: 'avro', debeziumAvroWriter: 'compiled' }).forTable(shape),
    avsc: await createChangeEncoder({ registry, format: 'avro', debeziumAvroWriter: 'avsc' }).forTable(shape),
  };
}

/** The bytes, or the error code: what a caller of `encode` sees. */
function outcome(encode: () => Buffer | null): { bytes: string | null } | { error: string } {
  try {
    const b = encode();
    return { bytes: b === null ? null : b.toString('hex') };
  } catch (err) {
    return { error: err instanceof ParityError ? `${err.code}: ${err.message}` : String(err) };
  }
}

let lsnCounter = 0n;
function event(
  op: 'c' | 'u' | 'd' | 'r',
  before: ConnectStruct | null,
  after: ConnectStruct | null,
  tx: boolean,
  seq: number,
): ConnectStruct {
  lsnCounter += 1_000_003n;
  const source = sourceBlock({
    version: '3.6.0.Final',
    name: 'p',
    db: 'app',
    schema: 'public',
    table: 't',
    commitMicros: 1_765_000_000_000_000n + BigInt(seq) * 997n,
    snapshot: op === 'r' ? (seq % 3 === 0 ? 'first' : 'true') : 'false',
    txId: op === 'r' ? null : 700n + BigInt(seq),
    lsn: op === 'r' ? null : 0x7fff_ffff_ffffn + lsnCounter,
    lastCommitLsn: seq % 2 === 0 ? null : 0x16b3748n + lsnCounter,
  });
  const block = tx ? transactionBlock(700n + BigInt(seq), 0n, seq + 1, 1, `${700 + seq}:${123456 + seq}`) : null;
  return envelope(op, before, after, source, block, 1_765_000_000_123_000_000n + BigInt(seq % 5) * 1_000_000n);
}

/** Compares both paths for key and value; returns how many events the compiled writer wrote itself. */
function compare(
  t: Table,
  enc: { compiled: TableEncoder; avsc: TableEncoder },
  rows: Record<string, ConnectValue>[],
  seed: number,
): number {
  const schemas = debeziumSchemas(t.shape);
  const avro = debeziumAvroSchemas(schemas);
  const valueWriter = compileAvroWriter(avro.value);
  expect(valueWriter).not.toBeNull();
  let direct = 0;
  rows.forEach((row, i) => {
    const ops = ['c', 'u', 'd', 'r'] as const;
    const op = ops[(i + seed) % 4]!;
    const before = op === 'u' || op === 'd' ? row : null;
    const after = op === 'd' ? null : row;
    const value = event(op, before, after, (i + seed) % 3 === 0, i + seed);
    const key = t.shape.keyColumns.length ? Object.fromEntries(t.shape.keyColumns.map((k) => [k, row[k] ?? null])) : null;
    expect(
      outcome(() => enc.compiled.encodeValue(value)),
      `value of row ${i}`,
    ).toEqual(outcome(() => enc.avsc.encodeValue(value)));
    expect(
      outcome(() => enc.compiled.encodeKey(key)),
      `key of row ${i}`,
    ).toEqual(outcome(() => enc.avsc.encodeKey(key)));
    if (valueWriter!.frame(9, value) !== null) direct++;
  });
  return direct;
}

/** Rows: the first column's pool value i of each column (cycling), then a row of NULLs where allowed. */
function edgeRows(t: Table): Record<string, ConnectValue>[] {
  const pools = t.facts.map((f) => textsFor(f));
  const longest = Math.max(...pools.map((p) => p.length));
  const rows: Record<string, ConnectValue>[] = [];
  for (let i = 0; i <= longest; i++) {
    const row: Record<string, ConnectValue> = {};
    t.facts.forEach((f, c) => {
      const pool = pools[c]!;
      const key = t.shape.keyColumns.includes(f.name);
      const text = i === longest && !key && !f.notNull ? null : pool.length ? pool[i % pool.length]! : null;
      row[f.name] = text === null ? null : t.convert.get(f.name)!(text);
    });
    if (t.shape.keyColumns.includes('id')) row.id = i + 1;
    rows.push(row);
  }
  return rows;
}

describe('compiled Debezium Avro writer: byte for byte what avsc writes', () => {
  for (const [label, options] of MODES) {
    it(`every mapped type, edge values and NULLs (${label})`, async () => {
      const t = table('all_types', ALL_FACTS, options, ['id']);
      const enc = await encoders(t.shape);
      const rows = edgeRows(t);
      // The rows Debezium itself was run on, too.
      for (const state of captured.states) {
        for (const pgRow of Object.values(state.rows)) {
          const row: Record<string, ConnectValue> = {};
          for (const f of t.facts) {
            const text = pgRow[f.name];
            row[f.name] = text === null || text === undefined ? null : t.convert.get(f.name)!(text);
          }
          if (row.id === null) row.id = 99;
          if (row.k_text === null) row.k_text = 'k';
          rows.push(row);
        }
      }
      // Every event written by the compiled writer itself (Connect's Timestamp of time.precision.mode
      // connect included: a long with a logical type, which serde's avsc once refused as a bigint).
      expect(compare(t, enc, rows, 0)).toBe(rows.length);
    });
  }

  it('a composite key of text and int64, and a table whose only column is its key', async () => {
    const t = table('composite', [fact('a', 'text'), fact('b', 'int8'), fact('c', 'float8')], DEBEZIUM_TYPE_DEFAULTS, ['a', 'b']);
    const enc = await encoders(t.shape);
    const rows = TEXTS.int8!.map((b, i) => ({ a: TEXTS.text![i % TEXTS.text!.length]!, b: BigInt(b), c: i === 0 ? null : -i / 3 }));
    expect(compare(t, enc, rows, 1)).toBe(rows.length);
    const only = table('only_key', [fact('id', 'uuid')], DEBEZIUM_TYPE_DEFAULTS, ['id']);
    expect(compare(only, await encoders(only.shape), [{ id: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' }], 2)).toBe(1);
  });

  it('time.precision.mode connect: a Timestamp (a long with a logical type) is written and reads back exactly', async () => {
    const connect = { ...DEBEZIUM_TYPE_DEFAULTS, 'time.precision.mode': 'connect' as const };
    const t = table('connect_ts', [fact('id', 'int4'), fact('ts', 'timestamp'), fact('d', 'date')], connect, ['id']);
    const enc = await encoders(t.shape);
    const row = { id: 1, ts: t.convert.get('ts')!('2024-02-29 13:45:56.123'), d: t.convert.get('d')!('2024-02-29') };
    const value = event('c', null, row, false, 0);
    const written = enc.compiled.encodeValue(value);
    expect(written.toString('hex')).toBe(enc.avsc.encodeValue(value).toString('hex'));
    const avro = debeziumAvroSchemas(debeziumSchemas(t.shape)).value;
    const after = (avroType(avro).fromBuffer(written.subarray(5)) as { after: Record<string, unknown> }).after;
    const fields = fieldTypeOfAvro((avro as { fields: { type: unknown[] }[] }).fields[0]!.type).fields!;
    const exact = Object.fromEntries(fields.map((f) => [f.name, exactValue(f.type, after[f.name])]));
    expect(exact).toEqual({ id: 1, ts: '2024-02-29 13:45:56.123', d: '2024-02-29' });
  });

  it('field.name.adjustment.mode renames the fields the same way for both', async () => {
    const t = table('adjusted', [fact('id', 'int4'), fact('weird col', 'text'), fact('1st', 'int8')], DEBEZIUM_TYPE_DEFAULTS, ['id']);
    const adjusted = { registry, format: 'avro' as const, fieldNameAdjustment: 'avro_unicode' as const };
    const enc = {
      compiled: await createChangeEncoder({ ...adjusted, debeziumAvroWriter: 'compiled' }).forTable(t.shape),
      avsc: await createChangeEncoder({ ...adjusted, debeziumAvroWriter: 'avsc' }).forTable(t.shape),
    };
    const rows = [
      { id: 1, 'weird col': 'x', '1st': 5n },
      { id: 2, 'weird col': null, '1st': null },
    ];
    for (const [i, row] of rows.entries()) {
      const value = event('u', row, row, false, i);
      const compiled = enc.compiled.encodeValue(value);
      expect(compiled.toString('hex')).toBe(enc.avsc.encodeValue(value).toString('hex'));
      // Written by the compiled writer itself (the renamed row fits the registered schema), not by avsc.
      const schemas = debeziumSchemas(t.shape, 'avro_unicode');
      const renamed = { ...value, before: renamedRow(row, schemas.renames), after: renamedRow(row, schemas.renames) } as ConnectStruct;
      expect(compileAvroWriter(debeziumAvroSchemas(schemas).value)!.frame(9, renamed)?.toString('hex')).toBe(compiled.toString('hex'));
      expect(enc.compiled.encodeKey({ id: row.id })!.toString('hex')).toBe(enc.avsc.encodeKey({ id: row.id })!.toString('hex'));
    }
  });

  it('a keyless table writes no key, and a value past the reused buffer grows it', async () => {
    const t = table('keyless', [fact('doc', 'text'), fact('blob', 'bytea')], DEBEZIUM_TYPE_DEFAULTS, []);
    const enc = await encoders(t.shape);
    const big = { doc: 'x'.repeat(200_000), blob: Buffer.alloc(300_000, 7) };
    expect(compare(t, enc, [big, { doc: 'small', blob: null }, big], 3)).toBe(3);
    expect(enc.compiled.encodeKey(null)).toBeNull();
  });

  it('a value that does not fit its column goes to avsc, which names the column (the value is not shown)', async () => {
    const t = table(
      'misfit',
      [fact('id', 'int4'), fact('n', 'int8'), fact('b', 'bytea'), fact('arr', 'int4', { array: true })],
      DEBEZIUM_TYPE_DEFAULTS,
      ['id'],
    );
    const enc = await encoders(t.shape);
    const bad: Record<string, ConnectValue>[] = [
      { id: 1, n: 'secret-text', b: null, arr: [] },
      { id: 1, n: 1n, b: '__debezium_unavailable_value', arr: [] },
      { id: 1, n: 2n ** 64n, b: null, arr: [] },
      { id: 1, n: 2n ** 63n, b: null, arr: [] },
      { id: 1, n: 1n, b: null, arr: [[1, 2]] as unknown as ConnectValue },
      { id: 1.5, n: 1n, b: null, arr: [] },
      { id: 2 ** 31, n: 1n, b: null, arr: [] },
    ];
    expect(compare(t, enc, bad, 0)).toBe(0);
    const failure = outcome(() => enc.compiled.encodeValue(event('c', null, bad[0]!, false, 0)));
    expect(failure).toMatchObject({ error: expect.stringMatching(/^PARITY_SERIALIZE: .*column n/) });
    expect(JSON.stringify(failure)).not.toContain('secret-text');
  });

  it('follows the registered schema, not the columns: a field registered optional stays a union', () => {
    const t = table('widened', [fact('id', 'int4'), fact('qty', 'int4', { notNull: true })], DEBEZIUM_TYPE_DEFAULTS, ['id']);
    const avro = debeziumAvroSchemas(debeziumSchemas(t.shape)).value as { fields: { name: string; type: unknown }[] };
    const row = (avro.fields[0]!.type as unknown[])[1] as { fields: { name: string; type: unknown; default?: unknown }[] };
    const qty = row.fields.find((f) => f.name === 'qty')!;
    expect(qty.type).toBe('int');
    const widened = JSON.parse(JSON.stringify(avro)) as typeof avro;
    const wrow = (widened.fields[0]!.type as unknown[])[1] as typeof row;
    Object.assign(wrow.fields.find((f) => f.name === 'qty')!, { type: ['null', 'int'], default: null });
    const writer = compileAvroWriter(widened)!;
    const type = avroType(widened);
    const value = event('c', null, { id: 1, qty: 5 }, false, 1);
    const framed = writer.frame(9, value)!;
    expect(framed.subarray(5).toString('hex')).toBe(type.toBuffer(value).toString('hex'));
    expect(framed.subarray(0, 5).toString('hex')).toBe('0000000009');
    // undefined where the default is null is written as null, as avsc writes the default.
    const missing = event('c', null, { id: 1 }, false, 1);
    expect(writer.frame(9, missing)!.subarray(5).toString('hex')).toBe(type.toBuffer(missing).toString('hex'));
    // A union with null second (a field with a default) written null and not null.
    const second = { type: 'record', name: 'R', fields: [{ name: 'd', type: ['int', 'null'], default: 5 }] };
    for (const d of [null, 7]) {
      expect(compileAvroWriter(second)!.frame(1, { d })!.subarray(5).toString('hex')).toBe(
        avroType(second).toBuffer({ d }).toString('hex'),
      );
    }
  });

  it('schemas with parts connect-avro never writes are left to avsc; PARITY_DEBEZIUM_WRITER picks the writer', () => {
    expect(
      compileAvroWriter({ type: 'record', name: 'R', fields: [{ name: 'e', type: { type: 'enum', name: 'E', symbols: ['A'] } }] }),
    ).toBeNull();
    expect(compileAvroWriter({ type: 'record', name: 'R', fields: [{ name: 'u', type: ['null', 'int', 'string'] }] })).toBeNull();
    expect(compileAvroWriter('int')!.frame(1, -1)!.toString('hex')).toBe('000000000101');
    expect(debeziumAvroWriterFromEnv({})).toBe('compiled');
    expect(debeziumAvroWriterFromEnv({ PARITY_DEBEZIUM_WRITER: 'avsc' })).toBe('avsc');
    expect(() => debeziumAvroWriterFromEnv({ PARITY_DEBEZIUM_WRITER: 'fast' })).toThrow(/PARITY_DEBEZIUM_WRITER must be compiled or avsc/);
  });
});

/** xorshift32: the same rows on every run (the seed is in the test name). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

describe('compiled Debezium Avro writer: random rows', () => {
  const SEED = 0x5eed14c;
  it(`2,000 random rows over every mapped type, each mode (seed ${SEED})`, async () => {
    const random = rng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const randomDigits = (n: number) => Array.from({ length: n }, () => Math.floor(random() * 10)).join('');
    const randomText = () => {
      const alphabet = ['a', 'Z', ' ', '"', '\\', 'ü', 'ß', '✓', '😀', '中', '\n', '\u0000'];
      return Array.from({ length: Math.floor(random() * (random() < 0.2 ? 120 : 20)) }, () => pick(alphabet)).join('');
    };
    /** A random value's text for a scalar type, or null to take one of the pool's. */
    const generated = (type: string): string | null => {
      switch (type) {
        case 'int2':
          return String(Math.floor(random() * 65536) - 32768);
        case 'int4':
          return String(Math.floor(random() * 2 ** 32) - 2 ** 31);
        case 'int8': {
          const magnitude = BigInt(randomDigits(1 + Math.floor(random() * 18)));
          return String(random() < 0.5 ? -magnitude : magnitude);
        }
        case 'float4':
        case 'float8':
          return String((random() - 0.5) * 10 ** Math.floor(random() * 40 - 20));
        case 'numeric':
          return `${random() < 0.5 ? '-' : ''}${randomDigits(1 + Math.floor(random() * 9))}.${randomDigits(2)}`;
        case 'text':
        case 'varchar':
          return randomText();
        case 'date':
          return `${String(1 + Math.floor(random() * 9999)).padStart(4, '0')}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}`;
        case 'timestamp':
          return `${String(1 + Math.floor(random() * 9999)).padStart(4, '0')}-12-31 23:${10 + Math.floor(random() * 50)}:00.${randomDigits(6)}`;
        case 'bytea':
          return `\\x${Array.from({ length: Math.floor(random() * 40) }, () =>
            Math.floor(random() * 256)
              .toString(16)
              .padStart(2, '0'),
          ).join('')}`;
        default:
          return null;
      }
    };
    let total = 0;
    for (const [label, options] of MODES) {
      const t = table(`random_${label.length}`, ALL_FACTS, options, ['id']);
      const enc = await encoders(t.shape);
      const rows: Record<string, ConnectValue>[] = [];
      for (let i = 0; i < 700; i++) {
        const row: Record<string, ConnectValue> = {};
        for (const f of t.facts) {
          const key = f.name === 'id';
          const optional = !key && !f.notNull;
          const isArray = f.array === true || f.type.startsWith('_');
          const base = f.type.startsWith('_') ? f.type.slice(1) : f.type;
          if (optional && random() < 0.2) {
            row[f.name] = null;
            continue;
          }
          let text: string | null = null;
          if (isArray) {
            const n = Math.floor(random() * 4);
            const elements = Array.from({ length: n }, () => (random() < 0.2 ? 'NULL' : generated(base)));
            if (elements.every((e) => e !== null)) text = `{${elements.map((e) => (e === 'NULL' ? e : JSON.stringify(e))).join(',')}}`;
          } else text = generated(base);
          const pool = textsFor(f);
          if (text === null && pool.length === 0) {
            row[f.name] = null;
            continue;
          }
          text ??= pick(pool);
          try {
            row[f.name] = t.convert.get(f.name)!(text);
          } catch {
            row[f.name] = t.convert.get(f.name)!(pick(pool.length ? pool : [text]));
          }
        }
        row.id = Math.floor(random() * 2 ** 31);
        if (row.k_text === null) row.k_text = 'k';
        rows.push(row);
      }
      compare(t, enc, rows, Math.floor(random() * 1000));
      total += rows.length;
    }
    expect(total).toBe(2100);
  });
});
