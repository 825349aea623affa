/**
 * Connect -> Avro schema rendering (Confluent AvroData's conventions) and an Avro round trip of a whole
 * Debezium envelope of the all-types table through avsc.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import avsc from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroSchemaFromConnect } from '../../../connectors/kafka-sink/connect-avro.js';
import { SOURCE_SCHEMA, envelope, envelopeSchema, rowSchema, sourceBlock } from '../../../connectors/kafka-sink/debezium-envelope.js';
import { type DebeziumColumn, type PgColumnFacts, debeziumColumn } from '../../../connectors/postgres-source/debezium-types.js';
import type { ConnectSchema } from '../../../services/core/connect-schema.js';

const DIR = fileURLToPath(new URL('../../conformance/debezium-3.6.0/', import.meta.url));
const pgText = JSON.parse(readFileSync(`${DIR}all-types.pg-text.json`, 'utf8')) as {
  columnsBefore: PgColumnFacts[];
  states: { rows: Record<string, Record<string, string | null>> }[];
};

/** avsc's long as a bigint both ways (int64 values are exact bigints in Connect). */
const BIGINT_LONG = avsc.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (v: unknown) => BigInt(v as number),
  toJSON: (n: bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

describe('Connect schema -> Avro (AvroData conventions)', () => {
  it('semantic names, parameters and logical types', () => {
    const decimal: ConnectSchema = {
      type: 'bytes',
      optional: true,
      name: 'org.apache.kafka.connect.data.Decimal',
      version: 1,
      parameters: { scale: '2', 'connect.decimal.precision': '12' },
    };
    expect(avroSchemaFromConnect(decimal)).toEqual([
      'null',
      {
        type: 'bytes',
        'connect.version': 1,
        'connect.parameters': { scale: '2', 'connect.decimal.precision': '12' },
        'connect.name': 'org.apache.kafka.connect.data.Decimal',
        scale: 2,
        precision: 12,
        logicalType: 'decimal',
      },
    ]);
    expect(avroSchemaFromConnect({ type: 'int16', optional: false, default: 7 })).toEqual({
      type: 'int',
      'connect.default': 7,
      'connect.type': 'int16',
    });
    expect(avroSchemaFromConnect({ type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1 })).toEqual([
      'null',
      { type: 'int', 'connect.version': 1, 'connect.name': 'io.debezium.time.Date' },
    ]);
    expect(avroSchemaFromConnect({ type: 'boolean', optional: true, default: true })).toEqual([
      { type: 'boolean', 'connect.default': true },
      'null',
    ]);
    expect(
      avroSchemaFromConnect({ type: 'int64', optional: false, name: 'org.apache.kafka.connect.data.Timestamp', version: 1 }),
    ).toMatchObject({ logicalType: 'timestamp-millis' });
  });

  it('the whole envelope of the all-types table parses in avsc and round-trips a row', () => {
    const columns = pgText.columnsBefore
      .map((f) => debeziumColumn({ ...f, key: f.name === 'id' }))
      .filter((c): c is DebeziumColumn => c !== null);
    const topic = 'dbz.public.all_types';
    const row = rowSchema(
      topic,
      columns.map((c) => ({ name: c.name, schema: c.schema })),
    );
    const schema = envelopeSchema(topic, row);
    const avro = avroSchemaFromConnect(schema) as Record<string, unknown>;
    expect(avro).toMatchObject({
      type: 'record',
      name: 'Envelope',
      namespace: topic,
      'connect.version': 2,
      'connect.name': `${topic}.Envelope`,
    });
    const fields = avro.fields as { name: string; type: unknown; default?: unknown }[];
    // `after` reuses the Value record defined by `before`.
    expect(fields[1]).toEqual({ name: 'after', type: ['null', `${topic}.Value`], default: null });
    const type = avsc.Type.forSchema(
      avro as avsc.Schema,
      {
        typeHook: (attrs: unknown) => (attrs === 'long' || (attrs as { type?: unknown }).type === 'long' ? BIGINT_LONG : undefined),
      } as never,
    );
    const texts = pgText.states[0]!.rows['1']!;
    const after = Object.fromEntries(columns.map((c) => [c.name, texts[c.name] == null ? null : c.fromText(texts[c.name]!)]));
    // avsc reads maps and unions its own way; the all-types row has neither maps nor multi-branch unions.
    const src = sourceBlock({
      version: '3.6.0.Final',
      name: 'dbz',
      db: 'd',
      schema: 'public',
      table: 'all_types',
      commitMicros: 1n,
      snapshot: 'first',
      txId: 1n,
      lsn: 2n,
      lastCommitLsn: null,
    });
    const value = envelope('r', null, after, src, null, 5_000_000n);
    const back = type.fromBuffer(type.toBuffer(value)) as typeof value;
    expect(back.after).toEqual(after);
    expect(back.source).toEqual(src);
    expect(SOURCE_SCHEMA.fields!.map((f) => f.name)).toEqual(Object.keys(src));
  });
});
