/**
 * Fault test: Redis is stopped mid-stream and started again (stackDown/stackUp of the local stack's
 * Redis, restarted in `finally`). The local Redis has no persistence, so the restart loses every
 * entry. What "nothing lost" means then, and what this asserts:
 * - while Redis is down, consumption pauses and no offset is committed past what Redis confirmed;
 * - after the restart, every offset produced since the last commit is applied (no offset skipped), and
 *   consumption goes on with new events;
 * - every key changed after the last confirmed commit holds exactly its latest state; keys whose last
 *   change was confirmed before the outage are absent (misses that readers fill from the database),
 *   never stale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createChangeDecoder } from '../../../connectors/kafka-sink/serde.js';
import { createKafka, createSchemaRegistry } from '../../../services/core/clients.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { encodePosition } from '../../../services/core/lsn.js';
import { stackDown, stackUp } from '../../../services/stack/stack.js';
import { createCacheVersioner, type AppliedChunk, type CacheVersioner } from '../../../services/cache-versioner/consumer.js';
import { entryRow, parseEntry } from '../../../services/cache-versioner/entry.js';
import { cacheKeys, renderKey } from '../../../services/cache-versioner/keys.js';
import { cacheSettingsFrom } from '../../../services/cache-versioner/settings.js';
import { readConfig } from '../../../services/cache-versioner/version-config.js';
import { withScripts } from '../../../services/cache-versioner/scripts.js';
import { KAFKA_BROKERS, STACK, uniqueName } from '../../support/stack.js';
import { committedOffsets, createTestStream, endOffsets, history, type TestStream } from './change-stream.js';
import { takeRedisDown } from './redis-outage-lock.js';

const kafka = createKafka(KAFKA_BROKERS, { clientId: 'cache-outage-test' });
const prefix = uniqueName('cout');
const table = 'orders';
const groupId = `${prefix}-group`;
let stream: TestStream;
let versioner: CacheVersioner | null = null;
let redis: Redis;

const settings = cacheSettingsFrom(
  {
    name: prefix.replace('_', '-'),
    key: ['id'],
    cache: {
      keys: { v1: `${prefix}:order:v1:{id}`, v2: `${prefix}:order:v2:{id}` },
      populate: ['v1', 'v2'],
      read: 'v2',
      ttlSeconds: 600,
      ttlJitterPct: 10,
      tombstoneTtlSeconds: 600,
      leaseMs: 500,
    },
  },
  `${prefix}.public.${table}`,
  { schema: 'public', table },
);

beforeAll(async () => {
  stream = await createTestStream(kafka, prefix, table);
  redis = new Redis(STACK.PARITY_REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
});

afterAll(async () => {
  await versioner?.stop();
  // This test's own control keys (version config, audit); its entries expire by TTL.
  const control = cacheKeys(prefix.replace('_', '-'));
  await redis?.del(control.config, control.audit).catch(() => undefined);
  await stream?.close();
  redis?.disconnect();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function caughtUp(): Promise<Map<number, bigint>> {
  const end = await endOffsets(stream.admin, stream.topic);
  await waitFor('the group to commit every offset', async () => {
    const committed = await committedOffsets(stream.admin, groupId, stream.topic);
    return [...end].every(([p, high]) => committed.get(p) === high);
  });
  return end;
}

describe('cache versioner with Redis stopped and restarted mid-stream', () => {
  it('pauses without committing, then applies every offset after the last commit and keeps going', async () => {
    const { changes } = history(40, 1000, 3);
    const phase1 = changes.slice(0, 400);
    const phase2 = changes.slice(400, 800);
    const phase3 = changes.slice(800);
    const chunks: Array<AppliedChunk & { at: number }> = [];
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const consumerRedis = new Redis(STACK.PARITY_REDIS_URL, { maxRetriesPerRequest: 1, commandTimeout: 1000 });
    consumerRedis.on('error', () => undefined);
    versioner = createCacheVersioner({
      kafka,
      redis: consumerRedis,
      decoder: createChangeDecoder(createSchemaRegistry(STACK.PARITY_REGISTRY_URL)),
      settings,
      registry,
      groupId,
      chunkSize: 50,
      maxBackoffMs: 500,
      deadLetterTopic: `${prefix}.dlq`,
      onApplied: (chunk) => chunks.push({ ...chunk, at: Date.now() }),
    });
    await versioner.start();

    await stream.send(phase1, table);
    const end1 = await caughtUp();

    let downAt = 0;
    // The restart wipes Redis: this folder's other test files wait, and are waited for.
    const releaseRedis = await takeRedisDown();
    try {
      expect(await stackDown(['redis'])).toEqual(['redis']);
      downAt = Date.now();
      await stream.send(phase2, table);
      await waitFor('the versioner to pause', () => versioner?.status().state === 'paused', 30_000);
      const health = versioner.health();
      expect(health.ok).toBe(false);
      expect(health.status).toBe('paused');
      expect(health.reason).toMatch(/Redis/);
      // Paused for a while: nothing applied, nothing committed past phase 1.
      await sleep(1500);
      expect(chunks.filter((c) => c.at > downAt)).toEqual([]);
      expect(await committedOffsets(stream.admin, groupId, stream.topic)).toEqual(end1);
      const paused = (await registry.getSingleMetric('parity_cache_paused')?.get())?.values[0]?.value;
      expect(paused).toBe(1);
    } finally {
      try {
        await stackUp({ services: ['redis'] });
      } finally {
        releaseRedis();
      }
    }

    const end2 = await caughtUp();
    expect(versioner.status().state).toBe('consuming');
    await stream.send(phase3, table);
    const end3 = await caughtUp();

    // No offset skipped: after the restart, every offset from the last commit before the outage to
    // the end of phase 3 was applied to Redis. Nothing was applied while Redis was down (asserted
    // above), so every chunk after `downAt` was applied to the restarted Redis — including any the
    // versioner applied the moment Redis answered again, before stackUp returned.
    for (const [partition, high] of end3) {
      const low = end1.get(partition) ?? 0n;
      const covered = new Set<bigint>();
      for (const c of chunks.filter((x) => x.partition === partition && x.at > downAt)) {
        for (let o = BigInt(c.firstOffset); o <= BigInt(c.lastOffset); o++) covered.add(o);
      }
      for (let o = low; o < high; o++) expect(covered.has(o), `partition ${partition} offset ${o}`).toBe(true);
    }
    expect([...end2].some(([p, high]) => high > (end1.get(p) ?? 0n))).toBe(true);

    // Entries: every key changed after the outage began holds its latest state; keys last changed
    // before it are absent (Redis lost them), never older than their latest change.
    const latest = new Map<number, (typeof changes)[number]>();
    for (const c of changes) latest.set(c.key.id as number, c);
    const changedAfter = new Set([...phase2, ...phase3].map((c) => c.key.id as number));
    let checked = 0;
    for (const template of settings.templates.values()) {
      for (const [id, change] of latest) {
        const key = renderKey(template, { id });
        const entry = parseEntry(key, await redis.hgetall(key));
        if (!changedAfter.has(id)) {
          expect(entry, key).toBeNull();
          continue;
        }
        expect(entry?.position, key).toBe(encodePosition(change.position));
        if (change.after === null) expect(entry?.kind, key).toBe('tombstone');
        else expect(entry && entryRow(entry), key).toEqual(change.after);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
    // The version config lived in Redis too: the versioner recreated it from the spec.
    expect((await readConfig(withScripts(redis), cacheKeys(settings.migration)))?.populate).toEqual(['v1', 'v2']);
    const errors = (await registry.getSingleMetric('parity_cache_redis_errors_total')?.get())?.values[0]?.value ?? 0;
    expect(errors).toBeGreaterThan(0);
  });
});
