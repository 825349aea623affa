/**
 * connect-json events for the live checks (services/compat-gate/connect-json-events.ts): JsonConverter's
 * schema JSON read back into Connect schemas, payloads into Avro datums of the schema AvroData makes,
 * and what is or is not a connect-json event.
 */
import { describe, expect, it } from 'vitest';
import { connectJsonDocument, connectSchemaJson } from '../../../connectors/kafka-sink/connect-json.js';
import { debeziumSchemas } from '../../../connectors/kafka-sink/debezium-serde.js';
import { avroDatumType, createAvroDatumReader } from '../../../services/compat-gate/avro-datum.js';
import {
  avroValueOfConnectJson,
  connectJsonWriter,
  connectSchemaFromJson,
  isConnectSchemaJson,
  parseConnectJsonEvent,
} from '../../../services/compat-gate/connect-json-events.js';
import { CONNECT_DECIMAL, type ConnectSchema, twosComplementBytes } from '../../../services/core/connect-schema.js';
import { tableShape } from '../../../services/core/table-shape.js';

const shape = tableShape(
  'p',
  'public',
  't',
  [
    { name: 'id', kind: 'int', connect: { type: 'int32', optional: false } },
    {
      name: 'price',
      kind: 'string',
      connect: { type: 'bytes', optional: true, name: CONNECT_DECIMAL, version: 1, parameters: { scale: '2' } },
    },
    { name: 'flag', kind: 'boolean', connect: { type: 'boolean', optional: true, default: true } },
    { name: 'tags', kind: 'string', array: true, connect: { type: 'array', optional: true, items: { type: 'string', optional: true } } },
  ],
  ['id'],
  'debezium',
);
const envelope = debeziumSchemas(shape).envelope;

describe('connect-json events', () => {
  it('reads JsonConverter schema JSON back into the Connect schema it was written from', () => {
    expect(connectSchemaFromJson(JSON.parse(connectSchemaJson(envelope)) as Record<string, unknown>)).toEqual(envelope);
  });

  it('tells JsonConverter schemas from Avro schemas', () => {
    expect(isConnectSchemaJson(JSON.parse(connectSchemaJson(envelope)))).toBe(true);
    expect(isConnectSchemaJson({ type: 'string', optional: false })).toBe(true);
    expect(isConnectSchemaJson({ type: 'record', name: 'R', fields: [] })).toBe(false);
    expect(isConnectSchemaJson({ type: 'string' })).toBe(false);
    expect(isConnectSchemaJson('string')).toBe(false);
  });

  it('turns a Debezium event document into an Avro datum that reads back', () => {
    const after = { id: 7, price: twosComplementBytes(-1999n), flag: false, tags: ['a', null] };
    const source = { version: 'v', connector: 'postgresql', name: 'p', ts_ms: 1n, db: 'd', schema: 'public', table: 't' };
    const value = { before: null, after, source, op: 'c', ts_ms: 1n, ts_us: 1n, ts_ns: 1_765_000_000_000_000_000n, transaction: null };
    const event = parseConnectJsonEvent(Buffer.from(connectJsonDocument(envelope, value as never)));
    expect(event).toBeDefined();
    const writer = connectJsonWriter(event!.schemaText);
    expect(writer.schemaName).toBe('p.public.t.Envelope');
    const read = createAvroDatumReader(writer.avroSchema, writer.avroSchema).read(writer.encode(event!.payload)) as Record<string, unknown>;
    expect(read.ts_ns).toBe(1_765_000_000_000_000_000n);
    expect(read.after).toEqual({ id: 7, price: twosComplementBytes(-1999n), flag: false, tags: ['a', null] });
    // source is required in the envelope: a null there does not fit the schema, and the error says where.
    expect(() => writer.encode({ ...(event!.payload as object), source: null })).toThrow(/payload\.source: null in a required struct/);
  });

  it('converts payload values as AvroData writes them (bytes, longs past 2^53, NaN, maps with other keys)', () => {
    const schema: ConnectSchema = {
      type: 'struct',
      optional: false,
      name: 'x.R',
      fields: [
        { name: 'b', schema: { type: 'bytes', optional: false } },
        { name: 'big', schema: { type: 'int64', optional: false } },
        { name: 'f', schema: { type: 'float64', optional: false } },
        {
          name: 'm',
          schema: { type: 'map', optional: true, keys: { type: 'int32', optional: false }, values: { type: 'string', optional: true } },
        },
      ],
    };
    const avro = connectJsonWriter(connectSchemaJson(schema)).avroSchema;
    const datum = avroValueOfConnectJson(schema, { b: 'AQI=', big: 9_007_199_254_740_993n, f: 'NaN', m: [[1, 'one']] });
    expect(datum).toEqual({ b: Buffer.from([1, 2]), big: 9_007_199_254_740_993n, f: Number.NaN, m: [{ key: 1, value: 'one' }] });
    const bytes = avroDatumType(JSON.parse(avro), false).toBuffer(datum);
    expect(createAvroDatumReader(avro, avro).read(bytes)).toMatchObject({ big: 9_007_199_254_740_993n });
    expect(() => avroValueOfConnectJson(schema, { b: 'AQI=', big: 1.5, f: 1, m: null })).toThrow(/payload\.big: 1\.5 is not a int64/);
  });

  it('is no connect-json event: Avro wire format, plain JSON, JSON without a Connect schema', () => {
    expect(parseConnectJsonEvent(Buffer.from([0, 0, 0, 0, 1, 2]))).toBeUndefined();
    expect(parseConnectJsonEvent(Buffer.from('{"id":1}'))).toBeUndefined();
    expect(parseConnectJsonEvent(Buffer.from('{"schema":{"type":"record"},"payload":{}}'))).toBeUndefined();
    expect(parseConnectJsonEvent(Buffer.from('{"schema":'))).toBeUndefined();
  });
});
