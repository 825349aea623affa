/**
 * The reverse window's control state, in the control schema of the old representation's database
 * (where reverse sync writes and where its fences are checked): whether the window is open, which
 * cohorts are cut over, and reverse sync's applied position, which is written in the same transaction
 * as the rows it describes.
 */
import type pg from 'pg';
import { ensureControlTables, tableExists } from '../core/control.js';
import { issueToken } from '../core/fence.js';
import { type Lsn, formatLsn, parseLsn } from '../core/lsn.js';
import type { StreamCounts } from '../core/reverse-stream-counts.js';
import { ident } from '../core/sql.js';

export type { StreamCounts };

type Queryable = Pick<pg.ClientBase, 'query'>;

const t = (schema: string, table: string): string => `${ident(schema)}.${ident(table)}`;

export async function ensureWindowTables(db: Queryable, schema: string): Promise<void> {
  // The newest table: its presence means every other one exists too.
  if (await tableExists(db, schema, 'reverse_stream')) return;
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${t(schema, 'reverse_windows')} (
       migration text PRIMARY KEY,
       state text NOT NULL,
       slot text NOT NULL,
       opened_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       opened_lsn pg_lsn,
       closed_at timestamptz,
       closed_by text,
       paused_repairs boolean NOT NULL DEFAULT false
     )`,
    `CREATE TABLE IF NOT EXISTS ${t(schema, 'reverse_cohorts')} (
       migration text NOT NULL,
       cohort text NOT NULL,
       state text NOT NULL,
       token bigint NOT NULL,
       flip_lsn pg_lsn,
       changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       PRIMARY KEY (migration, cohort)
     )`,
    `CREATE TABLE IF NOT EXISTS ${t(schema, 'reverse_positions')} (
       migration text PRIMARY KEY,
       commit_lsn pg_lsn NOT NULL,
       ordinal integer NOT NULL,
       applied bigint NOT NULL DEFAULT 0,
       echoes bigint NOT NULL DEFAULT 0,
       updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    `CREATE TABLE IF NOT EXISTS ${t(schema, 'reverse_unrepresentable')} (
       migration text NOT NULL,
       key jsonb NOT NULL,
       commit_lsn pg_lsn NOT NULL,
       recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       PRIMARY KEY (migration, key)
     )`,
    `CREATE TABLE IF NOT EXISTS ${t(schema, 'reverse_stream')} (
       migration text PRIMARY KEY,
       checked bigint NOT NULL DEFAULT 0,
       matched bigint NOT NULL DEFAULT 0,
       superseded bigint NOT NULL DEFAULT 0,
       skipped bigint NOT NULL DEFAULT 0,
       confirmed_drift bigint NOT NULL DEFAULT 0,
       in_flight integer NOT NULL DEFAULT 0,
       updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
  ]);
}

export type WindowState = 'open' | 'closed';
export type CohortState = 'cut-over' | 'rolled-back';

export interface WindowRow {
  state: WindowState;
  slot: string;
  openedAt: Date;
  openedLsn: Lsn | null;
  closedAt: Date | null;
  /** The cutover turned the migration-wide kill-repair flag on (and a rollback of the last cohort turns it off). */
  pausedRepairs: boolean;
}

export async function readWindow(db: Queryable, schema: string, migration: string, lock = false): Promise<WindowRow | null> {
  await ensureWindowTables(db, schema);
  const { rows } = await db.query(
    `SELECT state, slot, opened_at, opened_lsn::text AS opened_lsn, closed_at, paused_repairs FROM ${t(schema, 'reverse_windows')} WHERE migration = $1${lock ? ' FOR SHARE' : ''}`,
    [migration],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    state: r.state,
    slot: r.slot,
    openedAt: r.opened_at,
    openedLsn: r.opened_lsn ? parseLsn(r.opened_lsn) : null,
    closedAt: r.closed_at,
    pausedRepairs: r.paused_repairs,
  };
}

/** Records whether the window paused forward repairs (kill-repair) on its own account. */
export async function setPausedRepairs(db: Queryable, schema: string, migration: string, paused: boolean): Promise<void> {
  await db.query(`UPDATE ${t(schema, 'reverse_windows')} SET paused_repairs = $2 WHERE migration = $1`, [migration, paused]);
}

/** Opens the window (or keeps it open); a closed window stays closed: contract was its end. */
export async function openWindow(db: Queryable, schema: string, migration: string, slot: string, lsn: Lsn): Promise<void> {
  await db.query(
    `INSERT INTO ${t(schema, 'reverse_windows')} (migration, state, slot, opened_lsn) VALUES ($1, 'open', $2, $3::pg_lsn)
     ON CONFLICT (migration) DO NOTHING`,
    [migration, slot, formatLsn(lsn)],
  );
}

export interface CohortRow {
  cohort: string;
  state: CohortState;
  token: bigint;
  flipLsn: Lsn | null;
  changedAt: Date;
}

export async function readCohorts(db: Queryable, schema: string, migration: string): Promise<CohortRow[]> {
  await ensureWindowTables(db, schema);
  const { rows } = await db.query(
    `SELECT cohort, state, token, flip_lsn::text AS flip_lsn, changed_at FROM ${t(schema, 'reverse_cohorts')} WHERE migration = $1 ORDER BY cohort`,
    [migration],
  );
  return rows.map((r) => ({
    cohort: r.cohort,
    state: r.state,
    token: BigInt(r.token),
    flipLsn: r.flip_lsn ? parseLsn(r.flip_lsn) : null,
    changedAt: r.changed_at,
  }));
}

export async function setCohort(
  db: Queryable,
  schema: string,
  migration: string,
  cohort: string,
  state: CohortState,
  token: bigint,
  flipLsn: Lsn | null,
): Promise<void> {
  await db.query(
    `INSERT INTO ${t(schema, 'reverse_cohorts')} (migration, cohort, state, token, flip_lsn) VALUES ($1, $2, $3, $4, $5::pg_lsn)
     ON CONFLICT (migration, cohort) DO UPDATE SET state = EXCLUDED.state, token = EXCLUDED.token, flip_lsn = EXCLUDED.flip_lsn, changed_at = clock_timestamp()`,
    [migration, cohort, state, token.toString(), flipLsn === null ? null : formatLsn(flipLsn)],
  );
}

/**
 * Closes the window in the caller's transaction (the contract step's fenced one) and takes a new
 * reverse fencing token there, so no reverse write still carrying the old one can commit after it.
 */
export async function closeWindow(db: Queryable, schema: string, migration: string, scope: string, actor: string): Promise<boolean> {
  // No window table: no cutover ever ran here, and the contract step creates nothing in its transaction.
  if (!(await tableExists(db, schema, 'reverse_windows'))) return false;
  const { rowCount } = await db.query(
    `UPDATE ${t(schema, 'reverse_windows')} SET state = 'closed', closed_at = clock_timestamp(), closed_by = $2 WHERE migration = $1 AND state = 'open'`,
    [migration, actor],
  );
  if ((rowCount ?? 0) > 0) await issueToken(db, schema, scope, `contract:${actor}`);
  return (rowCount ?? 0) > 0;
}

export interface AppliedPosition {
  commitLsn: Lsn;
  ordinal: number;
  applied: number;
  echoes: number;
  updatedAt: Date | null;
}

export async function readPosition(db: Queryable, schema: string, migration: string): Promise<AppliedPosition | null> {
  await ensureWindowTables(db, schema);
  const { rows } = await db.query(
    `SELECT commit_lsn::text AS commit_lsn, ordinal, applied, echoes, updated_at FROM ${t(schema, 'reverse_positions')} WHERE migration = $1`,
    [migration],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    commitLsn: parseLsn(r.commit_lsn),
    ordinal: r.ordinal,
    applied: Number(r.applied),
    echoes: Number(r.echoes),
    updatedAt: r.updated_at,
  };
}

/** Moves the applied position forward (never back), inside the apply transaction. */
export async function advancePosition(
  db: Queryable,
  schema: string,
  migration: string,
  position: { commitLsn: Lsn; ordinal: number },
  counts: { applied: number; echoes: number },
): Promise<void> {
  await db.query(
    `INSERT INTO ${t(schema, 'reverse_positions')} AS p (migration, commit_lsn, ordinal, applied, echoes) VALUES ($1, $2::pg_lsn, $3, $4, $5)
     ON CONFLICT (migration) DO UPDATE SET commit_lsn = GREATEST(p.commit_lsn, EXCLUDED.commit_lsn),
       ordinal = CASE WHEN EXCLUDED.commit_lsn >= p.commit_lsn THEN EXCLUDED.ordinal ELSE p.ordinal END,
       applied = p.applied + EXCLUDED.applied, echoes = p.echoes + EXCLUDED.echoes, updated_at = clock_timestamp()`,
    [migration, formatLsn(position.commitLsn), position.ordinal, counts.applied, counts.echoes],
  );
}

export function cohortsTable(schema: string): string {
  return t(schema, 'reverse_cohorts');
}

export function unrepresentableTable(schema: string): string {
  return t(schema, 'reverse_unrepresentable');
}

export async function countUnrepresentable(db: Queryable, schema: string, migration: string): Promise<number> {
  await ensureWindowTables(db, schema);
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${unrepresentableTable(schema)} WHERE migration = $1`, [migration]);
  return rows[0]?.n ?? 0;
}

