/**
 * The contract criteria of spec.gates.contract, judged from recorded evidence only. The reconciler
 * ships `parity gate contract` with the full report; this is the coordinator's own reading of the
 * same evidence, used by the enforce -> contract gate and by `parity contract`. A different
 * implementation can be passed in (see ContractGate in gates.ts).
 *
 * Evidence fields read (numbers fall back to 0 only when the evidence itself passed):
 *   backfill       value.complete (boolean)
 *   verify         passed, value.confirmedDrift, value.inFlight
 *   cdc            value.lagSeconds
 *   compat         passed
 *   cache-inspect  value.stale (only when the spec has a cache section)
 */
import type { StoredEvidence } from '../core/control.js';
import type { GateInputs } from './gate-inputs.js';

export interface GateCheck {
  name: string;
  passed: boolean;
  /** One line with the live value and the threshold. */
  detail: string;
  value?: unknown;
}

function age(e: StoredEvidence, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - e.recordedAt.getTime()) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

/** A numeric field of the evidence, or 0 when absent from passing evidence, or null. */
export function evidenceNumber(e: StoredEvidence, names: string[]): number | null {
  for (const name of names) {
    const v = e.value[name];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return e.passed ? 0 : null;
}

export async function backfillCompleteCheck(inputs: GateInputs): Promise<GateCheck> {
  const e = await inputs.evidence('backfill');
  if (!e) return { name: 'backfill complete', passed: false, detail: 'no backfill evidence recorded (run parity backfill)' };
  const complete = e.value.complete === true;
  return { name: 'backfill complete', passed: complete && e.passed, detail: `${complete ? 'complete' : 'not complete'} (${age(e, inputs.now)}): ${e.summary}`, value: e.value };
}

/** The contract criteria, one check per criterion of spec.gates.contract. */
export async function contractCriteria(inputs: GateInputs): Promise<GateCheck[]> {
  const c = inputs.spec.gates.contract;
  const checks: GateCheck[] = [];
  if (c.requireBackfillComplete) checks.push(await backfillCompleteCheck(inputs));

  const verify = await inputs.evidence('verify');
  if (!verify) {
    checks.push({ name: 'confirmed drift', passed: false, detail: 'no verification recorded (run parity verify)' });
    checks.push({ name: 'rows in flight', passed: false, detail: 'no verification recorded' });
  } else {
    const windowMs = c.driftWindowMinutes * 60_000;
    const since = new Date(inputs.now.getTime() - windowMs);
    const drift = evidenceNumber(verify, ['confirmedDrift', 'confirmed']);
    const inWindow = windowMs === 0 || verify.recordedAt >= since;
    const recent = windowMs === 0 ? [verify] : await inputs.evidenceSince('verify', since);
    const worst = recent.reduce<number | null>((max, e) => {
      const d = evidenceNumber(e, ['confirmedDrift', 'confirmed']);
      return d === null || max === null ? null : Math.max(max, d);
    }, 0);
    const driftOk = verify.passed && drift !== null && drift <= c.maxConfirmedDrift && inWindow && worst !== null && worst <= c.maxConfirmedDrift;
    const detail = !inWindow
      ? `latest verification is ${age(verify, inputs.now)}, older than the ${c.driftWindowMinutes}-minute window`
      : `confirmed drift ${drift ?? 'unknown'} (worst in the last ${c.driftWindowMinutes} min: ${worst ?? 'unknown'}), limit ${c.maxConfirmedDrift}${verify.passed ? '' : '; the latest verification failed'}`;
    checks.push({ name: 'confirmed drift', passed: driftOk, detail, value: { latest: drift, worstInWindow: worst, verifications: recent.length } });
    const inFlight = evidenceNumber(verify, ['inFlight']);
    checks.push({ name: 'rows in flight', passed: inFlight !== null && inFlight <= c.maxInFlight, detail: `${inFlight ?? 'unknown'} in flight, limit ${c.maxInFlight}`, value: inFlight });
  }

  const cdc = await inputs.evidence('cdc');
  const lag = cdc ? evidenceNumber(cdc, ['lagSeconds']) : null;
  checks.push({
    name: 'CDC lag',
    passed: lag !== null && lag <= c.maxCdcLagSeconds,
    detail: cdc ? `${lag ?? 'unknown'} s (${age(cdc, inputs.now)}), limit ${c.maxCdcLagSeconds} s` : 'no CDC evidence recorded (the CDC connector records its lag)',
    value: lag,
  });

  if (c.requireCompat) {
    const compat = await inputs.evidence('compat');
    checks.push({ name: 'schemas compatible', passed: compat?.passed === true, detail: compat ? `${compat.passed ? 'compatible' : 'incompatible'} (${age(compat, inputs.now)}): ${compat.summary}` : 'no compatibility evidence recorded (run parity compat check)' });
  }

  if (inputs.spec.cache) {
    const cache = await inputs.evidence('cache-inspect');
    const stale = cache ? evidenceNumber(cache, ['stale', 'staleEntries']) : null;
    checks.push({
      name: 'stale cache entries',
      passed: stale !== null && stale <= c.maxStaleCacheEntries,
      detail: cache ? `${stale ?? 'unknown'} stale (${age(cache, inputs.now)}), limit ${c.maxStaleCacheEntries}` : 'no cache inspection recorded (run parity cache inspect)',
      value: stale,
    });
  }
  return checks;
}
