/**
 * Starting or joining a run. The first process fixes the upper key bound (rows inserted later are
 * the dual-write's job) and cuts (-inf, upper] into key ranges by walking the key index with keyset
 * reads (`ORDER BY key LIMIT n`, take the last key; never OFFSET). Later processes, and restarts
 * after a crash, join the resumable run instead. A transaction-scoped advisory lock on the control
 * database makes "find or create" atomic across processes.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from '../core/log.js';
import { ParityError } from '../core/errors.js';
import type { Spec } from '../core/spec.js';
import { batchBoundsSql, keyFromRow, upperKeySql, type BatchShape, type KeyValue } from './batch-sql.js';
import { controlTables, readRun, resumableRun, latestRun, type RunRow } from './control-store.js';
import { qualified } from '../core/sql.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface PlannedRange {
  lo: KeyValue | null;
  hi: KeyValue;
  rows: number;
}

export interface RangePlan {
  upper: KeyValue | null;
  ranges: PlannedRange[];
  rows: number;
}

/**
 * Rows per claimable range: small enough that `workers` share the table (at least 4 ranges each),
 * large enough (up to 4 max-size batches) that adaptive sizing has room inside a range.
 */
export function chooseRangeRows(estimatedRows: number, workers: number, minBatchSize: number, maxBatchSize: number): number {
  const cap = 4 * maxBatchSize;
  if (!(estimatedRows > 0)) return cap;
  return Math.max(minBatchSize, Math.min(cap, Math.ceil(estimatedRows / (4 * Math.max(1, workers)))));
}

