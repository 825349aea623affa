/**
 * One batch: the unit of work, of commit and of checkpoint.
 *
 * Same database for data and control (the default for same-table and shadow-table, and for another
 * database when the control schema lives there): one transaction holds the ownership check of the
 * range, the fence check, the write and the checkpoint, so a batch and its checkpoint commit together
 * or not at all, and a crash redoes nothing.
 *
 * Control elsewhere: the control transaction (ownership row lock, fence row share-lock) stays open
 * around the data transaction, and the checkpoint commits right after the data does. A crash between
 * the two commits redoes exactly that one batch, which is idempotent. Because the fence row stays
 * share-locked until after the data commit, a newer token cannot be issued in between.
 *
 * Every connection in the batch gets `SET LOCAL lock_timeout` and `statement_timeout`.
 *
 * Asynchronous commit (`pace.asynchronousCommit`, on by default): when the data and the checkpoint
 * commit in one transaction, that transaction sets `synchronous_commit = off`, so the batch does not
 * wait for its own WAL flush (the WAL writer flushes it within `wal_writer_delay`, and any later
 * synchronous commit flushes it first). A server crash can then lose the last batches, but each
 * together with its checkpoint: the resume redoes exactly what was lost and nothing twice. When the
 * checkpoint commits in another cluster it would be unsafe (the checkpoint could survive a batch
 * that did not), so those batches stay synchronous.
 */
import type pg from 'pg';
import { literal } from '../core/sql.js';
import { performance } from 'node:perf_hooks';
import { checkFence, fenceCheckSql } from '../core/fence.js';
import { batchWriteSql, crossReadSql, crossUpsertSql, keyFromRow, type BatchShape, type KeyValue } from './batch-sql.js';
import { batchError } from './batch-errors.js';
import { controlTables } from './control-store.js';
import type { WorkerSessions } from './databases.js';
import { sameKey } from './run-plan.js';

export type TargetKind = 'same-table' | 'shadow-table' | 'other-database';

export interface BatchContext {
  schema: string;
  runId: number;
  rangeNo: number;
  worker: string;
  kind: TargetKind;
  shape: BatchShape;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /** Fence scope and token; when set, every batch transaction checks it before committing. */
  fence?: { scope: string; token: bigint };
  /** Measure the WAL the batch writes (paced runs size batches by it). */
  measureWal?: boolean;
  /**
   * `pace.asynchronousCommit`: commit with `synchronous_commit = off` when the data and its
   * checkpoint commit in one transaction (ignored otherwise: see the module comment).
   */
  asynchronousCommit?: boolean;
  /** `SET LOCAL wal_compression` of the data connection's transaction (wal-compression.ts); absent: the server's. */
  walCompression?: 'pglz' | 'lz4' | 'zstd';
}

export interface BatchOutcome {
  /** The range is no longer ours (another worker took it after our session was lost). */
  lost: boolean;
  /** Keys walked by the batch. */
  rows: number;
  /** Rows written (the new value differed). */
  changed: number;
  lo: KeyValue | null;
  hi: KeyValue | null;
  /** The range is finished with this batch. */
  done: boolean;
  seconds: number;
  /** WAL written in the data database while the batch ran (before its commit record); null when not measured. */
  walBytes: number | null;
}

