/**
 * The verification report model: everything a person signing off the contract step needs about
 * one finished run, read back from the control schema (rows each side, exclusive each side,
 * updated, unchanged, confirmed drift, in flight, repairs, per-segment checksums, capped sample
 * keys, snapshot positions, thresholds, config hash, tool version, verdict, and the history of
 * runs for the drift-over-time chart). Rendering lives in report-render.ts.
 */
import type pg from 'pg';
import { ensureEvidenceTable, evidenceTable } from '../core/control.js';
import { ParityError } from '../core/errors.js';
import type { LoadedSpec } from '../core/spec.js';
import { targetDatabase, targetTable } from '../core/spec.js';
import {
  confirmedBySegment,
  ensureReconcilerTables,
  getRun,
  latestDoneRun,
  repairCounts,
  runHistory,
  runSegments,
  runTotals,
  sampleMismatches,
  type RunRow,
} from './control-store.js';
import type { KeyTuple } from './key-range.js';
import { TOOL_VERSION } from './version.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface ReportSide {
  /** host:port/database, never credentials. */
  database: string;
  table: string;
  rows: number;
  exclusive: number;
  snapshotPositions: { min: string | null; max: string | null };
}

export interface ReportSegment {
  no: number;
  lo: KeyTuple | null;
  hi: KeyTuple | null;
  source: { rows: number; sum1: string; sum2: string };
  target: { rows: number; sum1: string; sum2: string };
  checksumsEqual: boolean;
  /** Keys that differed in the segment's snapshots (before rechecks). */
  differingKeys: number;
  confirmedDrift: number;
  sourcePosition: string | null;
  targetPosition: string | null;
}

export interface ReportSample {
  key: KeyTuple;
  kind: string;
  status: string;
  expected: Record<string, string | null> | null;
  actual: Record<string, string | null> | null;
  reason: string | null;
}

export interface ReportModel {
  tool: { name: 'parity'; version: string };
  migration: string;
  configHash: string;
  /** The spec's hash when the run was made; differs from configHash if the spec changed since. */
  runConfigHash: string;
  generatedAt: string;
  run: { id: number; startedAt: string; finishedAt: string | null; segments: number; settings: Record<string, unknown> };
  source: ReportSide;
  target: ReportSide;
  updated: number;
  unchanged: number;
  confirmedDrift: number;
  inFlight: number;
  /** Keys in flight because they never settled without a CDC slot (never counted as drift). */
  inFlightUnsettled: number;
  resolvedOnRecheck: number;
  repairs: Record<string, number>;
  segments: ReportSegment[];
  samples: { limit: number; keys: ReportSample[] };
  thresholds: Record<string, unknown>;
  history: Array<{ runId: number; finishedAt: string; confirmedDrift: number; inFlight: number; sourceRows: number }>;
  verdict: { passed: boolean; text: string };
  /**
   * The cutover window (issue 23), from its `reverse-window` evidence: the latest window check and
   * the history of checks. Null when no window check was recorded (no cutover with reverse sync).
   */
  reverseWindow: ReportReverseWindow | null;
}

/** One window check as the report shows it. */
export interface ReportWindowCheck {
  recordedAt: string;
  clean: boolean;
  cleanSince: string | null;
  segment: { confirmedDrift: number; inFlight: number; runId: number | null };
  /** The reverse stream check: drift confirmed since the check before, in all, keys not decided yet. */
  stream: { checked: number; confirmedDriftSinceLast: number; confirmedDrift: number; inFlight: number } | null;
  unrepresentable: number;
  lagBytes: number | null;
  summary: string;
}

export interface ReportReverseWindow {
  latest: ReportWindowCheck;
  /** Oldest first, at most 50. */
  history: ReportWindowCheck[];
  /** The contract gate's "reverse window clean for N minutes" (0: off). */
  requiredCleanMinutes: number;
}

function n(v: unknown): number {
  const x = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
  return Number.isFinite(x) ? x : 0;
}

/** The window checks recorded for the migration (`reverse-window` evidence), oldest first. */
async function reverseWindowSection(
  control: Queryable,
  schema: string,
  migration: string,
  minutes: number,
): Promise<ReportReverseWindow | null> {
  await ensureEvidenceTable(control, schema);
  const { rows } = await control.query(
    `SELECT passed, summary, value, recorded_at FROM ${evidenceTable(schema)}
      WHERE migration = $1 AND kind = 'reverse-window' ORDER BY recorded_at DESC, id DESC LIMIT 50`,
    [migration],
  );
  if (rows.length === 0) return null;
  const checks: ReportWindowCheck[] = rows
    .reverse()
    .map((r: { passed: boolean; summary: string; value: Record<string, unknown>; recorded_at: Date }) => {
      const v = r.value;
      const s = v.stream as Record<string, unknown> | null | undefined;
      return {
        recordedAt: r.recorded_at.toISOString(),
        clean: r.passed,
        cleanSince: typeof v.cleanSince === 'string' ? v.cleanSince : null,
        segment: {
          confirmedDrift: n(v.confirmedDrift),
          inFlight: n(v.inFlight),
          runId: v.verifyRunId === null || v.verifyRunId === undefined ? null : n(v.verifyRunId),
        },
        stream: s
          ? {
              checked: n(s.checked),
              confirmedDriftSinceLast: n(s.confirmedDriftSinceLast),
              confirmedDrift: n(s.confirmedDrift),
              inFlight: n(s.inFlight),
            }
          : null,
        unrepresentable: n(v.unrepresentable),
        lagBytes: v.lagBytes === null || v.lagBytes === undefined ? null : n(v.lagBytes),
        summary: r.summary,
      };
    });
  return { latest: checks[checks.length - 1]!, history: checks, requiredCleanMinutes: minutes };
}

