/**
 * Everything the status page shows, read live: the phase of each cohort, the flags, the latest
 * evidence of each kind with its history, the CDC slot's lag, the cutover window (issue 23) and the
 * last audited transitions.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { ensureEvidenceTable, evidenceTable, type EvidenceKind } from '../core/control.js';
import type { StreamCounts } from '../core/reverse-stream-counts.js';
import type { Spec } from '../core/spec.js';
import { loadPhases, readAudit } from '../coordinator/phase-store.js';
import { createFlagStore } from '../coordinator/flag-store.js';
import type { EffectiveFlags } from '../coordinator/flag-model.js';

export interface EvidenceRow {
  kind: EvidenceKind;
  passed: boolean;
  summary: string;
  value: Record<string, unknown>;
  recordedAt: string;
}

export interface StatusSnapshot {
  migration: string;
  generatedAt: string;
  phases: { cohort: string; phase: string; enteredAt: string }[];
  flags: EffectiveFlags | null;
  flagsError?: string;
  latest: Partial<Record<EvidenceKind, EvidenceRow>>;
  /** Oldest first, for charts. */
  history: Partial<Record<EvidenceKind, EvidenceRow[]>>;
  slot: { name: string; exists: boolean; active?: boolean; lagBytes?: number; confirmedFlushLsn?: string | null };
  audit: { at: string; cohort: string; action: string; from: string | null; to: string | null; actor: string; reason: string }[];
  /** The cutover window (issue 23): null when the spec has no reverse mapping or no cutover ran. */
  reverseWindow: ReverseWindowStatus | null;
  /** The verdict the page shows: every recorded check passing, and evidence for the contract inputs. */
  verdict: { ok: boolean; reasons: string[] };
}

/**
 * The window's evidence, live and as last recorded: the reverse slot's lag, drift confirmed and in
 * flight from the segment verification and the stream check, unrepresentable rows, clean-since.
 */
export interface ReverseWindowStatus {
  state: 'open' | 'closed';
  openedAt: string;
  closedAt: string | null;
  cohorts: { cohort: string; state: string; changedAt: string }[];
  /** Reverse sync's applied position and when it last moved. */
  applied: { position: string; keys: number; at: string | null } | null;
  /** The reverse slot (live): null lag when the slot is gone (window closed, or dropped). */
  slot: { name: string; lagBytes: number | null };
  /** Rows of the new representation the old shape cannot hold, pending (live). */
  unrepresentable: number;
  /** The reverse stream check's counts since the window opened (live; null before its first check). */
  stream: StreamCounts | null;
  /** The latest window check (`reverse-window` evidence): null before the first. */
  evidence: {
    clean: boolean;
    cleanSince: string | null;
    recordedAt: string;
    summary: string;
    segment: { confirmedDrift: number; inFlight: number; runId: number | null };
    stream: { confirmedDriftSinceLast: number; confirmedDrift: number; inFlight: number } | null;
  } | null;
}

const KINDS: EvidenceKind[] = ['backfill', 'verify', 'reconcile', 'compat', 'cache-inspect', 'repair'];

export interface CollectDeps {
  spec: Spec;
  control: pg.Pool;
  source: pg.Pool;
  redis: Redis | null;
  /**
   * Reads the cutover window (issue 23) given its latest `reverse-window` evidence; injected by the
   * CLI wiring (services/cli/reverse-window-status.ts), since the status page does not import reverse
   * sync. Absent: no window section.
   */
  reverseWindow?: ReverseWindowReader;
}

/** Reads the cutover window's state and joins it with its latest evidence; null when there is no window. */
export type ReverseWindowReader = (latest: EvidenceRow | undefined) => Promise<ReverseWindowStatus | null>;

export async function collectStatus(deps: CollectDeps): Promise<StatusSnapshot> {
  const { spec } = deps;
  const schema = spec.control.schema;
  await ensureEvidenceTable(deps.control, schema);
  const phases = await loadPhases(deps.control, schema, spec.name, spec.cohorts, 'parity-serve');
  const audit = await readAudit(deps.control, schema, spec.name, 12);
  const { rows } = await deps.control.query(
    `SELECT kind, passed, summary, value, recorded_at FROM (
       SELECT *, row_number() OVER (PARTITION BY kind ORDER BY recorded_at DESC, id DESC) AS n
         FROM ${evidenceTable(schema)} WHERE migration = $1) e
      WHERE n <= 60 ORDER BY recorded_at, id`,
    [spec.name],
  );
  const history: StatusSnapshot['history'] = {};
  const latest: StatusSnapshot['latest'] = {};
  for (const r of rows as { kind: EvidenceKind; passed: boolean; summary: string; value: Record<string, unknown>; recorded_at: Date }[]) {
    const row: EvidenceRow = {
      kind: r.kind,
      passed: r.passed,
      summary: r.summary,
      value: r.value,
      recordedAt: r.recorded_at.toISOString(),
    };
    (history[r.kind] ??= []).push(row);
    latest[r.kind] = row;
  }
  const slotRows = await deps.source.query(
    `SELECT active, confirmed_flush_lsn::text AS confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [spec.cdc.slot],
  );
  const slotRow = slotRows.rows[0];
  let flags: EffectiveFlags | null = null;
  let flagsError: string | undefined;
  if (deps.redis) {
    try {
      flags = await createFlagStore({ redis: deps.redis, migration: spec.name }).read();
    } catch (err) {
      flagsError = (err as Error).message;
    }
  }
  const reasons: string[] = [];
  for (const kind of ['backfill', 'verify', 'compat', 'cache-inspect'] as EvidenceKind[]) {
    const e = latest[kind];
    if (!e) reasons.push(`${kind}: no evidence recorded yet`);
    else if (!e.passed) reasons.push(`${kind}: ${e.summary}`);
  }
  if (!slotRow) reasons.push(`cdc: slot ${spec.cdc.slot} does not exist`);
  const reverseWindow = (await deps.reverseWindow?.(latest['reverse-window'])) ?? null;
  if (reverseWindow?.state === 'open') {
    if (!reverseWindow.evidence) reasons.push('reverse window: no window check recorded yet (parity reverse-sync check)');
    else if (!reverseWindow.evidence.clean) reasons.push(`reverse window: ${reverseWindow.evidence.summary}`);
  }
  return {
    migration: spec.name,
    generatedAt: new Date().toISOString(),
    phases: phases.map((p) => ({ cohort: p.cohort || '(all)', phase: p.phase, enteredAt: p.enteredAt.toISOString() })),
    flags,
    ...(flagsError ? { flagsError } : {}),
    latest,
    history,
    slot: slotRow
      ? {
          name: spec.cdc.slot,
          exists: true,
          active: slotRow.active,
          lagBytes: slotRow.lag === null ? undefined : Number(slotRow.lag),
          confirmedFlushLsn: slotRow.confirmed,
        }
      : { name: spec.cdc.slot, exists: false },
    audit: audit.map((a) => ({
      at: a.at.toISOString(),
      cohort: a.cohort || '(all)',
      action: a.action,
      from: a.fromPhase,
      to: a.toPhase,
      actor: a.actor,
      reason: a.reason,
    })),
    reverseWindow,
    verdict: { ok: reasons.length === 0, reasons },
  };
}

export { KINDS };
