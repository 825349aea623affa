/**
 * No confirmed drift from lag alone (issue 20). Without a CDC slot nothing tells how far behind the
 * target is: a writer changes source rows and applies each change to the target 1.5 s later, while
 * verification runs. Rows caught in between must never be confirmed: they are rechecked with
 * backoff until they have stayed unchanged for `reconcile.settleMs` (then confirmed: the injected
 * drift only), are found equal (resolved), or are still changing at `reconcile.recheckBoundMs` and
 * are reported in flight, unsettled, and listed. Repair leaves the unsettled keys alone.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../../services/core/retry.js';
import { repairRun } from '../../../services/reconciler/repair.js';
import { buildReport } from '../../../services/reconciler/report.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, keys, keysWithStatus, query, verify, withRepairContext } from './fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;
const ROWS = 6_000;
const INJECTED = [4_001, 4_500, 5_999];
/** Rows the writer changes again and again: they never stay unchanged long enough to settle. */
const HOT = [7, 8, 9];
const LAG_MS = 1_500;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_lag_s'), createTestDatabase('target', 'rc_lag_t')]);
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
});

/** Source writes every 150 ms (hot rows plus random rows below 4000); each reaches the target LAG_MS later. */
async function startLaggingWriter(table: string): Promise<{ stop(): Promise<{ applied: number; touched: Set<number> }> }> {
  const s = new pg.Client({ connectionString: src.url });
  const t = new pg.Client({ connectionString: tgt.url });
  await Promise.all([s.connect(), t.connect()]);
  const queue: Array<{ at: number; ids: number[]; v: number }> = [];
  const touched = new Set<number>();
  let running = true;
  let applied = 0;
  const writes = (async () => {
    while (running) {
      const ids = [...HOT, ...Array.from({ length: 3 }, () => 100 + Math.floor(Math.random() * 3_900))];
      const v = Math.floor(Math.random() * 1e9);
      await s.query(`UPDATE ${table} SET v = $2 WHERE id = ANY($1)`, [ids, v]);
      for (const id of ids) touched.add(id);
      queue.push({ at: Date.now() + LAG_MS, ids, v });
      await sleep(150);
    }
  })();
  const applier = (async () => {
    // Keeps applying after the source writer stopped, until the queue is empty.
    while (running || queue.length > 0) {
      const next = queue[0];
      if (next && next.at <= Date.now()) {
        queue.shift();
        await t.query(`UPDATE ${table} SET v = $2 WHERE id = ANY($1)`, [next.ids, next.v]);
        applied++;
        continue;
      }
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await Promise.all([writes, applier]);
      await Promise.all([s.end(), t.end()]);
      return { applied, touched };
    },
  };
}

describe('a target applying writes 1.5 s late, without a CDC slot', () => {
  it('confirms only the injected drift, and lists what never settled as in flight (unsettled)', async () => {
    const table = uniqueName('lag');
    await exec(
      src.url,
      `CREATE TABLE ${table} (id int PRIMARY KEY, v int)`,
      `INSERT INTO ${table} SELECT g, g FROM generate_series(1, ${ROWS}) g`,
      `ANALYZE ${table}`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE ${table} (id int PRIMARY KEY, v int)`,
      `INSERT INTO ${table} SELECT g, g FROM generate_series(1, ${ROWS}) g`,
      `UPDATE ${table} SET v = -1 WHERE id IN (${INJECTED.join(', ')})`,
      `ANALYZE ${table}`,
    );
    const loaded = buildSpec({
      name: 'lag-noslot',
      source: { database: src.url, table },
      target: { kind: 'other-database', database: tgt.url, table },
      key: ['id'],
      mapping: { v: 'v' },
      cdc: { slot: 'lag_noslot_absent' },
      // Settled = unchanged for 3 s (twice the lag); given up on after 6 s.
      reconcile: { segmentRows: 2000, bisectionThreshold: 100, settleMs: 3_000, recheckBoundMs: 6_000 },
    });
    const writer = await startLaggingWriter(table);
    let outcome;
    let touched: Set<number>;
    try {
      // Let changes pile up in the 1.5 s gap before verification looks.
      await sleep(LAG_MS);
      outcome = await verify(loaded, { recheckWaitMs: null });
    } finally {
      ({ touched } = await writer.stop());
    }
    const runId = outcome.result.runId;
    // Nothing confirmed but the injected drift: no false key from lag.
    expect(await keysWithStatus(tgt.url, runId, 'confirmed')).toEqual(keys(...INJECTED));
    expect(outcome.result.confirmedKeys).toBe(INJECTED.length);
    // The hot rows never settled: in flight, unsettled, listed with their reason.
    const inFlight = await query<{ key: string[]; unsettled: boolean; reason: string }>(
      tgt.url,
      `SELECT key, unsettled, reason FROM parity.verify_mismatches WHERE run_id = $1 AND status = 'in-flight'`,
      [runId],
    );
    expect(inFlight.length).toBeGreaterThan(0);
    for (const m of inFlight) {
      expect(touched!.has(Number(m.key[0]))).toBe(true);
      expect(m.unsettled).toBe(true);
      expect(m.reason).toMatch(/^unsettled: /);
    }
    expect(outcome.result.unsettledKeys).toBe(inFlight.length);
    expect(outcome.result.inFlightKeys).toBe(inFlight.length);
    expect(outcome.result.passed).toBe(false);
    // Rows the writer touched once were resolved on recheck, never confirmed.
    expect(outcome.result.resolved).toBeGreaterThan(0);
    // The report lists them as in flight (unsettled), apart from the confirmed drift.
    const control = new pg.Client({ connectionString: tgt.url });
    await control.connect();
    const report = await buildReport(control, loaded).finally(() => control.end());
    expect(report.confirmedDrift).toBe(INJECTED.length);
    expect(report.inFlightUnsettled).toBe(inFlight.length);
    expect(report.samples.keys.filter((k) => k.status === 'in flight (unsettled)').length).toBe(
      Math.min(inFlight.length, Math.max(0, report.samples.limit - INJECTED.length)),
    );
    // Repair acts on the confirmed keys only.
    const dry = await withRepairContext(loaded, (ctx) => repairRun(ctx, runId, { apply: false, token: null }, 'test'));
    expect(dry.planned).toBe(INJECTED.length);
  });
});
