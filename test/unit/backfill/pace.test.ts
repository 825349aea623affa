import { describe, expect, it } from 'vitest';
import { describePace, Pacer, type PaceStatus } from '../../../services/backfill/pace.js';
import { backfillMetrics } from '../../../services/backfill/metrics.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { silentLogger } from '../../../services/core/log.js';
import { parseSpec } from '../../../services/core/spec.js';

const base = `apiVersion: parity/v1
name: pace-test
source: { database: "postgres://u@127.0.0.1:5432/db", table: orders }
target: { kind: same-table }
key: [id]
mapping: { total_amount_minor: "total_amount::bigint" }
infra:
  kafka: { brokers: ["127.0.0.1:19092"] }
  registry: { url: "http://127.0.0.1:18081/apis/ccompat/v7" }
  redis: { url: "redis://127.0.0.1:16379" }
cdc: { slot: s, publication: p, topicPrefix: t }
`;

describe('backfill.throttle.pace in the spec', () => {
  it('is on by default: small batches, a WAL budget, asynchronous batch commits, its own wal_compression where it may and the latency guard', () => {
    const pace = parseSpec(base, 'spec.yaml').spec.backfill.throttle.pace;
    expect(pace).toEqual({
      enabled: true,
      mode: 'wal-rate',
      walBytesPerSecond: 2 * 1024 * 1024,
      minWalBytesPerSecond: 256 * 1024,
      maxWalBytesPerSecond: 32 * 1024 * 1024,
      walIncreaseBytesPerSecond: 1024 * 1024,
      asynchronousCommit: true,
      walCompression: 'auto',
      healthSignals: true,
      scaleWorkers: true,
      batchWalBytes: 65_536,
      batchSeconds: 0.05,
      dutyCycle: 0.02,
      minDutyCycle: 0.01,
      maxDutyCycle: 0.04,
      increaseStep: 0.005,
      latencyGuard: {
        enabled: true,
        probe: 'commit',
        intervalMs: 50,
        window: 100,
        baselineSeconds: 10,
        rebaselineSeconds: 300,
        factor: 1.2,
        minExcessMs: 0.2,
      },
    });
  });

  it('turns off with enabled: false, and checks its bounds', () => {
    expect(
      parseSpec(`${base}backfill:\n  throttle:\n    pace: { enabled: false }\n`, 'spec.yaml').spec.backfill.throttle.pace.enabled,
    ).toBe(false);
    expect(() => parseSpec(`${base}backfill:\n  throttle:\n    pace: { dutyCycle: 0.8 }\n`, 'spec.yaml')).toThrow(
      /minDutyCycle <= dutyCycle <= maxDutyCycle/,
    );
    expect(() => parseSpec(`${base}backfill:\n  throttle:\n    pace: { latencyGuard: { factor: 1 } }\n`, 'spec.yaml')).toThrow(/factor/);
    expect(() => parseSpec(`${base}backfill:\n  throttle:\n    pace: { walBytesPerSecond: 100000000 }\n`, 'spec.yaml')).toThrow(
      /minWalBytesPerSecond <= walBytesPerSecond <= maxWalBytesPerSecond/,
    );
    expect(() =>
      parseSpec(`${base}backfill:\n  throttle:\n    pace: { latencyGuard: { baselineSeconds: 0.5, intervalMs: 50 } }\n`, 'spec.yaml'),
    ).toThrow(/at least 20 probes/);
  });
});

describe('describePace', () => {
  const status: PaceStatus = {
    mode: 'duty-cycle',
    walBytesPerSecond: null,
    pinned: false,
    workersActive: 1,
    health: null,
    fpiPerRecord: null,
    walCompression: null,
    dutyCycle: 0.125,
    niceRatio: 7,
    batchSeconds: 0.05,
    lastBatchSeconds: 0.004,
    lastBatchWalBytes: 66_000,
    lastSleepMs: 28,
    sleptSeconds: 12,
    guard: {
      phase: 'guarding',
      baselineReason: 'start',
      baselineP99Ms: 0.8,
      baselineP90Ms: 0.6,
      thresholdMs: 1,
      p99Ms: 0.7,
      samples: 40,
      probe: 'commit',
      factor: 1.2,
    },
  };

  it('names the duty cycle, the last sleep and the guard with its numbers', () => {
    expect(describePace(status)).toBe(
      'duty cycle 13% (nice ratio 7.0); sleeping 28.0 ms after a 4.00 ms batch writing 64 KiB of WAL; latency guard: commit probe p99 0.70 ms, limit 1.00 ms (baseline p99 0.80 ms x 1.2)',
    );
  });

  it('says when pacing or the guard is off, and when the guard is measuring', () => {
    expect(describePace(null)).toBe('off (batches back to back)');
    expect(describePace({ ...status, lastBatchSeconds: null, guard: null })).toBe('duty cycle 13% (nice ratio 7.0); latency guard off');
    expect(describePace({ ...status, guard: { ...status.guard!, phase: 'baseline', samples: 12 } })).toMatch(
      /latency guard measuring its baseline \(commit probe, 12 samples\)$/,
    );
  });
});

describe('Pacer with the WAL budget and the health controller', () => {
  const settings = parseSpec(base, 'spec.yaml').spec.backfill.throttle.pace;
  const metrics = backfillMetrics(createMetricsRegistry({ defaultMetrics: false }));
  const decision = (pace: 'decrease' | 'hold' | 'allow') => ({
    pace,
    workers: 2,
    reasons: [{ reason: 'checkpoint_pressure' as const, detail: 'test' }],
  });

  it('a health cut halves the budget; a pin holds it; the status and its line say so', () => {
    const pacer = new Pacer(settings, metrics, silentLogger(), () => 0, 2);
    expect(pacer.status()).toMatchObject({ mode: 'wal-rate', walBytesPerSecond: 2 * 1024 * 1024, workersActive: 2, pinned: false });
    pacer.applyHealth(decision('decrease'), { walCompression: 'off', fpiPerRecord: 0.25 });
    expect(pacer.status().walBytesPerSecond).toBe(1024 * 1024);
    expect(describePace(pacer.status())).toMatch(
      /^WAL budget 1\.0 MiB\/s, 2 worker\(s\) in service, duty cycle .*; health: decrease \(checkpoint_pressure\); full-page images 25% of WAL records \(wal_compression is off: consider wal_compression = lz4 or pglz\)$/,
    );
    pacer.pinWalRate(4 * 1024 * 1024);
    pacer.applyHealth(decision('decrease'), { walCompression: 'lz4' });
    expect(pacer.status()).toMatchObject({ walBytesPerSecond: 4 * 1024 * 1024, pinned: true });
    pacer.pinWalRate(null);
    expect(pacer.status()).toMatchObject({ walBytesPerSecond: 4 * 1024 * 1024, pinned: false });
  });

  it('workers share the budget: two workers sleep twice as long after the same batch', async () => {
    const one = new Pacer({ ...settings, latencyGuard: { ...settings.latencyGuard, enabled: false } }, metrics, silentLogger(), () => 0, 1);
    await one.sleepAfter(0, 2048, AbortSignal.abort());
    const two = new Pacer({ ...settings, latencyGuard: { ...settings.latencyGuard, enabled: false } }, metrics, silentLogger(), () => 0, 2);
    await two.sleepAfter(0, 2048, AbortSignal.abort());
    // 2 KiB at 2 MiB/s: ~0.98 ms per worker's share.
    expect(one.status().lastSleepMs).toBeCloseTo(0.9765625, 6);
    expect(two.status().lastSleepMs).toBeCloseTo(1.953125, 6);
  });
});
