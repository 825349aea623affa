import { describe, expect, it } from 'vitest';
import { decideHealth, describeHealth, type HealthLimits, type HealthSignals } from '../../../services/backfill/health.js';

const calm: HealthSignals = {
  serverWalBytesPerSecond: 1_000_000,
  checkpointsRequested: 0,
  replicaLagSeconds: 0,
  activeBackends: 1,
  workersActive: 2,
  saturated: false,
};
const limits: HealthLimits = { cpus: 2, maxLagSeconds: 1.5, maxServerWalBytesPerSecond: 8_000_000, maxWorkers: 4, scaleWorkers: true };

describe('health controller decisions', () => {
  it('allows a step up and keeps the workers when nothing is over its limit', () => {
    const d = decideHealth(calm, limits);
    expect(d).toEqual({ pace: 'allow', workers: 2, reasons: [{ reason: 'healthy', detail: 'no health signal over its limit' }] });
  });

  it('cuts the pace when the server WAL rate is over its limit, and only when a limit is set', () => {
    const d = decideHealth({ ...calm, serverWalBytesPerSecond: 9_000_000 }, limits);
    expect(d.pace).toBe('decrease');
    expect(d.reasons.map((r) => r.reason)).toEqual(['wal_rate']);
    expect(d.reasons[0]?.detail).toBe('server WAL 8.6 MiB/s > max 7.6 MiB/s');
    const { maxServerWalBytesPerSecond: _, ...noLimit } = limits;
    expect(decideHealth({ ...calm, serverWalBytesPerSecond: 90_000_000 }, noLimit).pace).toBe('allow');
  });

  it('cuts the pace after a requested checkpoint (full-page images follow)', () => {
    const d = decideHealth({ ...calm, checkpointsRequested: 1 }, limits);
    expect(d.pace).toBe('decrease');
    expect(d.reasons[0]?.reason).toBe('checkpoint_pressure');
  });

  it('holds the pace while replica lag is over half the limit (over the limit the throttle pauses)', () => {
    expect(decideHealth({ ...calm, replicaLagSeconds: 0.7 }, limits).pace).toBe('allow');
    const d = decideHealth({ ...calm, replicaLagSeconds: 0.8 }, limits);
    expect(d.pace).toBe('hold');
    expect(d.reasons[0]?.reason).toBe('replica_lag');
  });

  it('takes a worker out of service when active sessions exceed the CPUs, and cuts the pace above twice', () => {
    const over = decideHealth({ ...calm, activeBackends: 3 }, limits);
    expect(over).toMatchObject({ pace: 'hold', workers: 1 });
    expect(over.reasons[0]?.reason).toBe('cpu_saturation');
    expect(decideHealth({ ...calm, activeBackends: 5 }, limits)).toMatchObject({ pace: 'decrease', workers: 1 });
    // Never below one worker, and not at all when scaling is off.
    expect(decideHealth({ ...calm, activeBackends: 3, workersActive: 1 }, limits).workers).toBe(1);
    expect(decideHealth({ ...calm, activeBackends: 3 }, { ...limits, scaleWorkers: false }).workers).toBe(2);
  });

  it('brings a worker back when the budget is out of reach and the database is healthy, up to --workers', () => {
    const d = decideHealth({ ...calm, saturated: true }, limits);
    expect(d).toMatchObject({ pace: 'allow', workers: 3 });
    expect(d.reasons[0]?.reason).toBe('budget_unreached');
    expect(decideHealth({ ...calm, saturated: true, workersActive: 4 }, limits).workers).toBe(4);
    // Not while something else is wrong.
    expect(decideHealth({ ...calm, saturated: true, replicaLagSeconds: 1 }, limits).workers).toBe(2);
  });

  it('keeps the strongest move and every reason when several signals fire', () => {
    const d = decideHealth({ ...calm, replicaLagSeconds: 1, checkpointsRequested: 2, activeBackends: 3 }, limits);
    expect(d.pace).toBe('decrease');
    expect(d.reasons.map((r) => r.reason)).toEqual(['checkpoint_pressure', 'replica_lag', 'cpu_saturation']);
    expect(describeHealth(d)).toMatch(/^decrease, 1 worker\(s\) in service: checkpoint_pressure \(2 checkpoint\(s\) requested/);
  });
});
