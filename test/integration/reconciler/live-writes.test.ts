/**
 * Verification while the data changes. A writer updates and inserts source rows and applies each
 * change to the target a little later, the way CDC would; injected drift is made beforehand on keys
 * the writer never touches. Verification must confirm exactly the injected drift: rows caught
 * between the two writes are re-checked after the stream has passed them and never reported as
 * confirmed drift. With a replication slot, "passed" means the slot's confirmed_flush_lsn; a slot
 * that never advances must leave every difference in flight, injected or not.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../../services/core/retry.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, keys, keysWithStatus, query, verify } from './fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;
const ROWS = 20_000;
const INJECTED = [10_007, 12_345, 15_000, 19_999, 20_000];

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_live_s'), createTestDatabase('target', 'rc_live_t')]);
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
});

async function seed(table: string): Promise<void> {
  await exec(
    src.url,
    `CREATE TABLE ${table} (id int PRIMARY KEY, v int, note text)`,
    `INSERT INTO ${table} SELECT g, g, 'n' || g FROM generate_series(1, ${ROWS}) g`,
    `ANALYZE ${table}`,
  );
  await exec(
    tgt.url,
    `CREATE TABLE ${table} (id int PRIMARY KEY, v int, note text)`,
    `INSERT INTO ${table} SELECT g, g, 'n' || g FROM generate_series(1, ${ROWS}) g`,
    `UPDATE ${table} SET v = -1 WHERE id IN (${INJECTED.join(', ')})`,
    `ANALYZE ${table}`,
  );
}

interface Writer {
  stop(): Promise<{ updates: number }>;
}

/**
 * Changes source rows among ids 1..10000 (and inserts new ones above the table), then applies the
 * same change to the target `lagMs` later. With `slot`, the slot is advanced to the source commit
 * position once the target has the change, as a CDC pipeline acknowledges.
 */
async function startWriter(table: string, lagMs: number, slot?: string): Promise<Writer> {
  const s = new pg.Client({ connectionString: src.url });
  const t = new pg.Client({ connectionString: tgt.url });
  await Promise.all([s.connect(), t.connect()]);
  let running = true;
  let updates = 0;
  let nextId = ROWS + 1000;
  const loop = (async () => {
    while (running) {
      const ids = Array.from({ length: 5 }, () => 1 + Math.floor(Math.random() * 10_000));
      const v = Math.floor(Math.random() * 1e9);
      const insertId = nextId++;
      await s.query('BEGIN');
      await s.query(`UPDATE ${table} SET v = $2 WHERE id = ANY($1)`, [ids, v]);
      await s.query(`INSERT INTO ${table} VALUES ($1, $1, 'new')`, [insertId]);
      const { rows } = await s.query('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      await s.query('COMMIT');
      await sleep(lagMs);
      await t.query('BEGIN');
      await t.query(`UPDATE ${table} SET v = $2 WHERE id = ANY($1)`, [ids, v]);
      await t.query(`INSERT INTO ${table} VALUES ($1, $1, 'new')`, [insertId]);
      await t.query('COMMIT');
      if (slot) await s.query(`SELECT pg_replication_slot_advance($1, $2::pg_lsn)`, [slot, rows[0].lsn]);
      updates += 6;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await Promise.all([s.end(), t.end()]);
      return { updates };
    },
  };
}

describe('a writer running during verification', () => {
  it('without a slot: no false confirmed drift, the injected drift is found', async () => {
    const table = uniqueName('live');
    await seed(table);
    const writer = await startWriter(table, 40);
    let outcome;
    try {
      await sleep(300);
      outcome = await verify(
        buildSpec({
          name: 'live-noslot',
          source: { database: src.url, table },
          target: { kind: 'other-database', database: tgt.url, table },
          key: ['id'],
          mapping: { v: 'v', note: 'note' },
          reconcile: { segmentRows: 2000, bisectionThreshold: 100 },
        }),
        { recheckWaitMs: 400, maxRechecks: 4 },
      );
    } finally {
      const { updates } = await writer.stop();
      expect(updates).toBeGreaterThan(50);
    }
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(keys(...INJECTED));
    // The writer's changes were caught between source and target and resolved on recheck.
    expect(outcome.result.resolved).toBeGreaterThan(0);
    const inFlight = await keysWithStatus(tgt.url, outcome.result.runId, 'in-flight');
    expect(inFlight.filter((k) => INJECTED.map(String).includes(k))).toEqual([]);
  });

  it('with a replication slot: confirmed only after the slot passed the snapshot; a stuck slot confirms nothing', async () => {
    const table = uniqueName('live');
    await seed(table);
    const slot = uniqueName('rc_slot');
    await query(src.url, `SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    const writer = await startWriter(table, 40, slot);
    const input = {
      source: { database: src.url, table },
      target: { kind: 'other-database' as const, database: tgt.url, table },
      key: ['id'],
      mapping: { v: 'v', note: 'note' },
      reconcile: { segmentRows: 2000, bisectionThreshold: 100, retryWindowMs: 3000 },
      cdc: { slot },
    };
    let outcome;
    try {
      await sleep(300);
      outcome = await verify(buildSpec({ name: 'live-slot', ...input }), { recheckWaitMs: 200, maxRechecks: 4 });
    } finally {
      await writer.stop();
    }
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(keys(...INJECTED));
    const reasons = await query<{ reason: string }>(
      tgt.url,
      `SELECT DISTINCT reason FROM parity.verify_mismatches WHERE run_id = $1 AND status = 'confirmed'`,
      [outcome.result.runId],
    );
    expect(reasons.length).toBeGreaterThan(0);
    for (const r of reasons) expect(r.reason).toMatch(/^unchanged after the CDC stream passed \w+\/\w+$/);

    // Now the slot stays where it is while new WAL is written: nothing may be confirmed.
    await exec(src.url, `UPDATE ${table} SET note = note WHERE id = 1`);
    const stuck = await verify(buildSpec({ name: 'live-slot-stuck', ...input, reconcile: { ...input.reconcile, retryWindowMs: 500 } }), {
      recheckWaitMs: 100,
      maxRechecks: 2,
    });
    expect(stuck.result.confirmedDrift).toBe(0);
    expect(await keysWithStatus(tgt.url, stuck.result.runId, 'in-flight')).toEqual(keys(...INJECTED));
    expect(stuck.result.passed).toBe(false);
  });
});
