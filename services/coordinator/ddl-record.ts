/**
 * The record of DDL actions run, kept in the target database's control schema (next to the fence
 * table), so a transactional step and its record commit together. Gates read it to know whether a
 * phase's DDL is applied; an action counts as applied only with the SQL the spec has now.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ensureControlTables } from '../core/control.js';
import { ident } from '../core/sql.js';
import type { DdlAction, DdlPhase } from './ddl-statement.js';
import type { DdlProgress } from './gate-inputs.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export function ddlTable(schema: string): string {
  return `${ident(schema)}.coordinator_ddl`;
}

export async function ensureDdlTable(db: Queryable, schema: string): Promise<void> {
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${ddlTable(schema)} (
       id bigserial PRIMARY KEY,
       migration text NOT NULL,
       phase text NOT NULL,
       action text NOT NULL,
       sql_sha256 text NOT NULL,
       sql text NOT NULL,
       status text NOT NULL CHECK (status IN ('applied', 'failed')),
       token bigint,
       actor text NOT NULL,
       attempts integer NOT NULL,
       error text,
       at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
    `CREATE INDEX IF NOT EXISTS coordinator_ddl_lookup ON ${ddlTable(schema)} (migration, phase, action)`,
  ]);
}

export function sqlHash(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

export interface DdlRecord {
  migration: string;
  action: DdlAction;
  status: 'applied' | 'failed';
  token: bigint | null;
  actor: string;
  attempts: number;
  error?: string;
}

export async function recordDdl(db: Queryable, schema: string, r: DdlRecord): Promise<void> {
  await db.query(
    `INSERT INTO ${ddlTable(schema)} (migration, phase, action, sql_sha256, sql, status, token, actor, attempts, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      r.migration,
      r.action.phase,
      r.action.name,
      sqlHash(r.action.sql),
      r.action.sql,
      r.status,
      r.token?.toString() ?? null,
      r.actor,
      r.attempts,
      r.error ?? null,
    ],
  );
}

/** Which of the planned actions were applied with their current SQL. */
export async function ddlProgress(
  db: Queryable,
  schema: string,
  migration: string,
  phase: DdlPhase,
  planned: readonly DdlAction[],
): Promise<DdlProgress> {
  await ensureDdlTable(db, schema);
  const { rows } = await db.query(
    `SELECT DISTINCT action, sql_sha256 FROM ${ddlTable(schema)} WHERE migration = $1 AND phase = $2 AND status = 'applied'`,
    [migration, phase],
  );
  const done = new Set((rows as { action: string; sql_sha256: string }[]).map((r) => `${r.action}\u0000${r.sql_sha256}`));
  const applied: string[] = [];
  const missing: string[] = [];
  for (const a of planned) (done.has(`${a.name}\u0000${sqlHash(a.sql)}`) ? applied : missing).push(a.name);
  return { applied, missing };
}
