import protobuf from 'protobufjs';
import { describe, expect, test } from 'vitest';
import { protobufCodec } from '../../../connectors/kafka-sink/protobuf-runtime.js';
import {
  decodeMessageIndexes,
  encodeMessageIndexes,
  frameProtobuf,
  unframeProtobuf,
} from '../../../connectors/kafka-sink/protobuf-wire.js';
import { analyzeEvents, type WriterSchema } from '../../../services/compat-gate/live.js';

const v1 =
  'syntax = "proto3";\npackage shop;\nimport "google/protobuf/timestamp.proto";\nmessage Order { string id = 1; int64 total = 2; google.protobuf.Timestamp at = 3; }\nmessage Refund { string order_id = 1; }';
// v2: a new field (fine) and total as a string (a different wire group: v1 readers cannot read it).
const v2 =
  'syntax = "proto3";\npackage shop;\nimport "google/protobuf/timestamp.proto";\nmessage Order { string id = 1; string total = 2; google.protobuf.Timestamp at = 3; string note = 4; }\nmessage Refund { string order_id = 1; }';
const v2ok =
  'syntax = "proto3";\npackage shop;\nimport "google/protobuf/timestamp.proto";\nmessage Order { string id = 1; int64 total = 2; google.protobuf.Timestamp at = 3; string note = 4; }\nmessage Refund { string order_id = 1; }';

function encode(schema: string, indexes: number[], value: Record<string, unknown>): Uint8Array {
  const type = protobufCodec(schema).typeAt(indexes);
  return type.encode(type.fromObject(value)).finish();
}

describe('Confluent Protobuf framing', () => {
  test('message indexes: [0] is one zero byte, others a zig-zag count and zig-zag indexes', () => {
    expect([...encodeMessageIndexes([0])]).toEqual([0]);
    expect([...encodeMessageIndexes([1])]).toEqual([2, 2]);
    expect([...encodeMessageIndexes([1, 0])]).toEqual([4, 2, 0]);
    expect([...encodeMessageIndexes([70])]).toEqual([2, 140, 1]);
    for (const path of [[0], [1], [1, 0], [3, 2, 70]]) {
      const { indexes, message } = decodeMessageIndexes(Buffer.concat([encodeMessageIndexes(path), Buffer.from([9])]));
      expect(indexes).toEqual(path);
      expect([...message]).toEqual([9]);
    }
  });

  test('frame and unframe round-trip; the second message type keeps its index (the npm client drops it)', () => {
    const payload = encode(v1, [1], { order_id: 'o-1' });
    const framed = frameProtobuf(300, [1], payload);
    expect([...framed.subarray(0, 7)]).toEqual([0, 0, 0, 1, 44, 2, 2]);
    const { schemaId, indexes, message } = unframeProtobuf(framed);
    expect([schemaId, indexes]).toEqual([300, [1]]);
    const codec = protobufCodec(v1);
    expect(codec.localNameAt(indexes)).toBe('Refund');
    expect(codec.typeAt(indexes).toObject(codec.typeAt(indexes).decode(message))).toEqual({ order_id: 'o-1' });
    expect(() => unframeProtobuf(Buffer.from('{"a":1}'))).toThrow(/not a Confluent wire-format/);
  });

  test('nested message paths resolve in declaration order, enums not counted', () => {
    const codec = protobufCodec(
      'syntax = "proto3";\nenum E { A = 0; }\nmessage A { message X {} enum F { B = 0; } message Y { int32 y = 1; } }\nmessage B {}',
    );
    expect(codec.localNameAt([0, 1])).toBe('A.Y');
    expect(codec.indexesOf('A.Y')).toEqual([0, 1]);
    expect(codec.typeAt([1]).fullName).toBe('.B');
    expect(() => codec.typeAt([5])).toThrow(/point at no message/);
  });
});

describe('live Protobuf events', () => {
  const writers: Record<number, WriterSchema> = {
    31: { schema: v1, schemaType: 'PROTOBUF', version: 1 },
    32: { schema: v2, schemaType: 'PROTOBUF', version: 2 },
    33: { schema: v2ok, schemaType: 'PROTOBUF', version: 3 },
  };
  const lookup = async (id: number) => writers[id];
  const at = { seconds: 1_700_000_000, nanos: 5 };

  test('a v1 consumer reads v1 and compatible events, and is flagged on the v2 events it cannot read', async () => {
    const values = [
      frameProtobuf(31, [0], encode(v1, [0], { id: 'a', total: 100, at })),
      frameProtobuf(31, [1], encode(v1, [1], { order_id: 'a' })),
      frameProtobuf(32, [0], encode(v2, [0], { id: 'b', total: '12.50', at, note: 'x' })),
      frameProtobuf(33, [0], encode(v2ok, [0], { id: 'c', total: 5, note: 'y' })),
      frameProtobuf(31, [0], Buffer.from([0x0a, 0x05, 0x61])), // truncated string: not even v1 decodes it
    ];
    const report = await analyzeEvents('shop.orders', values, lookup, [{ name: 'billing-v1', readerSchema: v1 }]);
    expect(report.notWireFormat).toBe(0);
    expect(report.undecodable).toEqual([expect.objectContaining({ schemaId: 31, events: 1 })]);
    const rows = report.consumers[0]?.byVersion.map((r) => [r.version, r.readable, r.failed]);
    expect(rows).toEqual([
      [1, 2, 0],
      [2, 0, 1],
      [3, 1, 0],
    ]);
    expect(report.consumers[0]?.byVersion[1]?.firstError).toMatch(/^FIELD_SCALAR_KIND_CHANGED at #\/Order\/2/);
    expect(report.findings.filter((f) => f.kind === 'consumer-cannot-read').map((f) => f.consumer)).toEqual(['billing-v1']);
  });

  test('a reader without the writer message type cannot read those events', async () => {
    const onlyOrder = 'syntax = "proto3";\npackage shop;\nmessage Order { string id = 1; }';
    const report = await analyzeEvents('shop.orders', [frameProtobuf(31, [1], encode(v1, [1], { order_id: 'a' }))], lookup, [
      { name: 'narrow', readerSchema: onlyOrder },
    ]);
    // Confluent's rules already reject a reader that lost a message type (MESSAGE_REMOVED).
    expect(report.consumers[0]?.byVersion[0]?.firstError).toMatch(/MESSAGE_REMOVED|no message Refund/);
  });

  test('protobufjs is the codec (sanity: the decoder sees the same bytes the encoder wrote)', () => {
    const type = protobufCodec(v1).typeAt([0]);
    expect(type).toBeInstanceOf(protobuf.Type);
  });
});
