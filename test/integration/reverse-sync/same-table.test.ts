/**
 * The cutover window on a same-table migration (issue 23), against the real PostgreSQL and Redis:
 * after `cutover`, writers write only the new columns and `parity reverse-sync run` (a child process)
 * keeps the old column current. Checked with a per-key sequence: every acknowledged write's value is
 * on the old side at each checkpoint (and reverse segment verification finds no drift), across a
 * SIGKILL of the reverse sync, and across a rollback mid-stream (every write made on the new side
 * before the flip is on the old side when `rollback` returns). Then contract closes the window and
 * the reverse sync stops by itself.
 */
import type { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reverseOrigin } from '../../../services/reverse-sync/names.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { createRedis } from '../../../services/core/clients.js';
import { latestEvidence } from '../../../services/core/control.js';
import { isParityError } from '../../../services/core/errors.js';
import { silentLogger } from '../../../services/core/log.js';
import { cutover, rollback } from '../../../services/reverse-sync/cutover.js';
import { reverseWindowCloser } from '../../../services/reverse-sync/close.js';
import { countUnrepresentable, readPosition, readWindow } from '../../../services/reverse-sync/window-store.js';
import { STACK, createTestDatabase, type TestDatabase } from '../../support/stack.js';
import {
  FlagFollowingWriter,
  ORDERS_REVERSE,
  ordersSpec,
  phasesAtRamp,
  reverseCheck,
  type ReverseProcess,
  sleep,
  startReverseSync,
  waitForApplied,
  type WrittenSpec,
} from './support.js';

const KEYS = Array.from({ length: 60 }, (_, i) => i + 1);
const cohortOf = (key: number): string => (key % 2 === 0 ? 'eu' : 'us');

let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
let loaded: WrittenSpec;
let writer: FlagFollowingWriter;
let sync: ReverseProcess | null = null;

const deps = () => ({ spec: loaded.spec, db: pool, control: pool, redis, logger: silentLogger() });

async function oldSide(): Promise<Map<number, number | null>> {
  const { rows } = await pool.query('SELECT id, total_amount FROM public.orders ORDER BY id');
  return new Map(rows.map((r) => [r.id as number, r.total_amount as number | null]));
}

/** Every key's old column holds its last acknowledged sequence number. */
async function expectNothingLost(): Promise<void> {
  await waitForApplied(pool, loaded);
  const old = await oldSide();
  const missing = KEYS.filter((k) => writer.last.has(k) && old.get(k) !== writer.last.get(k)).map(
    (k) => `${k}: old ${old.get(k)}, last written ${writer.last.get(k)}`,
  );
  expect(missing).toEqual([]);
}

const windowCheck = () => reverseCheck(loaded, { old: pool });

beforeAll(async () => {
  db = await createTestDatabase('source', 'rev');
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  redis = createRedis(STACK.PARITY_REDIS_URL);
  await pool.query(
    `CREATE TABLE public.orders (id int PRIMARY KEY, total_amount int, currency text, total_amount_minor bigint);
     INSERT INTO public.orders SELECT g, 0, 'USD', 0 FROM generate_series(1, ${KEYS.length}) g`,
  );
  loaded = ordersSpec('rev-st', {
    source: { database: db.url, table: 'orders' },
    target: { kind: 'same-table' },
    reverse: { ...ORDERS_REVERSE, unrepresentable: 'record' },
    cohorts: ['eu', 'us'],
  });
  writer = new FlagFollowingWriter(pool, {
    migration: loaded.spec.name,
    keys: KEYS,
    cohortOf,
    writeNew: async (p, key, seq) => {
      await p.query(`UPDATE public.orders SET total_amount_minor = $2, currency = 'USD' WHERE id = $1`, [key, seq]);
    },
    writeOld: async (p, key, seq) => {
      await p.query(`UPDATE public.orders SET total_amount = $2::int, total_amount_minor = $2::bigint, currency = 'USD' WHERE id = $1`, [
        key,
        seq,
      ]);
    },
  });
});

