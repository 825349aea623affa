import { Redis } from 'ioredis';
import { createChangeDecoder, encodeChange } from '../../connectors/kafka-sink/serde.js';
import { createKafka, createSchemaRegistry } from '../../services/core/clients.js';
import { applyWrites } from '../../services/cache-versioner/applier.js';
import { cacheKeys } from '../../services/cache-versioner/keys.js';
import { withScripts } from '../../services/cache-versioner/scripts.js';
import { cacheSettingsFrom } from '../../services/cache-versioner/settings.js';
import { collapseWrites, planChange } from '../../services/cache-versioner/writes.js';
import { KAFKA_BROKERS, STACK, uniqueName } from '../support/stack.js';
import { createTestStream, envelopeOf, orderRow } from '../integration/cache-versioner/change-stream.js';
const kafka = createKafka(KAFKA_BROKERS);
const prefix = uniqueName('prof');
const stream = await createTestStream(kafka, prefix, 'orders');
const N = 20000;
const msgs = Array.from({ length: N }, (_, i) => {
  const c = { op: 'u' as const, key: { id: i % 5000 }, before: null, after: orderRow(i % 5000, i), position: { commitLsn: BigInt(1000 + i), ordinal: 0 }, commitTimeUs: 1n };
  const m = encodeChange(stream.encoder, { key: c.key, envelope: envelopeOf(c, 'orders'), position: c.position, txId: 1, commitTimeUs: 1n }, 3);
  return { key: m.key, value: m.value, headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, Buffer.from(v)])), offset: String(i), timestamp: String(Date.now()), attributes: 0, size: 0 };
});
const decoder = createChangeDecoder(createSchemaRegistry(STACK.PARITY_REGISTRY_URL));
await decoder.decode(stream.topic, msgs[0] as never);
let t = performance.now();
const decoded = [];
for (const m of msgs) decoded.push(await decoder.decode(stream.topic, m as never));
console.log('decode us/event', ((performance.now() - t) * 1000 / N).toFixed(1));
const settings = cacheSettingsFrom({ name: prefix, key: ['id'], cache: { keys: { v1: `${prefix}:v1:{id}`, v2: `${prefix}:v2:{id}` }, populate: ['v1', 'v2'], read: 'v2', ttlSeconds: 60, ttlJitterPct: 10, tombstoneTtlSeconds: 60, leaseMs: 100 } });
t = performance.now();
const writes = [];
for (const d of decoded) writes.push(...planChange(d, settings, ['v1', 'v2']).writes);
console.log('plan us/event', ((performance.now() - t) * 1000 / N).toFixed(1));
const redis = withScripts(new Redis(STACK.PARITY_REDIS_URL));
const keys = cacheKeys(prefix);
for (const size of [1000, 2000]) {
  t = performance.now();
  for (let i = 0; i < writes.length; i += size) {
    const chunk = collapseWrites(writes.slice(i, i + size));
    await applyWrites(redis, keys, chunk, { now: Date.now(), maxEntryLifetimeMs: 60000 });
  }
  console.log(`apply chunk ${size}: us/write`, ((performance.now() - t) * 1000 / writes.length).toFixed(1), 'writes/s', Math.round(writes.length / ((performance.now() - t) / 1000)));
}
const info = await redis.info('commandstats');
console.log(info.split('\n').filter((l) => /evalsha|eval:|pfadd/.test(l)).join('\n'));
await stream.close();
redis.disconnect();
process.exit(0);
