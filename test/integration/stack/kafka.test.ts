/**
 * The stack's Kafka (4.4.0 by default, or PARITY_KAFKA_VERSION) through parity's Kafka client,
 * @platformatic/kafka: topics, an idempotent producer with a consumer group, and transactions seen by
 * a read_committed consumer. With three brokers (`stack up --brokers 3`) topics get replication
 * factor 3 by default.
 */
import {
  Admin,
  Consumer,
  FetchIsolationLevels,
  MessagesStreamModes,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { afterAll, expect, test } from 'vitest';
import { KAFKA_BROKERS, uniqueName } from '../../support/stack.js';

const common = { clientId: 'parity-test', bootstrapBrokers: KAFKA_BROKERS };
const admin = new Admin(common);
afterAll(async () => {
  await admin.close();
});

async function consumeAll(
  topic: string,
  expected: number,
  isolationLevel: number = FetchIsolationLevels.READ_COMMITTED,
): Promise<string[]> {
  const consumer = new Consumer({
    ...common,
    groupId: uniqueName('group'),
    deserializers: stringDeserializers,
    isolationLevel,
    maxWaitTime: 200,
  });
  const values: string[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: true });
    const deadline = Date.now() + 15_000;
    const reading = (async () => {
      for await (const message of stream) {
        values.push(message.value ?? '');
        if (values.length >= expected) break;
      }
    })();
    while (values.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await stream.close();
    await reading.catch(() => undefined);
    return values;
  } finally {
    await consumer.close(true);
  }
}

test('topics created by the admin client exist with their partition count and the cluster replication factor', async () => {
  const topic = uniqueName('stack-topic');
  await admin.createTopics({ topics: [topic], partitions: 3 });
  const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
  const partitions = metadata.topics.get(topic)!.partitions;
  expect(partitions).toHaveLength(3);
  // default.replication.factor is the broker count: 1, or 3 for `stack up --brokers 3`.
  for (const p of partitions) expect(p.replicas).toHaveLength(KAFKA_BROKERS.length);
  await admin.deleteTopics({ topics: [topic] });
});

test('an idempotent producer and a consumer group round trip', async () => {
  const topic = uniqueName('stack-roundtrip');
  await admin.createTopics({ topics: [topic], partitions: 1 });
  const producer = new Producer({ ...common, idempotent: true, serializers: stringSerializers });
  const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
  try {
    await producer.send({ messages: sent.map((value) => ({ topic, key: 'k', value })) });
  } finally {
    await producer.close();
  }
  expect(await consumeAll(topic, sent.length)).toEqual(sent);
});

test('a committed transaction is visible and an aborted one is not, to a read_committed consumer', async () => {
  const topic = uniqueName('stack-tx');
  await admin.createTopics({ topics: [topic], partitions: 1 });
  const producer = new Producer({ ...common, idempotent: true, transactionalId: uniqueName('tx'), serializers: stringSerializers });
  try {
    const committed = await producer.beginTransaction();
    await committed.send({
      messages: [
        { topic, value: 'committed-1' },
        { topic, value: 'committed-2' },
      ],
    });
    await committed.commit();
    const aborted = await producer.beginTransaction();
    await aborted.send({ messages: [{ topic, value: 'aborted' }] });
    await aborted.abort();
    const after = await producer.beginTransaction();
    await after.send({ messages: [{ topic, value: 'committed-3' }] });
    await after.commit();
  } finally {
    await producer.close();
  }
  expect(await consumeAll(topic, 3, FetchIsolationLevels.READ_COMMITTED)).toEqual(['committed-1', 'committed-2', 'committed-3']);
  // The aborted record is physically in the log: an uncommitted reader sees it.
  expect(await consumeAll(topic, 4, FetchIsolationLevels.READ_UNCOMMITTED)).toContain('aborted');
});