/** The planner's row estimate (pg_class.reltuples; -1 or 0 when never analyzed). */
export async function estimateRows(db: Queryable, schema: string, table: string): Promise<number> {
  const { rows } = await db.query(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass`, [qualified(schema, table)]);
  return Number(rows[0]?.n ?? -1);
}

/** Fixes the upper bound and walks the key index into ranges of about `rangeRows` keys. */
export async function planRanges(source: Queryable, shape: BatchShape, rangeRows: number): Promise<RangePlan> {
  const width = shape.key.columns.length;
  const top = await source.query(upperKeySql(shape).text);
  if (!top.rows[0]) return { upper: null, ranges: [], rows: 0 };
  const upper = keyFromRow(top.rows[0], width);
  const ranges: PlannedRange[] = [];
  let lo: KeyValue | null = null;
  let rows = 0;
  for (;;) {
    const q = batchBoundsSql(shape, lo, upper, rangeRows);
    const { rows: found } = await source.query(q.text, q.values);
    const last = found[0];
    if (!last) break;
    const hi = keyFromRow(last, width);
    const n = Number(last.n);
    ranges.push({ lo, hi, rows: n });
    rows += n;
    if (n < rangeRows || sameKey(hi, upper)) break;
    lo = hi;
  }
  // Rows deleted during planning may leave the last range short of the bound; stretch it so the
  // ranges tile (-inf, upper] exactly.
  const tail = ranges[ranges.length - 1];
  if (tail && !sameKey(tail.hi, upper)) tail.hi = upper;
  return { upper, ranges, rows };
}

export function sameKey(a: KeyValue | null, b: KeyValue | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * What a run's work depends on: tables, key and mapping. A resumed run whose spec changed any of
 * these would leave earlier ranges filled with the old mapping, so it is refused.
 */
export function mappingHash(spec: Spec): string {
  const target =
    spec.target.kind === 'same-table'
      ? { kind: spec.target.kind }
      : { kind: spec.target.kind, schema: spec.target.schema, table: spec.target.table };
  const basis = {
    source: { schema: spec.source.schema, table: spec.source.table },
    target,
    key: spec.key,
    mapping: Object.entries(spec.mapping).sort(([a], [b]) => a.localeCompare(b)),
  };
  return createHash('sha256').update(JSON.stringify(basis)).digest('hex');
}

export interface OpenRunOptions {
  control: pg.ClientBase;
  /** Reads the key index for planning; may be the same client as `control`. */
  source: Queryable;
  schema: string;
  spec: Spec;
  shape: BatchShape;
  workers: number;
  /** Start a new run even when one can be resumed or the last one completed. */
  rerun: boolean;
  /** Planning override (tests); default from `chooseRangeRows`. */
  rangeRows?: number;
  logger: Logger;
}

export interface OpenedRun {
  run: RunRow;
  /** created: this process planned it; resumed: it continues an existing run; complete: nothing to do. */
  how: 'created' | 'resumed' | 'complete';
}

/** Finds the run to work on, or plans a new one. Everything in one control transaction. */
export async function openRun(o: OpenRunOptions): Promise<OpenedRun> {
  const t = controlTables(o.schema);
  const hash = mappingHash(o.spec);
  await o.control.query('BEGIN');
  try {
    // Waiting here for another process that is planning a large table is normal: no timeout on the
    // wait itself, the session's statement timeout again for everything after it.
    await o.control.query('SET LOCAL statement_timeout = 0');
    await o.control.query(`SELECT pg_advisory_xact_lock(hashtext('parity.backfill'), hashtext($1))`, [o.spec.name]);
    await o.control.query(`SET LOCAL statement_timeout = ${Math.floor(o.spec.backfill.statementTimeoutMs)}`);
    const existing = await resumableRun(o.control, o.schema, o.spec.name);
    if (existing && !o.rerun) {
      if (existing.mappingHash !== hash) {
        throw new ParityError(
          'PARITY_BAD_INPUT',
          `backfill run ${existing.runId} of "${o.spec.name}" was started with a different source, target, key or mapping`,
          {
            hint: 'finish it with the spec it started with, or pass --rerun to start over from the first key with this spec',
          },
        );
      }
      if (existing.state !== 'running') {
        // Running again after an abort or failure is the operator's newest intent: an earlier pause
        // is lifted. (A paused run that merely lost its processes stays paused.)
        o.logger.info(
          { runId: existing.runId, previousState: existing.state, error: existing.error, wasPaused: existing.paused },
          'resuming a stopped backfill run from its checkpoints',
        );
        await o.control.query(
          `UPDATE ${t.runs} SET state = 'running', error = NULL, finished_at = NULL, paused = false, paused_reason = NULL WHERE run_id = $1`,
          [existing.runId],
        );
      }
      await o.control.query('COMMIT');
      return { run: await readRun(o.control, o.schema, existing.runId), how: 'resumed' };
    }
    if (existing) {
      await o.control.query(`UPDATE ${t.runs} SET state = 'superseded', finished_at = clock_timestamp() WHERE run_id = $1`, [
        existing.runId,
      ]);
      o.logger.info({ runId: existing.runId }, '--rerun: the previous run is superseded');
    } else if (!o.rerun) {
      const last = await latestRun(o.control, o.schema, o.spec.name);
      if (last?.state === 'completed' && last.mappingHash === hash) {
        await o.control.query('COMMIT');
        return { run: last, how: 'complete' };
      }
    }
    const estimate = await estimateRows(o.source, o.spec.source.schema, o.spec.source.table);
    const rangeRows = o.rangeRows ?? chooseRangeRows(estimate, o.workers, o.spec.backfill.minBatchSize, o.spec.backfill.maxBatchSize);
    const plan = await planRanges(o.source, o.shape, rangeRows);
    const { rows } = await o.control.query(
      `INSERT INTO ${t.runs} (migration, mapping_hash, state, upper_key, rows_planned, ranges_planned, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $3 = 'completed' THEN clock_timestamp() END) RETURNING run_id`,
      [o.spec.name, hash, plan.ranges.length === 0 ? 'completed' : 'running', plan.upper, plan.rows, plan.ranges.length],
    );
    const runId = Number(rows[0].run_id);
    for (const [i, r] of plan.ranges.entries()) {
      await o.control.query(`INSERT INTO ${t.ranges} (run_id, range_no, lo, hi, rows_planned) VALUES ($1, $2, $3, $4, $5)`, [
        runId,
        i + 1,
        r.lo,
        r.hi,
        r.rows,
      ]);
    }
    await o.control.query('COMMIT');
    o.logger.info(
      { runId, rows: plan.rows, ranges: plan.ranges.length, rangeRows, upperKey: plan.upper },
      'planned a new backfill run; the upper key is fixed, later rows are covered by dual-write',
    );
    return { run: await readRun(o.control, o.schema, runId), how: 'created' };
  } catch (err) {
    await o.control.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
