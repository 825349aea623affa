/**
 * Where the CDC stream stands, read from the source database's replication slot: the slot's
 * confirmed_flush_lsn is the position up to which every change has been acknowledged by Kafka
 * (the CDC only advances it then). A differing row observed in a snapshot at position P can be
 * judged once the stream has passed P; the contract gate measures the lag the same way.
 */
import type pg from 'pg';
import { sleep as realSleep } from '../core/retry.js';
import { parseLsn, type Lsn } from '../core/lsn.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface SlotState {
  exists: boolean;
  active: boolean;
  confirmed: Lsn | null;
  /** The server's current WAL position when the slot was read. */
  current: Lsn;
}

export async function readSlot(db: Queryable, slot: string): Promise<SlotState> {
  const { rows } = await db.query(
    `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS current,
            s.active, s.confirmed_flush_lsn::text AS confirmed
       FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = $1 AND s.database = current_database()`,
    [slot],
  );
  const r = rows[0];
  const exists = r.active !== null && r.active !== undefined;
  return { exists, active: r.active === true, confirmed: r.confirmed ? parseLsn(r.confirmed) : null, current: parseLsn(r.current) };
}

export interface WaitOutcome {
  /** The slot exists and its confirmed position reached the target position. */
  passed: boolean;
  slotExists: boolean;
  confirmed: Lsn | null;
  waitedMs: number;
}

/**
 * Polls the slot until its confirmed position reaches `position` or `timeoutMs` passes. Without a
 * slot it returns at once with slotExists = false (callers fall back to a plain wait).
 */
export async function waitForStream(
  db: Queryable,
  slot: string,
  position: Lsn,
  timeoutMs: number,
  deps: { sleep?: (ms: number) => Promise<void>; now?: () => number; pollMs?: number } = {},
): Promise<WaitOutcome> {
  const sleep = deps.sleep ?? realSleep;
  const now = deps.now ?? (() => performance.now());
  const started = now();
  for (;;) {
    const s = await readSlot(db, slot);
    if (!s.exists) return { passed: false, slotExists: false, confirmed: null, waitedMs: now() - started };
    if (s.confirmed !== null && s.confirmed >= position)
      return { passed: true, slotExists: true, confirmed: s.confirmed, waitedMs: now() - started };
    if (now() - started >= timeoutMs) return { passed: false, slotExists: true, confirmed: s.confirmed, waitedMs: now() - started };
    await sleep(deps.pollMs ?? 100);
  }
}

export interface LagMeasurement {
  slotExists: boolean;
  active: boolean;
  lagBytes: number | null;
  /** Seconds the stream took to confirm what was written when the measurement began; null if it did not within the limit. */
  lagSeconds: number | null;
}

/**
 * CDC lag as the time the slot needs to confirm everything written before now, measured by
 * polling for at most `limitSeconds` (+ a little). Lag in bytes is read at the start.
 */
export async function measureLag(
  db: Queryable,
  slot: string,
  limitSeconds: number,
  deps: { sleep?: (ms: number) => Promise<void>; now?: () => number } = {},
): Promise<LagMeasurement> {
  const first = await readSlot(db, slot);
  if (!first.exists) return { slotExists: false, active: false, lagBytes: null, lagSeconds: null };
  const lagBytes = first.confirmed === null ? null : Number(first.current > first.confirmed ? first.current - first.confirmed : 0n);
  const waited = await waitForStream(db, slot, first.current, limitSeconds * 1000 + 500, { ...deps, pollMs: 50 });
  return { slotExists: true, active: first.active, lagBytes, lagSeconds: waited.passed ? waited.waitedMs / 1000 : null };
}