/** Runs one batch attempt of at most `size` keys. Throws a ParityError; everything is rolled back then. */
export async function runBatch(ctx: BatchContext, db: WorkerSessions, size: number): Promise<BatchOutcome> {
  const t = controlTables(ctx.schema);
  const started = performance.now();
  const open: pg.ClientBase[] = [];
  const setLocal = [
    `SET LOCAL lock_timeout = ${Math.floor(ctx.lockTimeoutMs)}`,
    `SET LOCAL statement_timeout = ${Math.floor(ctx.statementTimeoutMs)}`,
  ];
  let stage = 'beginning the batch transaction';
  // The connection that writes the data: its cluster's WAL is what the batch costs foreground commits.
  const dataConn = ctx.kind === 'other-database' ? db.target : db.source;
  let walStart: string | undefined;
  let walBytes: number | null = null;
  // One transaction for the data and its checkpoint: only then may it commit without waiting for its flush.
  const asyncCommit = ctx.asynchronousCommit === true && dataConn === db.control;
  // Round trips are most of a small batch's cost (see batchWriteSql), so the ownership check travels
  // with the control connection's BEGIN and the fence check with the data connection's: the token
  // lives where the protected write goes (the coordinator issues it in the target database) and is
  // checked in the write's own transaction. Their values are literals: the run and range numbers,
  // the worker id, the fence scope.
  const ownSql = `SELECT lo, hi, checkpoint FROM ${t.ranges} WHERE run_id = ${Math.trunc(ctx.runId)} AND range_no = ${Math.trunc(ctx.rangeNo)} AND owner = ${literal(ctx.worker)} AND state = 'running' FOR UPDATE`;
  let own: pg.QueryResult | undefined;
  let fenceRows: { token: string }[] | undefined;
  try {
    for (const c of [db.control, ...db.commitOrder]) {
      if (open.includes(c)) continue;
      const parts = ['BEGIN', ...setLocal];
      if (c === dataConn) {
        if (asyncCommit) parts.push('SET LOCAL synchronous_commit = off');
        if (ctx.walCompression) parts.push(`SET LOCAL wal_compression = ${ctx.walCompression}`);
      }
      const add = (sql: string): number => parts.push(sql) - 1;
      const lsnAt = ctx.measureWal && c === dataConn ? add('SELECT pg_current_wal_insert_lsn()::text AS lsn') : -1;
      const ownAt = c === db.control ? add(ownSql) : -1;
      const fenceAt = ctx.fence && c === dataConn ? add(fenceCheckSql(ctx.schema, ctx.fence.scope)) : -1;
      stage = `${c === db.control ? 'checking range ownership' : 'beginning the batch transaction'}${fenceAt >= 0 ? ' and the fencing token' : ''}`;
      const begun = (await c.query(parts.join('; '))) as unknown as pg.QueryResult[];
      open.push(c);
      if (ownAt >= 0) own = begun[ownAt];
      if (lsnAt >= 0) walStart = (begun[lsnAt]?.rows[0] as { lsn: string }).lsn;
      if (fenceAt >= 0) fenceRows = begun[fenceAt]?.rows as { token: string }[];
    }
    const range = own?.rows[0] as { lo: string[] | null; hi: string[]; checkpoint: string[] | null } | undefined;
    if (!range) {
      await rollbackAll(open);
      return { lost: true, rows: 0, changed: 0, lo: null, hi: null, done: false, seconds: 0, walBytes: null };
    }
    if (ctx.fence) {
      stage = 'checking the fencing token';
      // The data connection is always in commitOrder, so its BEGIN carried the check.
      checkFence(fenceRows ?? [], ctx.fence.scope, ctx.fence.token);
    }
    const lo = range.checkpoint ?? range.lo;
    const width = ctx.shape.key.columns.length;
    let rows = 0;
    let changed = 0;
    let last: KeyValue | null = null;
    if (ctx.kind === 'other-database') {
      stage = 'reading the batch from the source';
      const read = crossReadSql(ctx.shape, lo, range.hi, size);
      const result = await db.source.query(read.text, read.values);
      rows = result.rows.length;
      if (rows > 0) {
        const lastRow = result.rows[rows - 1] as Record<string, unknown>;
        last = keyFromRow(lastRow, width);
        const columns = [...ctx.shape.targetKey, ...ctx.shape.columns].map((_, i) =>
          result.rows.map((r: Record<string, string | null>) => r[`v${i}`] ?? null),
        );
        stage = 'upserting the batch into the target';
        const write = crossUpsertSql(ctx.shape, columns);
        changed = (await db.target.query(write.text, write.values)).rowCount ?? 0;
      }
    } else {
      stage = 'writing the batch';
      const write = batchWriteSql(ctx.shape, ctx.kind, lo, range.hi, size);
      const top = (await db.source.query(write.text, write.values)).rows[0] as Record<string, unknown> | undefined;
      if (top) {
        rows = Number(top.n);
        last = keyFromRow(top, width);
        changed = Number(top.changed);
      }
    }
    const done = rows < size || last === null || sameKey(last, range.hi);
    // The checkpoint measures the WAL itself when it is written in the data's transaction (and so
    // counts its own few hundred bytes): one round trip less.
    const walAtCheckpoint = walStart !== undefined && dataConn === db.control && last !== null;
    if (walStart !== undefined && !walAtCheckpoint) {
      stage = 'measuring the batch WAL';
      // Cluster-wide, so concurrent writers' WAL counts too: an upper bound, which errs on the safe side.
      const w = await dataConn.query(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8 AS bytes`, [walStart]);
      walBytes = Number((w.rows[0] as { bytes: number }).bytes);
    }
    // Data first (target, then source, releasing its FOR SHARE locks), then the control transaction,
    // whose checkpoint travels in one message with its COMMIT.
    for (const c of db.commitOrder) {
      if (c === db.control) {
        stage = 'writing the checkpoint and committing the batch with it';
        const sql = checkpointSql(
          t,
          ctx,
          lo,
          last,
          rows,
          changed,
          done,
          performance.now() - started,
          walAtCheckpoint ? walStart : undefined,
        );
        const [cp] = (await c.query(`${sql}; COMMIT`)) as unknown as pg.QueryResult[];
        if (walAtCheckpoint) walBytes = Number((cp?.rows[0] as { bytes: number } | undefined)?.bytes ?? 0);
      } else {
        stage = 'committing the batch';
        await c.query('COMMIT');
      }
      open.splice(open.indexOf(c), 1);
    }
    return { lost: false, rows, changed, lo, hi: last, done, seconds: (performance.now() - started) / 1000, walBytes };
  } catch (err) {
    await rollbackAll(open);
    throw batchError(err, `backfill batch of range ${ctx.rangeNo} failed while ${stage}`);
  }
}

/** A key as a text[] literal (how checkpoints store keys), or NULL. */
const keyLiteral = (key: KeyValue | null): string => (key === null ? 'NULL::text[]' : `ARRAY[${key.map(literal).join(', ')}]::text[]`);

/**
 * The checkpoint of a batch as one statement of literals (sent with the COMMIT in one message): the
 * range's checkpoint and counters, and a row of the batch log; or, when the batch found no key left,
 * the range marked done. With `walStart`, it returns the WAL written since then (`bytes`).
 */
function checkpointSql(
  t: ReturnType<typeof controlTables>,
  ctx: BatchContext,
  lo: KeyValue | null,
  last: KeyValue | null,
  rows: number,
  changed: number,
  done: boolean,
  durationMs: number,
  walStart?: string,
): string {
  const run = Math.trunc(ctx.runId);
  const range = Math.trunc(ctx.rangeNo);
  if (last === null) {
    return `UPDATE ${t.ranges} SET state = 'done', updated_at = clock_timestamp() WHERE run_id = ${run} AND range_no = ${range}`;
  }
  const n = Math.trunc(rows);
  const written = Math.trunc(changed);
  return `WITH cp AS (
       UPDATE ${t.ranges}
          SET checkpoint = ${keyLiteral(last)}, rows_done = rows_done + ${n}, rows_changed = rows_changed + ${written}, batches_done = batches_done + 1,
              state = ${done ? `'done'` : `'running'`}, updated_at = clock_timestamp()
        WHERE run_id = ${run} AND range_no = ${range}
        RETURNING batches_done)
     INSERT INTO ${t.batches} (run_id, range_no, batch_no, lo, hi, rows, rows_changed, duration_ms, worker)
     SELECT ${run}, ${range}, cp.batches_done, ${keyLiteral(lo)}, ${keyLiteral(last)}, ${n}, ${written}, ${Math.max(0, durationMs).toFixed(3)}, ${literal(ctx.worker)} FROM cp${
       walStart === undefined
         ? ''
         : `
     RETURNING pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${literal(walStart)}::pg_lsn)::float8 AS bytes`
     }`;
}

async function rollbackAll(open: pg.ClientBase[]): Promise<void> {
  for (const c of open.splice(0)) await c.query('ROLLBACK').catch(() => undefined);
}
