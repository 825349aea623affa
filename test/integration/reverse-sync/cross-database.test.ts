/**
 * The cutover window on a cross-database migration (issue 23), against the stack's two PostgreSQL
 * clusters and Redis: the old table lives in a database of the source cluster, the new one in a
 * database of the target cluster. After `cutover` (the reverse slot is created on the target),
 * writers insert, update and delete rows of the target table only, and `parity reverse-sync run`
 * (a child process) keeps the source table current: every key holds its last acknowledged sequence
 * number, across a SIGKILL of the reverse sync and a rollback mid-stream (its flip marker goes into
 * the target's WAL), and reverse segment verification (target as the source side, the old table as
 * the target side) finds no drift. Rows the old shape cannot hold are recorded, not written. Then the
 * coordinator's contract step closes the window in the source database and the reverse sync stops
 * and drops its slot on the target.
 */
import type { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCoordinator } from '../../../services/coordinator/coordinator.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { phasesTable } from '../../../services/coordinator/phase-store.js';
import { createRedis } from '../../../services/core/clients.js';
import { silentLogger } from '../../../services/core/log.js';
import { reverseWindowCloser } from '../../../services/reverse-sync/close.js';
import { cutover, rollback } from '../../../services/reverse-sync/cutover.js';
import { countUnrepresentable, readPosition, readWindow } from '../../../services/reverse-sync/window-store.js';
import { STACK, createTestDatabase, type TestDatabase } from '../../support/stack.js';
import {
  deletes,
  FlagFollowingWriter,
  oldTableDifferences,
  ordersSpec,
  ordersTableSql,
  ordersV2TableSql,
  phasesAtRamp,
  reverseCheck,
  type ReverseProcess,
  sleep,
  startReverseSync,
  upsertNew,
  upsertOld,
  waitForApplied,
  type WrittenSpec,
} from './support.js';

/** Existing keys, plus keys that only the writers create (inserted into the target table after cutover). */
const KEYS = [...Array.from({ length: 30 }, (_, i) => i + 1), ...Array.from({ length: 20 }, (_, i) => 1001 + i)];

let sourceDb: TestDatabase;
let targetDb: TestDatabase;
let source: pg.Pool;
let target: pg.Pool;
let redis: Redis;
let loaded: WrittenSpec;
let writer: FlagFollowingWriter;
let sync: ReverseProcess | null = null;

const flagStore = () => createFlagStore({ redis, migration: loaded.spec.name });
// The window lives in the source database; the reverse slot and the control tables (its default) in the target.
const deps = () => ({ spec: loaded.spec, db: source, newDb: target, control: target, redis, logger: silentLogger() });
const applied = () => waitForApplied(source, loaded, 30_000, target);

/** Old table = for each key, absent when its last write deleted it, else its last sequence number. */
async function expectNothingLost(): Promise<void> {
  await applied();
  expect(await oldTableDifferences(source, writer, KEYS)).toEqual([]);
}

async function reverseClean(): Promise<boolean> {
  const check = await reverseCheck(loaded, { old: source, control: target, newSide: target });
  expect(check.verification.confirmedDrift).toBe(0);
  // The reverse stream check ran on the applied keys (inside reverse-sync run) and confirmed no drift.
  expect(check.stream?.checked ?? 0).toBeGreaterThan(0);
  expect(check.stream?.confirmedDrift).toBe(0);
  expect(check.lagBytes).not.toBeNull();
  return check.clean;
}

const upsertTarget = (key: number, seq: number): Promise<void> => upsertNew(target, key, seq);

beforeAll(async () => {
  sourceDb = await createTestDatabase('source', 'revxs');
  targetDb = await createTestDatabase('target', 'revxt');
  source = new pg.Pool({ connectionString: sourceDb.url, max: 6 });
  target = new pg.Pool({ connectionString: targetDb.url, max: 6 });
  // drop() ends the databases WITH (FORCE): a connection still open then (a checked-out client the
  // writer's last query left) must not surface as an unhandled error at teardown.
  for (const pool of [source, target]) pool.on('error', () => undefined);
  redis = createRedis(STACK.PARITY_REDIS_URL);
  await source.query(ordersTableSql(30));
  await target.query(ordersV2TableSql(30));
  loaded = ordersSpec('rev-xd', {
    source: { database: sourceDb.url, table: 'orders' },
    target: { kind: 'other-database', database: targetDb.url, table: 'orders_v2' },
    ddl: { contract: [{ name: 'mark-contracted', sql: "COMMENT ON TABLE public.orders_v2 IS 'contracted'" }] },
    lock: { ttlMs: 6_000, renewEveryMs: 2_000, driftMarginMs: 500 },
  });
  writer = new FlagFollowingWriter(source, {
    migration: loaded.spec.name,
    keys: KEYS,
    cohortOf: () => '',
    writeNew: async (_p, key, seq) => upsertTarget(key, seq),
    // Before cutover (and after a rollback) applications write the old table and dual-write the target.
    writeOld: async (_p, key, seq) => {
      await upsertOld(source, key, seq);
      await upsertTarget(key, seq);
    },
  });
});

afterAll(async () => {
  await writer?.close();
  if (sync && sync.child.exitCode === null) sync.child.kill('SIGKILL');
  redis?.disconnect();
  await source?.end();
  await target?.end();
  await sourceDb?.drop();
  await targetDb?.drop();
});

