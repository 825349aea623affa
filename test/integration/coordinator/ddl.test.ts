/**
 * DDL guardrails against real PostgreSQL: a blocked ALTER gives up after lock_timeout instead of
 * queueing behind a long transaction; a failed concurrent index build leaves no invalid index;
 * constraints go in NOT VALID then VALIDATE; a superseded holder's DDL never runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Redis } from 'ioredis';
import { acquireLock, type Lease } from '../../../services/coordinator/lock.js';
import { runDdl, type DdlSettings } from '../../../services/coordinator/ddl.js';
import { planPhase, type DdlStep } from '../../../services/coordinator/ddl-statement.js';
import { ddlTable } from '../../../services/coordinator/ddl-record.js';
import { issueToken } from '../../../services/core/fence.js';
import type { ParityError } from '../../../services/core/errors.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { STACK, createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { prefixTracker } from './redis-keys.js';

const SCHEMA = 'parity';
let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
const prefixes = prefixTracker('ddl');

beforeAll(async () => {
  db = await createTestDatabase('target', 'ddl');
  pool = new pg.Pool({ connectionString: db.url, max: 8 });
  pool.on('error', () => undefined);
  redis = new Redis(STACK.PARITY_REDIS_URL);
  // A restart of the shared Redis by another suite shows as retries, not as unhandled events.
  redis.on('error', () => undefined);
});

afterAll(async () => {
  if (redis) await prefixes.cleanup(redis);
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
});

async function lease(migration: string): Promise<Lease> {
  return acquireLock({
    redis,
    fenceDb: pool,
    fenceSchema: SCHEMA,
    migration,
    keyPrefix: prefixes.next(),
    settings: { ttlMs: 15_000, renewEveryMs: 5_000, driftMarginMs: 1_000 },
  });
}

function runner(
  l: Lease,
  migration: string,
  settings: Partial<DdlSettings> = {},
  metrics = createMetricsRegistry({ defaultMetrics: false }),
) {
  return (steps: DdlStep[], phase: 'expand' | 'enforce' = 'expand') =>
    runDdl(
      {
        db: pool,
        schema: SCHEMA,
        lease: l,
        migration,
        actor: 'test',
        settings: { lockTimeoutMs: 300, statementTimeoutMs: 30_000, retries: 2, ...settings },
        retryDelay: { initialDelayMs: 50, maxDelayMs: 200 },
        metrics,
      },
      planPhase(phase, steps),
    );
}

async function failure(promise: Promise<unknown>): Promise<ParityError> {
  try {
    await promise;
  } catch (err) {
    return err as ParityError;
  }
  throw new Error('expected the DDL to fail');
}

async function columns(table: string): Promise<string[]> {
  const { rows } = await pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [
    table,
  ]);
  return rows.map((r: { column_name: string }) => r.column_name);
}

describe('DDL guardrails', () => {
  it('gives up after lock_timeout instead of queueing behind a long transaction, naming the blocker', async () => {
    await pool.query('CREATE TABLE blocked (id bigint PRIMARY KEY)');
    const blocker = await pool.connect();
    const l = await lease('blocked');
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT count(*) FROM blocked');
      const blockerPid = (await blocker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const err = await failure(runner(l, 'blocked', {}, metrics)([{ name: 'add note', sql: 'ALTER TABLE blocked ADD COLUMN note text' }]));
      expect(err.code).toBe('PARITY_LOCK_TIMEOUT');
      expect(err.message).toContain('gave up after 3 attempt(s)');
      expect(err.message).toContain(`pid ${blockerPid}`);
      expect(err.message).toContain('lock_timeout 300 ms');
      // It did not wait for the blocker: the blocker's transaction is still open now.
      expect(
        (await blocker.query(`SELECT xact_start IS NOT NULL AS open FROM pg_stat_activity WHERE pid = pg_backend_pid()`)).rows[0].open,
      ).toBe(true);
      // Nothing is left queued on the table (a queued ALTER would block every later reader).
      const waiting = await pool.query(`SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'blocked'::regclass AND NOT granted`);
      expect(waiting.rows[0].n).toBe(0);
      expect(await columns('blocked')).toEqual(['id']);
      expect(await metrics.getSingleMetricAsString('parity_ddl_lock_timeouts_total')).toMatch(/ 3$/m);
      const { rows } = await pool.query(`SELECT status, attempts FROM ${ddlTable(SCHEMA)} WHERE migration = 'blocked'`);
      expect(rows).toEqual([{ status: 'failed', attempts: 3 }]);
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    // Once the blocker is gone, the same run applies it.
    const [result] = await runner(l, 'blocked')([{ name: 'add note', sql: 'ALTER TABLE blocked ADD COLUMN note text' }]);
    expect(result).toMatchObject({ status: 'applied', attempts: 1 });
    expect(await columns('blocked')).toEqual(['id', 'note']);
    await l.release();
  });

  it('retries a lock timeout with backoff and succeeds when the blocker finishes', async () => {
    await pool.query('CREATE TABLE busy (id bigint PRIMARY KEY)');
    const blocker = await pool.connect();
    const l = await lease('busy');
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM busy');
    setTimeout(() => void blocker.query('COMMIT').finally(() => blocker.release()), 800);
    const [result] = await runner(l, 'busy', { retries: 20 })([{ name: 'add flag', sql: 'ALTER TABLE busy ADD COLUMN flag boolean' }]);
    expect(result?.status).toBe('applied');
    expect(result?.attempts).toBeGreaterThan(1);
    expect(await columns('busy')).toEqual(['id', 'flag']);
    await l.release();
  });

  it('leaves no invalid index after a failed concurrent build, and rebuilds over an invalid leftover', async () => {
    await pool.query('CREATE TABLE dup (id bigint PRIMARY KEY, ref text)');
    await pool.query(`INSERT INTO dup SELECT g, 'r' || (g % 50) FROM generate_series(1, 100) g`);
    const invalid = async () =>
      (
        await pool.query(
          `SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'dup_ref'`,
        )
      ).rows;
    const l = await lease('dup');
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    // Written without CONCURRENTLY: parity builds it concurrently anyway.
    const err = await failure(runner(l, 'dup', {}, metrics)([{ name: 'unique ref', sql: 'CREATE UNIQUE INDEX dup_ref ON dup (ref)' }]));
    expect(err.code).toBe('PARITY_DDL_FAILED');
    expect(err.message).toMatch(/could not create unique index|duplicate/);
    expect(err.message).toContain('the invalid index dup_ref it left was dropped');
    expect(await invalid()).toEqual([]);

    // A build that failed outside parity left an invalid index; IF NOT EXISTS alone would skip it.
    await pool.query('CREATE UNIQUE INDEX CONCURRENTLY dup_ref ON dup (ref)').catch(() => undefined);
    expect(await invalid()).toEqual([{ relname: 'dup_ref', indisvalid: false }]);
    await pool.query(`UPDATE dup SET ref = 'r' || id`);
    const [result] = await runner(
      l,
      'dup',
      {},
      metrics,
    )([{ name: 'unique ref', sql: 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dup_ref ON dup (ref)' }]);
    expect(result?.status).toBe('applied');
    expect(await invalid()).toEqual([{ relname: 'dup_ref', indisvalid: true }]);
    expect(await metrics.getSingleMetricAsString('parity_ddl_invalid_indexes_dropped_total')).toMatch(/ 2$/m);
    await l.release();
  });

  it('adds a constraint NOT VALID, then validates it, and skips steps already applied', async () => {
    await pool.query('CREATE TABLE amounts (id bigint PRIMARY KEY, amount integer)');
    await pool.query('INSERT INTO amounts SELECT g, g FROM generate_series(1, 50) g');
    const l = await lease('amounts');
    const run = runner(l, 'amounts');
    const steps = [{ name: 'amount positive', sql: 'ALTER TABLE amounts ADD CONSTRAINT amounts_positive CHECK (amount > 0)' }];
    const results = await run(steps, 'enforce');
    expect(results.map((r) => [r.name, r.sql, r.status])).toEqual([
      ['amount positive', 'ALTER TABLE amounts ADD CONSTRAINT amounts_positive CHECK (amount > 0) NOT VALID', 'applied'],
      ['amount positive (validate)', 'ALTER TABLE amounts VALIDATE CONSTRAINT amounts_positive', 'applied'],
    ]);
    const { rows } = await pool.query(`SELECT convalidated FROM pg_constraint WHERE conname = 'amounts_positive'`);
    expect(rows).toEqual([{ convalidated: true }]);
    expect((await run(steps, 'enforce')).map((r) => r.status)).toEqual(['skipped', 'skipped']);
    await l.release();
  });

  it('never runs DDL for a holder whose token was superseded', async () => {
    await pool.query('CREATE TABLE fenced (id bigint PRIMARY KEY)');
    const l = await lease('fenced');
    // Another holder got a newer token (e.g. after this one's lease expired during a pause).
    await issueToken(pool, SCHEMA, 'fenced', 'someone-else');
    const err = await failure(runner(l, 'fenced')([{ name: 'add x', sql: 'ALTER TABLE fenced ADD COLUMN x int' }]));
    expect(err.code).toBe('PARITY_STALE_FENCE');
    const idx = await failure(runner(l, 'fenced')([{ name: 'index id', sql: 'CREATE INDEX CONCURRENTLY fenced_x ON fenced (id)' }]));
    expect(idx.code).toBe('PARITY_STALE_FENCE');
    expect(await columns('fenced')).toEqual(['id']);
    expect((await pool.query(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'fenced_x'`)).rows[0].n).toBe(0);
    await l.release();
  });
});
