/**
 * Everything the status page shows, read live: the phase of each cohort, the flags, the latest
 * evidence of each kind with its history, the CDC slot's lag, the cutover window (issue 23) and the
 * last audited transitions.
 */
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { ensureEvidenceTable, evidenceTable, tableExists, type EvidenceKind } from '../core/control.js';
import { formatLsn } from '../core/lsn.js';
import type { Spec } from '../core/spec.js';
import { slotLag } from '../../connectors/postgres-source/slot.js';
import { reverseSlot } from '../reverse-sync/names.js';
import {
  type StreamCounts,
  countUnrepresentable,
  readCohorts,
  readPosition,
  readStreamCounts,
  readWindow,
} from '../reverse-sync/window-store.js';
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
  /** The new representation's database, where the reverse slot is (cross-database: the target); default `source`. */
  newSide?: pg.Pool;
  redis: Redis | null;
}

function num(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : 0;
}

/** The cutover window's state (in the old representation's database) and its latest evidence. */
async function collectReverseWindow(deps: CollectDeps, latest: EvidenceRow | undefined): Promise<ReverseWindowStatus | null> {
  const { spec, source } = deps;
  const schema = spec.control.schema;
  // No window table: no cutover ever ran; the status page creates nothing.
  if (!spec.reverse || !(await tableExists(source, schema, 'reverse_windows'))) return null;
  const window = await readWindow(source, schema, spec.name);
  if (!window) return null;
  const [cohorts, position, unrepresentable, stream, lag] = await Promise.all([
    readCohorts(source, schema, spec.name),
    readPosition(source, schema, spec.name),
    countUnrepresentable(source, schema, spec.name),
    readStreamCounts(source, schema, spec.name),
    slotLag(deps.newSide ?? source, reverseSlot(spec)),
  ]);
  const v = latest?.value;
  const s = v?.stream as Record<string, unknown> | null | undefined;
  return {
    state: window.state,
    openedAt: window.openedAt.toISOString(),
    closedAt: window.closedAt?.toISOString() ?? null,
    cohorts: cohorts.map((c) => ({ cohort: c.cohort || '(all)', state: c.state, changedAt: c.changedAt.toISOString() })),
    applied: position
      ? {
          position: `${formatLsn(position.commitLsn)}/${position.ordinal}`,
          keys: position.applied,
          at: position.updatedAt?.toISOString() ?? null,
        }
      : null,
    slot: { name: reverseSlot(spec), lagBytes: lag?.lagBytes ?? null },
    unrepresentable,
    stream,
    evidence:
      latest && v
        ? {
            clean: latest.passed,
            cleanSince: typeof v.cleanSince === 'string' ? v.cleanSince : null,
            recordedAt: latest.recordedAt,
            summary: latest.summary,
            segment: {
              confirmedDrift: num(v.confirmedDrift),
              inFlight: num(v.inFlight),
              runId: v.verifyRunId === null || v.verifyRunId === undefined ? null : num(v.verifyRunId),
            },
            stream: s
              ? {
                  confirmedDriftSinceLast: num(s.confirmedDriftSinceLast),
                  confirmedDrift: num(s.confirmedDrift),
                  inFlight: num(s.inFlight),
                }
              : null,
          }
        : null,
  };
}

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
  const reverseWindow = await collectReverseWindow(deps, latest['reverse-window']);
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
