/**
 * Bad input fails clearly and half-applies nothing: an unknown column in the mapping, no index on the
 * key, a mapped column missing from the target, and a statement timeout hit mid-run (the batch rolls
 * back entirely and the run is marked failed with the reason).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { cli, createOrders, makeSpec } from './fixtures.js';

describe('backfill bad input', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfbad');
    await createOrders(db.url, { rows: 5_000 });
    await createOrders(db.url, { rows: 1_000, noKeyIndex: true }, 'orders_noindex');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  /** Nothing of the backfill happened: no run recorded, no row written. */
  async function nothingApplied(table = 'orders'): Promise<void> {
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM ${table} WHERE total_amount_minor IS NOT NULL OR currency IS NOT NULL`,
    );
    expect(rows[0].n).toBe(0);
    const runs = await client.query(`SELECT count(*)::int AS n FROM parity.backfill_runs`).catch(() => ({ rows: [{ n: 0 }] }));
    expect(runs.rows[0].n).toBe(0);
  }

  it('an unknown column in the mapping: exit 2, the column named, nothing applied', async () => {
    const { file } = makeSpec({
      name: 'bad-column',
      sourceUrl: db.url,
      mapping: { total_amount_minor: 'totl_amount::bigint', currency: "'USD'::text" },
    });
    const run = cli(['backfill', 'run', '--spec', file, '--no-progress']);
    const exit = await run.exit;
    expect(exit.code).toBe(2);
    expect(run.stderr()).toMatch(/PARITY_BAD_INPUT: the mapping does not compile: column "totl_amount" does not exist/);
    expect(run.stderr()).toMatch(/hint: mapping values are SQL expressions over a row of public\.orders/);
    await nothingApplied();
  });

  it('no index on the key: a clear error naming the fix', async () => {
    const { spec } = makeSpec({ name: 'no-index', sourceUrl: db.url, table: 'orders_noindex' });
    const err = await runBackfill({ spec, controlServer: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PARITY_BAD_INPUT' });
    expect((err as Error).message).toMatch(/no index on the key \(id\) of public\.orders_noindex/);
    expect((err as { hint: string }).hint).toMatch(/CREATE UNIQUE INDEX CONCURRENTLY ON public\.orders_noindex \(id\)/);
    await nothingApplied('orders_noindex');
  });

  it('a mapped column the table does not have: asks for the expand step', async () => {
    const { spec } = makeSpec({
      name: 'no-column',
      sourceUrl: db.url,
      mapping: { total_amount_minor: 'total_amount::bigint', amount_currency: "'USD'::text" },
    });
    const err = await runBackfill({ spec, controlServer: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PARITY_BAD_INPUT' });
    expect((err as Error).message).toMatch(/mapping writes column "amount_currency", which does not exist in public\.orders/);
    expect((err as { hint: string }).hint).toMatch(/run the expand step/);
    await nothingApplied();
  });

  it('a statement timeout: the batch rolls back entirely, the run fails with the reason', async () => {
    // 2 ms per row over 500-row batches against a 300 ms statement timeout: the first batch times out.
    const { spec } = makeSpec({
      name: 'timeout',
      sourceUrl: db.url,
      mapping: { total_amount_minor: 'total_amount::bigint + length(pg_sleep(0.002)::text)', currency: "'USD'::text" },
      // pg_sleep is refused in spec SQL unless named (17.4); here it is the point.
      allowFunctions: ['pg_sleep'],
      backfill: '  batchSize: 500\n  minBatchSize: 500\n  statementTimeoutMs: 300',
    });
    const err = await runBackfill({ spec, controlServer: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PARITY_STATEMENT_TIMEOUT' });
    expect((err as Error).message).toMatch(
      /backfill batch of range 1 failed while writing the batch: canceling statement due to statement timeout/,
    );
    expect((err as { hint: string }).hint).toMatch(/rolled back entirely/);
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM orders WHERE total_amount_minor IS NOT NULL OR currency IS NOT NULL`,
    );
    expect(rows[0].n).toBe(0);
    const { rows: ranges } = await client.query(
      `SELECT sum(rows_done)::int AS done, count(checkpoint)::int AS checkpoints FROM parity.backfill_ranges`,
    );
    expect(ranges[0]).toEqual({ done: 0, checkpoints: 0 });
    const { rows: runs } = await client.query(`SELECT state, error FROM parity.backfill_runs WHERE migration = 'timeout'`);
    expect(runs[0].state).toBe('failed');
    expect(runs[0].error).toMatch(/statement timeout/);
    const { rows: batches } = await client.query(`SELECT count(*)::int AS n FROM parity.backfill_batches`);
    expect(batches[0].n).toBe(0);
  });
});
