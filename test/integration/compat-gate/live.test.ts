import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Admin, Producer } from '@platformatic/kafka';
import { ensureTopics, topicOffsets } from '../../../connectors/kafka-sink/admin.js';
import { createKafka } from '../../../services/core/clients.js';
import { encodeAvroDatum } from '../../../services/compat-gate/avro-datum.js';
import { checkLiveEvents } from '../../../services/compat-gate/live.js';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { KAFKA_BROKERS, STACK, uniqueName } from '../../support/stack.js';

const kafka = createKafka(KAFKA_BROKERS, { clientId: 'parity-compat-test' });
const registry = createCcompatClient(STACK.PARITY_REGISTRY_URL);
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
});
afterAll(async () => {
  await admin?.close();
});

const order = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields });
const v1 = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
]);
// v2 widens the amount to long and adds the currency: old readers (int) cannot read it.
const v2 = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'long' },
  { name: 'currency', type: 'string', default: 'USD' },
]);
const readerV1 = v1;
const readerV2 = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'long' },
  { name: 'currency', type: 'string', default: 'USD' },
]);

function frame(schemaId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
}

test('a producer switches from v1 to v2 mid-stream: the consumer that cannot read v2 is reported with counts', async () => {
  const topic = uniqueName('compat-live');
  const subject = `${topic}-value`;
  await ensureTopics(kafka, [topic], 2);
  // The change is deliberately breaking: the registry must let it in for the stream to carry it.
  await registry.setLevel(subject, 'NONE');
  const id1 = (await registry.register(subject, v1, 'AVRO')).id as number;
  const id2 = (await registry.register(subject, v2, 'AVRO')).id as number;

  const producer = kafka.producer();
  const v1Events = Array.from({ length: 30 }, (_, i) => ({
    key: String(i),
    value: frame(id1, encodeAvroDatum(v1, { id: i, total_amount: 100 + i })),
  }));
  const v2Events = Array.from({ length: 20 }, (_, i) => ({
    key: String(100 + i),
    value: frame(id2, encodeAvroDatum(v2, { id: 100 + i, total_amount: 5_000_000_000 + i, currency: 'EUR' })),
  }));
  await producer.send({ messages: v1Events.map((m) => ({ topic, ...m })) });
  await producer.send({ messages: v2Events.map((m) => ({ topic, ...m })) });
  // Noise a real topic can carry: an id nobody registered, a plain JSON value and a tombstone.
  await producer.send({
    messages: [
      { topic, key: 'x', value: frame(2_000_000_000, Buffer.from([2, 4])) },
      { topic, key: 'y', value: Buffer.from('{"id":1}') },
      { topic, key: 'z' },
    ],
  });
  await producer.close();

  const report = await checkLiveEvents({
    kafka,
    registry,
    topic,
    consumers: [
      { name: 'billing', readerSchema: readerV1 },
      { name: 'analytics', readerSchema: readerV2 },
    ],
    sample: { perPartition: 1000, timeoutMs: 60_000 },
  });

  expect(report.complete).toBe(true);
  expect(report.sampled).toBe(53);
  expect(report.tombstones).toBe(1);
  expect(report.byVersion).toEqual([
    { schemaId: id1, version: 1, events: 30 },
    { schemaId: id2, version: 2, events: 20 },
  ]);
  expect(report.unknownIds).toEqual([{ schemaId: 2_000_000_000, events: 1 }]);
  expect(report.notWireFormat).toBe(1);

  const billing = report.consumers.find((c) => c.consumer === 'billing');
  expect(billing).toMatchObject({ readable: 30, failed: 20 });
  expect(billing?.byVersion).toEqual([
    { schemaId: id1, version: 1, events: 30, readable: 30, failed: 0 },
    expect.objectContaining({
      schemaId: id2,
      version: 2,
      events: 20,
      readable: 0,
      failed: 20,
      firstError: expect.stringContaining('Found long, expecting int'),
    }),
  ]);
  expect(report.consumers.find((c) => c.consumer === 'analytics')).toMatchObject({ readable: 50, failed: 0 });

  expect(report.findings.map((f) => `${f.kind}${f.consumer ? `:${f.consumer}` : ''}`).sort()).toEqual([
    'consumer-cannot-read:billing',
    'not-wire-format',
    'unknown-schema-id',
  ]);
  expect(report.findings.find((f) => f.kind === 'consumer-cannot-read')?.message).toContain(
    'cannot read 20 of 20 sampled event(s) written with version 2',
  );
});

test('an empty topic samples nothing and reports nothing', async () => {
  const topic = uniqueName('compat-live-empty');
  await ensureTopics(kafka, [topic], 1);
  const report = await checkLiveEvents({ kafka, registry, topic, consumers: [{ name: 'billing', readerSchema: readerV1 }] });
  expect(report).toMatchObject({ sampled: 0, complete: true, findings: [] });
});

test('a transactional topic (ending in a commit marker) is sampled to its end, not until the timeout', async () => {
  const topic = uniqueName('compat-live-tx');
  const subject = `${topic}-value`;
  await ensureTopics(kafka, [topic], 1);
  await registry.setLevel(subject, 'BACKWARD');
  const id = (await registry.register(subject, v1, 'AVRO')).id as number;
  const producer = new Producer({
    clientId: 'parity-compat-test-tx',
    bootstrapBrokers: KAFKA_BROKERS,
    transactionalId: uniqueName('tx'),
    idempotent: true,
  });
  const tx = await producer.beginTransaction();
  await tx.send({
    messages: Array.from({ length: 5 }, (_, i) => ({
      topic,
      partition: 0,
      value: frame(id, encodeAvroDatum(v1, { id: i, total_amount: i })),
    })),
  });
  await tx.commit();
  await producer.close();
  // The broker writes the commit marker after answering the commit; until then the records are not
  // yet committed for readers (the last stable offset is behind), so wait for the marker to land.
  for (let i = 0; i < 100; i++) {
    const [p0] = await topicOffsets(kafka, topic);
    if ((p0?.high ?? 0n) >= 6n) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const started = Date.now();
  const report = await checkLiveEvents({
    kafka,
    registry,
    topic,
    consumers: [{ name: 'billing', readerSchema: readerV1 }],
    sample: { timeoutMs: 20_000 },
  });
  expect(report).toMatchObject({ complete: true, sampled: 5, findings: [] });
  expect(Date.now() - started).toBeLessThan(15_000);
});
