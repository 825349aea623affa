/**
 * services/cache-versioner/cache-reader.ts (re-exported by services/client) against real Redis and PostgreSQL: the stampede guard (1,000
 * concurrent reads of one missing key make at most one database fill), a lease holder that vanished,
 * version fallback and hit counts per version, and fills that never overwrite a change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createCacheReader, tableFill, type FillFunction } from '../../../services/cache-versioner/cache-reader.js';
import { createMetricsRegistry, type Registry } from '../../../services/core/metrics.js';
import { encodePosition } from '../../../services/core/lsn.js';
import type { Row } from '../../../services/core/change-event.js';
import { applyWrites } from '../../../services/cache-versioner/applier.js';
import { parseEntry } from '../../../services/cache-versioner/entry.js';
import { cacheKeys } from '../../../services/cache-versioner/keys.js';
import { withScripts } from '../../../services/cache-versioner/scripts.js';
import { cacheSettingsFrom, type CacheSpec } from '../../../services/cache-versioner/settings.js';
import { cutover, ensureConfig } from '../../../services/cache-versioner/version-config.js';
import { planChange } from '../../../services/cache-versioner/writes.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { ORDERS_DDL, envelopeOf, loadRows, orderRow } from './change-stream.js';
import { holdRedis } from './redis-outage-lock.js';

let db: TestDatabase;
let pool: pg.Pool;
const clients: Redis[] = [];
const prefix = uniqueName('crd');

function redisClient(): Redis {
  const r = new Redis(STACK.PARITY_REDIS_URL);
  clients.push(r);
  return r;
}

function specFor(name: string, populate: string[], read: string): { name: string; key: string[]; cache: CacheSpec } {
  return {
    name: `${prefix}-${name}`,
    key: ['id'],
    cache: {
      keys: { v1: `${prefix}:${name}:v1:{id}`, v2: `${prefix}:${name}:v2:{id}` },
      populate,
      read,
      ttlSeconds: 600,
      ttlJitterPct: 10,
      tombstoneTtlSeconds: 60,
      leaseMs: 1000,
    },
  };
}

const fullSpec = (cache: CacheSpec) => ({
  key: ['id'],
  cache,
  source: { database: '', schema: 'public', table: 'orders' },
  target: { kind: 'same-table' as const },
});

function countingFill(inner: FillFunction, delayMs: number): { fill: FillFunction; calls: () => number } {
  let calls = 0;
  return {
    fill: async (key) => {
      calls++;
      await new Promise((r) => setTimeout(r, delayMs));
      return inner(key);
    },
    calls: () => calls,
  };
}

async function metricValues(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric(name)?.get();
  return Object.fromEntries((metric?.values ?? []).map((v) => [String(v.labels.version ?? ''), Number(v.value)]));
}

let releaseRedis: (() => void) | undefined;

beforeAll(async () => {
  releaseRedis = await holdRedis();
  db = await createTestDatabase('source', 'crd');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await pool.query(ORDERS_DDL('orders'));
  await loadRows(pool, 'orders', [orderRow(1, 1), orderRow(2, 1), orderRow(3, 5)]);
});

afterAll(async () => {
  // This test's own control keys (config and audit of each migration name it used); entries expire.
  const names = ['stampede', 'takeover', 'fallback', 'race', 'bad'].map((n) => cacheKeys(`${prefix}-${n}`));
  await clients[0]?.del(...names.flatMap((k) => [k.config, k.audit]));
  for (const c of clients) c.disconnect();
  await pool?.end();
  await db?.drop();
  releaseRedis?.();
});

describe('cache reader', () => {
  it('1,000 concurrent reads of one missing key, across 10 reader instances, make at most one database fill', async () => {
    const spec = specFor('stampede', ['v1', 'v2'], 'v2');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const counted = countingFill(tableFill(pool, fullSpec(spec.cache)), 300);
    // Ten "processes": each its own Redis connection and in-process single flight.
    const readers = Array.from({ length: 10 }, () => createCacheReader({ redis: redisClient(), spec, fill: counted.fill, registry }));
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => (readers[i % 10] as (typeof readers)[number]).get({ id: 1 })));
    expect(counted.calls()).toBe(1);
    const expected = orderRow(1, 1);
    for (const r of results) expect(r.value).toEqual(expected);
    expect(results.filter((r) => r.source === 'fill').length).toBeGreaterThan(0);
    expect(results.filter((r) => r.source === 'database')).toEqual([]);
    // The filled entry is there for the next reader: a hit on v2, no new fill.
    const later = await createCacheReader({ redis: redisClient(), spec, fill: counted.fill, registry }).get({ id: 1 });
    expect(later).toEqual({ value: expected, version: 'v2', source: 'cache' });
    expect(counted.calls()).toBe(1);
    expect((await metricValues(registry, 'parity_cache_reader_fills_total'))['']).toBe(1);
    // Single flight: only one caller per reader waited on the lease (~9 readers x a few polls each);
    // without it, ~990 callers would poll Redis every ~20 ms for the whole fill.
    const leaseWaits = (await metricValues(registry, 'parity_cache_reader_lease_waits_total'))[''] ?? 0;
    expect(leaseWaits).toBeGreaterThan(0);
    expect(leaseWaits).toBeLessThan(5000);
  });

  it('takes over the lease of a holder that vanished, once it expires, with one fill', async () => {
    const spec = specFor('takeover', ['v2'], 'v2');
    const redis = redisClient();
    // A crashed holder: the lease exists, nobody will release it or fill.
    await redis.set(cacheKeys(spec.name).lease(`${prefix}:takeover:v2:2`), 'dead-holder', 'PX', 1000);
    const counted = countingFill(tableFill(pool, fullSpec(spec.cache)), 50);
    const reader = createCacheReader({
      redis: redisClient(),
      spec,
      fill: counted.fill,
      registry: createMetricsRegistry({ defaultMetrics: false }),
    });
    const other = createCacheReader({
      redis: redisClient(),
      spec,
      fill: counted.fill,
      registry: createMetricsRegistry({ defaultMetrics: false }),
    });
    const started = Date.now();
    const [a, b] = await Promise.all([reader.get({ id: 2 }), other.get({ id: 2 })]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(counted.calls()).toBe(1);
    expect(a.value).toEqual(orderRow(2, 1));
    expect(b.value).toEqual(orderRow(2, 1));
  });

  it('falls back to the other populated version, counts hits per version, and stops falling back after cutover', async () => {
    const spec = specFor('fallback', ['v1', 'v2'], 'v2');
    const settings = cacheSettingsFrom(spec);
    const redis = withScripts(redisClient());
    const keys = cacheKeys(spec.name);
    await ensureConfig(redis, keys, settings, Date.now(), 'test');
    // Only v1 has the row (say v2 was added recently and this row has not changed since).
    const change = {
      key: { id: 3 },
      envelope: envelopeOf(
        { op: 'c', key: { id: 3 }, before: null, after: orderRow(3, 5), position: { commitLsn: 50n, ordinal: 0 }, commitTimeUs: 1n },
        'orders',
      ),
      position: { commitLsn: 50n, ordinal: 0 },
    };
    await applyWrites(redis, keys, planChange(change, settings, ['v1']).writes, {
      now: Date.now(),
      maxEntryLifetimeMs: settings.maxEntryLifetimeMs,
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const counted = countingFill(tableFill(pool, fullSpec(spec.cache)), 0);
    const reader = createCacheReader({ redis: redisClient(), spec, fill: counted.fill, registry, configRefreshMs: 0 });
    expect(await reader.versions()).toEqual(['v2', 'v1']);
    expect(await reader.get({ id: 3 })).toEqual({ value: orderRow(3, 5), version: 'v1', source: 'cache' });
    expect(counted.calls()).toBe(0);
    expect(await metricValues(registry, 'parity_cache_reader_hits_total')).toEqual({ v1: 1 });

    // Cut over to v2 only: v1 is no longer populated, so it may go stale and is never read again.
    await cutover(redis, keys, settings, { to: 'v2', populate: ['v2'], force: false, now: Date.now(), by: 'test' });
    expect(await reader.versions()).toEqual(['v2']);
    const after = await reader.get({ id: 3 });
    expect(after).toEqual({ value: orderRow(3, 5), version: null, source: 'fill' });
    expect(counted.calls()).toBe(1);
    expect(await reader.get({ id: 3 })).toEqual({ value: orderRow(3, 5), version: 'v2', source: 'cache' });
    expect(await metricValues(registry, 'parity_cache_reader_hits_total')).toEqual({ v1: 1, v2: 1 });
  });

  it('a fill loses to any change event, and a missing row is cached as a short tombstone', async () => {
    const spec = specFor('race', ['v2'], 'v2');
    const settings = cacheSettingsFrom(spec);
    const redis = withScripts(redisClient());
    const keys = cacheKeys(spec.name);
    const stale: Row = { ...orderRow(1, 1), currency: 'OLD' };
    // The fill reads the database, and a change lands in Redis while it does.
    const fill: FillFunction = async (key) => {
      if (key.id === 404) return null;
      const change = {
        key: { id: 1 },
        envelope: envelopeOf(
          { op: 'u', key: { id: 1 }, before: null, after: orderRow(1, 9), position: { commitLsn: 70n, ordinal: 1 }, commitTimeUs: 1n },
          'orders',
        ),
        position: { commitLsn: 70n, ordinal: 1 },
      };
      await applyWrites(redis, keys, planChange(change, settings, ['v2']).writes, {
        now: Date.now(),
        maxEntryLifetimeMs: settings.maxEntryLifetimeMs,
      });
      return stale;
    };
    const reader = createCacheReader({ redis: redisClient(), spec, fill, registry: createMetricsRegistry({ defaultMetrics: false }) });
    await reader.get({ id: 1 });
    const entry = parseEntry(`${prefix}:race:v2:1`, await redis.hgetall(`${prefix}:race:v2:1`));
    expect(entry?.position).toBe(encodePosition({ commitLsn: 70n, ordinal: 1 }));
    expect(entry?.columns.get('currency')).toBe(JSON.stringify(orderRow(1, 9).currency));

    const missing = await reader.get({ id: 404 });
    expect(missing).toEqual({ value: null, version: null, source: 'fill' });
    expect(await reader.get({ id: 404 })).toEqual({ value: null, version: 'v2', source: 'cache' });
    const ttl = await redis.pttl(`${prefix}:race:v2:404`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('rejects a read without the key column', async () => {
    const reader = createCacheReader({
      redis: redisClient(),
      spec: specFor('bad', ['v2'], 'v2'),
      fill: async () => null,
      registry: createMetricsRegistry({ defaultMetrics: false }),
    });
    await expect(reader.get({})).rejects.toThrow(/without key column "id"/);
  });
});
