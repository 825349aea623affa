import { afterAll, beforeAll, expect, test } from 'vitest';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { KAFKA_BROKERS, uniqueName } from '../../support/stack.js';

const kafka = new Kafka({ clientId: 'parity-test', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
let admin: Admin;

beforeAll(async () => {
  admin = kafka.admin();
  await admin.connect();
});
afterAll(async () => {
  await admin?.disconnect();
});

async function consumeAll(topic: string, expected: number, isolation: 'read_committed' | 'read_uncommitted' = 'read_committed'): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('group'), readUncommitted: isolation === 'read_uncommitted' });
  const values: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString() ?? '');
        if (values.length >= expected) resolve();
      },
    });
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, 15_000))]);
  await consumer.disconnect();
  return values;
}

test('topics created by the admin client exist with their partition count', async () => {
  const topic = uniqueName('stack-topic');
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  expect(metadata.topics[0]?.partitions).toHaveLength(3);
});

test('an idempotent producer and a consumer group round trip', async () => {
  const topic = uniqueName('stack-roundtrip');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  await producer.connect();
  const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
  await producer.send({ topic, acks: -1, messages: sent.map((value) => ({ key: 'k', value })) });
  await producer.disconnect();
  const received = await consumeAll(topic, sent.length);
  expect(received).toEqual(sent);
});

test('a committed transaction is visible and an aborted one is not, to a read_committed consumer', async () => {
  const topic = uniqueName('stack-tx');
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer({ transactionalId: uniqueName('tx'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const committed = await producer.transaction();
  await committed.send({ topic, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
  await committed.commit();
  const aborted = await producer.transaction();
  await aborted.send({ topic, messages: [{ value: 'aborted' }] });
  await aborted.abort();
  const after = await producer.transaction();
  await after.send({ topic, messages: [{ value: 'committed-3' }] });
  await after.commit();
  await producer.disconnect();

  const readCommitted = await consumeAll(topic, 3, 'read_committed');
  expect(readCommitted).toEqual(['committed-1', 'committed-2', 'committed-3']);
  // The aborted record is physically in the log: an uncommitted reader sees it.
  const readUncommitted = await consumeAll(topic, 4, 'read_uncommitted');
  expect(readUncommitted).toContain('aborted');
});
