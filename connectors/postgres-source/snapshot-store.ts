/**
 * Snapshot checkpoints in the control schema. `cdc_snapshot_tables` tracks the initial snapshot per
 * table of a slot; `cdc_snapshot_requests` holds on-demand (DBLog watermark) snapshots, queued by
 * `parity cdc snapshot` and worked through by the running connector, chunk by chunk. A checkpoint
 * (last key emitted) is written only after Kafka acknowledged every row up to it.
 */
import type pg from 'pg';
import { ensureControlTables } from '../../services/core/control.js';
import { ident } from '../../services/core/sql.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export function snapshotTablesTable(schema: string): string {
  return `${ident(schema)}.cdc_snapshot_tables`;
}

export function snapshotRequestsTable(schema: string): string {
  return `${ident(schema)}.cdc_snapshot_requests`;
}

export function cdcStatusTable(schema: string): string {
  return `${ident(schema)}.cdc_status`;
}

export async function ensureSnapshotTables(db: Queryable, schema: string): Promise<void> {
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${snapshotTablesTable(schema)} (
       slot text NOT NULL,
       table_name text NOT NULL,
       state text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'handed-over')),
       last_key jsonb,
       rows bigint NOT NULL DEFAULT 0,
       consistent_lsn text,
       updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       PRIMARY KEY (slot, table_name)
     )`,
    `CREATE TABLE IF NOT EXISTS ${snapshotRequestsTable(schema)} (
       id bigserial PRIMARY KEY,
       slot text NOT NULL,
       table_name text NOT NULL,
       state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
       last_key jsonb,
       rows bigint NOT NULL DEFAULT 0,
       chunks bigint NOT NULL DEFAULT 0,
       chunk_rows integer NOT NULL,
       reason text NOT NULL DEFAULT '',
       error text,
       requested_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       started_at timestamptz,
       finished_at timestamptz
     )`,
    `CREATE INDEX IF NOT EXISTS cdc_snapshot_requests_slot ON ${snapshotRequestsTable(schema)} (slot, state, id)`,
    `CREATE TABLE IF NOT EXISTS ${cdcStatusTable(schema)} (
       slot text PRIMARY KEY,
       pid integer NOT NULL,
       host text NOT NULL,
       state text NOT NULL,
       reason text,
       durable_lsn text,
       lag_bytes bigint,
       lag_seconds double precision,
       events bigint NOT NULL DEFAULT 0,
       updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
  ]);
}

export interface SnapshotTableState {
  tableName: string;
  state: 'pending' | 'running' | 'done' | 'handed-over';
  lastKey: string[] | null;
  rows: number;
}

export async function initialSnapshotState(db: Queryable, schema: string, slot: string): Promise<SnapshotTableState[]> {
  const { rows } = await db.query(
    `SELECT table_name, state, last_key, rows FROM ${snapshotTablesTable(schema)} WHERE slot = $1 ORDER BY table_name`,
    [slot],
  );
  return rows.map((r) => ({ tableName: r.table_name, state: r.state, lastKey: r.last_key, rows: Number(r.rows) }));
}

/** Records the tables about to be snapshotted, before the slot exists (see snapshot.ts). */
export async function planInitialSnapshot(db: Queryable, schema: string, slot: string, tables: string[]): Promise<void> {
  await db.query(`DELETE FROM ${snapshotTablesTable(schema)} WHERE slot = $1`, [slot]);
  for (const t of tables) {
    await db.query(`INSERT INTO ${snapshotTablesTable(schema)} (slot, table_name, state) VALUES ($1, $2, 'pending')`, [slot, t]);
  }
}

export async function checkpointInitial(
  db: Queryable,
  schema: string,
  slot: string,
  table: string,
  update: { state: SnapshotTableState['state']; lastKey?: string[] | null; rows?: number; consistentLsn?: string },
): Promise<void> {
  await db.query(
    `UPDATE ${snapshotTablesTable(schema)}
        SET state = $3, last_key = COALESCE($4::jsonb, last_key), rows = COALESCE($5, rows),
            consistent_lsn = COALESCE($6, consistent_lsn), updated_at = clock_timestamp()
      WHERE slot = $1 AND table_name = $2`,
    [
      slot,
      table,
      update.state,
      update.lastKey === undefined || update.lastKey === null ? null : JSON.stringify(update.lastKey),
      update.rows ?? null,
      update.consistentLsn ?? null,
    ],
  );
}

export interface SnapshotRequest {
  id: number;
  tableName: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  lastKey: string[] | null;
  rows: number;
  chunks: number;
  chunkRows: number;
  reason: string;
  error: string | null;
}

