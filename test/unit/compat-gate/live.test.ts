import { describe, expect, test } from 'vitest';
import { encodeAvroDatum } from '../../../services/compat-gate/avro-datum.js';
import { analyzeEvents, splitWireFormat, type WriterSchema } from '../../../services/compat-gate/live.js';

const frame = (id: number, payload: Buffer): Buffer =>
  Buffer.concat([Buffer.from([0, (id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255]), payload]);
const rec = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'R', fields });
const status = (symbols: string[]) => ({ type: 'enum', name: 'Status', symbols });

const v1 = rec([{ name: 'status', type: status(['NEW', 'PAID']) }]);
const v2 = rec([{ name: 'status', type: status(['NEW', 'PAID', 'REFUNDED']) }]);
const writers: Record<number, WriterSchema> = {
  11: { schema: v1, schemaType: 'AVRO', version: 1 },
  12: { schema: v2, schemaType: 'AVRO', version: 2 },
  20: { schema: JSON.stringify({ type: 'object', properties: { n: { type: 'integer' } } }), schemaType: 'JSON', version: 1 },
};
const lookup = async (id: number) => writers[id];

describe('live event analysis', () => {
  test('the wire format is magic byte 0 and a 4-byte id', () => {
    expect(splitWireFormat(frame(258, Buffer.from('x')))).toEqual({ schemaId: 258, payload: Buffer.from('x') });
    expect(splitWireFormat(Buffer.from('{"a":1}'))).toBeUndefined();
    expect(splitWireFormat(Buffer.from([0, 1]))).toBeUndefined();
  });

  test('only the events that hit the gap count against a consumer, per writer version', async () => {
    const values = [
      frame(11, encodeAvroDatum(v1, { status: 'NEW' })),
      frame(12, encodeAvroDatum(v2, { status: 'PAID' })),
      frame(12, encodeAvroDatum(v2, { status: 'REFUNDED' })),
      frame(12, Buffer.from([0x7f])), // not a valid v2 datum
      frame(99, Buffer.from([0])),
      null,
    ];
    const report = await analyzeEvents('orders', values, lookup, [{ name: 'old', readerSchema: v1 }]);
    expect(report.byVersion).toEqual([
      { schemaId: 11, version: 1, events: 1 },
      { schemaId: 12, version: 2, events: 3 },
    ]);
    expect(report.undecodable).toEqual([expect.objectContaining({ schemaId: 12, version: 2, events: 1 })]);
    expect(report.unknownIds).toEqual([{ schemaId: 99, events: 1 }]);
    expect(report.tombstones).toBe(1);
    expect(report.consumers[0]?.byVersion).toEqual([
      { schemaId: 11, version: 1, events: 1, readable: 1, failed: 0 },
      { schemaId: 12, version: 2, events: 2, readable: 1, failed: 1, firstError: 'No match for REFUNDED' },
    ]);
    expect(report.findings.map((f) => f.kind).sort()).toEqual(['consumer-cannot-read', 'undecodable', 'unknown-schema-id']);
  });

  test('JSON Schema events are judged per writer version with the local checker', async () => {
    const values = [frame(20, Buffer.from('{"n":1}')), frame(20, Buffer.from('{"n":2}')), frame(20, Buffer.from('{oops'))];
    const narrower = JSON.stringify({ type: 'object', properties: { n: { type: 'integer', maximum: 10 } } });
    const same = writers[20]?.schema as string;
    const report = await analyzeEvents('orders', values, lookup, [
      { name: 'strict', readerSchema: narrower },
      { name: 'same', readerSchema: same },
    ]);
    expect(report.undecodable).toEqual([expect.objectContaining({ schemaId: 20, events: 1 })]);
    expect(report.consumers.map((c) => [c.consumer, c.readable, c.failed])).toEqual([
      ['strict', 0, 2],
      ['same', 2, 0],
    ]);
    expect(report.consumers[0]?.byVersion[0]?.firstError).toBe('MAXIMUM_ADDED at #/properties/n/maximum');
  });

  test('a reader schema that is not JSON is bad input', async () => {
    await expect(analyzeEvents('orders', [], lookup, [{ name: 'x', readerSchema: '{' }])).rejects.toThrow(
      /neither JSON \(Avro, JSON Schema\) nor a \.proto file/,
    );
  });
});
