/**
 * The backfill's tables in the control schema, and every query on the run and process rows.
 *
 * - `backfill_runs`: one row per run; the fixed upper key, the planned rows, and the operator's
 *   control state (paused, pinned batch size, max-lag override, abort). `parity backfill ctl` and the
 *   HTTP control endpoint write this row; every process of the run polls it. That makes control
 *   durable (a paused run stays paused across restarts) and reach every process on every host.
 * - `backfill_ranges`: the key ranges workers claim (FOR UPDATE SKIP LOCKED), each with its
 *   checkpoint (last key done), owner and counters.
 * - `backfill_batches`: the checkpoint log, one row per committed batch with its key interval.
 * - `backfill_processes`: one row per `backfill run` process: bound control port, throttle state and
 *   reason, heartbeat. `status` and `ctl` read it.
 */
import type pg from 'pg';
import { ensureControlTables } from '../core/control.js';
import { ParityError } from '../core/errors.js';
import { ident } from '../core/sql.js';
import { formatControlCommand, type ControlCommand } from './control-command.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type RunState = 'running' | 'completed' | 'aborted' | 'failed' | 'superseded';
/** A run in one of these states is continued by the next `backfill run` of the same migration. */
export const RESUMABLE_STATES: RunState[] = ['running', 'aborted', 'failed'];

export function controlTables(schema: string) {
  return {
    runs: `${ident(schema)}.backfill_runs`,
    ranges: `${ident(schema)}.backfill_ranges`,
    batches: `${ident(schema)}.backfill_batches`,
    processes: `${ident(schema)}.backfill_processes`,
  };
}

const OBJECTS = [
  'backfill_runs',
  'backfill_runs_one_resumable',
  'backfill_ranges',
  'backfill_batches',
  'backfill_processes',
  'backfill_processes_run',
];

export async function ensureBackfillTables(db: Queryable, schema: string): Promise<void> {
  // Once everything exists, skip the DDL: CREATE INDEX IF NOT EXISTS still takes a table lock, which
  // would queue behind (and then block) the checkpoints of processes already running.
  const { rows } = await db.query(
    `SELECT count(*)::int AS n,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass(format('%I.backfill_processes', $1::text)) AND a.attname = 'pace' AND NOT a.attisdropped) AS paced,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass(format('%I.backfill_runs', $1::text)) AND a.attname = 'wal_rate_override' AND NOT a.attisdropped) AS pinnable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2)`,
    [schema, OBJECTS],
  );
  const t = controlTables(schema);
  if (rows[0]?.n === OBJECTS.length) {
    // A control schema from before pacing: its process rows gain the pacer's columns.
    if (!rows[0]?.paced)
      await db.query(`ALTER TABLE ${t.processes} ADD COLUMN IF NOT EXISTS duty_cycle double precision, ADD COLUMN IF NOT EXISTS pace text`);
    // ... and one from before the WAL budget: its run rows gain the operator's two new pins.
    if (!rows[0]?.pinnable)
      await db.query(
        `ALTER TABLE ${t.runs} ADD COLUMN IF NOT EXISTS wal_rate_override bigint, ADD COLUMN IF NOT EXISTS workers_override integer`,
      );
    return;
  }
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${t.runs} (
       run_id bigserial PRIMARY KEY,
       migration text NOT NULL,
       mapping_hash text NOT NULL,
       state text NOT NULL CHECK (state IN ('running', 'completed', 'aborted', 'failed', 'superseded')),
       upper_key text[],
       rows_planned bigint NOT NULL DEFAULT 0,
       ranges_planned integer NOT NULL DEFAULT 0,
       paused boolean NOT NULL DEFAULT false,
       paused_reason text,
       batch_size_override integer,
       max_lag_seconds_override double precision,
       wal_rate_override bigint,
       workers_override integer,
       command_seq bigint NOT NULL DEFAULT 0,
       last_command text,
       last_command_by text,
       last_command_at timestamptz,
       error text,
       started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       finished_at timestamptz
     )`,
    // At most one run per migration can be continued; two processes starting at once join one run.
    `CREATE UNIQUE INDEX IF NOT EXISTS backfill_runs_one_resumable ON ${t.runs} (migration) WHERE state IN ('running', 'aborted', 'failed')`,
    `CREATE TABLE IF NOT EXISTS ${t.ranges} (
       run_id bigint NOT NULL REFERENCES ${t.runs} (run_id) ON DELETE CASCADE,
       range_no integer NOT NULL,
       lo text[],
       hi text[] NOT NULL,
       rows_planned bigint NOT NULL,
       state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done')),
       checkpoint text[],
       rows_done bigint NOT NULL DEFAULT 0,
       rows_changed bigint NOT NULL DEFAULT 0,
       batches_done integer NOT NULL DEFAULT 0,
       owner text,
       owner_pid integer,
       owner_backend_start timestamptz,
       claims integer NOT NULL DEFAULT 0,
       claimed_at timestamptz,
       updated_at timestamptz,
       PRIMARY KEY (run_id, range_no)
     )`,
    `CREATE TABLE IF NOT EXISTS ${t.batches} (
       run_id bigint NOT NULL,
       range_no integer NOT NULL,
       batch_no integer NOT NULL,
       lo text[],
       hi text[] NOT NULL,
       rows bigint NOT NULL,
       rows_changed bigint NOT NULL,
       duration_ms double precision NOT NULL,
       worker text NOT NULL,
       committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       PRIMARY KEY (run_id, range_no, batch_no)
     )`,
    `CREATE TABLE IF NOT EXISTS ${t.processes} (
       process_id text PRIMARY KEY,
       run_id bigint NOT NULL,
       host text NOT NULL,
       pid integer NOT NULL,
       control_url text,
       workers integer NOT NULL,
       state text NOT NULL,
       reason text,
       applied_seq bigint NOT NULL DEFAULT 0,
       batch_size integer,
       rows_per_second double precision,
       eta_seconds double precision,
       duty_cycle double precision,
       pace text,
       started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    `CREATE INDEX IF NOT EXISTS backfill_processes_run ON ${t.processes} (run_id)`,
  ]);
}

