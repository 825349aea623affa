import { describe, expect, it } from 'vitest';
import { evaluateGate } from '../../../services/coordinator/gates.js';
import type { GateInputs } from '../../../services/coordinator/gate-inputs.js';
import { DEFAULT_FLAGS, type Flags } from '../../../services/coordinator/flag-model.js';
import type { EvidenceKind, StoredEvidence } from '../../../services/core/control.js';
import { parseSpec, type Spec } from '../../../services/core/spec.js';

const NOW = new Date('2026-01-10T12:00:00Z');

const SPEC = `
apiVersion: parity/v1
name: orders-mc
source: { database: "postgres://u@127.0.0.1:5432/db", table: orders }
target: { kind: same-table }
key: [id]
mapping: { currency: "'USD'::text" }
infra:
  kafka: { brokers: ["127.0.0.1:19092"] }
  registry: { url: "http://127.0.0.1:18081" }
  redis: { url: "redis://127.0.0.1:16379" }
cdc: { slot: s, publication: p, topicPrefix: shop }
gates: { contract: { driftWindowMinutes: 30, maxCdcLagSeconds: 5 } }
`;

function inputs(options: { flags?: Partial<Flags>; evidence?: Partial<StoredEvidence>[]; missingDdl?: string[]; spec?: Spec } = {}): GateInputs {
  const spec = options.spec ?? parseSpec(SPEC).spec;
  const all: StoredEvidence[] = (options.evidence ?? []).map((e) => ({ migration: 'orders-mc', cohort: '', kind: 'verify', passed: true, summary: 's', value: {}, recordedAt: NOW, ...e }) as StoredEvidence);
  const ofKind = (kind: EvidenceKind) => all.filter((e) => e.kind === kind).sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  return {
    spec,
    cohort: '',
    evidence: async (kind) => ofKind(kind).at(-1) ?? null,
    evidenceSince: async (kind, since) => ofKind(kind).filter((e) => e.recordedAt >= since),
    flags: { ...DEFAULT_FLAGS, ...options.flags },
    ddl: async () => ({ applied: ['a'], missing: options.missingDdl ?? [] }),
    now: NOW,
  };
}

const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);
const failing = async (phase: Parameters<typeof evaluateGate>[0], i: GateInputs) => (await evaluateGate(phase, i)).checks.filter((c) => !c.passed).map((c) => c.name);

describe('phase gates', () => {
  it('leave expand only when every expand step is applied', async () => {
    const refused = await evaluateGate('expand', inputs({ missingDdl: ['add currency'] }));
    expect(refused.passed).toBe(false);
    expect(refused.checks[0]?.detail).toMatch(/missing: add currency \(run parity expand\)/);
    expect((await evaluateGate('expand', inputs())).passed).toBe(true);
  });

  it('leave dual-write only with the flag on', async () => {
    expect(await failing('dual-write', inputs())).toEqual(['dual writes on']);
    expect(await failing('dual-write', inputs({ flags: { dualWrite: true } }))).toEqual([]);
  });

  it('leave backfill only with evidence value.complete', async () => {
    const flags = { dualWrite: true };
    expect(await failing('backfill', inputs({ flags }))).toEqual(['backfill complete']);
    expect(await failing('backfill', inputs({ flags, evidence: [{ kind: 'backfill', value: { complete: false } }] }))).toEqual(['backfill complete']);
    expect(await failing('backfill', inputs({ flags, evidence: [{ kind: 'backfill', value: { complete: true } }] }))).toEqual([]);
  });

  it('leave verify only with a passing verification newer than the completed backfill', async () => {
    const backfill = { kind: 'backfill' as const, value: { complete: true }, recordedAt: minutesAgo(10) };
    expect(await failing('verify', inputs({ evidence: [backfill, { kind: 'verify', passed: false, recordedAt: minutesAgo(5) }] }))).toEqual(['verification passed']);
    expect(await failing('verify', inputs({ evidence: [backfill, { kind: 'verify', passed: true, recordedAt: minutesAgo(20) }] }))).toEqual(['verified after the backfill completed']);
    expect(await failing('verify', inputs({ evidence: [backfill, { kind: 'verify', passed: true, recordedAt: minutesAgo(5) }] }))).toEqual([]);
  });

  it('leave dark-reads only with dark reads on, and ramp only at new 100%', async () => {
    const verified = [{ kind: 'verify' as const, passed: true }];
    expect(await failing('dark-reads', inputs({ evidence: verified, flags: { read: 'dark', readPercent: 0 } }))).toEqual(['dark reads on']);
    expect(await failing('dark-reads', inputs({ evidence: verified, flags: { read: 'dark', readPercent: 10 } }))).toEqual([]);
    expect(await failing('ramp', inputs({ flags: { read: 'new', readPercent: 50 } }))).toEqual(['reads on the new path at 100%']);
    expect(await failing('ramp', inputs({ flags: { read: 'new', readPercent: 100 } }))).toEqual([]);
  });

  it('leave enforce only when the contract criteria hold, each failure with its numbers', async () => {
    const good: Partial<StoredEvidence>[] = [
      { kind: 'backfill', value: { complete: true }, recordedAt: minutesAgo(90) },
      { kind: 'verify', value: { confirmedDrift: 0, inFlight: 0 }, recordedAt: minutesAgo(45) },
      { kind: 'verify', value: { confirmedDrift: 0, inFlight: 0 }, recordedAt: minutesAgo(2) },
      { kind: 'cdc', value: { lagSeconds: 1.2 } },
      { kind: 'compat', passed: true },
    ];
    expect(await failing('enforce', inputs({ evidence: good }))).toEqual([]);
    const drifted = [...good, { kind: 'verify' as const, passed: false, value: { confirmedDrift: 3, inFlight: 0 }, recordedAt: minutesAgo(10) }];
    // The drift 10 minutes ago is inside the 30-minute window, although the latest run is clean.
    const result = await evaluateGate('enforce', inputs({ evidence: drifted }));
    expect(result.checks.filter((c) => !c.passed).map((c) => c.detail)).toEqual(['confirmed drift 0 (worst in the last 30 min: 3), limit 0']);
    const lagging = good.map((e) => (e.kind === 'cdc' ? { ...e, value: { lagSeconds: 12 } } : e));
    expect(await failing('enforce', inputs({ evidence: lagging }))).toEqual(['CDC lag']);
    // Without the recent run, the latest verification (45 min ago) is older than the window.
    const stale = good.filter((_e, i) => i !== 2);
    expect(await failing('enforce', inputs({ evidence: stale }))).toEqual(['confirmed drift']);
    expect(await failing('enforce', inputs({ evidence: good, missingDdl: ['validate'] }))).toEqual(['enforce DDL applied']);
    expect(await failing('enforce', inputs())).toEqual(['backfill complete', 'confirmed drift', 'rows in flight', 'CDC lag', 'schemas compatible']);
  });

  it('never pass from contract, the last phase', async () => {
    const r = await evaluateGate('contract', inputs());
    expect(r).toMatchObject({ to: null, passed: false });
  });
});