describe('reverse sync, cross-database', () => {
  it('writes on the target reach the source table, across a SIGKILL of the reverse sync; the old side verifies clean', async () => {
    await phasesAtRamp(target, loaded);
    await cutover(deps(), { actor: 'test', reason: 'cut over' });
    // The reverse slot is the target's: the stream of the new representation.
    const slot = `${loaded.spec.cdc.slot}_reverse`;
    expect((await target.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows).toHaveLength(1);
    expect((await source.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows).toHaveLength(0);
    expect((await flagStore().read()).flags).toMatchObject({ write: 'new', killRepair: true });
    sync = await startReverseSync(loaded.path, ['--verify-every', '0']);
    writer.start();
    await sleep(2_000);
    sync.child.kill('SIGKILL');
    await sync.exited;
    await sleep(1_000);
    sync = await startReverseSync(loaded.path, ['--verify-every', '0']);
    await sleep(1_500);
    await writer.stop();
    expect(writer.acks.filter((a) => a.path === 'new' && deletes(a.seq)).length).toBeGreaterThan(0);
    expect(writer.acks.filter((a) => a.key > 1000).length).toBeGreaterThan(0);
    await expectNothingLost();
    expect(await reverseClean()).toBe(true);
    expect((await readPosition(source, loaded.spec.control.schema, loaded.spec.name))?.applied).toBeGreaterThan(0);
  }, 90_000);

  it('a rollback mid-stream loses nothing, and the cutover can be made again', async () => {
    writer.start();
    await sleep(1_500);
    const before = new Map<number, number>();
    for (const a of writer.acks) if (a.path === 'new') before.set(a.key, a.seq);
    await rollback(deps(), { actor: 'test', reason: 'roll back' });
    expect((await flagStore().read()).flags).toMatchObject({ write: 'old', killRepair: false });
    const { rows } = await source.query('SELECT id, total_amount FROM public.orders');
    const old = new Map(rows.map((r) => [r.id as number, r.total_amount as number]));
    await sleep(200);
    const deletedSince = (k: number, seq: number): boolean => writer.acks.some((a) => a.key === k && a.seq >= seq && deletes(a.seq));
    const behind = [...before]
      .filter(([k, seq]) => (old.has(k) ? (old.get(k) as number) < seq : !deletedSince(k, seq)))
      .map(([k, seq]) => `${k}: old ${old.get(k)} < ${seq}`);
    expect(behind).toEqual([]);
    await sleep(800);
    expect(writer.acks.slice(-50).some((a) => a.path === 'old')).toBe(true);
    await cutover(deps(), { actor: 'test', reason: 'forward again' });
    await sleep(1_000);
    await writer.stop();
    await expectNothingLost();
    expect(await reverseClean()).toBe(true);
  }, 90_000);

  it('a row the old shape cannot hold is recorded, not written; it clears when the row is representable again', async () => {
    // An upsert, not an UPDATE: the writer's last write to key 3 may have deleted its row.
    const setKey3 = (amount: number, currency: string) =>
      target.query(
        `INSERT INTO public.orders_v2 (id, total_amount_minor, currency) VALUES (3, $1, $2)
         ON CONFLICT (id) DO UPDATE SET total_amount_minor = EXCLUDED.total_amount_minor, currency = EXCLUDED.currency`,
        [amount, currency],
      );
    await setKey3(777, 'EUR');
    await applied();
    const schema = loaded.spec.control.schema;
    expect(await countUnrepresentable(source, schema, loaded.spec.name)).toBe(1);
    const oldRow = (await source.query('SELECT total_amount FROM public.orders WHERE id = 3')).rows[0]?.total_amount;
    expect(oldRow).not.toBe(777);
    await setKey3(778, 'USD');
    await applied();
    expect(await countUnrepresentable(source, schema, loaded.spec.name)).toBe(0);
    expect((await source.query('SELECT total_amount FROM public.orders WHERE id = 3')).rows[0]?.total_amount).toBe(778);
    writer.last.set(3, 778);
  }, 60_000);

  it("the coordinator's contract step closes the window in the source database; the reverse sync stops and drops its target slot", async () => {
    await target.query(`UPDATE ${phasesTable(loaded.spec.control.schema)} SET phase = 'contract' WHERE migration = $1`, [loaded.spec.name]);
    const coordinator = createCoordinator({
      spec: loaded.spec,
      control: target,
      target,
      redis,
      logger: silentLogger(),
      // The contract criteria are judged elsewhere (reverse-window-gate.test.ts); here the gate passes.
      contractGate: async () => [{ name: 'stub', passed: true, detail: 'passes' }],
      closeReverseWindow: reverseWindowCloser(loaded),
    });
    const result = await coordinator.runPhaseDdl({ phase: 'contract', actor: 'test' });
    expect(result.actions.map((a) => a.status)).toEqual(['applied']);
    expect((await readWindow(source, loaded.spec.control.schema, loaded.spec.name))?.state).toBe('closed');
    const code = await Promise.race([sync!.exited, sleep(15_000).then(() => 'timeout')]);
    expect(code, sync!.output().slice(-3000)).toBe(0);
    const slot = `${loaded.spec.cdc.slot}_reverse`;
    expect((await target.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows).toEqual([]);
  }, 60_000);
});
