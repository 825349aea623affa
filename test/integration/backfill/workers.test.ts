/**
 * Parallel workers claim ranges with FOR UPDATE SKIP LOCKED: two `backfill run` processes started
 * together join one run, and with several workers per process every range is walked exactly once,
 * by one worker, contiguously, with nothing skipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, cli, createOrders, makeSpec, mismatches } from './fixtures.js';

const ROWS = 120_000;

describe('parallel backfill workers', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfworkers');
    await createOrders(db.url, { rows: ROWS });
    await createOrders(db.url, { rows: ROWS }, 'orders_b');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  async function checkExactlyOnce(runId: number, table: string): Promise<{ workers: number }> {
    expect(await mismatches(client, table)).toBe(0);
    const audit = await auditLog(client, runId);
    expect(audit.gaps).toBe(0);
    expect(audit.redone).toBe(0);
    expect(audit.rows).toBe(ROWS);
    expect(audit.rangesWithSeveralWorkers).toBe(0);
    const { rows } = await client.query(
      `SELECT count(*)::int AS ranges, count(*) FILTER (WHERE state = 'done' AND claims = 1 AND rows_done = rows_planned)::int AS once
         FROM parity.backfill_ranges WHERE run_id = $1`,
      [runId],
    );
    expect(rows[0].ranges).toBeGreaterThan(4);
    expect(rows[0].once).toBe(rows[0].ranges);
    const { rows: w } = await client.query(`SELECT count(DISTINCT worker)::int AS n FROM parity.backfill_batches WHERE run_id = $1`, [
      runId,
    ]);
    return { workers: w[0].n };
  }

  it('two processes started together share one run; every range done exactly once', async () => {
    const { file } = makeSpec({
      name: 'two-procs',
      sourceUrl: db.url,
      backfill: '  batchSize: 500\n  minBatchSize: 500\n  maxBatchSize: 500',
    });
    const a = cli(['backfill', 'run', '--spec', file, '--workers', '1', '--no-progress']);
    const b = cli(['backfill', 'run', '--spec', file, '--workers', '1', '--no-progress']);
    const [ea, eb] = await Promise.all([a.exit, b.exit]);
    expect(ea.code, a.stderr()).toBe(0);
    expect(eb.code, b.stderr()).toBe(0);
    const { rows } = await client.query(`SELECT run_id FROM parity.backfill_runs WHERE migration = 'two-procs'`);
    expect(rows).toHaveLength(1);
    const { workers } = await checkExactlyOnce(Number(rows[0].run_id), 'orders');
    expect(workers).toBe(2);
  });

  it('four workers in one process: every range done exactly once', async () => {
    const { spec } = makeSpec({
      name: 'four-workers',
      sourceUrl: db.url,
      table: 'orders_b',
      backfill: '  batchSize: 500\n  minBatchSize: 500\n  maxBatchSize: 500',
    });
    const result = await runBackfill({ spec, workers: 4, controlServer: false });
    expect(result.outcome).toBe('completed');
    const { workers } = await checkExactlyOnce(result.runId, 'orders_b');
    expect(workers).toBeGreaterThanOrEqual(2);
  });
});
