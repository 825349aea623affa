import { describe, expect, test } from 'vitest';
import { UNCHANGED_TOAST, type ChangeEnvelope } from '../../../services/core/change-event.js';
import { protobufChangeReader, protobufTableWriter } from '../../../connectors/kafka-sink/protobuf-encode.js';
import { parseProtobufSchema } from '../../../services/compat-gate/protobuf-schema.js';
import { unframeProtobuf } from '../../../connectors/kafka-sink/protobuf-wire.js';
import { tableShape } from '../../../services/core/table-shape.js';

const shape = tableShape(
  'shop',
  'public',
  'orders',
  [
    { name: 'id', kind: 'int', pgType: 'int4' },
    { name: 'big id', kind: 'int8', pgType: 'int8' },
    { name: 'f', kind: 'float', pgType: 'float8' },
    { name: 'ok', kind: 'boolean' },
    { name: 'note', kind: 'string', pgType: 'text' },
    { name: 'raw', kind: 'bytea' },
    { name: 'tags', kind: 'string', array: true, pgType: '_text' },
    { name: 'nums', kind: 'int8', array: true },
  ],
  ['id', 'big id'],
);

const source: ChangeEnvelope['source'] = {
  version: '3.0.0',
  connector: 'postgresql',
  name: 'shop',
  db: 'app',
  schema: 'public',
  table: 'orders',
  lsn: 123456789,
  txId: 777,
  ts_ms: 1_700_000_000_123,
  ts_us: 1_700_000_000_123_456,
  snapshot: 'false',
  sequence: '0/75BCD15:2',
};

describe('Protobuf change events', () => {
  test('the derived schemas are valid .proto (Confluent-parseable shapes): envelope first, columns by position, json_name for adjusted names', () => {
    const writer = protobufTableWriter(shape);
    const parsed = parseProtobufSchema(writer.valueSchema);
    expect(parsed.file.package).toBe('shop.public.orders');
    expect(parsed.file.types.map((t) => t.name)).toEqual(['Envelope', 'Value', 'Source', 'StringList', 'Int64List']);
    expect(writer.valueSchema).toContain('optional int64 big_u0020id = 2 [json_name = "big id"]; // pg-type: int8');
    expect(writer.keySchema).toContain(
      'message Key {\n  int32 id = 1; // pg-type: int4\n  int64 big_u0020id = 2 [json_name = "big id"]; // pg-type: int8\n}',
    );
  });

  test('values round-trip exactly: int8 as exact strings, NaN and -0, NULLs, null array elements, the TOAST placeholder', () => {
    const writer = protobufTableWriter(shape);
    const after = { id: 0, 'big id': '9223372036854775807', f: -0, ok: false, note: '', raw: 'AP8Q', tags: ['a', null, ''], nums: [] };
    const before = {
      id: 1,
      'big id': '-9223372036854775808',
      f: NaN,
      ok: null,
      note: UNCHANGED_TOAST,
      raw: null,
      tags: UNCHANGED_TOAST,
      nums: null,
    };
    const envelope: ChangeEnvelope = { before, after, op: 'u', ts_ms: 1_700_000_000_999, source };
    const framed = writer.encodeValue(42, envelope);
    const { schemaId, indexes, message } = unframeProtobuf(framed);
    expect([schemaId, indexes, framed[5]]).toEqual([42, [0], 0]);
    const reader = protobufChangeReader(writer.valueSchema);
    const back = reader.readEnvelope(framed.subarray(5));
    expect(back.after).toEqual(after);
    expect(Object.is(back.after?.f, -0)).toBe(true);
    expect(back.before).toEqual(before);
    expect(back.op).toBe('u');
    expect(back.ts_ms).toBe(1_700_000_000_999);
    expect(back.source).toEqual(source);
    expect(message.length).toBeGreaterThan(0);

    const del = reader.readEnvelope(
      writer.encodeValue(42, { before: after, after: null, op: 'd', ts_ms: 1, source: { ...source, txId: null } }).subarray(5),
    );
    expect(del.after).toBeNull();
    expect(del.source.txId).toBeNull();
  });

  test('keys: zero values survive (no presence on the wire, defaults are the values)', () => {
    const writer = protobufTableWriter(shape);
    const reader = protobufChangeReader(writer.keySchema);
    expect(reader.readKey(writer.encodeKey(7, { id: 0, 'big id': '0' }).subarray(5))).toEqual({ id: 0, 'big id': '0' });
    expect(reader.readKey(writer.encodeKey(7, { id: -5, 'big id': '12345678901234567' }).subarray(5))).toEqual({
      id: -5,
      'big id': '12345678901234567',
    });
  });

  test('a value that does not fit its column is PARITY_SERIALIZE, naming the table', () => {
    const writer = protobufTableWriter(shape);
    expect(() => writer.encodeValue(1, { before: null, after: { id: 'x' }, op: 'c', ts_ms: 0, source })).toThrow(
      /cannot serialize a value of public\.orders with its Protobuf schema \(invalid: id\)/,
    );
  });
});
