/**
 * Lock-lost readiness (real PostgreSQL and Redis): a running `backfill run` watches its fencing
 * token. Once the coordinator's lock is taken over with a newer token, the process answers /readyz
 * 503 "lock lost: fencing token N superseded by M" (even while paused, before any write of it
 * fails), `parity_lock_lost` is 1, and no batch carrying the old token commits afterwards.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { acquireLock, type Lease } from '../../../services/coordinator/lock.js';
import { issueToken } from '../../../services/core/fence.js';
import { readLatestToken } from '../../../services/core/fence-watch.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { LockWatch } from '../../../services/status/lock-metrics.js';
import { createTestDatabase, STACK, type TestDatabase } from '../../support/stack.js';
import { createOrders, makeSpec, mismatches, waitFor } from '../backfill/fixtures.js';

const TOKEN = 'lock-lost-test-token-0123456789abcdef';
const ROWS = 30_000;
// Paced at a fixed 5 % duty cycle: slow enough that the test acts while the run is still writing.
const SLOW =
  '  batchSize: 200\n  minBatchSize: 200\n  maxBatchSize: 200\n  throttle:\n    pace:\n      mode: duty-cycle\n      dutyCycle: 0.05\n      minDutyCycle: 0.05\n      maxDutyCycle: 0.05\n      latencyGuard: { enabled: false }';

async function control(url: string, command: string): Promise<void> {
  const res = await fetch(`${url}/control`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ command }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe('lock-lost readiness of a fenced writer', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let pool: pg.Pool;
  let redis: Redis;
  let lease: Lease | undefined;
  const stop = new AbortController();
  let running: Promise<unknown> | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'locklost');
    await createOrders(db.url, { rows: ROWS });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    redis = new Redis(STACK.PARITY_REDIS_URL);
    redis.on('error', () => undefined);
  });

  afterAll(async () => {
    stop.abort();
    await running?.catch(() => undefined);
    await lease?.release().catch(() => undefined);
    redis?.disconnect();
    await pool?.end();
    await client?.end();
    await db?.drop();
  });

  it('answers /readyz 503 with the lock-lost reason once a newer token is issued, and writes nothing more', async () => {
    const { spec } = makeSpec({ name: 'lock-lost', sourceUrl: db.url, backfill: SLOW });
    let runToken: bigint | undefined;
    running = runBackfill({
      spec,
      workers: 1,
      pollMs: 100,
      controlPort: 0,
      controlToken: TOKEN,
      fenceWatchMs: 200,
      signal: stop.signal,
      onFence: (f) => {
        runToken = f.token;
      },
    });
    const outcome = running.then(
      () => undefined,
      (err: unknown) => err,
    );
    const url = await waitFor(
      'control URL',
      async () =>
        (
          await client
            .query(`SELECT control_url FROM parity.backfill_processes WHERE control_url IS NOT NULL`)
            .catch(() => ({ rows: [] as { control_url: string }[] }))
        ).rows[0]?.control_url as string | undefined,
      120_000,
    );
    await waitFor('the run to write', async () => ROWS - (await mismatches(client)) > 1_000);
    expect(runToken).toBeDefined();

    // Paused: not ready for that reason, and its token is still current.
    await control(url, 'pause');
    const paused = await waitFor('paused readiness', async () => {
      const r = await fetch(`${url}/readyz`);
      const body = (await r.json()) as { status: string; reason?: string };
      return r.status === 503 && /operator/.test(body.reason ?? '') ? body : undefined;
    });
    expect(paused.status).toBe('throttled');
    expect(paused.reason).not.toMatch(/lock lost/);
    const metricsBefore = await (await fetch(`${url}/metrics`)).text();
    expect(metricsBefore).toMatch(/^parity_lock_lost(\{[^}]*\})? 0$/m);

    // The coordinator takes the migration's lock: a lease in Redis and the next fencing token.
    lease = await acquireLock({
      redis,
      fenceDb: pool,
      fenceSchema: 'parity',
      migration: 'lock-lost',
      keyPrefix: `parity-test-${randomUUID().slice(0, 8)}`,
      settings: { ttlMs: 15_000, renewEveryMs: 5_000, driftMarginMs: 1_000 },
    });
    expect(lease.token).toBeGreaterThan(runToken!);
    const written = ROWS - (await mismatches(client));

    // While still paused (no write has failed yet), readiness says why it is not ready.
    const lost = await waitFor('lock-lost readiness', async () => {
      const r = await fetch(`${url}/readyz`);
      const body = (await r.json()) as { status: string; reason?: string };
      return r.status === 503 && body.status === 'lock-lost' ? body : undefined;
    });
    expect(lost.reason).toBe(`lock lost: fencing token ${runToken} superseded by ${lease.token}`);
    // The watch's read-only token reader (stream repairs use it on a session of their own).
    expect(await readLatestToken(pool, 'parity', 'lock-lost')).toBe(lease.token);
    expect(await readLatestToken(pool, 'parity', 'no-such-migration')).toBe(0n);
    expect(await readLatestToken(pool, 'no_such_schema', 'lock-lost')).toBe(0n);
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/^parity_lock_lost(\{[^}]*\})? 1$/m);

    // Resumed, its next batch is refused by the database: the run stops, nothing more committed.
    await control(url, 'resume');
    const err = await outcome;
    expect(err).toMatchObject({ code: 'PARITY_STALE_FENCE' });
    expect(ROWS - (await mismatches(client))).toBe(written);
    expect(written).toBeLessThan(ROWS);
  });

  it("serve's lock metrics: the lease's time left, the latest token and its holder, a token taken under a live lease counted as a loss", async () => {
    const prefix = `parity-test-${randomUUID().slice(0, 8)}`;
    const migration = 'lock-watch';
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const watch = new LockWatch({ redis, fenceDb: pool, fenceSchema: 'parity', migration, keyPrefix: prefix }, registry);
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;

    expect(await watch.poll()).toMatchObject({ owner: null, ttlMs: 0 });
    expect((await metric('parity_lock_lease_seconds'))[0]?.value).toBe(0);

    const held = await acquireLock({
      redis,
      fenceDb: pool,
      fenceSchema: 'parity',
      migration,
      keyPrefix: prefix,
      settings: { ttlMs: 15_000, renewEveryMs: 5_000, driftMarginMs: 1_000 },
    });
    try {
      const reading = await watch.poll();
      expect(reading.owner).toBe(held.owner);
      expect(reading.token).toBe(held.token);
      const lease = (await metric('parity_lock_lease_seconds'))[0]!.value;
      expect(lease).toBeGreaterThan(5);
      expect(lease).toBeLessThanOrEqual(15);
      const token = await metric('parity_lock_fencing_token');
      expect(token).toHaveLength(1);
      expect(token[0]).toMatchObject({ value: Number(held.token), labels: { holder: reading.holder } });
      expect(reading.holder).toBeTruthy();
      const taken = async () => (await metric('parity_lock_losses_total')).find((v) => v.labels.reason === 'taken')?.value;
      expect(await taken()).toBe(0);

      // Someone takes a newer token while the lease is still held: its holder's writes are refused now.
      await issueToken(pool, 'parity', migration, 'a fenced writer');
      await watch.poll();
      expect(await taken()).toBe(1);
      expect((await metric('parity_lock_fencing_token'))[0]).toMatchObject({
        value: Number(held.token) + 1,
        labels: { holder: 'a fenced writer' },
      });
    } finally {
      await held.release();
    }
    // Released before its expiry: no loss.
    await watch.poll();
    expect((await metric('parity_lock_losses_total')).find((v) => v.labels.reason === 'expired')?.value).toBe(0);
    expect((await metric('parity_lock_lease_seconds'))[0]?.value).toBe(0);
  });
});
