import { Reader, readRecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { Writer, crc32c, crc32cTables, produceRequest, readProduceResponse } from '../../../connectors/kafka-sink/wire.js';

// @platformatic/kafka's record-batch reader reads what we write: an independent implementation of the
// same format. The request framing around the batches is read here field by field.

describe('Kafka wire encoding', () => {
  // The native CRC (@node-rs/crc32) and the portable table code: the same check values, the same sums.
  for (const [name, crc] of [
    ['crc32c', crc32c],
    ['crc32cTables', crc32cTables],
  ] as const) {
    it(`computes CRC-32C (Castagnoli) check values (${name})`, () => {
      expect(crc(Buffer.from('123456789'))).toBe(0xe3069283);
      expect(crc(Buffer.alloc(32))).toBe(0x8a9136aa);
      expect(crc(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
      const ascending = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
      expect(crc(ascending)).toBe(0x46dd794e);
      // Offsets: a slice of a larger buffer.
      expect(crc(Buffer.concat([Buffer.from('xx'), Buffer.from('123456789'), Buffer.from('y')]), 2, 11)).toBe(0xe3069283);
    });
  }

  it('the native and the table CRC agree on random buffers of every length up to 300 and at offsets', () => {
    for (let n = 0; n <= 300; n++) {
      const buf = Buffer.from(Array.from({ length: n + 7 }, () => Math.floor(Math.random() * 256)));
      expect(crc32c(buf, 3, n + 3)).toBe(crc32cTables(buf, 3, n + 3));
      expect(crc32c(buf)).toBe(crc32cTables(buf));
    }
  });

  it('writes a Produce v7 request whose record batches @platformatic/kafka decodes back', () => {
    const w = new Writer(16); // tiny on purpose: the writer grows
    const headers = (n: number) =>
      [
        [Buffer.from('parity.ordinal'), Buffer.from(String(n))],
        [Buffer.from('empty'), Buffer.alloc(0)],
      ] as const;
    const frame = produceRequest(
      w,
      { correlationId: 42, clientId: 'parity-test' },
      { acks: -1, timeoutMs: 30_000, timestampMs: 1_763_700_000_123, producer: { producerId: 4242n, producerEpoch: 3 } },
      [
        {
          topic: 'a',
          partition: 0,
          baseSequence: 10,
          records: [0, 1, 2].map((i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from('v'.repeat(i * 100)), headers: headers(i) })),
        },
        { topic: 'a', partition: 2, baseSequence: 0, records: [{ key: null, value: null, headers: [] }] },
        {
          topic: 'b',
          partition: 1,
          baseSequence: 2 ** 31 - 1,
          records: [{ key: Buffer.from('ü'), value: Buffer.alloc(300_000, 7), headers: headers(9) }],
        },
      ],
    );
    const d = Reader.from(frame);
    expect(d.readInt32()).toBe(frame.length - 4);
    expect([d.readInt16(), d.readInt16(), d.readInt32(), d.readString(false)]).toEqual([0, 7, 42, 'parity-test']);
    expect(d.readNullableString(false)).toBeNull(); // transactional id
    expect([d.readInt16(), d.readInt32()]).toEqual([-1, 30_000]);
    const topics: { topic: string; partitions: { partition: number; batch: ReturnType<typeof readRecordsBatch> }[] }[] = [];
    const topicCount = d.readInt32();
    for (let t = 0; t < topicCount; t++) {
      const topic = d.readString(false);
      const partitions = [];
      const n = d.readInt32();
      for (let p = 0; p < n; p++) {
        const partition = d.readInt32();
        const bytes = d.readBytes(false);
        expect(bytes.readInt8(16)).toBe(2); // magic
        const batchReader = Reader.from(bytes);
        partitions.push({ partition, batch: readRecordsBatch(batchReader) });
        expect(batchReader.position).toBe(bytes.length);
      }
      topics.push({ topic, partitions });
    }
    expect(d.position).toBe(frame.length);
    expect(topics.map((t) => [t.topic, t.partitions.map((p) => p.partition)])).toEqual([
      ['a', [0, 2]],
      ['b', [1]],
    ]);
    const first = topics[0]!.partitions[0]!.batch;
    expect(first).toMatchObject({
      producerId: 4242n,
      producerEpoch: 3,
      firstSequence: 10,
      lastOffsetDelta: 2,
      firstTimestamp: 1_763_700_000_123n,
    });
    expect(first.attributes & 0x10).toBe(0); // not transactional
    const header = (r: (typeof first.records)[number], name: string) => r.headers.find(([k]) => k?.toString() === name)?.[1]?.toString();
    expect(
      first.records.map((r) => [
        r.key!.toString(),
        r.value!.length,
        r.offsetDelta,
        first.firstTimestamp + r.timestampDelta,
        header(r, 'parity.ordinal'),
      ]),
    ).toEqual([
      ['k0', 0, 0, 1_763_700_000_123n, '0'],
      ['k1', 100, 1, 1_763_700_000_123n, '1'],
      ['k2', 200, 2, 1_763_700_000_123n, '2'],
    ]);
    expect(topics[0]!.partitions[1]!.batch.records[0]).toMatchObject({ key: null, value: null, headers: [] });
    const big = topics[1]!.partitions[0]!.batch;
    expect(big.firstSequence).toBe(2 ** 31 - 1);
    expect(big.records[0]!.key!.toString()).toBe('ü');
    expect(big.records[0]!.value!.equals(Buffer.alloc(300_000, 7))).toBe(true);
  });

  it('writes headers given as a name -> value record (the CDC events) exactly as the same headers given as pairs', () => {
    const named: Record<string, Buffer | string> = {
      'parity.ordinal': '7',
      'parity.position': '00000000016b3748:0000000007',
      'parity.commit_lsn': Buffer.from('0/16B3748'),
      long: 'x'.repeat(65),
      'long.bytes': Buffer.alloc(33, 5),
      unicode: 'ü€😀',
      surrogate: '\ud800',
      empty: '',
      'empty.bytes': Buffer.alloc(0),
    };
    const pairs = Object.entries(named).map(([k, v]) => [Buffer.from(k), v] as const);
    const request = (headers: typeof named | typeof pairs) =>
      produceRequest(
        new Writer(16),
        { correlationId: 1, clientId: 'c' },
        { acks: -1, timeoutMs: 1, timestampMs: 5, producer: { producerId: 1n, producerEpoch: 0 } },
        [{ topic: 't', partition: 0, baseSequence: 0, records: [{ key: Buffer.from('k'), value: Buffer.from('v'), headers }] }],
      );
    const frame = request(named);
    expect(frame.equals(request(pairs))).toBe(true);
    // Read back by @platformatic/kafka: every name and value, text as its UTF-8 bytes.
    const batchAt = 4 + 11 + 2 + 2 + 4 + 4 + 3 + 4 + 4 + 4;
    const batch = readRecordsBatch(Reader.from(frame.subarray(batchAt)));
    const read = batch.records[0]!.headers.map(([k, v]) => [k!.toString(), v ? v.toString('hex') : null]);
    expect(read).toEqual(Object.entries(named).map(([k, v]) => [k, Buffer.from(v as string).toString('hex')]));
  });

  it('checks the CRC the way the broker does (a flipped byte changes it)', () => {
    const w = new Writer();
    const frame = produceRequest(
      w,
      { correlationId: 1, clientId: 'c' },
      { acks: -1, timeoutMs: 1, timestampMs: 0, producer: { producerId: 1n, producerEpoch: 0 } },
      [{ topic: 't', partition: 0, baseSequence: 0, records: [{ key: null, value: Buffer.from('hello'), headers: [] }] }],
    );
    // Batch starts after: size(4) header(2+2+4+2+1) txid(2) acks(2) timeout(4) topics(4) name(2+1) partitions(4) index(4) bytes(4).
    const batchAt = 4 + 11 + 2 + 2 + 4 + 4 + 3 + 4 + 4 + 4;
    const crcAt = batchAt + 8 + 4 + 4 + 1;
    const stored = frame.readUInt32BE(crcAt);
    expect(crc32c(frame, crcAt + 4, frame.length)).toBe(stored);
    frame[frame.length - 2]! ^= 1;
    expect(crc32c(frame, crcAt + 4, frame.length)).not.toBe(stored);
  });

  it('reads a Produce v7 response', () => {
    const w = new Writer();
    w.int32(1);
    w.string('a');
    w.int32(2);
    for (const [p, err, off] of [
      [0, 0, 100n],
      [2, 10, -1n],
    ] as const) {
      w.int32(p);
      w.int16(err);
      w.int64(off);
      w.int64(-1n);
      w.int64(0n);
    }
    w.int32(0); // throttle
    expect(readProduceResponse(w.toBuffer())).toEqual([
      { topic: 'a', partition: 0, errorCode: 0, baseOffset: 100n },
      { topic: 'a', partition: 2, errorCode: 10, baseOffset: -1n },
    ]);
  });
});

describe('record size bound', () => {
  it('counts the headers, which Debezium events carry seven of', async () => {
    const { recordSize } = await import('../../../connectors/kafka-sink/sink.js');
    const bare = { topic: 't', partition: 0, key: Buffer.alloc(10), value: Buffer.alloc(300), headers: {} };
    const headers = { 'parity.position': Buffer.alloc(20), '__debezium.context.runId': '0190a4c2-0000-7000-8000-000000000000' };
    expect(recordSize(bare as never)).toBeGreaterThanOrEqual(310);
    // Each header adds at least its name and value bytes.
    expect(recordSize({ ...bare, headers } as never) - recordSize(bare as never)).toBeGreaterThanOrEqual(
      'parity.position'.length + 20 + '__debezium.context.runId'.length + 36,
    );
  });
});