export interface RunRow {
  runId: number;
  migration: string;
  mappingHash: string;
  state: RunState;
  upperKey: string[] | null;
  rowsPlanned: number;
  rangesPlanned: number;
  paused: boolean;
  pausedReason: string | null;
  batchSizeOverride: number | null;
  maxLagSecondsOverride: number | null;
  /** WAL budget pinned by an operator (`set wal-rate=N`), bytes/s. */
  walRateOverride: number | null;
  /** Workers in service per process pinned by an operator (`set workers=N`). */
  workersOverride: number | null;
  commandSeq: number;
  lastCommand: string | null;
  lastCommandBy: string | null;
  lastCommandAt: Date | null;
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
}

const RUN_COLUMNS = `run_id, migration, mapping_hash, state, upper_key, rows_planned, ranges_planned, paused, paused_reason,
  batch_size_override, max_lag_seconds_override, wal_rate_override, workers_override, command_seq, last_command, last_command_by, last_command_at, error, started_at, finished_at`;

function toRun(r: Record<string, unknown>): RunRow {
  return {
    runId: Number(r.run_id),
    migration: String(r.migration),
    mappingHash: String(r.mapping_hash),
    state: r.state as RunState,
    upperKey: (r.upper_key as string[] | null) ?? null,
    rowsPlanned: Number(r.rows_planned),
    rangesPlanned: Number(r.ranges_planned),
    paused: Boolean(r.paused),
    pausedReason: (r.paused_reason as string | null) ?? null,
    batchSizeOverride: r.batch_size_override === null ? null : Number(r.batch_size_override),
    maxLagSecondsOverride: r.max_lag_seconds_override === null ? null : Number(r.max_lag_seconds_override),
    walRateOverride: r.wal_rate_override == null ? null : Number(r.wal_rate_override),
    workersOverride: r.workers_override == null ? null : Number(r.workers_override),
    commandSeq: Number(r.command_seq),
    lastCommand: (r.last_command as string | null) ?? null,
    lastCommandBy: (r.last_command_by as string | null) ?? null,
    lastCommandAt: (r.last_command_at as Date | null) ?? null,
    error: (r.error as string | null) ?? null,
    startedAt: r.started_at as Date,
    finishedAt: (r.finished_at as Date | null) ?? null,
  };
}