/** host:port/database of a connection URL: enough to tell databases apart, no credentials. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** Builds the report of `runId`, or of the latest finished run of the spec's migration. */
export async function buildReport(control: Queryable, loaded: LoadedSpec, runId?: number): Promise<ReportModel> {
  const { spec } = loaded;
  const schema = spec.control.schema;
  await ensureReconcilerTables(control, schema);
  let run: RunRow | null;
  if (runId !== undefined) {
    run = await getRun(control, schema, runId);
    if (!run || run.migration !== spec.name)
      throw new ParityError('PARITY_BAD_INPUT', `no verification run ${runId} for migration ${spec.name}`, {
        hint: 'omit --run for the latest finished run',
      });
  } else {
    run = await latestDoneRun(control, schema, spec.name);
    if (!run)
      throw new ParityError('PARITY_BAD_INPUT', `no finished verification run for migration ${spec.name}`, {
        hint: 'run parity verify --spec FILE first',
      });
  }
  const totals = await runTotals(control, schema, run.id);
  const segments = await runSegments(control, schema, run.id);
  const bySegment = await confirmedBySegment(control, schema, run.id);
  const samples = await sampleMismatches(control, schema, run.id, spec.reconcile.sampleKeys);
  const repairs = await repairCounts(control, schema, spec.name, run.id);
  const history = await runHistory(control, schema, spec.name);
  const reverseWindow = await reverseWindowSection(control, schema, spec.name, spec.gates.contract.reverseWindowCleanMinutes);
  const tgt = targetTable(spec);
  const passed = run.status === 'done' && totals.confirmedDrift === 0 && totals.inFlight === 0;
  const verdictText =
    run.status !== 'done'
      ? `incomplete: run ${run.id} is ${run.status}`
      : passed
        ? 'pass: no confirmed drift, nothing in flight'
        : totals.confirmedDrift > 0
          ? `fail: ${totals.confirmedDrift} rows of confirmed drift`
          : `fail: ${totals.inFlight} rows still in flight`;
  return {
    tool: { name: 'parity', version: TOOL_VERSION },
    migration: spec.name,
    configHash: loaded.configHash,
    runConfigHash: run.configHash,
    generatedAt: new Date().toISOString(),
    run: {
      id: run.id,
      startedAt: run.startedAt.toISOString(),
      finishedAt: run.finishedAt?.toISOString() ?? null,
      segments: run.segments,
      settings: run.settings,
    },
    source: {
      database: describeDatabase(spec.source.database),
      table: `${spec.source.schema}.${spec.source.table}`,
      rows: totals.sourceRows,
      exclusive: totals.exclusiveSource,
      snapshotPositions: { min: totals.minSourcePosition, max: totals.maxSourcePosition },
    },
    target: {
      database: describeDatabase(targetDatabase(spec)),
      table: `${tgt.schema}.${tgt.table}`,
      rows: totals.targetRows,
      exclusive: totals.exclusiveTarget,
      snapshotPositions: { min: totals.minTargetPosition, max: totals.maxTargetPosition },
    },
    updated: totals.updated,
    unchanged: Math.max(0, totals.sourceRows - totals.sourceDiffRows),
    confirmedDrift: totals.confirmedDrift,
    inFlight: totals.inFlight,
    inFlightUnsettled: totals.unsettledKeys,
    resolvedOnRecheck: totals.resolved,
    repairs,
    segments: segments.map((s) => ({
      no: s.no,
      lo: s.lo,
      hi: s.hi,
      source: { rows: s.sourceRows, ...s.source },
      target: { rows: s.targetRows, ...s.target },
      checksumsEqual: s.sourceRows === s.targetRows && s.source.sum1 === s.target.sum1 && s.source.sum2 === s.target.sum2,
      differingKeys: s.differingKeys,
      confirmedDrift: bySegment.get(s.no) ?? 0,
      sourcePosition: s.sourcePosition,
      targetPosition: s.targetPosition,
    })),
    samples: {
      limit: spec.reconcile.sampleKeys,
      keys: samples.map((m) => ({
        key: m.key,
        kind: m.kind,
        status: m.unsettled ? 'in flight (unsettled)' : m.status,
        expected: m.expected,
        actual: m.actual,
        reason: m.reason,
      })),
    },
    thresholds: { contract: spec.gates.contract, reconcile: spec.reconcile, normalize: spec.normalize },
    history: history.map((h) => ({
      runId: h.id,
      finishedAt: (h.finishedAt ?? h.startedAt).toISOString(),
      confirmedDrift: Number(h.result?.confirmedDrift ?? 0),
      inFlight: Number(h.result?.inFlight ?? 0),
      sourceRows: Number(h.result?.sourceRows ?? 0),
    })),
    verdict: { passed, text: verdictText },
    reverseWindow,
  };
}

/** The report without what differs between two runs over the same data (ids, times, positions). */
export function comparableReport(r: ReportModel): unknown {
  return {
    migration: r.migration,
    configHash: r.configHash,
    source: { ...r.source, snapshotPositions: null },
    target: { ...r.target, snapshotPositions: null },
    updated: r.updated,
    unchanged: r.unchanged,
    confirmedDrift: r.confirmedDrift,
    inFlight: r.inFlight,
    inFlightUnsettled: r.inFlightUnsettled,
    repairs: r.repairs,
    segments: r.segments.map((s) => ({ ...s, sourcePosition: null, targetPosition: null })),
    samples: r.samples,
    thresholds: r.thresholds,
    verdict: r.verdict,
  };
}
