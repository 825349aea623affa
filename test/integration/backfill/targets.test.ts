/**
 * The three target kinds and the control database's placement: a shadow table (INSERT ... ON
 * CONFLICT in the source database), another database on the second cluster (read, then upsert, with
 * a composite key and types that must survive exactly), and a same-table backfill whose control
 * schema lives in another database (checkpoint committed after the batch). Also fencing: a stale
 * token commits nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { issueToken } from '../../../services/core/fence.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

describe('backfill targets', () => {
  let source: TestDatabase;
  let target: TestDatabase;
  let src: pg.Client;
  let tgt: pg.Client;

  beforeAll(async () => {
    source = await createTestDatabase('source', 'bftargets');
    target = await createTestDatabase('target', 'bftargets');
    src = new pg.Client({ connectionString: source.url });
    tgt = new pg.Client({ connectionString: target.url });
    await src.connect();
    await tgt.connect();
  });

  afterAll(async () => {
    await src?.end();
    await tgt?.end();
    await source?.drop();
    await target?.drop();
  });

  it('shadow table: exact, and a second run writes nothing', async () => {
    await createOrders(source.url, { rows: 30_000 }, 'orders_shadow_src');
    await src.query(`CREATE TABLE public.orders_v2 (id bigint PRIMARY KEY, amount_minor bigint NOT NULL, currency text NOT NULL)`);
    const { spec } = makeSpec({
      name: 'shadow',
      sourceUrl: source.url,
      table: 'orders_shadow_src',
      target: '  kind: shadow-table\n  table: orders_v2',
      mapping: { amount_minor: 'total_amount::bigint', currency: "'USD'::text" },
      backfill: '  batchSize: 2000\n  minBatchSize: 500',
    });
    const first = await runBackfill({ spec, controlServer: false, workers: 2 });
    expect(first).toMatchObject({ outcome: 'completed', rowsDone: 30_000, rowsChanged: 30_000 });
    const diff = async () =>
      (
        await src.query(`SELECT count(*)::int AS n FROM public.orders_shadow_src o FULL JOIN public.orders_v2 v USING (id)
                          WHERE o.id IS NULL OR v.id IS NULL OR (v.amount_minor, v.currency) IS DISTINCT FROM (o.total_amount::bigint, 'USD')`)
      ).rows[0].n;
    expect(await diff()).toBe(0);
    const again = await runBackfill({ spec, controlServer: false, rerun: true });
    expect(again).toMatchObject({ outcome: 'completed', how: 'created', rowsDone: 30_000, rowsChanged: 0 });
    expect(await diff()).toBe(0);
  });

  it('another database: composite key, exact values of awkward types, idempotent rerun', async () => {
    await src.query(`CREATE TABLE public.invoices (
      tenant_id integer NOT NULL, invoice_no bigint NOT NULL, total numeric(14,4) NOT NULL, issued_at timestamptz NOT NULL,
      meta jsonb, blob bytea, note text, ref uuid NOT NULL, PRIMARY KEY (tenant_id, invoice_no))`);
    await src.query(`INSERT INTO public.invoices
      SELECT t, n, (t * 1000 + n) / 7.0, timestamptz '2024-01-01 00:00:00.123456+00' + make_interval(secs => n * 1.000001),
             CASE WHEN n % 5 = 0 THEN NULL ELSE jsonb_build_object('n', n, 'q', 'it''s "quoted"') END,
             CASE WHEN n % 3 = 0 THEN NULL ELSE decode(md5(n::text), 'hex') END,
             CASE WHEN n % 4 = 0 THEN NULL WHEN n % 4 = 1 THEN '' ELSE 'line ' || n || E'\\n{x,"y"}' END,
             md5(t::text || '-' || n::text)::uuid
        FROM generate_series(1, 7) t, generate_series(1, 3000) n`);
    await src.query('ANALYZE public.invoices');
    await tgt.query(`CREATE TABLE public.invoices (
      tenant_id integer NOT NULL, invoice_no bigint NOT NULL, total_minor bigint NOT NULL, total numeric(14,4) NOT NULL, issued_at timestamptz NOT NULL,
      meta jsonb, blob bytea, note text, ref uuid NOT NULL, PRIMARY KEY (tenant_id, invoice_no))`);
    const { spec } = makeSpec({
      name: 'cross-db',
      sourceUrl: source.url,
      table: 'invoices',
      key: ['tenant_id', 'invoice_no'],
      target: `  kind: other-database\n  database: ${target.url}\n  table: invoices`,
      mapping: {
        total_minor: 'round(total * 100)::bigint',
        total: 'total',
        issued_at: 'issued_at',
        meta: 'meta',
        blob: 'blob',
        note: 'note',
        ref: 'ref',
      },
      backfill: '  batchSize: 1000\n  minBatchSize: 500\n  maxBatchSize: 4000',
    });
    const result = await runBackfill({ spec, controlServer: false, workers: 2 });
    expect(result).toMatchObject({ outcome: 'completed', rowsDone: 21_000, rowsChanged: 21_000 });
    const dump = async (c: pg.Client, extra: string) =>
      (
        await c.query(
          `SELECT tenant_id, invoice_no, ${extra} total::text, issued_at::text, meta::text, encode(blob, 'hex') AS blob, note, ref::text FROM public.invoices ORDER BY 1, 2`,
        )
      ).rows;
    const want = await dump(src, `round(total * 100)::bigint::text AS total_minor,`);
    const got = await dump(tgt, `total_minor::text,`);
    expect(got).toHaveLength(21_000);
    expect(got).toEqual(want);
    // The checkpoints live in the target database (the default control database) with the upserts.
    const audit = await auditLog(tgt, result.runId);
    expect(audit.gaps).toBe(0);
    expect(audit.redone).toBe(0);
    const again = await runBackfill({ spec, controlServer: false, rerun: true });
    expect(again.rowsChanged).toBe(0);
  });

  it('same table with the control schema in another database; fencing: a stale token commits nothing', async () => {
    await createOrders(source.url, { rows: 40_000 }, 'orders');
    const control = `  database: ${target.url}\n  schema: parity_ctl`;
    const { spec } = makeSpec({
      name: 'fenced',
      sourceUrl: source.url,
      control,
      backfill: '  batchSize: 200\n  minBatchSize: 200\n  maxBatchSize: 200',
    });
    // Tokens come from the database the batches write (as the coordinator issues them), not the control database.
    const token = await issueToken(src, 'parity_ctl', 'fenced', 'test-holder-1');

    // A token that is not the latest: refused before anything is written.
    const early = await runBackfill({ spec, controlServer: false, fenceToken: token + 5n }).catch((e: unknown) => e);
    expect(early).toMatchObject({ code: 'PARITY_STALE_FENCE' });
    expect(await mismatches(src)).toBe(40_000);

    // Holding the current token; mid-run the lock passes to another holder.
    const running = runBackfill({ spec, controlServer: false, fenceToken: token });
    running.catch(() => undefined);
    const done = async () =>
      (await tgt.query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity_ctl.backfill_ranges`).catch(() => ({ rows: [{ n: 0 }] })))
        .rows[0].n as number;
    await waitFor('progress', async () => (await done()) > 2_000);
    const newer = await issueToken(src, 'parity_ctl', 'fenced', 'test-holder-2');
    // issueToken waited for the batch holding the fence row (in the source, with the data); from here
    // no data of the old holder commits. Its checkpoint lives in the other database and commits just
    // after the data, so the checkpoint count may still catch up with the data written at handover.
    const written = 40_000 - (await mismatches(src));
    const err = await running.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PARITY_STALE_FENCE' });
    expect(40_000 - (await mismatches(src))).toBe(written);
    expect(await done()).toBe(written);

    // The new holder resumes the same run and completes it; evidence goes to the control database.
    const finished = await runBackfill({ spec, controlServer: false, fenceToken: newer });
    expect(finished).toMatchObject({ outcome: 'completed', how: 'resumed', rowsDone: 40_000 });
    expect(await mismatches(src)).toBe(0);
    const audit = await auditLog(tgt, finished.runId, 'parity_ctl');
    // Checkpoints follow the data commit here: at most the batch in flight at a crash is redone.
    expect(audit.gaps).toBe(0);
    expect(audit.redone).toBeLessThanOrEqual(1);
    const { rows } = await tgt.query(`SELECT value FROM parity_ctl.evidence WHERE migration = 'fenced' AND kind = 'backfill'`);
    expect(rows).toHaveLength(1);
    expect(rows[0].value).toMatchObject({ complete: true, rows: 40_000 });
  });
});
