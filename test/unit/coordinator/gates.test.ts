import { describe, expect, it } from 'vitest';
import { evaluateGate, verdictMoved, type ContractGate, type GateCheck } from '../../../services/coordinator/gates.js';
import type { GateInputs } from '../../../services/coordinator/gate-inputs.js';
import { DEFAULT_FLAGS, type Flags } from '../../../services/coordinator/flag-model.js';
import type { EvidenceKind, StoredEvidence } from '../../../services/core/control.js';
import { parseSpec, type Spec } from '../../../services/core/spec.js';

const NOW = new Date('2026-01-10T12:00:00Z');
/** Stands for the control database: gates only pass it on to the contract gate. */
const CONTROL = { query: async () => ({ rows: [] }) } as unknown as GateInputs['control'];
const PASSING: ContractGate = async () => [];

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

function inputs(
  options: { flags?: Partial<Flags>; evidence?: Partial<StoredEvidence>[]; missingDdl?: string[]; spec?: Spec } = {},
): GateInputs {
  const spec = options.spec ?? parseSpec(SPEC).spec;
  const all: StoredEvidence[] = (options.evidence ?? []).map(
    (e) =>
      ({
        migration: 'orders-mc',
        cohort: '',
        kind: 'verify',
        passed: true,
        summary: 's',
        value: {},
        recordedAt: NOW,
        ...e,
      }) as StoredEvidence,
  );
  const ofKind = (kind: EvidenceKind) => all.filter((e) => e.kind === kind).sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  return {
    spec,
    cohort: '',
    evidence: async (kind) => ofKind(kind).at(-1) ?? null,
    evidenceSince: async (kind, since) => ofKind(kind).filter((e) => e.recordedAt >= since),
    flags: { ...DEFAULT_FLAGS, ...options.flags },
    ddl: async () => ({ applied: ['a'], missing: options.missingDdl ?? [] }),
    control: CONTROL,
    now: NOW,
  };
}

const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);
const failing = async (phase: Parameters<typeof evaluateGate>[0], i: GateInputs, gate: ContractGate = PASSING) =>
  (await evaluateGate(phase, i, gate)).checks.filter((c) => !c.passed).map((c) => c.name);

describe('phase gates', () => {
  it('leave expand only when every expand step is applied', async () => {
    const refused = await evaluateGate('expand', inputs({ missingDdl: ['add currency'] }), PASSING);
    expect(refused.passed).toBe(false);
    expect(refused.checks[0]?.detail).toMatch(/missing: add currency \(run parity expand\)/);
    expect((await evaluateGate('expand', inputs(), PASSING)).passed).toBe(true);
  });

  it('leave dual-write only with the flag on', async () => {
    expect(await failing('dual-write', inputs())).toEqual(['dual writes on']);
    expect(await failing('dual-write', inputs({ flags: { dualWrite: true } }))).toEqual([]);
  });

  it('leave backfill only with evidence value.complete', async () => {
    const flags = { dualWrite: true };
    expect(await failing('backfill', inputs({ flags }))).toEqual(['backfill complete']);
    expect(await failing('backfill', inputs({ flags, evidence: [{ kind: 'backfill', value: { complete: false } }] }))).toEqual([
      'backfill complete',
    ]);
    expect(await failing('backfill', inputs({ flags, evidence: [{ kind: 'backfill', value: { complete: true } }] }))).toEqual([]);
  });

  it('leave verify only with a passing verification newer than the completed backfill', async () => {
    const backfill = { kind: 'backfill' as const, value: { complete: true }, recordedAt: minutesAgo(10) };
    expect(await failing('verify', inputs({ evidence: [backfill, { kind: 'verify', passed: false, recordedAt: minutesAgo(5) }] }))).toEqual(
      ['verification passed'],
    );
    expect(await failing('verify', inputs({ evidence: [backfill, { kind: 'verify', passed: true, recordedAt: minutesAgo(20) }] }))).toEqual(
      ['verified after the backfill completed'],
    );
    expect(await failing('verify', inputs({ evidence: [backfill, { kind: 'verify', passed: true, recordedAt: minutesAgo(5) }] }))).toEqual(
      [],
    );
  });

  it('leave dark-reads only with dark reads on, and ramp only at new 100%', async () => {
    const verified = [{ kind: 'verify' as const, passed: true }];
    expect(await failing('dark-reads', inputs({ evidence: verified, flags: { read: 'dark', readPercent: 0 } }))).toEqual(['dark reads on']);
    expect(await failing('dark-reads', inputs({ evidence: verified, flags: { read: 'dark', readPercent: 10 } }))).toEqual([]);
    expect(await failing('ramp', inputs({ flags: { read: 'new', readPercent: 50 } }))).toEqual(['reads on the new path at 100%']);
    expect(await failing('ramp', inputs({ flags: { read: 'new', readPercent: 100 } }))).toEqual([]);
  });

  it('leave enforce only when the enforce DDL is applied and the injected contract gate passes', async () => {
    const seen: { control: unknown; now: Date }[] = [];
    const verdict =
      (passed: boolean): ContractGate =>
      async (context) => {
        seen.push(context);
        return [{ name: 'confirmed drift', passed, detail: passed ? '0 rows' : '3 rows, limit 0' }];
      };
    expect(await failing('enforce', inputs(), verdict(true))).toEqual([]);
    // The gate is judged on the coordinator's control database and clock.
    expect(seen[0]).toEqual({ control: CONTROL, now: NOW });
    const refused = await evaluateGate('enforce', inputs(), verdict(false));
    expect(refused.checks.filter((c) => !c.passed).map((c) => c.detail)).toEqual(['3 rows, limit 0']);
    expect(await failing('enforce', inputs({ missingDdl: ['validate'] }), verdict(true))).toEqual(['enforce DDL applied']);
  });

  it('the contract verdict has moved when a criterion fails, appears, disappears or rests on other evidence', () => {
    const before: GateCheck[] = [
      { name: 'confirmed drift', passed: true, detail: '0', basis: 'verify@t1 run 7' },
      { name: 'CDC lag', passed: true, detail: '0.2 s' },
    ];
    // A live measurement that still passes has not moved.
    expect(verdictMoved(before, [before[0]!, { name: 'CDC lag', passed: true, detail: '0.9 s' }])).toEqual([]);
    expect(verdictMoved(before, [{ ...before[0]!, passed: false, detail: '3 rows' }, before[1]!])).toEqual([
      'confirmed drift no longer passes: 3 rows',
    ]);
    expect(verdictMoved(before, [{ ...before[0]!, basis: 'verify@t2 run 8' }, before[1]!])).toEqual([
      'confirmed drift: its evidence changed (was verify@t1 run 7, now verify@t2 run 8)',
    ]);
    expect(verdictMoved(before, [before[0]!])).toEqual(['CDC lag is no longer judged']);
    expect(verdictMoved(before, [...before, { name: 'stale cache entries', passed: true, detail: '0' }])).toEqual([
      'stale cache entries is a new criterion',
    ]);
  });

  it('never pass from contract, the last phase', async () => {
    const r = await evaluateGate('contract', inputs(), PASSING);
    expect(r).toMatchObject({ to: null, passed: false });
  });
});
