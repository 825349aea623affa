/**
 * Completing a run: whichever worker finishes the last range marks the run completed and records the
 * `backfill` evidence the contract gate reads, in one control transaction (with the fence check when
 * a token is carried). Each worker tries after its range commits; the last one to commit sees every
 * range done, so exactly one records the evidence.
 */
import type pg from 'pg';
import { recordEvidence } from '../core/control.js';
import { assertFence } from '../core/fence.js';
import { controlTables } from './control-store.js';

export interface CompletionInput {
  schema: string;
  migration: string;
  runId: number;
  fence?: { scope: string; token: bigint };
}

export interface CompletedRun {
  runId: number;
  rows: number;
  rowsChanged: number;
  batches: number;
  ranges: number;
  rowsPlanned: number;
  upperKey: string[] | null;
  seconds: number;
}

/** Completes the run when no range is left; returns its totals, or null when work remains (or another worker completed it). */
export async function completeRunIfDone(control: pg.ClientBase, input: CompletionInput): Promise<CompletedRun | null> {
  const t = controlTables(input.schema);
  await control.query('BEGIN');
  try {
    if (input.fence) await assertFence(control, input.schema, input.fence.scope, input.fence.token);
    const { rows } = await control.query(
      `UPDATE ${t.runs} SET state = 'completed', finished_at = clock_timestamp()
        WHERE run_id = $1 AND state = 'running' AND NOT EXISTS (SELECT 1 FROM ${t.ranges} WHERE run_id = $1 AND state <> 'done')
        RETURNING rows_planned, ranges_planned, upper_key, extract(epoch FROM finished_at - started_at)::float8 AS seconds`,
      [input.runId],
    );
    const run = rows[0];
    if (!run) {
      await control.query('ROLLBACK');
      return null;
    }
    const totals = await control.query(
      `SELECT coalesce(sum(rows_done), 0)::bigint AS rows, coalesce(sum(rows_changed), 0)::bigint AS changed, coalesce(sum(batches_done), 0)::bigint AS batches
         FROM ${t.ranges} WHERE run_id = $1`,
      [input.runId],
    );
    const tot = totals.rows[0];
    const done: CompletedRun = {
      runId: input.runId,
      rows: Number(tot.rows),
      rowsChanged: Number(tot.changed),
      batches: Number(tot.batches),
      ranges: Number(run.ranges_planned),
      rowsPlanned: Number(run.rows_planned),
      upperKey: run.upper_key,
      seconds: Number(run.seconds),
    };
    await recordCompletionEvidence(control, input.schema, input.migration, done);
    await control.query('COMMIT');
    return done;
  } catch (err) {
    await control.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export async function recordCompletionEvidence(
  control: pg.ClientBase,
  schema: string,
  migration: string,
  done: CompletedRun,
): Promise<void> {
  const rate = done.seconds > 0 ? Math.round(done.rows / done.seconds) : done.rows;
  await recordEvidence(control, schema, {
    migration,
    kind: 'backfill',
    passed: true,
    summary: `backfill complete: ${done.rows.toLocaleString('en-US')} rows walked (${done.rowsChanged.toLocaleString('en-US')} written) in ${done.batches} batches over ${done.ranges} ranges, run ${done.runId}, ${done.seconds.toFixed(1)} s`,
    value: {
      complete: true,
      runId: done.runId,
      rows: done.rows,
      rowsChanged: done.rowsChanged,
      rowsPlanned: done.rowsPlanned,
      batches: done.batches,
      ranges: done.ranges,
      upperKey: done.upperKey,
      seconds: done.seconds,
      rowsPerSecond: rate,
      note: 'rows with keys above upperKey, and changes after each batch, are covered by dual-write',
    },
  });
}
