/**
 * The cache inspector against real Redis and PostgreSQL: a clean cache passes; injected stale entries
 * (a value behind the database, a value for a deleted row, a tombstone for a live row) are found and
 * recorded as failing evidence; a difference that a change fixes during the grace period is in
 * flight, not stale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pg from 'pg';
import { latestEvidence } from '../../../services/core/control.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import type { Row } from '../../../services/core/change-event.js';
import { applyWrites } from '../../../services/cache-versioner/applier.js';
import { inspectCache } from '../../../services/cache-versioner/inspector.js';
import { cacheKeys } from '../../../services/cache-versioner/keys.js';
import { withScripts, type ScriptedRedis } from '../../../services/cache-versioner/scripts.js';
import { cacheSettingsFrom } from '../../../services/cache-versioner/settings.js';
import { planChange } from '../../../services/cache-versioner/writes.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { ORDERS_DDL, envelopeOf, loadRows, orderRow } from './change-stream.js';
import { holdRedis } from './redis-outage-lock.js';

let db: TestDatabase;
let pool: pg.Pool;
let redis: ScriptedRedis;
const prefix = uniqueName('cins');
const slot = `${prefix}_slot`;
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
  'unused',
  { schema: 'public', table: 'orders' },
);
const keys = cacheKeys(settings.migration);

async function cache(id: number, row: Row | null, lsn: bigint, versions = ['v1', 'v2']): Promise<void> {
  const position = { commitLsn: lsn, ordinal: 0 };
  const change = {
    key: { id },
    envelope: envelopeOf(
      { op: row ? 'u' : 'd', key: { id }, before: row ? null : { id }, after: row, position, commitTimeUs: 1n },
      'orders',
    ),
    position,
  };
  await applyWrites(redis, keys, planChange(change, settings, versions).writes, {
    now: Date.now(),
    maxEntryLifetimeMs: settings.maxEntryLifetimeMs,
  });
}

let releaseRedis: (() => void) | undefined;

beforeAll(async () => {
  releaseRedis = await holdRedis();
  db = await createTestDatabase('source', 'cins');
  pool = new pg.Pool({ connectionString: db.url, max: 3 });
  await pool.query(ORDERS_DDL('orders'));
  await loadRows(
    pool,
    'orders',
    Array.from({ length: 20 }, (_, i) => orderRow(i + 1, 1)),
  );
  await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  redis = withScripts(new Redis(STACK.PARITY_REDIS_URL));
  for (let id = 1; id <= 20; id++) await cache(id, orderRow(id, 1), 0x100n + BigInt(id));
});

afterAll(async () => {
  await redis?.del(keys.config, keys.audit);
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
  releaseRedis?.();
});

describe('cache inspector', () => {
  it('passes a cache that matches the database and records passing evidence', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const report = await inspectCache({
      redis,
      pool,
      controlPool: pool,
      controlSchema: 'parity',
      settings,
      slot,
      sample: 100,
      graceMs: 200,
      registry,
    });
    expect(report).toMatchObject({ passed: true, sampled: 40, stale: 0, inFlight: 0, unverifiable: 0, stalenessWindowMs: null });
    expect(report.slot?.name).toBe(slot);
    const evidence = await latestEvidence(pool, 'parity', settings.migration, 'cache-inspect');
    expect(evidence).toMatchObject({ passed: true, value: { sampled: 40, stale: 0 } });
  });

  it('finds injected stale entries, reports the staleness window, and records failing evidence', async () => {
    // Row 5 changes in the database; v1 got the change, v2 did not (a lost update).
    await pool.query(`UPDATE orders SET currency = 'GBP' WHERE id = 5`);
    await cache(5, { ...orderRow(5, 1), currency: 'GBP' }, 0x200n, ['v1']);
    // Row 6 is deleted; neither version heard of it.
    await pool.query(`DELETE FROM orders WHERE id = 6`);
    // Row 7 is cached as deleted, but it exists.
    await cache(7, null, 0x201n, ['v2']);
    // Row 8 changes, and the change reaches the cache during the grace period: in flight, not stale.
    await pool.query(`UPDATE orders SET paid = NOT paid WHERE id = 8`);
    const row8 = (await pool.query<{ paid: boolean }>(`SELECT paid FROM orders WHERE id = 8`)).rows[0]?.paid;

    const registry = createMetricsRegistry({ defaultMetrics: false });
    const report = await inspectCache({
      redis,
      pool,
      controlPool: pool,
      controlSchema: 'parity',
      settings,
      slot,
      sample: 100,
      graceMs: 300,
      registry,
      sleep: async (ms) => {
        await cache(8, { ...orderRow(8, 1), paid: row8 }, 0x7fff_ffff_ffffn);
        // The CDC slot passes everything up to now (after the first read): whatever is still stale
        // was lost downstream of PostgreSQL.
        await pool.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [slot]);
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    const stale = report.staleEntries.map((s) => `${s.version}:${s.keyValues.id}:${s.reason}`).sort();
    expect(stale).toEqual(['v1:6:row deleted', 'v2:5:value differs', 'v2:6:row deleted', 'v2:7:row exists']);
    expect(report.staleEntries.find((s) => s.version === 'v2' && s.keyValues.id === 5)?.columns).toEqual(['currency']);
    expect(report).toMatchObject({ passed: false, sampled: 40, stale: 4, inFlight: 2 });
    expect(report.staleEntries.every((s) => s.cdcPassed === true)).toBe(true);
    expect(report.stalenessWindowMs?.lower).toBeGreaterThanOrEqual(300);
    expect(report.stalenessWindowMs?.upper).toBeGreaterThanOrEqual(report.stalenessWindowMs?.lower ?? 0);
    expect(report.versions.find((v) => v.version === 'v2')).toMatchObject({ stale: 3, inFlight: 1 });

    const evidence = await latestEvidence(pool, 'parity', settings.migration, 'cache-inspect');
    expect(evidence?.passed).toBe(false);
    expect(evidence?.value).toMatchObject({ sampled: 40, stale: 4, inFlight: 2 });
    expect(evidence?.summary).toMatch(/^4 stale of 40 sampled/);
    const mismatches = (await registry.getSingleMetric('parity_cache_inspect_mismatches_total')?.get())?.values ?? [];
    expect(mismatches.reduce((a, v) => a + v.value, 0)).toBe(4);
  });

  it('ignores invalid markers and entries below the truncate barrier, and samples only what is asked', async () => {
    await redis.parityCacheBarrier(keys.config, '0000000000000150:0000000000');
    try {
      const report = await inspectCache({
        redis,
        pool,
        controlPool: null,
        controlSchema: 'parity',
        settings,
        versions: ['v2'],
        sample: 100,
        graceMs: 100,
        registry: createMetricsRegistry({ defaultMetrics: false }),
      });
      // Entries of rows 1..20 at 0x101..0x114 are below the barrier, except the ones rewritten later.
      expect(report.ignored).toBe(18);
      expect(report.sampled).toBe(2);
      const limited = await inspectCache({
        redis,
        pool,
        controlPool: null,
        controlSchema: 'parity',
        settings,
        versions: ['v1'],
        sample: 5,
        graceMs: 100,
        registry: createMetricsRegistry({ defaultMetrics: false }),
      });
      expect(limited.sampled + limited.ignored).toBe(5);
    } finally {
      await redis.hdel(keys.config, 'barrier');
    }
  });
});