/** Is this key (its values as text, in key order) recorded as unrepresentable? */
export async function isUnrepresentable(db: Queryable, schema: string, migration: string, key: string[]): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT 1 FROM ${unrepresentableTable(schema)} AS u WHERE u.migration = $1 AND ARRAY(SELECT jsonb_array_elements_text(u.key)) = $2::text[]`,
    [migration, key],
  );
  return rows.length > 0;
}

/** Adds one chunk's verdicts to the stored counts (outside the apply transaction: counts, not state). */
export async function addStreamCounts(
  db: Queryable,
  schema: string,
  migration: string,
  add: { checked: number; matched: number; superseded: number; skipped: number; confirmedDrift: number },
  inFlight: number,
): Promise<void> {
  await db.query(
    `INSERT INTO ${t(schema, 'reverse_stream')} AS s (migration, checked, matched, superseded, skipped, confirmed_drift, in_flight)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (migration) DO UPDATE SET checked = s.checked + EXCLUDED.checked, matched = s.matched + EXCLUDED.matched,
       superseded = s.superseded + EXCLUDED.superseded, skipped = s.skipped + EXCLUDED.skipped,
       confirmed_drift = s.confirmed_drift + EXCLUDED.confirmed_drift, in_flight = EXCLUDED.in_flight, updated_at = clock_timestamp()`,
    [migration, add.checked, add.matched, add.superseded, add.skipped, add.confirmedDrift, inFlight],
  );
}

export async function readStreamCounts(db: Queryable, schema: string, migration: string): Promise<StreamCounts | null> {
  await ensureWindowTables(db, schema);
  const { rows } = await db.query(
    `SELECT checked, matched, superseded, skipped, confirmed_drift, in_flight, updated_at FROM ${t(schema, 'reverse_stream')} WHERE migration = $1`,
    [migration],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    checked: Number(r.checked),
    matched: Number(r.matched),
    superseded: Number(r.superseded),
    skipped: Number(r.skipped),
    confirmedDrift: Number(r.confirmed_drift),
    inFlight: Number(r.in_flight),
    updatedAt: (r.updated_at as Date).toISOString(),
  };
}
