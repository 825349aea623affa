/**
 * Phases persisted in the control schema: one row per migration (cohort '') or, when the spec
 * lists cohorts, one row per cohort, and an append-only audit table recording every transition and
 * coordinator action with who, when, why and the evidence it was based on.
 */
import type pg from 'pg';
import { ensureControlTables } from '../core/control.js';
import { ParityError } from '../core/errors.js';
import { ident } from '../core/sql.js';
import { isPhase, type Phase } from './phases.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export function phasesTable(schema: string): string {
  return `${ident(schema)}.coordinator_phases`;
}

export function auditTable(schema: string): string {
  return `${ident(schema)}.coordinator_audit`;
}

export async function ensurePhaseTables(db: Queryable, schema: string): Promise<void> {
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${phasesTable(schema)} (
       migration text NOT NULL,
       cohort text NOT NULL DEFAULT '',
       phase text NOT NULL,
       entered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       PRIMARY KEY (migration, cohort)
     )`,
    `CREATE TABLE IF NOT EXISTS ${auditTable(schema)} (
       id bigserial PRIMARY KEY,
       migration text NOT NULL,
       cohort text NOT NULL DEFAULT '',
       action text NOT NULL,
       from_phase text,
       to_phase text,
       actor text NOT NULL,
       reason text NOT NULL,
       evidence jsonb NOT NULL DEFAULT '{}'::jsonb,
       at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    `CREATE INDEX IF NOT EXISTS coordinator_audit_lookup ON ${auditTable(schema)} (migration, at DESC)`,
  ]);
}

export interface PhaseRow {
  cohort: string;
  phase: Phase;
  enteredAt: Date;
}

export interface AuditEntry {
  migration: string;
  cohort: string;
  action: 'init' | 'advance' | 'rollback' | 'expand' | 'enforce' | 'contract' | 'cutover' | 'cutover-rollback';
  fromPhase: Phase | null;
  toPhase: Phase | null;
  actor: string;
  reason: string;
  evidence: unknown;
}

export interface StoredAuditEntry extends AuditEntry {
  id: string;
  at: Date;
}

export async function appendAudit(db: Queryable, schema: string, entry: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO ${auditTable(schema)} (migration, cohort, action, from_phase, to_phase, actor, reason, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      entry.migration,
      entry.cohort,
      entry.action,
      entry.fromPhase,
      entry.toPhase,
      entry.actor,
      entry.reason,
      JSON.stringify(entry.evidence ?? {}),
    ],
  );
}

function toRow(row: { cohort: string; phase: string; entered_at: Date }): PhaseRow {
  if (!isPhase(row.phase))
    throw new ParityError('PARITY_INTERNAL', `the control schema holds an unknown phase "${row.phase}" for cohort "${row.cohort}"`);
  return { cohort: row.cohort, phase: row.phase, enteredAt: row.entered_at };
}

/**
 * The phase rows of a migration, creating missing ones at `expand` (recorded in the audit as
 * `init`). `cohorts` empty means one migration-wide row (cohort '').
 */
export async function loadPhases(
  db: pg.Pool,
  schema: string,
  migration: string,
  cohorts: readonly string[],
  actor: string,
): Promise<PhaseRow[]> {
  await ensurePhaseTables(db, schema);
  const wanted = cohorts.length > 0 ? [...cohorts] : [''];
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const inserted = await client.query(
      `INSERT INTO ${phasesTable(schema)} (migration, cohort, phase) SELECT $1, c, 'expand' FROM unnest($2::text[]) AS c
       ON CONFLICT (migration, cohort) DO NOTHING RETURNING cohort`,
      [migration, wanted],
    );
    for (const row of inserted.rows as { cohort: string }[]) {
      await appendAudit(client, schema, {
        migration,
        cohort: row.cohort,
        action: 'init',
        fromPhase: null,
        toPhase: 'expand',
        actor,
        reason: 'first use of the migration',
        evidence: {},
      });
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  const { rows } = await db.query(
    `SELECT cohort, phase, entered_at FROM ${phasesTable(schema)} WHERE migration = $1 AND cohort = ANY($2::text[]) ORDER BY cohort`,
    [migration, wanted],
  );
  return (rows as { cohort: string; phase: string; entered_at: Date }[]).map(toRow);
}

/**
 * Moves one row from `from` to `to` and audits it, in one transaction. Fails with PARITY_CONFLICT
 * when the row is no longer at `from` (someone else moved it since the gate was evaluated).
 */
export async function transition(db: pg.Pool, schema: string, input: AuditEntry & { fromPhase: Phase; toPhase: Phase }): Promise<void> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(`SELECT phase FROM ${phasesTable(schema)} WHERE migration = $1 AND cohort = $2 FOR UPDATE`, [
      input.migration,
      input.cohort,
    ]);
    const current = (rows[0] as { phase: string } | undefined)?.phase;
    if (current !== input.fromPhase) {
      throw new ParityError(
        'PARITY_CONFLICT',
        `the phase of ${input.migration}${input.cohort ? ` (cohort ${input.cohort})` : ''} changed to "${current}" while this ${input.action} was being checked`,
        {
          hint: 'run `parity migrate status` and try again',
        },
      );
    }
    await client.query(
      `UPDATE ${phasesTable(schema)} SET phase = $3, entered_at = clock_timestamp() WHERE migration = $1 AND cohort = $2`,
      [input.migration, input.cohort, input.toPhase],
    );
    await appendAudit(client, schema, input);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The newest audit entries of a migration first. */
export async function readAudit(db: Queryable, schema: string, migration: string, limit = 20): Promise<StoredAuditEntry[]> {
  await ensurePhaseTables(db, schema);
  const { rows } = await db.query(
    `SELECT id, migration, cohort, action, from_phase, to_phase, actor, reason, evidence, at FROM ${auditTable(schema)} WHERE migration = $1 ORDER BY id DESC LIMIT $2`,
    [migration, limit],
  );
  return (rows as Record<string, unknown>[]).map((r) => ({
    id: String(r.id),
    migration: r.migration as string,
    cohort: r.cohort as string,
    action: r.action as AuditEntry['action'],
    fromPhase: r.from_phase as Phase | null,
    toPhase: r.to_phase as Phase | null,
    actor: r.actor as string,
    reason: r.reason as string,
    evidence: r.evidence,
    at: r.at as Date,
  }));
}
