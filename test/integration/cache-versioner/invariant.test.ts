/**
 * Invariant: replaying a CDC stream shuffled and with duplicates leaves every entry equal to the
 * latest committed state, and no entry's position ever goes backwards, checked by a poller
 * throughout the replay. Real Kafka, registry, Redis and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createChangeDecoder } from '../../../connectors/kafka-sink/serde.js';
import { createSchemaRegistry } from '../../../services/core/clients.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { decodePosition, comparePositions, encodePosition } from '../../../services/core/lsn.js';
import { createCacheVersioner, type CacheVersioner } from '../../../services/cache-versioner/consumer.js';
import { entryRow, parseEntry } from '../../../services/cache-versioner/entry.js';
import { compareEntry } from '../../../services/cache-versioner/inspector.js';
import { cacheKeys, renderKey } from '../../../services/cache-versioner/keys.js';
import { createRowReader, keyText } from '../../../services/cache-versioner/row-reader.js';
import { cacheSettingsFrom } from '../../../services/cache-versioner/settings.js';
import { REGISTRY, stackKafka } from '../../support/security.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import {
  ORDERS_DDL,
  committedOffsets,
  createTestStream,
  endOffsets,
  history,
  loadRows,
  type Change,
  type TestStream,
} from './change-stream.js';
import { holdRedis } from './redis-outage-lock.js';

const KEYS = 60;
const CHANGES = 1500;

let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
let stream: TestStream;
let versioner: CacheVersioner | null = null;
const kafka = stackKafka('cache-invariant-test');
const prefix = uniqueName('cinv');
const table = 'orders';
const groupId = `${prefix}-group`;
const settings = () =>
  cacheSettingsFrom(
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

let releaseRedis: (() => void) | undefined;

beforeAll(async () => {
  releaseRedis = await holdRedis();
  db = await createTestDatabase('source', 'cinv');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await pool.query(ORDERS_DDL(table));
  redis = new Redis(STACK.PARITY_REDIS_URL);
  stream = await createTestStream(kafka, prefix, table);
});

afterAll(async () => {
  await versioner?.stop();
  // This test's own control keys (version config, audit); its entries expire by TTL.
  const control = cacheKeys(prefix.replace('_', '-'));
  await redis?.del(control.config, control.audit).catch(() => undefined);
  await stream?.close();
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
  releaseRedis?.();
});

function shuffle<T>(items: T[], seed: number): T[] {
  let s = seed;
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('cache versioner invariant', () => {
  it('converges to the latest committed state under shuffling and duplicates, and positions never go backwards', async () => {
    const s = settings();
    const { changes, final } = history(KEYS, CHANGES, 7);
    // Every change once, 30% of them again, all shuffled; sent in bursts while the consumer runs.
    const duplicates = changes.filter((_, i) => i % 10 < 3);
    const replay: Change[] = shuffle([...changes, ...duplicates], 99);

    const registry = createMetricsRegistry({ defaultMetrics: false });
    versioner = createCacheVersioner({
      kafka,
      redis: new Redis(STACK.PARITY_REDIS_URL),
      decoder: createChangeDecoder(createSchemaRegistry(REGISTRY)),
      settings: s,
      registry,
      groupId,
      chunkSize: 100,
      deadLetterTopic: `${prefix}.dlq`,
    });
    await versioner.start();

    // The poller: reads every entry's position over and over and records any step backwards.
    const entryKeys = [...s.templates.values()].flatMap((t) => Array.from({ length: KEYS }, (_, i) => renderKey(t, { id: i + 1 })));
    const lastSeen = new Map<string, string>();
    const backwards: string[] = [];
    let polls = 0;
    let polling = true;
    const poller = (async () => {
      const poll = new Redis(STACK.PARITY_REDIS_URL);
      try {
        while (polling) {
          const pipeline = poll.pipeline();
          for (const k of entryKeys) pipeline.hget(k, '_pos');
          const replies = (await pipeline.exec()) ?? [];
          replies.forEach(([, value], i) => {
            if (typeof value !== 'string') return;
            const k = entryKeys[i] as string;
            const before = lastSeen.get(k);
            if (before && comparePositions(decodePosition(value), decodePosition(before)) < 0)
              backwards.push(`${k}: ${before} -> ${value}`);
            lastSeen.set(k, value);
          });
          polls++;
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        poll.disconnect();
      }
    })();

    for (let i = 0; i < replay.length; i += 200) {
      await stream.send(replay.slice(i, i + 200), table);
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = await endOffsets(stream.admin, stream.topic);
    const total = [...end.values()].reduce((a, b) => a + b, 0n);
    expect(total).toBe(BigInt(replay.length));
    // Wait until the group has committed everything produced.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const committed = await committedOffsets(stream.admin, groupId, stream.topic);
      if ([...end].every(([p, high]) => committed.get(p) === high)) break;
      if (Date.now() > deadline) throw new Error(`not caught up: ${JSON.stringify([...committed].map(([p, o]) => [p, String(o)]))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    polling = false;
    await poller;

    expect(polls).toBeGreaterThan(10);
    expect(backwards).toEqual([]);

    // Every entry of both versions equals the latest committed state, checked two ways: against the
    // expected history, and against the same state loaded into PostgreSQL and read back as the
    // inspector reads it (so cached values are exactly what the database gives).
    const live = [...final].filter(([, row]) => row !== null).map(([, row]) => row as NonNullable<typeof row>);
    await loadRows(pool, table, live);
    const reader = createRowReader({ schema: 'public', table, keyColumns: ['id'], projection: undefined });
    const snapshot = await reader.read(
      pool,
      [...final.keys()].map((id) => ({ id })),
    );
    const lastPosition = new Map<number, string>();
    for (const c of changes) lastPosition.set(c.key.id as number, encodePosition(c.position));
    let values = 0;
    let tombstones = 0;
    for (const template of s.templates.values()) {
      for (const [id, row] of final) {
        const key = renderKey(template, { id });
        const entry = parseEntry(key, await redis.hgetall(key));
        expect(entry, key).not.toBeNull();
        if (!entry) continue;
        expect(entry.position, key).toBe(lastPosition.get(id));
        if (row === null) {
          expect(entry.kind, key).toBe('tombstone');
          tombstones++;
        } else {
          expect(entry.kind, key).toBe('value');
          expect(entryRow(entry), key).toEqual(row);
          values++;
        }
        const dbRow = snapshot.rows.get(keyText(['id'], { id })) ?? null;
        expect(compareEntry(entry, dbRow, undefined), key).toEqual({ ok: true, columns: [] });
      }
    }
    expect(values).toBeGreaterThan(0);
    expect(tombstones).toBeGreaterThan(0);

    // Duplicates and reordering were really exercised: many writes were skipped as not newer.
    const metrics = await registry.getMetricsAsJSON();
    const sum = (name: string) => (metrics.find((m) => m.name === name)?.values ?? []).reduce((a, v) => a + Number(v.value), 0);
    expect(sum('parity_cache_events_total')).toBeGreaterThanOrEqual(replay.length);
    expect(sum('parity_cache_stale_skips_total')).toBeGreaterThan(duplicates.length);
    expect(sum('parity_cache_updates_applied_total')).toBeGreaterThan(0);
    expect(sum('parity_cache_tombstones_total')).toBeGreaterThan(0);
  });
});