export async function readRun(db: Queryable, schema: string, runId: number): Promise<RunRow> {
  const { rows } = await db.query(`SELECT ${RUN_COLUMNS} FROM ${controlTables(schema).runs} WHERE run_id = $1`, [runId]);
  if (!rows[0]) throw new ParityError('PARITY_INTERNAL', `backfill run ${runId} vanished from the control schema`);
  return toRun(rows[0]);
}

/** The run the next `backfill run` continues (running, aborted or failed), if any. */
export async function resumableRun(db: Queryable, schema: string, migration: string): Promise<RunRow | null> {
  const { rows } = await db.query(
    `SELECT ${RUN_COLUMNS} FROM ${controlTables(schema).runs} WHERE migration = $1 AND state = ANY($2) ORDER BY run_id DESC LIMIT 1`,
    [migration, RESUMABLE_STATES],
  );
  return rows[0] ? toRun(rows[0]) : null;
}

/** The most recent run of a migration in any state. */
export async function latestRun(db: Queryable, schema: string, migration: string): Promise<RunRow | null> {
  const { rows } = await db.query(
    `SELECT ${RUN_COLUMNS} FROM ${controlTables(schema).runs} WHERE migration = $1 ORDER BY run_id DESC LIMIT 1`,
    [migration],
  );
  return rows[0] ? toRun(rows[0]) : null;
}

export interface RunProgress {
  rowsDone: number;
  rowsChanged: number;
  batches: number;
  ranges: { pending: number; running: number; done: number };
}

/** Totals over the run's checkpoints (all processes). */
export async function runProgress(db: Queryable, schema: string, runId: number): Promise<RunProgress> {
  const { rows } = await db.query(
    `SELECT coalesce(sum(rows_done), 0) AS rows_done, coalesce(sum(rows_changed), 0) AS rows_changed, coalesce(sum(batches_done), 0) AS batches,
            count(*) FILTER (WHERE state = 'pending') AS pending, count(*) FILTER (WHERE state = 'running') AS running,
            count(*) FILTER (WHERE state = 'done') AS done
       FROM ${controlTables(schema).ranges} WHERE run_id = $1`,
    [runId],
  );
  const r = rows[0] ?? {};
  return {
    rowsDone: Number(r.rows_done ?? 0),
    rowsChanged: Number(r.rows_changed ?? 0),
    batches: Number(r.batches ?? 0),
    ranges: { pending: Number(r.pending ?? 0), running: Number(r.running ?? 0), done: Number(r.done ?? 0) },
  };
}

/**
 * Applies an operator command to the migration's resumable run and bumps its command sequence, so
 * `ctl` can wait until every live process has applied it. Throws when there is no run to control.
 */
export async function applyControlCommand(
  db: Queryable,
  schema: string,
  migration: string,
  command: ControlCommand,
  actor: string,
): Promise<{ runId: number; seq: number }> {
  const text = formatControlCommand(command);
  let set: string;
  const values: unknown[] = [migration, RESUMABLE_STATES, text, actor];
  switch (command.kind) {
    case 'pause':
      set = `paused = true, paused_reason = 'paused by ' || $4`;
      break;
    case 'resume':
      set = 'paused = false, paused_reason = NULL';
      break;
    case 'abort':
      set = `state = 'aborted', error = 'aborted by ' || $4, finished_at = clock_timestamp()`;
      break;
    case 'set-batch-size':
      values.push(command.size);
      set = 'batch_size_override = $5::integer';
      break;
    case 'set-max-lag':
      values.push(command.seconds);
      set = 'max_lag_seconds_override = $5::double precision';
      break;
    case 'set-wal-rate':
      values.push(command.bytesPerSecond);
      set = 'wal_rate_override = $5::bigint';
      break;
    case 'set-workers':
      values.push(command.workers);
      set = 'workers_override = $5::integer';
      break;
  }
  const { rows } = await db.query(
    `UPDATE ${controlTables(schema).runs}
        SET ${set}, command_seq = command_seq + 1, last_command = $3, last_command_by = $4, last_command_at = clock_timestamp()
      WHERE run_id = (SELECT run_id FROM ${controlTables(schema).runs} WHERE migration = $1 AND state = ANY($2) ORDER BY run_id DESC LIMIT 1)
      RETURNING run_id, command_seq`,
    values,
  );
  const row = rows[0];
  if (!row) {
    throw new ParityError('PARITY_BAD_INPUT', `no backfill run of "${migration}" to control (none running, aborted or failed)`, {
      hint: 'start one with `parity backfill run --spec FILE`; `parity backfill status --spec FILE` shows the latest run',
    });
  }
  return { runId: Number(row.run_id), seq: Number(row.command_seq) };
}

