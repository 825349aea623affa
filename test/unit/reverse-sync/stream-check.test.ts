/**
 * The reverse stream check's queue (issue 23): applied keys are checked once each (a key queued
 * again before its check counts as superseded), a failed check puts its keys back and is retried,
 * a difference on an unrepresentable key is not drift, and the counts are stored with the keys still
 * in flight. The database is a recorder here: the queries themselves run in the integration test
 * (test/integration/reverse-sync/stream-check.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { reverseMetrics } from '../../../services/reverse-sync/metrics.js';
import { type AppliedKey, ReverseStreamCheck, type StreamCheckResult } from '../../../services/reverse-sync/stream-check.js';

/** Answers the two statements the queue runs: the unrepresentable lookup and the counts' upsert. */
function recorder(unrepresentable: string[][] = []) {
  const stored: unknown[][] = [];
  return {
    stored,
    db: {
      query: async (sql: string, params: unknown[]) => {
        if (sql.includes('reverse_unrepresentable')) {
          const key = JSON.stringify(params[1]);
          return { rows: unrepresentable.some((k) => JSON.stringify(k) === key) ? [{ '?column?': 1 }] : [] };
        }
        stored.push(params);
        return { rows: [] };
      },
    } as never,
  };
}

const entry = (id: number, deleted = false): [string, AppliedKey] => [String(id), { values: [String(id)], deleted }];

async function until(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('never happened');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function setup(checker: (keys: AppliedKey[]) => Promise<StreamCheckResult[]>, unrepresentable: string[][] = []) {
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const rec = recorder(unrepresentable);
  const seen: AppliedKey[][] = [];
  let opened = 0;
  const check = new ReverseStreamCheck({
    open: async () => {
      opened++;
      return {
        check: async (keys) => {
          seen.push(keys);
          return checker(keys);
        },
        close: async () => undefined,
      };
    },
    db: rec.db,
    schema: 'parity',
    migration: 'm',
    logger: silentLogger(),
    metrics: reverseMetrics(registry),
    retryMs: 1,
  });
  return { check, seen, rec, registry, opened: () => opened };
}

const verdicts =
  (v: Record<string, StreamCheckResult['verdict']>) =>
  async (keys: AppliedKey[]): Promise<StreamCheckResult[]> =>
    keys.map((k) => ({ key: k.values, verdict: v[k.values[0]!] ?? 'match' }));

describe('reverse stream check queue', () => {
  it('checks each applied key once, its latest state; a key queued again before its check is superseded', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const s = setup(async (keys) => {
      await gate;
      return verdicts({})(keys);
    });
    await s.check.enqueue([entry(1)]);
    await until(() => s.seen.length === 1); // key 1 is being checked
    await s.check.enqueue([entry(2), entry(3)]);
    await s.check.enqueue([entry(3, true)]); // 3 again, deleted, before its check
    expect(s.check.inFlight).toBe(3);
    release();
    await until(() => s.check.inFlight === 0 && s.seen.length === 2);
    expect(s.seen[1]).toEqual([
      { values: ['2'], deleted: false },
      { values: ['3'], deleted: true },
    ]);
    expect(s.check.counts).toEqual({ checked: 3, matched: 3, superseded: 1, skipped: 0, confirmedDrift: 0 });
    await s.check.stop();
  });

  it('counts a persisting difference as confirmed drift, but not on a key recorded as unrepresentable', async () => {
    const s = setup(verdicts({ '7': 'mismatch', '8': 'mismatch', '9': 'superseded' }), [['8']]);
    await s.check.enqueue([entry(7), entry(8), entry(9), entry(10)]);
    await until(() => s.check.counts.checked === 4);
    expect(s.check.counts).toEqual({ checked: 4, matched: 1, superseded: 1, skipped: 1, confirmedDrift: 1 });
    // Stored as added counts, with the keys in flight when stored.
    expect(s.rec.stored.at(-1)).toEqual(['m', 4, 1, 1, 1, 1, 0]);
    expect(await s.registry.getSingleMetricAsString('parity_reverse_stream_checks_total')).toMatch(/result="mismatch"} 1/);
    await s.check.stop();
  });

  it('a failed check loses no key: it is reopened and retried', async () => {
    let calls = 0;
    const s = setup(async (keys) => {
      calls++;
      if (calls === 1) throw new Error('connection lost');
      return verdicts({})(keys);
    });
    await s.check.enqueue([entry(1), entry(2)]);
    await until(() => s.check.counts.checked === 2);
    expect(s.seen).toHaveLength(2);
    expect(s.seen[1]!.map((k) => k.values[0])).toEqual(['1', '2']);
    expect(s.opened()).toBe(2);
    expect(s.check.lastError).toBeNull();
    expect(await s.registry.getSingleMetricAsString('parity_reverse_stream_check_errors_total')).toMatch(/ 1$/m);
    await s.check.stop();
  });
});
