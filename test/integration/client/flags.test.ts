/**
 * The application's flag reader against real Redis: changes made by the coordinator reach it at
 * once through pub/sub (or after the TTL through the version key), the ramp puts keys within 2
 * percentage points of the target share, cohorts see their overrides, and a Redis outage keeps the
 * last known values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createFlagsReader } from '../../../services/client/flags.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { DEFAULT_FLAGS } from '../../../services/coordinator/flag-model.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { STACK } from '../../support/stack.js';
import { startOwnRedis } from '../coordinator/own-redis.js';
import { prefixTracker } from '../coordinator/redis-keys.js';

let redis: Redis;
let subscriber: Redis;
const prefixes = prefixTracker('fl');

beforeAll(() => {
  redis = new Redis(STACK.PARITY_REDIS_URL);
  // A restart of the shared Redis by another suite shows as retries, not as unhandled events.
  redis.on('error', () => undefined);
  subscriber = new Redis(STACK.PARITY_REDIS_URL);
  subscriber.on('error', () => undefined);
});

afterAll(async () => {
  if (redis) await prefixes.cleanup(redis);
  redis?.disconnect();
  subscriber?.disconnect();
});

async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('flags reader', () => {
  it('puts keys within 2 percentage points of the ramp share (100k keys at 1%, 10%, 50%), consistently', async () => {
    const keyPrefix = prefixes.next();
    const store = createFlagStore({ redis, migration: 'orders-mc', keyPrefix });
    const reader = createFlagsReader({ redis, migration: 'orders-mc', keyPrefix, ttlMs: 60_000 });
    const keys = Array.from({ length: 100_000 }, (_, i) => i + 1);
    let previous = new Set<number>();
    for (const percent of [1, 10, 50, 100]) {
      await store.set({
        values: [
          ['read', 'new'],
          ['read-percent', String(percent)],
        ],
        actor: 'test',
        reason: `ramp to ${percent}%`,
      });
      await reader.refresh();
      const onNew = keys.filter((k) => reader.route(k) === 'new');
      expect(Math.abs((onNew.length / keys.length) * 100 - percent)).toBeLessThanOrEqual(2);
      // Ramping up never moves a key back to the old path.
      for (const k of previous) expect(reader.route(k)).toBe('new');
      previous = new Set(onNew);
    }
    expect(previous.size).toBe(100_000);
  });

  it('sees a flag change at once through pub/sub, and after the TTL without it', async () => {
    const keyPrefix = prefixes.next();
    const store = createFlagStore({ redis, migration: 'm', keyPrefix });
    const live = createFlagsReader({ redis, subscriber, migration: 'm', keyPrefix, ttlMs: 60_000 });
    let now = 0;
    const polled = createFlagsReader({ redis, migration: 'm', keyPrefix, ttlMs: 1_000, clock: () => now });
    await live.start();
    try {
      expect(live.current()).toEqual(DEFAULT_FLAGS);
      expect(await polled.get()).toEqual(DEFAULT_FLAGS);
      await store.set({ values: [['kill-backfill', 'on']], actor: 'oncall', reason: 'replica lag' });
      // The subscribed reader drops its cache on the announcement, long before its 60 s TTL.
      await eventually(() => live.current().killBackfill, 'the subscribed reader sees kill-backfill=on');
      // The polling reader serves its cache until the TTL, then one GET of the version tells it to reload.
      expect((await polled.get()).killBackfill).toBe(false);
      now += 1_001;
      expect((await polled.get()).killBackfill).toBe(true);
    } finally {
      await live.close();
    }
  });

  it('layers a cohort override over the migration-wide values', async () => {
    const keyPrefix = prefixes.next();
    const store = createFlagStore({ redis, migration: 'm', keyPrefix });
    await store.set({
      values: [
        ['dual-write', 'on'],
        ['read', 'dark'],
        ['read-percent', '10'],
      ],
      actor: 't',
      reason: 'all',
    });
    await store.set({
      cohort: 'eu',
      values: [
        ['read', 'new'],
        ['read-percent', '100'],
      ],
      actor: 't',
      reason: 'eu first',
    });
    const eu = createFlagsReader({ redis, migration: 'm', keyPrefix, cohort: 'eu' });
    const us = createFlagsReader({ redis, migration: 'm', keyPrefix, cohort: 'us' });
    expect(await eu.get()).toEqual({ ...DEFAULT_FLAGS, dualWrite: true, read: 'new', readPercent: 100 });
    expect(await us.get()).toEqual({ ...DEFAULT_FLAGS, dualWrite: true, read: 'dark', readPercent: 10 });
  });

  it('keeps the last known values while Redis is down, and never throws', async () => {
    const own = await startOwnRedis();
    const client = new Redis(own.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    try {
      await eventually(() => client.status === 'ready', 'connected');
      const store = createFlagStore({ redis: client, migration: 'm' });
      await store.set({ values: [['dual-write', 'on']], actor: 't', reason: 'on' });
      let now = 0;
      const reader = createFlagsReader({ redis: client, migration: 'm', ttlMs: 100, clock: () => now, metrics });
      expect((await reader.get()).dualWrite).toBe(true);
      await own.kill();
      now += 1_000;
      // Turning dual writes off because Redis is unreachable would silently lose writes: keep them on.
      expect((await reader.get()).dualWrite).toBe(true);
      expect(await metrics.getSingleMetricAsString('parity_client_flag_errors_total')).toMatch(/ [1-9]$/m);
    } finally {
      client.disconnect();
      await own.kill();
    }
  });
});
