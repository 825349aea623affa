/**
 * Claiming key ranges. A worker takes the first range that is pending, running under an owner
 * whose control connection is gone (its process died: the server ends a backend whose client
 * vanished), or already its own (a claim whose answer was lost with the connection), with `FOR UPDATE SKIP LOCKED`, so two claimers never take the same range and neither
 * waits for the other. Ownership is the worker id written by the claim; every batch re-checks it
 * under a row lock in its own transaction, so a range is never worked on by two workers at once.
 *
 * Liveness is read from pg_stat_activity (pid and backend_start of the owner's control session),
 * which every role can read for its own sessions; run all workers of a migration as one role.
 */
import type pg from 'pg';
import { controlTables } from './control-store.js';
import type { KeyValue } from './batch-sql.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface ClaimedRange {
  runId: number;
  rangeNo: number;
  lo: KeyValue | null;
  hi: KeyValue;
  /** Last key done, or null when the range has not started. */
  checkpoint: KeyValue | null;
  rowsDone: number;
  batchesDone: number;
  rowsPlanned: number;
  claims: number;
}

function toClaimed(r: Record<string, unknown>): ClaimedRange {
  return {
    runId: Number(r.run_id),
    rangeNo: Number(r.range_no),
    lo: (r.lo as string[] | null) ?? null,
    hi: r.hi as string[],
    checkpoint: (r.checkpoint as string[] | null) ?? null,
    rowsDone: Number(r.rows_done),
    batchesDone: Number(r.batches_done),
    rowsPlanned: Number(r.rows_planned),
    claims: Number(r.claims),
  };
}

/** Claims the next free range for `worker` on its control connection; null when none is free. */
export async function claimRange(control: Queryable, schema: string, runId: number, worker: string): Promise<ClaimedRange | null> {
  const t = controlTables(schema);
  const { rows } = await control.query(
    `WITH me AS (SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
          candidate AS (
            SELECT r.run_id, r.range_no FROM ${t.ranges} r
             WHERE r.run_id = $1 AND r.state <> 'done'
               AND (r.state = 'pending'
                    OR r.owner = $2
                    OR r.owner_pid IS NULL
                    OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.owner_pid AND a.backend_start = r.owner_backend_start))
             ORDER BY r.range_no
             LIMIT 1
             FOR UPDATE OF r SKIP LOCKED)
     UPDATE ${t.ranges} r
        SET state = 'running', owner = $2, owner_pid = me.pid, owner_backend_start = me.backend_start,
            claims = r.claims + 1, claimed_at = clock_timestamp()
       FROM candidate c, me
      WHERE r.run_id = c.run_id AND r.range_no = c.range_no
      RETURNING r.run_id, r.range_no, r.lo, r.hi, r.checkpoint, r.rows_done, r.batches_done, r.rows_planned, r.claims`,
    [runId, worker],
  );
  return rows[0] ? toClaimed(rows[0]) : null;
}

/**
 * After a worker reconnects its control session, its ranges must name the new session, or other
 * workers would take them as orphaned. Returns how many ranges it still owns.
 */
export async function reattachOwner(control: Queryable, schema: string, runId: number, worker: string): Promise<number> {
  const t = controlTables(schema);
  const { rowCount } = await control.query(
    `UPDATE ${t.ranges} r SET owner_pid = a.pid, owner_backend_start = a.backend_start
       FROM pg_stat_activity a
      WHERE a.pid = pg_backend_pid() AND r.run_id = $1 AND r.owner = $2 AND r.state = 'running'`,
    [runId, worker],
  );
  return rowCount ?? 0;
}

/** True while some range of the run is not done (held by a live worker elsewhere, or pending). */
export async function rangesLeft(control: Queryable, schema: string, runId: number): Promise<number> {
  const { rows } = await control.query(`SELECT count(*) AS n FROM ${controlTables(schema).ranges} WHERE run_id = $1 AND state <> 'done'`, [
    runId,
  ]);
  return Number(rows[0]?.n ?? 0);
}