export interface ProcessRow {
  processId: string;
  runId: number;
  host: string;
  pid: number;
  controlUrl: string | null;
  workers: number;
  state: string;
  reason: string | null;
  appliedSeq: number;
  batchSize: number | null;
  rowsPerSecond: number | null;
  etaSeconds: number | null;
  /** The duty cycle its workers keep; null when pacing is off. */
  dutyCycle: number | null;
  /** The pacer's one-line description (duty cycle, last sleep, latency guard). */
  pace: string | null;
  heartbeatAgeSeconds: number;
}

/** Processes of a run that sent a heartbeat within `freshSeconds`. */
export async function liveProcesses(db: Queryable, schema: string, runId: number, freshSeconds = 10): Promise<ProcessRow[]> {
  const { rows } = await db.query(
    `SELECT process_id, run_id, host, pid, control_url, workers, state, reason, applied_seq, batch_size, rows_per_second, eta_seconds, duty_cycle, pace,
            extract(epoch FROM clock_timestamp() - heartbeat_at) AS age
       FROM ${controlTables(schema).processes}
      WHERE run_id = $1 AND heartbeat_at > clock_timestamp() - make_interval(secs => $2) AND state <> 'exited'
      ORDER BY started_at`,
    [runId, freshSeconds],
  );
  return rows.map((r) => ({
    processId: r.process_id,
    runId: Number(r.run_id),
    host: r.host,
    pid: r.pid,
    controlUrl: r.control_url,
    workers: r.workers,
    state: r.state,
    reason: r.reason,
    appliedSeq: Number(r.applied_seq),
    batchSize: r.batch_size,
    rowsPerSecond: r.rows_per_second,
    etaSeconds: r.eta_seconds,
    dutyCycle: r.duty_cycle,
    pace: r.pace,
    heartbeatAgeSeconds: Number(r.age),
  }));
}

export interface ProcessHeartbeat {
  processId: string;
  runId: number;
  host: string;
  pid: number;
  controlUrl: string | null;
  workers: number;
  state: string;
  reason: string | null;
  appliedSeq: number;
  batchSize: number;
  rowsPerSecond: number;
  etaSeconds: number | null;
  dutyCycle: number | null;
  pace: string | null;
}

export async function writeHeartbeat(db: Queryable, schema: string, h: ProcessHeartbeat): Promise<void> {
  await db.query(
    `INSERT INTO ${controlTables(schema).processes} AS p
            (process_id, run_id, host, pid, control_url, workers, state, reason, applied_seq, batch_size, rows_per_second, eta_seconds, duty_cycle, pace)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
     ON CONFLICT (process_id) DO UPDATE SET state = EXCLUDED.state, reason = EXCLUDED.reason, applied_seq = EXCLUDED.applied_seq,
            batch_size = EXCLUDED.batch_size, rows_per_second = EXCLUDED.rows_per_second, eta_seconds = EXCLUDED.eta_seconds,
            duty_cycle = EXCLUDED.duty_cycle, pace = EXCLUDED.pace, control_url = EXCLUDED.control_url, heartbeat_at = clock_timestamp()`,
    [
      h.processId,
      h.runId,
      h.host,
      h.pid,
      h.controlUrl,
      h.workers,
      h.state,
      h.reason,
      h.appliedSeq,
      h.batchSize,
      h.rowsPerSecond,
      h.etaSeconds,
      h.dutyCycle,
      h.pace,
    ],
  );
}