afterAll(async () => {
  await writer?.close();
  if (sync && sync.child.exitCode === null) sync.child.kill('SIGKILL');
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
});

describe('reverse sync, same table', () => {
  it('refuses a cutover before the ramp phase, without a cohort when the spec has cohorts, and while the old column refuses new-side-only inserts', async () => {
    const early = await cutover(deps(), { cohort: 'eu', actor: 'test', reason: 'too early' }).catch((e: unknown) => e);
    expect(isParityError(early) && early.code).toBe('PARITY_PHASE');
    await phasesAtRamp(pool, loaded);
    const noCohort = await cutover(deps(), { actor: 'test', reason: 'which cohort?' }).catch((e: unknown) => e);
    expect(isParityError(noCohort) && noCohort.code).toBe('PARITY_BAD_INPUT');
    // An old column that is NOT NULL without a default would refuse every insert of a new-side-only writer.
    await pool.query('ALTER TABLE public.orders ALTER COLUMN total_amount SET NOT NULL');
    const notNull = await cutover(deps(), { cohort: 'eu', actor: 'test', reason: 'not yet' }).catch((e: unknown) => e);
    expect(isParityError(notNull) && notNull.code).toBe('PARITY_GATE_FAILED');
    expect((notNull as Error).message).toMatch(/orders\.total_amount is NOT NULL without a default/);
    await pool.query('ALTER TABLE public.orders ALTER COLUMN total_amount DROP NOT NULL');
    expect(await readWindow(pool, loaded.spec.control.schema, loaded.spec.name)).toBeNull();
  });

  it('after cutover, writes to the new columns only reach the old column; a checkpoint verifies clean', async () => {
    await cutover(deps(), { cohort: 'eu', actor: 'test', reason: 'cut over eu' });
    await cutover(deps(), { cohort: 'us', actor: 'test', reason: 'cut over us' });
    const flags = await createFlagStore({ redis, migration: loaded.spec.name }).read('eu');
    expect(flags.flags).toMatchObject({ write: 'new', read: 'new', readPercent: 100 });
    sync = await startReverseSync(loaded.path, ['--verify-every', '0']);
    writer.start();
    await sleep(3_000);
    await writer.stop();
    expect(writer.acks.filter((a) => a.path === 'new').length).toBeGreaterThan(50);
    await expectNothingLost();
    const check = await windowCheck();
    expect(check.verification.confirmedDrift).toBe(0);
    // The reverse stream check ran on the applied keys (inside reverse-sync run) and confirmed no drift.
    expect(check.stream?.checked ?? 0).toBeGreaterThan(0);
    expect(check.stream?.confirmedDrift).toBe(0);
    expect(check.clean).toBe(true);
    expect(check.cleanSince).not.toBeNull();
    // Reverse sync's own writes came back through its slot and were dropped by their replication origin.
    const position = await readPosition(pool, loaded.spec.control.schema, loaded.spec.name);
    expect(position?.echoes ?? 0).toBeGreaterThan(0);
    const evidence = await latestEvidence(pool, loaded.spec.control.schema, loaded.spec.name, 'reverse-window');
    expect(evidence?.passed).toBe(true);
  }, 90_000);

  it('a SIGKILL of the reverse sync mid-stream loses nothing', async () => {
    writer.start();
    await sleep(1_500);
    sync!.child.kill('SIGKILL');
    await sync!.exited;
    await sleep(1_500);
    sync = await startReverseSync(loaded.path, ['--verify-every', '0']);
    await sleep(1_500);
    await writer.stop();
    await expectNothingLost();
    const check = await windowCheck();
    expect(check.clean).toBe(true);
    expect(check.stream?.confirmedDrift).toBe(0);
  }, 90_000);

  it('a rollback mid-stream: every write made on the new side before the flip is on the old side when it returns', async () => {
    writer.start();
    await sleep(1_500);
    // Writes acknowledged on the new side before the rollback starts.
    const before = new Map<number, number>();
    for (const a of writer.acks)
      if (a.path === 'new' && cohortOf(a.key) === 'eu') before.set(a.key, Math.max(before.get(a.key) ?? 0, a.seq));
    const result = await rollback(deps(), { cohort: 'eu', actor: 'test', reason: 'roll eu back' });
    expect(result.waitedMs).toBeLessThan(loaded.spec.lock.ttlMs);
    const old = await oldSide();
    const behind = [...before].filter(([k, seq]) => (old.get(k) ?? -1) < seq).map(([k, seq]) => `${k}: old ${old.get(k)} < ${seq}`);
    expect(behind).toEqual([]);
    await sleep(1_000);
    // eu writes now dual-write (the old path); us keeps writing the new side only.
    const after = writer.acks.slice(-200);
    expect(after.some((a) => cohortOf(a.key) === 'eu' && a.path === 'old')).toBe(true);
    expect(after.some((a) => cohortOf(a.key) === 'us' && a.path === 'new')).toBe(true);
    // Forward again while the writer runs.
    await cutover(deps(), { cohort: 'eu', actor: 'test', reason: 'eu forward again' });
    await sleep(1_000);
    await writer.stop();
    await expectNothingLost();
    expect((await windowCheck()).clean).toBe(true);
  }, 90_000);

  it('rows the old shape cannot hold are recorded, and the window is not clean until they are gone', async () => {
    await pool.query(`UPDATE public.orders SET currency = 'EUR', total_amount_minor = 999 WHERE id = 2`);
    await waitForApplied(pool, loaded);
    expect(await countUnrepresentable(pool, loaded.spec.control.schema, loaded.spec.name)).toBe(1);
    const dirty = await windowCheck();
    expect(dirty.clean).toBe(false);
    expect(dirty.cleanSince).toBeNull();
    await pool.query(`UPDATE public.orders SET currency = 'USD', total_amount_minor = 1000 WHERE id = 2`);
    await waitForApplied(pool, loaded);
    expect(await countUnrepresentable(pool, loaded.spec.control.schema, loaded.spec.name)).toBe(0);
    expect((await oldSide()).get(2)).toBe(1000);
    writer.last.set(2, 1000);
    expect((await windowCheck()).clean).toBe(true);
  }, 60_000);

  it('with every cohort rolled back the old side is the source of truth again: nothing is written back over it', async () => {
    await rollback(deps(), { cohort: 'eu', actor: 'test', reason: 'eu back' });
    await rollback(deps(), { cohort: 'us', actor: 'test', reason: 'us back' });
    // A writer that writes the old column only (no dual write): the change reaches the reverse slot
    // (same table), but reverse sync must not put reverse(new) over it.
    await pool.query('UPDATE public.orders SET total_amount = 424242 WHERE id = 1');
    await waitForApplied(pool, loaded);
    expect((await oldSide()).get(1)).toBe(424242);
    await cutover(deps(), { cohort: 'us', actor: 'test', reason: 'us forward again' });
  }, 60_000);

  it('contract closes the window: the reverse sync stops by itself and its slot is dropped', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await reverseWindowCloser(loaded)(client, 'test', 'ddl');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const code = await Promise.race([sync!.exited, sleep(15_000).then(() => 'timeout')]);
    expect(code, sync!.output().slice(-3000)).toBe(0);
    expect((await readWindow(pool, loaded.spec.control.schema, loaded.spec.name))?.state).toBe('closed');
    const { rows } = await pool.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [`${loaded.spec.cdc.slot}_reverse`]);
    expect(rows).toEqual([]);
    // Its replication origin too (PostgreSQL holds a state per origin in max_replication_slots' array).
    const origins = await pool.query('SELECT 1 FROM pg_replication_origin WHERE roname = $1', [reverseOrigin(loaded.spec)]);
    expect(origins.rows).toEqual([]);
    const again = await cutover(deps(), { cohort: 'eu', actor: 'test', reason: 'after contract' }).catch((e: unknown) => e);
    expect(isParityError(again) && again.code).toBe('PARITY_PHASE');
  }, 60_000);
});
