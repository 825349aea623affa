/**
 * The contract gate: "may the old representation be dropped?" Every criterion of
 * `spec.gates.contract` is measured and printed with its value; the gate passes only when all
 * hold. Evidence comes from the shared evidence table (backfill, verify, compat, cache-inspect,
 * recorded by their commands); CDC lag is measured here from the source's replication slot.
 * Missing evidence is a failing criterion that says which command produces it.
 */
import type pg from 'pg';
import { evidenceTable, latestEvidence, ensureEvidenceTable, type StoredEvidence } from '../core/control.js';
import type { LoadedSpec } from '../core/spec.js';
import { measureLag } from './cdc-position.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface Criterion {
  name: string;
  /** The threshold, as text. */
  required: string;
  /** What was measured, as text. */
  measured: string;
  passed: boolean;
  /** Why it failed and what to do, when it failed. */
  reason?: string;
  /**
   * The recorded evidence the verdict rests on (its time, and run when there is one); absent for
   * live measurements. `parity contract` refuses when it changed between two evaluations.
   */
  basis?: string;
  /** False when the criterion does not apply to this migration yet (reported, never blocking). */
  applicable?: boolean;
}

/** Identifies one piece of evidence: when it was recorded, and its run when it names one. */
function basisOf(e: StoredEvidence): string {
  const run = e.value.runId;
  return `${e.kind}@${e.recordedAt.toISOString()}${run === undefined || run === null ? '' : ` run ${String(run)}`}`;
}

export interface GateResult {
  passed: boolean;
  migration: string;
  configHash: string;
  evaluatedAt: string;
  criteria: Criterion[];
}

