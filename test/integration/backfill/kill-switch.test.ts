/**
 * The coordinator's kill-backfill flag, end to end through real Redis: while it is on, the backfill
 * pauses with reason kill_switch and commits no batch; switched off, it completes exactly.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { createFlagsReader } from '../../../services/client/flags.js';
import { STACK, createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

let db: TestDatabase;
let client: pg.Client;
let redis: Redis;

beforeAll(async () => {
  db = await createTestDatabase('source', 'bfkill');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  redis = new Redis(STACK.PARITY_REDIS_URL);
  redis.on('error', () => undefined);
});

afterAll(async () => {
  redis?.disconnect();
  await client?.end();
  await db?.drop();
});

it('kill-backfill=on pauses with its reason and commits nothing; off lets it finish exactly', async () => {
  await createOrders(db.url, { rows: 5_000 }, 'orders_kill');
  const name = uniqueName('kill').replace('_', '-');
  const { spec } = makeSpec({
    name,
    sourceUrl: db.url,
    table: 'orders_kill',
    backfill: '  batchSize: 200\n  minBatchSize: 200\n  maxBatchSize: 200',
  });
  const store = createFlagStore({ redis, migration: name });
  await store.set({ values: [['kill-backfill', 'on']], actor: 'test', reason: 'stop the backfill' });
  const flags = createFlagsReader({ redis, migration: name, ttlMs: 50 });
  try {
    const running = runBackfill({ spec, pollMs: 100, killSwitch: async () => (await flags.get()).killBackfill });
    running.catch(() => undefined);
    const url = await waitFor('control URL', async () => {
      const { rows } = await client
        .query(
          `SELECT p.control_url FROM parity.backfill_processes p JOIN parity.backfill_runs r USING (run_id) WHERE r.migration = $1 AND p.control_url IS NOT NULL`,
          [name],
        )
        .catch(() => ({ rows: [] as { control_url: string }[] }));
      return rows[0]?.control_url;
    });
    const status = await waitFor('kill_switch throttle', async () => {
      const s = (await (await fetch(`${url}/status`)).json()) as { state: string; throttle: { reason: string; detail: string }[] };
      return s.state === 'throttled' && s.throttle.some((f) => f.reason === 'kill_switch') ? s : undefined;
    });
    expect(status.throttle.find((f) => f.reason === 'kill_switch')?.detail).toMatch(/kill-backfill flag is on/);
    await new Promise((r) => setTimeout(r, 500));
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM parity.backfill_batches b JOIN parity.backfill_runs r USING (run_id) WHERE r.migration = $1`,
      [name],
    );
    expect(rows[0].n).toBe(0);
    await store.set({ values: [['kill-backfill', 'off']], actor: 'test', reason: 'continue' });
    const result = await running;
    expect(result.outcome).toBe('completed');
    expect(await mismatches(client, 'orders_kill')).toBe(0);
  } finally {
    await flags.close();
  }
});
