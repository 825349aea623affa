/**
 * The start-up check of what each backfilled row costs (hot-check.ts), against the real catalog:
 * indexes covering written columns (plain, expression, partial), the table's fillfactor,
 * wal_compression, and replication slots holding back more WAL than max_wal_size.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { writeCostFindings, writeCostWarnings } from '../../../services/backfill/hot-check.js';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { createOrders } from './fixtures.js';

describe('backfill write cost findings', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfcost');
    await createOrders(db.url, { rows: 10 });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('finds indexes on written columns and fillfactor 100, and says nothing once they are gone', async () => {
    await client.query('CREATE INDEX orders_currency ON public.orders (currency)');
    await client.query('CREATE INDEX orders_minor_expr ON public.orders ((total_amount_minor * 2))');
    await client.query('CREATE INDEX orders_customer_partial ON public.orders (customer_id) WHERE currency IS NULL');
    await client.query('CREATE INDEX orders_customer ON public.orders (customer_id)');
    const f = await writeCostFindings(client, 'public', 'orders', ['total_amount_minor', 'currency']);
    expect(f.indexesOnWrittenColumns).toEqual(['orders_currency', 'orders_customer_partial', 'orders_minor_expr']);
    expect(f.fillfactor).toBe(100);
    const { rows } = await client.query(`SELECT current_setting('wal_compression') AS w`);
    expect(f.walCompression).toBe(rows[0].w);
    const warnings = writeCostWarnings(f, 'public.orders');
    expect(warnings[0]).toMatch(
      /^index\(es\) orders_currency, orders_customer_partial, orders_minor_expr cover columns the backfill writes: every backfilled row of public\.orders is a non-HOT update/,
    );
    expect(warnings[1]).toMatch(/^public\.orders has fillfactor 100/);

    await client.query('DROP INDEX orders_currency, orders_minor_expr, orders_customer_partial');
    await client.query('ALTER TABLE public.orders SET (fillfactor = 90)');
    // The shared cluster may hold other tests' lagging slots: those are the next test's subject.
    const g = { ...(await writeCostFindings(client, 'public', 'orders', ['total_amount_minor', 'currency'])), slotsHoldingWal: [] };
    expect(g).toMatchObject({ indexesOnWrittenColumns: [], fillfactor: 90 });
    expect(writeCostWarnings({ ...g, walCompression: 'lz4' }, 'public.orders')).toEqual([]);
    expect(writeCostWarnings({ ...g, walCompression: 'off' }, 'public.orders')).toEqual([expect.stringMatching(/^wal_compression is off/)]);
    // WAL segments: the server's min_wal_size and checkpoint_timeout, against a paced run's WAL budget.
    const { rows: wal } = await client.query(
      `SELECT pg_size_bytes(current_setting('min_wal_size'))::float8 AS m, extract(epoch FROM current_setting('checkpoint_timeout')::interval)::float8 AS t`,
    );
    expect(g).toMatchObject({ minWalSizeBytes: wal[0].m, checkpointTimeoutSeconds: wal[0].t });
    const small = { ...g, walCompression: 'lz4', minWalSizeBytes: 80 * 1048576, checkpointTimeoutSeconds: 300 };
    expect(writeCostWarnings(small, 'public.orders', 2 * 1048576)).toEqual([
      expect.stringMatching(
        /^min_wal_size is 80 MiB but at 2\.0 MiB\/s the backfill writes 600 MiB of WAL per checkpoint_timeout \(300 s\)/,
      ),
    ]);
    expect(writeCostWarnings({ ...small, minWalSizeBytes: 1024 * 1048576 }, 'public.orders', 2 * 1048576)).toEqual([]);
    expect(writeCostWarnings(small, 'public.orders')).toEqual([]); // unpaced: no budget to compare with
  });

  it('names the replication slots that hold back more WAL than max_wal_size', async () => {
    const slot = uniqueName('bfcost');
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    try {
      const f = await writeCostFindings(client, 'public', 'orders', ['total_amount_minor', 'currency']);
      const { rows } = await client.query(`SELECT pg_size_bytes(current_setting('max_wal_size'))::float8 AS m`);
      expect(f.maxWalSizeBytes).toBe(rows[0].m);
      // Just created, it holds back almost nothing; whatever is listed holds more than max_wal_size.
      expect(f.slotsHoldingWal.map((x) => x.name)).not.toContain(slot);
      for (const x of f.slotsHoldingWal) expect(x.bytes).toBeGreaterThan(f.maxWalSizeBytes);
      const { rows: over } = await client.query(
        `SELECT count(*)::int AS n FROM pg_replication_slots
          WHERE pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn) > pg_size_bytes(current_setting('max_wal_size'))`,
      );
      expect(f.slotsHoldingWal.length).toBeGreaterThanOrEqual(over[0].n);
      const clean = { ...f, walCompression: 'lz4', fillfactor: 90, indexesOnWrittenColumns: [], maxWalSizeBytes: 2 ** 30 };
      expect(writeCostWarnings({ ...clean, slotsHoldingWal: [] }, 'public.orders')).toEqual([]);
      expect(writeCostWarnings({ ...clean, slotsHoldingWal: [{ name: 'stale_cdc', bytes: 52.5 * 2 ** 30 }] }, 'public.orders')).toEqual([
        expect.stringMatching(
          /^replication slot\(s\) stale_cdc \(52\.5 GiB\) hold back more WAL than max_wal_size \(1\.0 GiB\): no WAL segment .* can be recycled/,
        ),
      ]);
    } finally {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    }
  });
});
