/**
 * `parity backfill status`: the latest run of a migration as the control schema records it (state,
 * progress, operator settings, last command, error), every live process with its throttle state and
 * reason, and the latest backfill evidence. Read-only; works from any host that reaches the control
 * database, whether or not a run process is alive.
 */
import type pg from 'pg';
import { latestEvidence } from '../core/control.js';
import { fenceTable } from '../core/fence.js';
import { controlTables, latestRun, liveProcesses, runProgress, type ProcessRow, type RunProgress, type RunRow } from './control-store.js';
import { runHolder } from './fence-token.js';
import { formatDuration } from './progress.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface StatusReport {
  migration: string;
  run: (RunRow & { progress: RunProgress }) | null;
  processes: ProcessRow[];
  evidence: { recordedAt: Date; summary: string; passed: boolean } | null;
  /**
   * The latest fencing token of scope `migration` (not a secret) and who holds it; `heldByRun` is
   * true when it is this run's own (fence-token.ts), false when another holder fenced the run out.
   */
  fence: { token: string; holder: string | null; issuedAt: Date; heldByRun: boolean } | null;
}

/** The fence row of `scope`, when the fence table exists in `db`. */
async function readFence(
  db: Queryable,
  schema: string,
  scope: string,
): Promise<{ token: string; holder: string | null; issuedAt: Date } | null> {
  const table = fenceTable(schema);
  const { rows } = await db.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [table]);
  if (!rows[0]?.present) return null;
  const found = await db.query(`SELECT token::text AS token, holder, issued_at FROM ${table} WHERE scope = $1`, [scope]);
  const row = found.rows[0] as { token: string; holder: string | null; issued_at: Date } | undefined;
  return row ? { token: row.token, holder: row.holder, issuedAt: row.issued_at } : null;
}

/** `fenceDb`: the database the batches write, where the fence table is (default `db`). */
export async function readStatus(
  db: Queryable,
  schema: string,
  migration: string,
  options: { fenceDb?: Queryable } = {},
): Promise<StatusReport> {
  const { rows } = await db.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [controlTables(schema).runs]);
  if (!rows[0]?.present) return { migration, run: null, processes: [], evidence: null, fence: null };
  const run = await latestRun(db, schema, migration);
  if (!run) return { migration, run: null, processes: [], evidence: null, fence: null };
  const fence = await readFence(options.fenceDb ?? db, schema, migration);
  const progress = await runProgress(db, schema, run.runId);
  const processes = await liveProcesses(db, schema, run.runId);
  const ev = await latestEvidence(db, schema, migration, 'backfill');
  return {
    migration,
    run: { ...run, progress },
    processes,
    evidence: ev ? { recordedAt: ev.recordedAt, summary: ev.summary, passed: ev.passed } : null,
    fence: fence ? { ...fence, heldByRun: fence.holder === runHolder(run.runId) } : null,
  };
}

const n = (v: number): string => Math.round(v).toLocaleString('en-US');

export function formatStatus(r: StatusReport): string {
  if (!r.run) return `backfill of "${r.migration}": no run yet (start one with parity backfill run --spec FILE)\n`;
  const run = r.run;
  const p = run.progress;
  const pct = run.rowsPlanned > 0 ? ((100 * p.rowsDone) / run.rowsPlanned).toFixed(1) : '100.0';
  const lines = [
    `backfill of "${r.migration}": run ${run.runId} ${run.state}${run.paused && run.state === 'running' ? ' (PAUSED)' : ''}`,
    `  progress     ${n(p.rowsDone)}/${n(run.rowsPlanned)} rows (${pct}%), ${n(p.rowsChanged)} written, ${n(p.batches)} batches`,
    `  ranges       ${p.ranges.done} done, ${p.ranges.running} running, ${p.ranges.pending} pending of ${run.rangesPlanned}`,
    `  upper key    ${run.upperKey ? `(${run.upperKey.join(', ')})` : 'none (empty table)'}; rows above it are covered by dual-write`,
    `  started      ${run.startedAt.toISOString()}${run.finishedAt ? `, finished ${run.finishedAt.toISOString()}` : ''}`,
    `  batch size   ${run.batchSizeOverride ? `${run.batchSizeOverride} (pinned by operator)` : 'adaptive'}; max lag ${run.maxLagSecondsOverride !== null ? `${run.maxLagSecondsOverride}s (operator override)` : 'from spec'}${run.walRateOverride !== null ? `; WAL budget ${run.walRateOverride} bytes/s (pinned by operator)` : ''}${run.workersOverride !== null ? `; ${run.workersOverride} worker(s) in service per process (pinned by operator)` : ''}`,
  ];
  if (run.paused) lines.push(`  paused       ${run.pausedReason ?? 'by an operator'}`);
  if (run.lastCommand)
    lines.push(`  last command ${run.lastCommand} by ${run.lastCommandBy ?? '?'} at ${run.lastCommandAt?.toISOString() ?? '?'}`);
  if (run.error) lines.push(`  error        ${run.error}`);
  if (r.processes.length === 0)
    lines.push(`  processes    none alive${run.state === 'running' ? ' (run `parity backfill run` to resume)' : ''}`);
  for (const proc of r.processes) {
    lines.push(
      `  process      ${proc.processId} ${proc.state}${proc.reason ? ` (${proc.reason})` : ''}; ${proc.workers} workers, batch ${proc.batchSize ?? '?'}, ${n(proc.rowsPerSecond ?? 0)} rows/s, ETA ${formatDuration(proc.etaSeconds ?? undefined)}${proc.controlUrl ? `, control ${proc.controlUrl}` : ''}`,
    );
    if (proc.pace) lines.push(`    pace       ${proc.pace}`);
  }
  if (r.fence) {
    const f = r.fence;
    lines.push(
      `  fence        token ${f.token} for "${r.migration}", ${f.heldByRun ? `held by this run since ${f.issuedAt.toISOString()}` : `held by ${f.holder ?? 'an unnamed holder'} since ${f.issuedAt.toISOString()} (batches carrying an older token are refused; a restarted run takes a new one)`}`,
    );
  }
  if (r.evidence) lines.push(`  evidence     ${r.evidence.summary} (${r.evidence.recordedAt.toISOString()})`);
  return `${lines.join('\n')}\n`;
}
