/**
 * Lock timeouts: a batch that meets a row locked by another transaction for longer than
 * backfill.lockTimeoutMs is rolled back (SQLSTATE 55P03) and retried with backoff; once the lock is
 * released the backfill completes, exactly, with the retries counted by cause.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

describe('backfill lock timeouts', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bflock');
    await createOrders(db.url, { rows: 20_000 });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('retries a batch that hits lock_timeout, then completes exactly', async () => {
    const { spec } = makeSpec({
      name: 'lock-timeout',
      sourceUrl: db.url,
      backfill: '  batchSize: 1000\n  minBatchSize: 1000\n  maxBatchSize: 1000\n  lockTimeoutMs: 50',
    });
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM orders WHERE id = 10500 FOR UPDATE');
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const running = runBackfill({ spec, metrics: registry, controlServer: false });
    running.catch(() => undefined);
    const retries = async () =>
      (await registry.getSingleMetric('parity_backfill_batch_retries_total')?.get())?.values.find((v) => v.labels.cause === 'lock_timeout')
        ?.value ?? 0;
    await waitFor('two lock-timeout retries', async () => (await retries()) >= 2, 60_000);
    // The batch holding id 10500 has not committed while the lock was held.
    const { rows } = await client.query(`SELECT total_amount_minor FROM orders WHERE id = 10500`);
    expect(rows[0].total_amount_minor).toBeNull();
    await holder.query('COMMIT');
    await holder.end();
    const result = await running;
    expect(result.outcome).toBe('completed');
    expect(await mismatches(client)).toBe(0);
    expect(await auditLog(client, result.runId)).toMatchObject({ gaps: 0, redone: 0, rows: 20_000 });
  });
});