export interface GateDeps {
  /** Control database (evidence). */
  control: Queryable;
  /** Source database (replication slot). */
  source: Queryable;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

function missing(name: string, required: string, command: string): Criterion {
  return { name, required, measured: 'none', passed: false, reason: `no evidence recorded; run ${command}` };
}

function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

function age(e: StoredEvidence, now: Date): string {
  const minutes = (now.getTime() - e.recordedAt.getTime()) / 60000;
  return minutes < 1 ? 'just now' : `${minutes.toFixed(minutes < 10 ? 1 : 0)} min ago`;
}

/** Verify evidence recorded since `since`, newest first. */
async function verifyEvidenceSince(db: Queryable, schema: string, migration: string, since: Date): Promise<StoredEvidence[]> {
  await ensureEvidenceTable(db, schema);
  const { rows } = await db.query(
    `SELECT migration, cohort, kind, passed, summary, value, recorded_at FROM ${evidenceTable(schema)}
      WHERE migration = $1 AND kind = 'verify' AND cohort = '' AND recorded_at >= $2 ORDER BY recorded_at DESC, id DESC`,
    [migration, since],
  );
  return rows.map((r) => ({
    migration: r.migration,
    cohort: r.cohort,
    kind: r.kind,
    passed: r.passed,
    summary: r.summary,
    value: r.value,
    recordedAt: r.recorded_at,
  }));
}

export async function evaluateContractGate(loaded: LoadedSpec, deps: GateDeps): Promise<GateResult> {
  const { spec } = loaded;
  const g = spec.gates.contract;
  const schema = spec.control.schema;
  const now = deps.now?.() ?? new Date();
  const criteria: Criterion[] = [];

  // Backfill.
  if (g.requireBackfillComplete) {
    const e = await latestEvidence(deps.control, schema, spec.name, 'backfill');
    if (!e) criteria.push(missing('backfill complete', 'complete', 'parity backfill run'));
    else {
      const complete = e.value.complete === true;
      criteria.push({
        name: 'backfill complete',
        required: 'complete',
        measured: `${complete ? 'complete' : 'not complete'} (${age(e, now)})`,
        passed: complete,
        basis: basisOf(e),
        ...(complete ? {} : { reason: `the latest backfill evidence says: ${e.summary}; finish parity backfill run` }),
      });
    }
  } else criteria.push({ name: 'backfill complete', required: 'not required', measured: '-', passed: true });

  // Verification: confirmed drift, its window, and nothing in flight.
  const verify = await latestEvidence(deps.control, schema, spec.name, 'verify');
  if (!verify) {
    criteria.push(missing('confirmed drift', `<= ${g.maxConfirmedDrift} rows`, 'parity verify'));
    criteria.push(missing('in flight', `<= ${g.maxInFlight} rows`, 'parity verify'));
  } else {
    const drift = num(verify.value.confirmedDrift);
    const sameSpec = verify.value.configHash === undefined || verify.value.configHash === loaded.configHash;
    const driftOk = drift !== null && drift <= g.maxConfirmedDrift && sameSpec;
    criteria.push({
      name: 'confirmed drift',
      required: `<= ${g.maxConfirmedDrift} rows`,
      measured: `${drift ?? 'unknown'} rows (run ${String(verify.value.runId ?? '?')}, ${age(verify, now)})`,
      passed: driftOk,
      basis: basisOf(verify),
      ...(driftOk
        ? {}
        : {
            reason: !sameSpec
              ? `the latest verification ran under another spec (config hash ${String(verify.value.configHash).slice(0, 12)}); run parity verify again`
              : 'repair the drift (parity verify --repair) and verify again',
          }),
    });
    const inFlight = num(verify.value.inFlight);
    const inFlightOk = inFlight !== null && inFlight <= g.maxInFlight;
    criteria.push({
      name: 'in flight',
      required: `<= ${g.maxInFlight} rows`,
      measured: `${inFlight ?? 'unknown'} rows`,
      passed: inFlightOk,
      basis: basisOf(verify),
      ...(inFlightOk
        ? {}
        : { reason: 'rows were still changing or the CDC stream had not passed them; let the stream catch up and verify again' }),
    });
  }
  if (g.driftWindowMinutes > 0) {
    const since = new Date(now.getTime() - g.driftWindowMinutes * 60_000);
    const inWindow = await verifyEvidenceSince(deps.control, schema, spec.name, since);
    const worst = inWindow.reduce((m, e) => Math.max(m, num(e.value.confirmedDrift) ?? Infinity), 0);
    const ok = inWindow.length > 0 && worst <= g.maxConfirmedDrift;
    criteria.push({
      name: 'drift window',
      required: `every verification in the last ${g.driftWindowMinutes} min <= ${g.maxConfirmedDrift} rows, at least one`,
      measured: inWindow.length === 0 ? 'no verification in the window' : `${inWindow.length} verifications, worst ${worst} rows`,
      passed: ok,
      // The newest verification in the window (an old one ageing out of it does not move the verdict).
      ...(inWindow[0] ? { basis: basisOf(inWindow[0]) } : {}),
      ...(ok
        ? {}
        : {
            reason:
              inWindow.length === 0
                ? 'the latest verification is older than the window; run parity verify'
                : 'drift was found inside the window; it must hold at zero for the whole window',
          }),
    });
  } else criteria.push({ name: 'drift window', required: 'none (driftWindowMinutes: 0)', measured: '-', passed: true });

  // CDC lag, measured now.
  const lag = await measureLag(deps.source, spec.cdc.slot, g.maxCdcLagSeconds, { sleep: deps.sleep });
  if (!lag.slotExists) {
    criteria.push({
      name: 'CDC lag',
      required: `<= ${g.maxCdcLagSeconds} s`,
      measured: 'no slot',
      passed: false,
      reason: `replication slot ${spec.cdc.slot} does not exist in the source database; run parity cdc run`,
    });
  } else {
    const ok = lag.lagSeconds !== null && lag.lagSeconds <= g.maxCdcLagSeconds;
    criteria.push({
      name: 'CDC lag',
      required: `<= ${g.maxCdcLagSeconds} s`,
      measured: `${lag.lagSeconds === null ? `> ${g.maxCdcLagSeconds} s` : `${lag.lagSeconds.toFixed(2)} s`} (${lag.lagBytes ?? '?'} bytes behind, slot ${lag.active ? 'active' : 'inactive'})`,
      passed: ok,
      ...(ok
        ? {}
        : {
            reason: lag.active
              ? 'the stream is behind; wait for it to catch up'
              : `slot ${spec.cdc.slot} is inactive; start parity cdc run`,
          }),
    });
  }

  // Event schemas.
  if (g.requireCompat) {
    const e = await latestEvidence(deps.control, schema, spec.name, 'compat');
    if (!e) criteria.push(missing('schemas compatible', 'compatible', 'parity compat gate'));
    else
      criteria.push({
        name: 'schemas compatible',
        required: 'compatible',
        measured: `${e.passed ? 'compatible' : 'incompatible'} (${age(e, now)})`,
        passed: e.passed,
        basis: basisOf(e),
        ...(e.passed ? {} : { reason: `the latest compat evidence says: ${e.summary}` }),
      });
  } else criteria.push({ name: 'schemas compatible', required: 'not required', measured: '-', passed: true });

  // Cache freshness.
  if (!spec.cache)
    criteria.push({
      name: 'stale cache entries',
      required: `<= ${g.maxStaleCacheEntries}`,
      measured: 'n/a (the spec has no cache)',
      passed: true,
    });
  else {
    const e = await latestEvidence(deps.control, schema, spec.name, 'cache-inspect');
    if (!e) criteria.push(missing('stale cache entries', `<= ${g.maxStaleCacheEntries}`, 'parity cache inspect'));
    else {
      const stale = num(e.value.stale);
      const ok = stale !== null && stale <= g.maxStaleCacheEntries;
      criteria.push({
        name: 'stale cache entries',
        required: `<= ${g.maxStaleCacheEntries}`,
        measured: `${stale ?? 'unknown'} (${age(e, now)})`,
        passed: ok,
        basis: basisOf(e),
        ...(ok ? {} : { reason: `the latest cache inspection says: ${e.summary}` }),
      });
    }
  }

  criteria.push(await reverseWindowCriterion(deps.control, schema, spec.name, g.reverseWindowCleanMinutes, now));

  return {
    passed: criteria.every((c) => c.passed),
    migration: spec.name,
    configHash: loaded.configHash,
    evaluatedAt: now.toISOString(),
    criteria,
  };
}

/**
 * "Reverse window clean for N minutes" (issue 23). The window is the time after cutover in which
 * reverse sync keeps the old representation current; it records `reverse-window` evidence whose
 * value carries `cleanSince` (ISO time since when the old side has matched with nothing
 * unrepresentable pending, or null while it does not). No such evidence means no window exists
 * (no cutover with reverse sync has run): the criterion is not applicable and does not block.
 */
async function reverseWindowCriterion(db: Queryable, schema: string, migration: string, minutes: number, now: Date): Promise<Criterion> {
  const name = 'reverse window clean';
  if (minutes === 0) return { name, required: 'none (reverseWindowCleanMinutes: 0)', measured: '-', passed: true };
  const required = `clean for >= ${minutes} min`;
  const e = await latestEvidence(db, schema, migration, 'reverse-window');
  if (!e) return { name, required, measured: 'n/a (no reverse window: no cutover with reverse sync)', passed: true, applicable: false };
  const since = typeof e.value.cleanSince === 'string' ? new Date(e.value.cleanSince) : null;
  const cleanMinutes = since && !Number.isNaN(since.getTime()) ? (now.getTime() - since.getTime()) / 60_000 : null;
  const ok = e.passed && cleanMinutes !== null && cleanMinutes >= minutes;
  return {
    name,
    required,
    measured: cleanMinutes === null ? `not clean (${age(e, now)})` : `clean for ${cleanMinutes.toFixed(1)} min (${age(e, now)})`,
    passed: ok,
    basis: basisOf(e),
    ...(ok
      ? {}
      : {
          reason:
            cleanMinutes === null || !e.passed
              ? `the latest reverse window evidence says: ${e.summary}; the old side must match for ${minutes} min before contract`
              : `clean for ${cleanMinutes.toFixed(1)} of the ${minutes} min required; wait, keeping reverse sync running`,
        }),
  };
}

/** One line per criterion: PASS/FAIL, name, required, measured, and the reason when failing. */
export function formatGate(r: GateResult): string {
  const w = Math.max(...r.criteria.map((c) => c.name.length));
  const lines = r.criteria.map(
    (c) =>
      `${c.passed ? 'PASS' : 'FAIL'}  ${c.name.padEnd(w)}  required ${c.required}; measured ${c.measured}${c.reason ? `\n      ${c.reason}` : ''}`,
  );
  lines.push(
    `contract gate for ${r.migration}: ${r.passed ? 'PASS (contract may proceed)' : `FAIL (${r.criteria.filter((c) => !c.passed).length} criteria not met)`}`,
  );
  return `${lines.join('\n')}\n`;
}
