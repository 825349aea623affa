/**
 * The Debezium encoding read back (connectors/kafka-sink/debezium-serde.ts): Connect values as Avro or
 * JsonConverter deliver them -> the exact values parity's consumers compare; and the pieces of the
 * producer side that are pure (field-name adjustment, JsonConverter documents, key-only fallbacks,
 * snapshot markers).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../../services/core/spec.js';
import { CONNECT_DECIMAL, type ConnectSchema, twosComplementBytes } from '../../../services/core/connect-schema.js';
import { tableShape } from '../../../services/core/table-shape.js';
import {
  ConnectJsonWriter,
  adjustFieldName,
  avroValue,
  dateText,
  debeziumSchemas,
  durationText,
  envelopeNullDefaults,
  exactValue,
  fieldTypeOfAvro,
  parseConnectJson,
  timestampText,
  zonedTimestampText,
} from '../../../connectors/kafka-sink/debezium-serde.js';
import { fallbackValue } from '../../../connectors/postgres-source/relations.js';
import { snapshotMarkers } from '../../../services/cdc/initial-snapshot.js';
import { avroType } from '../../../connectors/kafka-sink/serde.js';
import { connectValueJson } from '../../../connectors/kafka-sink/connect-json.js';
import { avroSchemaFromConnect } from '../../../connectors/kafka-sink/connect-avro.js';

describe('Connect values back to exact values', () => {
  it('decimals come back as their exact text, whatever their scale', () => {
    const decimal = { type: 'bytes' as const, name: CONNECT_DECIMAL, parameters: { scale: '2' } };
    expect(exactValue(decimal, twosComplementBytes(-39984162n))).toBe('-399841.62');
    // JsonConverter writes the bytes as base64.
    expect(exactValue(decimal, twosComplementBytes(110n).toString('base64'))).toBe('1.10');
    const variable = { type: 'struct' as const, name: 'io.debezium.data.VariableScaleDecimal' };
    expect(exactValue(variable, { scale: 20, value: twosComplementBytes(314159265358979323846n) })).toBe('3.14159265358979323846');
  });

  it('temporal types come back as PostgreSQL prints them (ISO DateStyle, UTC)', () => {
    expect(exactValue({ type: 'int32', name: 'io.debezium.time.Date' }, 19782)).toBe('2024-02-29');
    expect(exactValue({ type: 'int64', name: 'io.debezium.time.MicroTime' }, '49556123456')).toBe('13:45:56.123456');
    expect(exactValue({ type: 'int64', name: 'io.debezium.time.MicroTime' }, 86_400_000_000n)).toBe('24:00:00');
    expect(exactValue({ type: 'int64', name: 'io.debezium.time.MicroTimestamp' }, 1709214356123456n)).toBe('2024-02-29 13:45:56.123456');
    expect(exactValue({ type: 'int64', name: 'io.debezium.time.Timestamp' }, 1709214356123n)).toBe('2024-02-29 13:45:56.123');
    expect(exactValue({ type: 'string', name: 'io.debezium.time.ZonedTimestamp' }, '2024-02-29T11:45:56.123450Z')).toBe(
      '2024-02-29 11:45:56.12345+00',
    );
    expect(exactValue({ type: 'string', name: 'io.debezium.time.ZonedTime' }, '11:45:56Z')).toBe('11:45:56+00');
    expect(exactValue({ type: 'int64', name: 'io.debezium.time.MicroTimestamp' }, 9_223_372_036_825_200_000n)).toBe('infinity');
    expect(exactValue({ type: 'int32', name: 'io.debezium.time.Date' }, -2_147_472_692)).toBe('infinity');
  });

  it('dates and timestamps before year 1 carry BC', () => {
    expect(dateText(-719528)).toBe('0001-01-01 BC');
    expect(dateText(-719162)).toBe('0001-01-01');
    expect(timestampText(-719528n * 86_400_000_000n)).toBe('0001-01-01 00:00:00 BC');
    expect(zonedTimestampText('0000-01-01T00:00:00Z')).toBe('0001-01-01 00:00:00+00 BC');
  });

  it('a MicroDuration comes back as an interval of the same length (months and days folded in)', () => {
    expect(durationText(-86_400_000_000n)).toBe('-24:00:00');
    expect(durationText(3_723_500_000n)).toBe('01:02:03.5');
  });

  it('plain types: int64 as exact text, float32 as its shortest value, bytes as base64, arrays element by element', () => {
    expect(exactValue({ type: 'int64' }, 9007199254740993n)).toBe('9007199254740993');
    expect(exactValue({ type: 'float32' }, Math.fround(1.1))).toBe(1.1);
    expect(exactValue({ type: 'float32' }, 'NaN')).toBeNaN();
    expect(exactValue({ type: 'bytes' }, Buffer.from([0xde, 0xad]))).toBe('3q0=');
    expect(exactValue({ type: 'array', items: { type: 'int64' } }, [1n, null])).toEqual(['1', null]);
    expect(exactValue({ type: 'bytes', name: 'io.debezium.data.Bits', parameters: { length: '3' } }, Buffer.from([5]))).toBe('101');
    expect(exactValue({ type: 'string' }, null)).toBeNull();
  });

  it('reads semantic names from Avro attributes, including primitives written as objects', () => {
    const type = fieldTypeOfAvro([
      'null',
      {
        type: 'record',
        name: 'Value',
        fields: [
          { name: 'ts', type: ['null', { type: 'long', 'connect.version': 1, 'connect.name': 'io.debezium.time.MicroTimestamp' }] },
          { name: 's', type: { type: 'int', 'connect.type': 'int16' } },
        ],
      },
    ]);
    expect(type.fields).toEqual([
      { name: 'ts', type: { type: 'int64', name: 'io.debezium.time.MicroTimestamp' } },
      { name: 's', type: { type: 'int16' } },
    ]);
  });

  it('parses JsonConverter documents keeping integers beyond 2^53 exact', () => {
    expect(parseConnectJson('{"a":9007199254740993,"b":1,"c":1.5}')).toEqual({ a: 9007199254740993n, b: 1, c: 1.5 });
  });
});

describe('the producer side', () => {
  it('adjusts field names as Debezium does for Avro', () => {
    expect(adjustFieldName('order-id', 'none')).toBe('order-id');
    expect(adjustFieldName('order-id', 'avro')).toBe('order_id');
    expect(adjustFieldName('1st', 'avro')).toBe('_st');
    expect(adjustFieldName('a-b', 'avro_unicode')).toBe('a_u002db');
  });

  it('writes the JsonConverter document with the schema made once', () => {
    const shape = tableShape(
      'p',
      'public',
      't',
      [{ name: 'id', kind: 'int', connect: { type: 'int32', optional: false } }],
      ['id'],
      'debezium',
    );
    const schemas = debeziumSchemas(shape);
    const writer = new ConnectJsonWriter(schemas.key!);
    expect(writer.write({ id: 7 }).toString()).toBe(
      '{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"p.public.t.Key"},"payload":{"id":7}}',
    );
    expect(schemas.envelope.name).toBe('p.public.t.Envelope');
  });

  it('hands avsc int64 values as exact text and maps as objects', () => {
    const schema: ConnectSchema = {
      type: 'struct',
      optional: false,
      fields: [
        { name: 'big', schema: { type: 'int64', optional: true } },
        {
          name: 'h',
          schema: { type: 'map', optional: true, keys: { type: 'string', optional: false }, values: { type: 'string', optional: true } },
        },
      ],
    };
    expect(avroValue(schema, { big: 9223372036854775807n, h: new Map([['a', '1']]) })).toEqual({
      big: '9223372036854775807',
      h: { a: '1' },
    });
  });

  it('writes a NULL column that has a default as the default in Avro, as AvroData (Struct.get) and JsonConverter do', () => {
    const shape = tableShape(
      'p',
      'public',
      't',
      [
        { name: 'id', kind: 'int', connect: { type: 'int32', optional: false } },
        { name: 'flag', kind: 'boolean', connect: { type: 'boolean', optional: true, default: true } },
        { name: 'txt', kind: 'string', connect: { type: 'string', optional: true, default: 'new' } },
        { name: 'note', kind: 'string', connect: { type: 'string', optional: true } },
      ],
      ['id'],
      'debezium',
    );
    const schemas = debeziumSchemas(shape);
    const fill = envelopeNullDefaults(schemas.row);
    const envelope = { op: 'u', before: { id: 1, flag: null, txt: 'a', note: null }, after: { id: 1, flag: false, note: null } };
    const filled = fill(envelope);
    // Only optional columns with a non-null default; a column without one keeps its null; false stays false.
    expect(filled.before).toEqual({ id: 1, flag: true, txt: 'a', note: null });
    expect(filled.after).toEqual({ id: 1, flag: false, txt: 'new', note: null });
    expect(envelope.before.flag).toBeNull();
    // Nothing to replace: the same object, no copy on the hot path.
    const clean = { op: 'c', before: null, after: { id: 2, flag: false, txt: 'b', note: null } };
    expect(fill(clean)).toBe(clean);
    // The Avro bytes read back as the default, the rendering JsonConverter gives the same payload.
    const rowSchema = { ...schemas.row, optional: false };
    const type = avroType(avroSchemaFromConnect(rowSchema));
    expect((type.fromBuffer(type.toBuffer(filled.before)) as Record<string, unknown>).flag).toBe(true);
    expect(connectValueJson(rowSchema, envelope.before)).toBe(connectValueJson(rowSchema, filled.before));
  });

  it('a required column missing from a key-only old tuple holds its default, else its type zero', () => {
    expect(fallbackValue({ type: 'int16', optional: false, default: 7 })).toBe(7);
    expect(fallbackValue({ type: 'int64', optional: false })).toBe(0n);
    expect(fallbackValue({ type: 'string', optional: false })).toBe('');
    expect(fallbackValue({ type: 'bytes', optional: false, name: CONNECT_DECIMAL })).toEqual(Buffer.from([0]));
  });

  it("marks the initial snapshot's rows as Debezium does", () => {
    expect(snapshotMarkers(3, { first: true, firstInTable: true, lastInTable: true, lastTable: true })).toEqual(['first', 'true', 'last']);
    expect(snapshotMarkers(2, { first: false, firstInTable: true, lastInTable: true, lastTable: false })).toEqual([
      'first_in_data_collection',
      'last_in_data_collection',
    ]);
    expect(snapshotMarkers(2, { first: false, firstInTable: false, lastInTable: false, lastTable: true })).toEqual(['true', 'true']);
  });
});

describe('the spec', () => {
  // The worked example sets no `cdc.encoding`: the default applies.
  const example = readFileSync(fileURLToPath(new URL('../../../schemas/examples/orders-multicurrency.yaml', import.meta.url)), 'utf8');
  const env = { ...process.env, PARITY_SOURCE_URL: 'postgresql://u@h/db', PARITY_TARGET_URL: 'postgresql://u@h/db2' };
  const withCdc = (lines: string) => example.replace('  format: avro\n', `  format: avro\n${lines}`);

  it("defaults to the debezium encoding with Debezium's option defaults", () => {
    const { spec } = parseSpec(example, 'spec.yaml', env);
    expect(spec.cdc.encoding).toBe('debezium');
    expect(spec.cdc.debezium['decimal.handling.mode']).toBe('precise');
    expect(spec.cdc.debezium['tombstones.on.delete']).toBe(true);
    expect(spec.cdc.debezium['skipped.operations']).toBe('t');
    expect(spec.cdc.debezium['extended.headers.enabled']).toBe(true);
    expect(
      parseSpec(withCdc('  debezium:\n    extended.headers.enabled: false\n'), 'spec.yaml', env).spec.cdc.debezium[
        'extended.headers.enabled'
      ],
    ).toBe(false);
  });

  it('refuses JSON Schema or Protobuf with the debezium encoding, naming cdc.format', () => {
    const text = example.replace('  format: avro\n', '  format: protobuf\n');
    expect(() => parseSpec(text, 'spec.yaml', env, { offline: true })).toThrow(/cdc\.format.*not offered with cdc\.encoding: debezium/s);
    expect(
      parseSpec(withCdc('  encoding: exact-text\n').replace('format: avro', 'format: protobuf'), 'spec.yaml', env, { offline: true }).spec
        .cdc.format,
    ).toBe('protobuf');
  });

  it("refuses an unknown Debezium option value with the field's path", () => {
    expect(() => parseSpec(withCdc('  debezium:\n    decimal.handling.mode: exact\n'), 'spec.yaml', env, { offline: true })).toThrow(
      /cdc\.debezium\.decimal\.handling\.mode/,
    );
  });
});
