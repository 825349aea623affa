/**
 * `pace.walCompression` against the real server: the batches of a run carry the chosen
 * `wal_compression` (a statement trigger on the table records what each batch's transaction saw),
 * `server` leaves the server's setting, and a role that may not set it gets the server's setting
 * under `auto` (with the reason) and a configuration error naming the grant under a method it insists
 * on, until `GRANT SET ON PARAMETER wal_compression` lets it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { planWalCompression } from '../../../services/backfill/wal-compression.js';
import { ParityError } from '../../../services/core/errors.js';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { createOrders, makeSpec, mismatches } from './fixtures.js';

describe('backfill wal_compression of its own batches', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let server: string;
  const role = uniqueName('bfwal');

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfwal');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    server = (await client.query<{ w: string }>(`SELECT current_setting('wal_compression') AS w`)).rows[0]!.w;
    await client.query(`CREATE ROLE ${role} LOGIN PASSWORD 'bfwal-password'`);
  });

  afterAll(async () => {
    await client?.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await client?.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
    await client?.end();
    await db?.drop();
  });

  /** Backfills a fresh orders table with `walCompression`; the settings its batches' transactions saw. */
  async function batchesSaw(name: string, walCompression: string): Promise<string[]> {
    await client.query('DROP TABLE IF EXISTS public.orders, public.seen');
    await createOrders(db.url, { rows: 3_000 });
    await client.query('CREATE TABLE public.seen (setting text)');
    await client.query(`CREATE OR REPLACE FUNCTION public.record_wal_compression() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO public.seen VALUES (current_setting('wal_compression')); RETURN NULL; END $$`);
    await client.query(
      'CREATE TRIGGER record_wal_compression AFTER UPDATE ON public.orders FOR EACH STATEMENT EXECUTE FUNCTION public.record_wal_compression()',
    );
    const { spec } = makeSpec({
      name,
      sourceUrl: db.url,
      backfill: `  batchSize: 500\n  minBatchSize: 500\n  maxBatchSize: 500\n  throttle:\n    pace: { enabled: false, walCompression: ${walCompression} }`,
    });
    const result = await runBackfill({ spec, pollMs: 100 });
    expect(result).toMatchObject({ outcome: 'completed', rowsDone: 3_000 });
    expect(await mismatches(client)).toBe(0);
    return (await client.query<{ setting: string }>('SELECT setting FROM public.seen')).rows.map((r) => r.setting);
  }

  it('every batch of the run uses the chosen method; server leaves the server setting; auto compresses when the server does not', async () => {
    const lz4 = await batchesSaw('bfwal-lz4', 'lz4');
    expect(lz4.length).toBeGreaterThanOrEqual(6);
    expect(new Set(lz4)).toEqual(new Set(['lz4']));

    const pglz = await batchesSaw('bfwal-pglz', 'pglz');
    expect(new Set(pglz)).toEqual(new Set(['pglz']));

    const kept = await batchesSaw('bfwal-server', 'server');
    expect(new Set(kept)).toEqual(new Set([server]));

    // auto: the server's own setting when it compresses already, else lz4 for this superuser.
    const auto = await batchesSaw('bfwal-auto', 'auto');
    expect(new Set(auto)).toEqual(new Set([server === 'off' ? 'lz4' : server]));
  });

  it('a role that may not set it: auto says why and sets nothing, a method insists with the grant to give; the grant lets it', async () => {
    const url = new URL(db.url);
    url.username = role;
    url.password = 'bfwal-password';
    const limited = new pg.Client({ connectionString: url.toString() });
    await limited.connect();
    try {
      const auto = await planWalCompression(limited, 'auto');
      if (server === 'off') {
        expect(auto).toMatchObject({ method: null, server: 'off' });
        expect(auto.why).toMatch(/permission denied to set parameter "wal_compression".*GRANT SET ON PARAMETER wal_compression/);
      } else {
        expect(auto).toEqual({ method: null, server });
      }
      expect(await planWalCompression(limited, 'server')).toEqual({ method: null, server });

      const refused = await planWalCompression(limited, 'lz4').then(
        () => null,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(ParityError);
      expect((refused as ParityError).code).toBe('PARITY_BAD_INPUT');
      expect((refused as ParityError).message).toMatch(/pace\.walCompression is lz4 but the server refused it: permission denied/);
      expect((refused as ParityError).hint).toMatch(/GRANT SET ON PARAMETER wal_compression/);
      // The refusal left the connection usable, outside any transaction.
      expect((await limited.query(`SELECT current_setting('wal_compression') AS w`)).rows[0].w).toBe(server);

      await client.query(`GRANT SET ON PARAMETER wal_compression TO ${role}`);
      expect(await planWalCompression(limited, 'lz4')).toEqual({ method: 'lz4', server });
      if (server === 'off') expect(await planWalCompression(limited, 'auto')).toEqual({ method: 'lz4', server });
    } finally {
      await client.query(`REVOKE SET ON PARAMETER wal_compression FROM ${role}`).catch(() => undefined);
      await limited.end();
    }
  });
});
