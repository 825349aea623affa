/**
 * What gates may look at, and nothing else: recorded evidence, flags, the record of applied DDL
 * steps and the clock. Keeping gates on this narrow interface keeps them independent of the
 * commands that produce the evidence (backfill, reconciler, compat gate, cache inspector).
 */
import type pg from 'pg';
import { ensureEvidenceTable, evidenceTable, latestEvidence, type EvidenceKind, type StoredEvidence } from '../core/control.js';
import type { Spec } from '../core/spec.js';
import type { Flags } from './flag-model.js';
import type { DdlPhase } from './ddl-statement.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface DdlProgress {
  /** Planned action names that were applied with their current SQL. */
  applied: string[];
  /** Planned actions not applied yet (or applied with different SQL). */
  missing: string[];
}

export interface GateInputs {
  spec: Spec;
  /** '' for the migration-wide row. */
  cohort: string;
  /** Latest evidence of a kind: the cohort's own, else the migration-wide one. */
  evidence(kind: EvidenceKind): Promise<StoredEvidence | null>;
  /** Every piece of evidence of a kind recorded at or after `since` (cohort's and migration-wide). */
  evidenceSince(kind: EvidenceKind, since: Date): Promise<StoredEvidence[]>;
  /** The effective flags of the cohort (or migration-wide). */
  flags: Flags;
  ddl(phase: DdlPhase): Promise<DdlProgress>;
  /** The control database, for the injected contract gate (which reads the evidence its own way). */
  control: Queryable;
  now: Date;
}

/** Evidence readers over the shared evidence table, with the cohort -> migration-wide fallback. */
export function evidenceReaders(
  db: Queryable,
  schema: string,
  migration: string,
  cohort: string,
): Pick<GateInputs, 'evidence' | 'evidenceSince'> {
  return {
    async evidence(kind) {
      if (cohort) {
        const own = await latestEvidence(db, schema, migration, kind, cohort);
        if (own) return own;
      }
      return latestEvidence(db, schema, migration, kind, '');
    },
    async evidenceSince(kind, since) {
      await ensureEvidenceTable(db, schema);
      const { rows } = await db.query(
        `SELECT migration, cohort, kind, passed, summary, value, recorded_at FROM ${evidenceTable(schema)}
          WHERE migration = $1 AND kind = $2 AND cohort = ANY($3::text[]) AND recorded_at >= $4 ORDER BY recorded_at, id`,
        [migration, kind, cohort ? [cohort, ''] : [''], since],
      );
      return (rows as Record<string, unknown>[]).map((r) => ({
        migration: r.migration as string,
        cohort: r.cohort as string,
        kind: r.kind as EvidenceKind,
        passed: r.passed as boolean,
        summary: r.summary as string,
        value: r.value as Record<string, unknown>,
        recordedAt: r.recorded_at as Date,
      }));
    },
  };
}
