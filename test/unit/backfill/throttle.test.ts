import { describe, expect, it } from 'vitest';
import { describeFindings, evaluateThrottle } from '../../../services/backfill/throttle.js';

const limits = { maxLagSeconds: 1.5, maxActive: 10, abortActive: 20, probeMaxP99Ms: 50 };

describe('evaluateThrottle', () => {
  it('no reason when every signal is under its limit', () => {
    const d = evaluateThrottle(
      {
        replicationLagSeconds: 1.5,
        slotLag: { slot: 's', bytes: 10, seconds: 0.1, active: true },
        activeBackends: 10,
        probeP99Ms: 50,
        http: { url: 'u', status: 204 },
        flagFile: { path: '/f', exists: false },
      },
      limits,
    );
    expect(d).toEqual({ findings: [], overAbortThreshold: false });
  });

  it('names every reason with its numbers', () => {
    const d = evaluateThrottle(
      {
        pausedBy: 'paused by ops@host via ctl',
        replicationLagSeconds: 2.25,
        slotLag: { slot: 'orders', bytes: 9000, seconds: 3, active: false },
        activeBackends: 11,
        probeP99Ms: 80.5,
        probeSamples: 50,
        http: { url: 'http://h/health', status: 503 },
        flagFile: { path: '/tmp/pause', exists: true },
      },
      limits,
    );
    expect(d.findings.map((f) => f.reason)).toEqual([
      'operator',
      'replica_lag',
      'slot_lag',
      'load',
      'probe_p99',
      'http_probe',
      'flag_file',
    ]);
    expect(describeFindings(d.findings)).toBe(
      'operator: paused by ops@host via ctl; replica_lag: replica replay lag 2.25s > max 1.50s; slot_lag: CDC slot orders lag ~3s (9000 bytes, no consumer connected) > max 1.50s; load: 11 active backends > maxActive 10; probe_p99: probe p99 80.5ms over 50 samples > maxP99Ms 50; http_probe: HTTP probe http://h/health answered 503; flag_file: flag file /tmp/pause exists',
    );
    expect(d.overAbortThreshold).toBe(false);
  });

  it('an HTTP probe that does not answer pauses', () => {
    const d = evaluateThrottle({ http: { url: 'http://h', error: 'timeout' } }, limits);
    expect(d.findings).toEqual([{ reason: 'http_probe', detail: 'HTTP probe http://h failed: timeout' }]);
  });

  it('flags the abort threshold separately from the pause', () => {
    expect(evaluateThrottle({ activeBackends: 21 }, limits).overAbortThreshold).toBe(true);
    expect(evaluateThrottle({ activeBackends: 21 }, { maxLagSeconds: 1 }).findings).toEqual([]);
  });

  it('while the latency guard measures its baseline, pauses with reason latency_guard and says why', () => {
    const start = evaluateThrottle({ latencyBaseline: { reason: 'start', elapsedSeconds: 2.04, seconds: 5, samples: 41 } }, limits);
    expect(start.findings).toEqual([
      {
        reason: 'latency_guard',
        detail: 'measuring the latency baseline with the backfill held (before the first batch): 2.0s of 5s, 41 probes',
      },
    ]);
    const over = evaluateThrottle(
      { latencyBaseline: { reason: 'over-at-minimum', elapsedSeconds: 1, seconds: 5, samples: 20, p99Ms: 3.456, limitMs: 1.2 } },
      limits,
    );
    expect(over.findings[0]?.detail).toBe(
      'measuring the latency baseline with the backfill held (probe p99 3.46ms over the limit 1.20ms at the minimum duty cycle): 1s of 5s, 20 probes',
    );
    const periodic = evaluateThrottle({ latencyBaseline: { reason: 'periodic', elapsedSeconds: 0.5, seconds: 5, samples: 10 } }, limits);
    expect(periodic.findings[0]?.detail).toMatch(/\(periodic re-measurement\)/);
  });
});