function toRequest(r: Record<string, unknown>): SnapshotRequest {
  return {
    id: Number(r.id),
    tableName: String(r.table_name),
    state: r.state as SnapshotRequest['state'],
    lastKey: (r.last_key as string[] | null) ?? null,
    rows: Number(r.rows),
    chunks: Number(r.chunks),
    chunkRows: Number(r.chunk_rows),
    reason: String(r.reason ?? ''),
    error: (r.error as string | null) ?? null,
  };
}

export async function enqueueSnapshot(
  db: Queryable,
  schema: string,
  slot: string,
  table: string,
  chunkRows: number,
  reason: string,
  lastKey: string[] | null = null,
): Promise<SnapshotRequest> {
  const { rows } = await db.query(
    `INSERT INTO ${snapshotRequestsTable(schema)} (slot, table_name, state, chunk_rows, reason, last_key) VALUES ($1, $2, 'queued', $3, $4, $5::jsonb) RETURNING *`,
    [slot, table, chunkRows, reason, lastKey ? JSON.stringify(lastKey) : null],
  );
  return toRequest(rows[0]);
}

/** The request the connector works on: a running one first (resumed after a restart), else the oldest queued. */
export async function nextSnapshotRequest(db: Queryable, schema: string, slot: string): Promise<SnapshotRequest | null> {
  const { rows } = await db.query(
    `SELECT * FROM ${snapshotRequestsTable(schema)} WHERE slot = $1 AND state IN ('running', 'queued')
      ORDER BY (state = 'running') DESC, id LIMIT 1`,
    [slot],
  );
  return rows[0] ? toRequest(rows[0]) : null;
}

export async function getSnapshotRequest(db: Queryable, schema: string, id: number): Promise<SnapshotRequest | null> {
  const { rows } = await db.query(`SELECT * FROM ${snapshotRequestsTable(schema)} WHERE id = $1`, [id]);
  return rows[0] ? toRequest(rows[0]) : null;
}

export async function updateSnapshotRequest(
  db: Queryable,
  schema: string,
  id: number,
  update: { state?: SnapshotRequest['state']; lastKey?: string[] | null; addRows?: number; addChunks?: number; error?: string },
): Promise<void> {
  await db.query(
    `UPDATE ${snapshotRequestsTable(schema)}
        SET state = COALESCE($2, state),
            last_key = CASE WHEN $3::boolean THEN $4::jsonb ELSE last_key END,
            rows = rows + $5, chunks = chunks + $6, error = COALESCE($7, error),
            started_at = CASE WHEN $2 = 'running' THEN COALESCE(started_at, clock_timestamp()) ELSE started_at END,
            finished_at = CASE WHEN $2 IN ('done', 'failed', 'cancelled') THEN clock_timestamp() ELSE finished_at END
      WHERE id = $1`,
    [
      id,
      update.state ?? null,
      update.lastKey !== undefined,
      update.lastKey ? JSON.stringify(update.lastKey) : null,
      update.addRows ?? 0,
      update.addChunks ?? 0,
      update.error ?? null,
    ],
  );
}

export interface CdcStatusRow {
  slot: string;
  pid: number;
  host: string;
  state: string;
  reason: string | null;
  durableLsn: string | null;
  lagBytes: number | null;
  lagSeconds: number | null;
  events: number;
  updatedAt: Date;
}

export async function writeCdcStatus(db: Queryable, schema: string, status: Omit<CdcStatusRow, 'updatedAt'>): Promise<void> {
  await db.query(
    `INSERT INTO ${cdcStatusTable(schema)} (slot, pid, host, state, reason, durable_lsn, lag_bytes, lag_seconds, events, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, clock_timestamp())
     ON CONFLICT (slot) DO UPDATE SET pid = EXCLUDED.pid, host = EXCLUDED.host, state = EXCLUDED.state, reason = EXCLUDED.reason,
       durable_lsn = EXCLUDED.durable_lsn, lag_bytes = EXCLUDED.lag_bytes, lag_seconds = EXCLUDED.lag_seconds, events = EXCLUDED.events,
       updated_at = EXCLUDED.updated_at`,
    [
      status.slot,
      status.pid,
      status.host,
      status.state,
      status.reason,
      status.durableLsn,
      status.lagBytes,
      status.lagSeconds,
      status.events,
    ],
  );
}

export async function readCdcStatus(db: Queryable, schema: string, slot: string): Promise<CdcStatusRow | null> {
  const { rows } = await db.query(`SELECT * FROM ${cdcStatusTable(schema)} WHERE slot = $1`, [slot]);
  const r = rows[0];
  if (!r) return null;
  return {
    slot: r.slot,
    pid: r.pid,
    host: r.host,
    state: r.state,
    reason: r.reason,
    durableLsn: r.durable_lsn,
    lagBytes: r.lag_bytes === null ? null : Number(r.lag_bytes),
    lagSeconds: r.lag_seconds,
    events: Number(r.events),
    updatedAt: r.updated_at,
  };
}
