/**
 * The control schema (default `parity`) in the control database: checkpoints, fences, runs,
 * mismatches, repairs, audit. Each service creates its own tables idempotently through
 * `ensureControlTables`; the shared `evidence` table is how every command reports what the contract
 * gate and the coordinator's phase gates read.
 */
import type pg from 'pg';
import { ident } from './sql.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** SQLSTATEs of a concurrent `CREATE ... IF NOT EXISTS` losing its race: the object exists, fine. */
const CREATE_RACE = new Set(['23505', '42P06', '42P07', '42710']);

/**
 * Runs each DDL statement, tolerating the race where two processes create the same object at once.
 * Statements must be idempotent (`IF NOT EXISTS`).
 */
export async function ensureControlTables(db: Queryable, schema: string, statements: string[]): Promise<void> {
  const all = [`CREATE SCHEMA IF NOT EXISTS ${ident(schema)}`, ...statements];
  for (const sql of all) {
    try {
      await db.query(sql);
    } catch (err) {
      if (!CREATE_RACE.has((err as { code?: string }).code ?? '')) throw err;
    }
  }
}

/** Whether `schema.table` exists (to_regclass: no error, no lock). */
export async function tableExists(db: Queryable, schema: string, table: string): Promise<boolean> {
  const { rows } = await db.query('SELECT to_regclass($1) IS NOT NULL AS present', [`${ident(schema)}.${ident(table)}`]);
  return rows[0]?.present === true;
}

/** Evidence kinds recorded by the commands and read by gates. */
export type EvidenceKind = 'backfill' | 'verify' | 'reconcile' | 'compat' | 'cache-inspect' | 'cdc' | 'repair' | 'reverse-window';

export function evidenceTable(schema: string): string {
  return `${ident(schema)}.evidence`;
}

export async function ensureEvidenceTable(db: Queryable, schema: string): Promise<void> {
  // Checked first: CREATE INDEX IF NOT EXISTS takes a lock on the table even when the index exists,
  // which inside a caller's transaction would be held until its commit.
  if (await tableExists(db, schema, 'evidence')) return;
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${evidenceTable(schema)} (
       id bigserial PRIMARY KEY,
       migration text NOT NULL,
       cohort text NOT NULL DEFAULT '',
       kind text NOT NULL,
       passed boolean NOT NULL,
       summary text NOT NULL,
       value jsonb NOT NULL,
       recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    `CREATE INDEX IF NOT EXISTS evidence_lookup ON ${evidenceTable(schema)} (migration, kind, cohort, recorded_at DESC)`,
  ]);
}

export interface Evidence {
  migration: string;
  cohort?: string;
  kind: EvidenceKind;
  passed: boolean;
  /** One line a person can read, with the figures. */
  summary: string;
  value: Record<string, unknown>;
}

/** Appends one piece of evidence (never updates: the history is the audit trail). */
export async function recordEvidence(db: Queryable, schema: string, evidence: Evidence): Promise<void> {
  await ensureEvidenceTable(db, schema);
  await db.query(`INSERT INTO ${evidenceTable(schema)} (migration, cohort, kind, passed, summary, value) VALUES ($1, $2, $3, $4, $5, $6)`, [
    evidence.migration,
    evidence.cohort ?? '',
    evidence.kind,
    evidence.passed,
    evidence.summary,
    JSON.stringify(evidence.value),
  ]);
}

export interface StoredEvidence extends Evidence {
  recordedAt: Date;
}

/** The latest evidence of a kind, or null when none was ever recorded. */
export async function latestEvidence(
  db: Queryable,
  schema: string,
  migration: string,
  kind: EvidenceKind,
  cohort = '',
): Promise<StoredEvidence | null> {
  await ensureEvidenceTable(db, schema);
  const { rows } = await db.query(
    `SELECT migration, cohort, kind, passed, summary, value, recorded_at FROM ${evidenceTable(schema)}
      WHERE migration = $1 AND kind = $2 AND cohort = $3 ORDER BY recorded_at DESC, id DESC LIMIT 1`,
    [migration, kind, cohort],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    migration: row.migration,
    cohort: row.cohort,
    kind: row.kind,
    passed: row.passed,
    summary: row.summary,
    value: row.value,
    recordedAt: row.recorded_at,
  };
}
