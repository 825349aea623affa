/**
 * Dark reads with real Redis (routing flags) and real Kafka (the mismatch topic): the old result
 * is returned, each path runs once, and exactly the mismatching keys reach
 * `<cdc.topicPrefix>.parity.mismatches`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ensureTopics } from '../../../connectors/kafka-sink/admin.js';
import { createDarkReader, mismatchTopic, type MismatchMessage } from '../../../services/client/dark-read.js';
import { createFlagsReader } from '../../../services/client/flags.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { createKafka, type KafkaClients, type KafkaProducer } from '../../../services/core/clients.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { KAFKA_BROKERS, STACK, uniqueName } from '../../support/stack.js';
import { prefixTracker } from '../coordinator/redis-keys.js';

let redis: Redis;
let kafka: KafkaClients;
let producer: KafkaProducer;
const prefix = uniqueName('dr');
const prefixes = prefixTracker('dr');
const topic = mismatchTopic(prefix);

beforeAll(async () => {
  redis = new Redis(STACK.PARITY_REDIS_URL);
  // A restart of the shared Redis by another suite shows as retries, not as unhandled events.
  redis.on('error', () => undefined);
  kafka = createKafka(KAFKA_BROKERS, { clientId: 'dark-read-test' });
  await ensureTopics(kafka, [topic], 1);
  producer = kafka.producer();
});

afterAll(async () => {
  await producer?.close();
  const admin = kafka?.admin();
  if (admin) {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.close();
  }
  if (redis) await prefixes.cleanup(redis);
  redis?.disconnect();
});

async function consumeAll(count: number): Promise<MismatchMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('dr-check'), maxWaitMs: 200 });
  const seen: MismatchMessage[] = [];
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.length} of ${count} mismatches arrived`)), 60_000);
    stream.on('data', (message) => {
      seen.push(JSON.parse(String(message.value)) as MismatchMessage);
      if (seen.length >= count) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  try {
    await done;
    // Anything beyond the expected count would be a duplicate publish: give it a moment to show.
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await stream.close();
    await consumer.close(true);
  }
  return seen;
}

describe('dark reads', () => {
  it('returns old, runs each path once, and publishes exactly the mismatches to the mismatch topic', async () => {
    const keyPrefix = prefixes.next();
    const store = createFlagStore({ redis, migration: 'orders-mc', keyPrefix });
    await store.set({
      values: [
        ['read', 'dark'],
        ['read-percent', '100'],
      ],
      actor: 'test',
      reason: 'dark reads for everyone',
    });
    const flags = createFlagsReader({ redis, migration: 'orders-mc', keyPrefix });
    await flags.start();
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const reader = createDarkReader<{ id: number; amount: string }>({
      migration: 'orders-mc',
      route: flags.route,
      producer,
      topic,
      metrics,
    });

    const calls = new Map<string, number>();
    const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
    const results: { id: number; amount: string }[] = [];
    for (let id = 1; id <= 30; id++) {
      results.push(
        await reader.read(id, {
          old: async () => {
            count(`old:${id}`);
            return { id, amount: `${id}.00` };
          },
          new: async () => {
            count(`new:${id}`);
            if (id % 10 === 0) throw new Error('new store timeout');
            return { id, amount: id % 7 === 0 ? `${id}.01` : `${id}.00` };
          },
        }),
      );
    }
    await reader.flush();
    await flags.close();

    expect(results).toEqual(Array.from({ length: 30 }, (_, i) => ({ id: i + 1, amount: `${i + 1}.00` })));
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
    expect(calls.size).toBe(60);
    const mismatches = await consumeAll(4);
    expect(mismatches.map((m) => m.key).sort()).toEqual(['14', '21', '28', '7']);
    expect(mismatches[0]).toMatchObject({
      source: 'dark-read',
      migration: 'orders-mc',
      old: { id: 7, amount: '7.00' },
      new: { id: 7, amount: '7.01' },
    });
    const text = await metrics.getSingleMetricAsString('parity_client_dark_reads_total');
    expect(text).toMatch(/result="mismatch"} 4/);
    expect(text).toMatch(/result="candidate_error"} 3/);
    expect(text).toMatch(/result="match"} 23/);
  });
});
