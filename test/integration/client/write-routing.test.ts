/**
 * The application client routes writes by the `write` flag (issue 23), against the real Redis and
 * PostgreSQL: an application's writer (createDualWriter over a flags reader with pub/sub) dual-writes
 * before cutover, writes only the new table once `parity cutover` set write=new, and writes the old
 * table again as soon as `parity rollback` flipped the flag back (with reverse sync running, as the
 * rollback needs it to pass the flip). The old table's `writer` column tells the application's own
 * writes from reverse sync's (which only rebuilds `total_amount`).
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDualWriter } from '../../../services/client/dual-write.js';
import { createFlagsReader, type FlagsReader } from '../../../services/client/flags.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { cutover, rollback } from '../../../services/reverse-sync/cutover.js';
import { reverseOrigin } from '../../../services/reverse-sync/names.js';
import { ReverseSync } from '../../../services/reverse-sync/reverse-sync.js';
import { STACK, createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { ORDERS_REVERSE, ordersSpec, phasesAtRamp, sleep, waitForApplied, type WrittenSpec } from '../reverse-sync/support.js';

let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
let subscriber: Redis;
let loaded: WrittenSpec;
let flags: FlagsReader;
let applyClient: pg.Client;
let sync: ReverseSync | null = null;
let syncRun: Promise<void> | null = null;

const deps = () => ({ spec: loaded.spec, db: pool, control: pool, redis, logger: silentLogger() });

/** The application's write of order `id` with amount `amount`: old table (marked as its own) and/or new table, as routed. */
function applicationWriter() {
  const sides: string[] = [];
  const writer = createDualWriter({ flags: () => flags.get() });
  return {
    sides,
    write: (id: number, amount: number) =>
      writer.write({
        old: async () => {
          sides.push('old');
          await pool.query(
            `INSERT INTO public.orders (id, total_amount, writer) VALUES ($1, $2, 'app')
             ON CONFLICT (id) DO UPDATE SET total_amount = EXCLUDED.total_amount, writer = 'app'`,
            [id, amount],
          );
        },
        new: async () => {
          sides.push('new');
          await pool.query(
            `INSERT INTO public.orders_v2 (id, total_amount_minor, currency) VALUES ($1, $2, 'USD')
             ON CONFLICT (id) DO UPDATE SET total_amount_minor = EXCLUDED.total_amount_minor, currency = 'USD'`,
            [id, amount],
          );
        },
      }),
  };
}

async function oldRow(id: number): Promise<{ total_amount: number; writer: string | null } | undefined> {
  return (await pool.query('SELECT total_amount, writer FROM public.orders WHERE id = $1', [id])).rows[0];
}

async function newRow(id: number): Promise<string | undefined> {
  return (await pool.query('SELECT total_amount_minor::text AS v FROM public.orders_v2 WHERE id = $1', [id])).rows[0]?.v;
}

/** Waits until the flags reader sees `write` (the coordinator's change reaches it through pub/sub). */
async function readerSees(write: 'old' | 'new'): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await flags.get()).write !== write) {
    if (Date.now() > deadline) throw new Error(`the flags reader never saw write=${write}`);
    await sleep(20);
  }
}

beforeAll(async () => {
  db = await createTestDatabase('source', 'cliw');
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  redis = new Redis(STACK.PARITY_REDIS_URL);
  subscriber = new Redis(STACK.PARITY_REDIS_URL);
  await pool.query(
    `CREATE TABLE public.orders (id int PRIMARY KEY, total_amount int, writer text);
     CREATE TABLE public.orders_v2 (id int PRIMARY KEY, total_amount_minor bigint, currency text)`,
  );
  loaded = ordersSpec('cli-wr', {
    source: { database: db.url, table: 'orders' },
    target: { kind: 'shadow-table', table: 'orders_v2' },
    reverse: { mapping: ORDERS_REVERSE.mapping },
  });
  // A long TTL: only the pub/sub announcement can make the reader see a flip in time.
  flags = createFlagsReader({ redis, subscriber, migration: loaded.spec.name, ttlMs: 60_000 });
  await flags.start();
  applyClient = new pg.Client({ connectionString: db.url });
  await applyClient.connect();
});

afterAll(async () => {
  await sync?.stop();
  await syncRun?.catch(() => undefined);
  await applyClient?.end().catch(() => undefined);
  await pool
    ?.query('SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1', [reverseOrigin(loaded.spec)])
    .catch(() => undefined);
  await flags?.close();
  redis?.disconnect();
  subscriber?.disconnect();
  await pool?.end();
  await db?.drop();
});

describe('the client routes writes by the write flag', () => {
  it('before cutover (write=old, dual-write on) writes the old table and the new one', async () => {
    await createFlagStore({ redis, migration: loaded.spec.name }).set({
      values: [['dual-write', 'on']],
      actor: 'test',
      reason: 'dual writes',
    });
    const deadline = Date.now() + 10_000;
    while (!(await flags.get()).dualWrite && Date.now() < deadline) await sleep(20);
    const app = applicationWriter();
    await app.write(1, 100);
    expect(app.sides).toEqual(['old', 'new']);
    expect(await oldRow(1)).toEqual({ total_amount: 100, writer: 'app' });
    expect(await newRow(1)).toBe('100');
  });

  it('after cutover (write=new) writes only the new table; reverse sync brings it to the old one', async () => {
    await phasesAtRamp(pool, loaded);
    await cutover(deps(), { actor: 'test', reason: 'cut over' });
    await readerSees('new');
    const app = applicationWriter();
    await app.write(2, 200);
    await app.write(1, 101);
    expect(app.sides).toEqual(['new', 'new']);
    // Reverse sync is not running yet: the old table has none of it.
    expect(await oldRow(2)).toBeUndefined();
    expect(await oldRow(1)).toEqual({ total_amount: 100, writer: 'app' });
    sync = new ReverseSync({
      spec: loaded.spec,
      databaseUrl: db.url,
      pool,
      control: pool,
      applyClient,
      logger: silentLogger(),
      registry: createMetricsRegistry({ defaultMetrics: false }),
    });
    syncRun = sync.run();
    await waitForApplied(pool, loaded);
    // Reverse sync's rows: total_amount rebuilt, the application's own marker untouched (new row: none).
    expect(await oldRow(2)).toEqual({ total_amount: 200, writer: null });
    expect(await oldRow(1)).toEqual({ total_amount: 101, writer: 'app' });
  }, 60_000);

  it("a rollback flip moves the client's writes back to the old table (dual-writing again)", async () => {
    await rollback(deps(), { actor: 'test', reason: 'roll back', flagsTtlMs: 100 });
    await readerSees('old');
    const app = applicationWriter();
    await app.write(3, 300);
    await app.write(2, 201);
    expect(app.sides).toEqual(['old', 'new', 'old', 'new']);
    expect(await oldRow(3)).toEqual({ total_amount: 300, writer: 'app' });
    expect(await oldRow(2)).toEqual({ total_amount: 201, writer: 'app' });
    expect(await newRow(3)).toBe('300');
  }, 60_000);
});
