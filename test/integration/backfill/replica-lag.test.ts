/**
 * The replica-lag throttle against a real streaming replica of the source cluster: the stack's
 * (PARITY_SOURCE_REPLICA_URL, from `parity stack up --with-replica`) when it has one, else one this
 * test starts itself with services/stack/replica.ts (pg_basebackup -R of pg-source, its own folder
 * and port) and stops at the end. With the replica's replay paused (`pg_wal_replay_pause()`) the
 * backfill must hold with reason `replica_lag` and make no progress; after `pg_wal_replay_resume()`
 * it must continue and complete exactly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { stackConfig } from '../../../services/stack/config.js';
import { replicaUrl, stackReplicaSettings, startReplica, stopReplica, type ReplicaSettings } from '../../../services/stack/replica.js';
import { createTestDatabase, STACK, type TestDatabase } from '../../support/stack.js';
import { createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

const ROWS = 150_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('backfill holds on a lagging replica (replica_lag)', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let replica: pg.Client;
  let own: ReplicaSettings | undefined;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfreplica');
    await createOrders(db.url, { rows: ROWS });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    let url = process.env.PARITY_SOURCE_REPLICA_URL;
    if (!url) {
      const source = new URL(STACK.PARITY_SOURCE_URL);
      const settings = stackReplicaSettings(stackConfig());
      own = {
        ...settings,
        root: mkdtempSync(join(tmpdir(), 'parity-replica-')),
        port: await freePort(),
        user: decodeURIComponent(source.username),
        password: decodeURIComponent(source.password),
      };
      await startReplica(own);
      url = replicaUrl(own);
    }
    // The test database exists on the replica once replay has passed its creation.
    const u = new URL(url);
    u.pathname = `/${new URL(db.url).pathname.slice(1)}`;
    replica = new pg.Client({ connectionString: u.toString() });
    await waitFor(
      'the test database on the replica',
      async () => {
        try {
          await replica.connect();
          return true;
        } catch {
          replica = new pg.Client({ connectionString: u.toString() });
          return false;
        }
      },
      60_000,
    );
  }, 180_000);

  afterAll(async () => {
    await replica?.query('SELECT pg_wal_replay_resume()').catch(() => undefined);
    await replica?.end().catch(() => undefined);
    await client?.end();
    await db?.drop();
    if (own) {
      await stopReplica(own);
      rmSync(own.root, { recursive: true, force: true });
    }
  });

  it('holds with reason replica_lag while replay is paused, and completes once it resumes', async () => {
    expect((await replica.query('SELECT pg_is_in_recovery() AS r')).rows[0].r).toBe(true);
    await waitFor(
      'the replica to replay the orders table',
      async () => (await replica.query(`SELECT to_regclass('public.orders') IS NOT NULL AS ok`)).rows[0].ok,
      60_000,
    );
    await replica.query('SELECT pg_wal_replay_pause()');
    // Small batches, paced off (the guard's baseline would hold the backfill for its own reason).
    const { spec } = makeSpec({
      name: 'replica-lag',
      sourceUrl: db.url,
      backfill:
        '  batchSize: 2000\n  minBatchSize: 2000\n  maxBatchSize: 2000\n  throttle:\n    maxLagSeconds: 0.5\n    pace: { enabled: false }',
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metric = async (name: string, reason: string): Promise<number> =>
      (await registry.getSingleMetric(name)?.get())?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
    const done = async (): Promise<number> =>
      Number(
        (await client.query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity.backfill_ranges`).catch(() => ({ rows: [{ n: 0 }] })))
          .rows[0].n,
      );
    const run = runBackfill({ spec, controlServer: false, metrics: registry, pollMs: 100 });
    let failed: unknown;
    run.catch((err: unknown) => (failed = err));

    await waitFor(
      'the replica_lag throttle',
      async () => {
        if (failed) throw failed;
        return (await metric('parity_backfill_throttle_active', 'replica_lag')) === 1;
      },
      60_000,
    );
    const heldAt = await done();
    // Other writers of the cluster also add WAL the paused replica does not replay, so the hold may
    // come before the first batch; either way the table is not done.
    expect(heldAt).toBeLessThan(ROWS);
    // Held: no progress for 3 s while replay stays paused (at most the batch in flight lands).
    await new Promise((r) => setTimeout(r, 3_000));
    const after = await done();
    expect(after - heldAt).toBeLessThanOrEqual(2_000);
    expect(await metric('parity_backfill_throttle_active', 'replica_lag')).toBe(1);
    // The process row says so too, from its next heartbeat on (the metric is set at once, the row a beat later).
    await waitFor(
      'the process row to give replica_lag',
      async () => {
        const { rows } = await client
          .query(`SELECT state, reason FROM parity.backfill_processes ORDER BY heartbeat_at DESC LIMIT 1`)
          .catch(() => ({ rows: [] as { state: string; reason: string | null }[] }));
        return /replica_lag/.test(`${rows[0]?.state} ${rows[0]?.reason}`);
      },
      15_000,
    );

    await replica.query('SELECT pg_wal_replay_resume()');
    const result = await run;
    expect(result.outcome).toBe('completed');
    expect(result.rowsDone).toBe(ROWS);
    expect(await mismatches(client)).toBe(0);
    expect(await metric('parity_backfill_throttle_active', 'replica_lag')).toBe(0);
    expect(await metric('parity_backfill_throttled_seconds_total', 'replica_lag')).toBeGreaterThan(2);
    console.log(
      `replica-lag: held at ${heldAt} rows (then ${after}), throttled ${(await metric('parity_backfill_throttled_seconds_total', 'replica_lag')).toFixed(1)} s on replica_lag; ${own ? 'own replica' : 'the stack replica'}`,
    );
  }, 240_000);
});
