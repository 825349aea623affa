/**
 * The default throttle against the real database: a paced backfill measures its latency baseline
 * before the first batch (holding the workers, reason `latency_guard`), keeps its duty cycle, and
 * when the guard's probe gets slower mid-run it cuts the duty cycle step by step, so the backfill
 * really slows down (committed rows per second, from the checkpoint log), until at the minimum it
 * holds the backfill to measure a new baseline. Once the probe is fast again the backfill finishes
 * exactly. The probe's latency is steered by a knob row, as an application's query would slow down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import type { ControllerStatus } from '../../../services/backfill/controller.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, cli, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

describe('backfill latency guard', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfguard');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`CREATE TABLE probe_knob (delay float8 NOT NULL)`);
    await client.query(`INSERT INTO probe_knob VALUES (0)`);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  async function controlUrlOf(migration: string): Promise<string> {
    return waitFor('control URL', async () => {
      const { rows } = await client
        .query(
          `SELECT p.control_url FROM parity.backfill_processes p JOIN parity.backfill_runs r USING (run_id) WHERE r.migration = $1 AND p.state <> 'exited' AND p.control_url IS NOT NULL`,
          [migration],
        )
        .catch(() => ({ rows: [] as { control_url: string }[] }));
      return rows[0]?.control_url;
    });
  }

  /** Rows committed by the run's batches during the last `seconds`, per second (from the checkpoint log). */
  async function recentRate(migration: string, seconds: number): Promise<number> {
    const { rows } = await client.query(
      `SELECT coalesce(sum(b.rows), 0)::float8 AS n FROM parity.backfill_batches b JOIN parity.backfill_runs r USING (run_id)
        WHERE r.migration = $1 AND b.committed_at > clock_timestamp() - make_interval(secs => $2)`,
      [migration, seconds],
    );
    return Number(rows[0].n) / seconds;
  }

  it('by default: measures a baseline with the commit probe, then paces its batches', async () => {
    await createOrders(db.url, { rows: 20_000 }, 'orders_default');
    const { spec } = makeSpec({
      name: 'guard-default',
      sourceUrl: db.url,
      table: 'orders_default',
      backfill: '  throttle:\n    pace:\n      latencyGuard: { baselineSeconds: 2 }',
    });
    const running = runBackfill({ spec, pollMs: 100 });
    running.catch(() => undefined);
    const url = await controlUrlOf('guard-default');
    const held = await waitFor(
      'held for the baseline',
      async () => {
        const s = (await (await fetch(`${url}/status`)).json()) as ControllerStatus;
        return s.throttle.some((f) => f.reason === 'latency_guard') ? s : undefined;
      },
      10_000,
      20,
    );
    expect(held.throttle.find((f) => f.reason === 'latency_guard')?.detail).toMatch(
      /^measuring the latency baseline with the backfill held \(before the first batch\): \d/,
    );
    const result = await running;
    expect(result.outcome).toBe('completed');
    expect(result.pace).toMatchObject({ dutyCycle: expect.any(Number), guard: { phase: 'guarding', probe: 'commit', factor: 1.2 } });
    expect(result.pace?.guard?.baselineP99Ms).toBeGreaterThan(0);
    expect(result.pace?.sleptSeconds).toBeGreaterThan(0);
    // Paced batches are small: sized to about 64 KiB of WAL, far below the unpaced 0.5 s batches.
    const { rows } = await client.query(
      `SELECT max(b.rows)::int AS biggest, count(*)::int AS n FROM parity.backfill_batches b WHERE b.run_id = $1`,
      [result.runId],
    );
    expect(rows[0].biggest).toBeLessThanOrEqual(2_000);
    expect(rows[0].n).toBeGreaterThan(10);
    expect(await mismatches(client, 'orders_default')).toBe(0);
  });

  it('cuts the duty cycle and slows down while the probe is slow, holds to re-measure at the minimum, then finishes', async () => {
    const ROWS = 400_000;
    await createOrders(db.url, { rows: ROWS }, 'orders_guard');
    const { spec, file } = makeSpec({
      name: 'guard-knob',
      sourceUrl: db.url,
      allowFunctions: ['pg_sleep'],
      table: 'orders_guard',
      backfill: [
        '  throttle:',
        '    pace:',
        '      mode: duty-cycle',
        '      healthSignals: false', // this test is about the latency guard alone
        '      dutyCycle: 0.5',
        '      minDutyCycle: 0.05',
        '      maxDutyCycle: 0.5',
        '      increaseStep: 0.05', // once the probe is fast again, back up to 50% in ~40 s, not ~6 minutes
        '      latencyGuard:',
        '        sql: SELECT pg_sleep((SELECT delay FROM probe_knob))',
        '        intervalMs: 20',
        // 200 samples: the window's p99 is its third largest, so one stall of the host (a probe
        // held 40-60 ms by an I/O or scheduler hiccup, seen in CI) cannot cut a step on its own;
        // a slow probe (every sample over the limit) still cuts after three samples.
        '        window: 200',
        '        baselineSeconds: 2',
        '        factor: 1.5',
        '        minExcessMs: 8',
      ].join('\n'),
    });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const running = runBackfill({ spec, metrics: registry, pollMs: 100 });
    running.catch(() => undefined);
    const url = await controlUrlOf('guard-knob');
    const status = async () => (await (await fetch(`${url}/status`)).json()) as ControllerStatus;

    // Running paced after the baseline (at 50%, unless a stall on a busy machine already cost a step).
    await waitFor('batches after the baseline', async () => {
      const s = await status();
      return s.state === 'running' && s.pace?.guard?.phase === 'guarding' && s.rowsDone > 20_000 ? s : undefined;
    });
    await new Promise((r) => setTimeout(r, 2_000));
    const before = await recentRate('guard-knob', 2);
    const startDuty = (await status()).pace?.dutyCycle ?? 0;
    expect(startDuty).toBeGreaterThanOrEqual(0.25);
    expect(before).toBeGreaterThan(0);

    // The foreground gets slower: every probe now takes 150 ms, far over the limit (baseline p99 + 8 ms,
    // or 1.5x a baseline that a host stall of up to 60 ms lifted).
    await client.query(`UPDATE probe_knob SET delay = 0.15`);
    const cut = await waitFor(
      'the duty cycle cut to its minimum',
      async () => {
        const s = await status();
        return s.pace && s.pace.dutyCycle <= 0.05 ? s : undefined;
      },
      30_000,
    );
    expect(cut.pace?.guard?.p99Ms).toBeGreaterThan(140);
    const guardCuts =
      (await registry.getSingleMetric('parity_backfill_latency_guard_moves_total')?.get())?.values
        .filter((v) => v.labels.move === 'decrease' || v.labels.move === 'decrease_shift')
        .reduce((n, v) => n + v.value, 0) ?? 0;
    // On a shared cluster the health controller may have made some of the cuts (a checkpoint
    // requested by another writer: checkpoint_pressure); together they took at least two steps.
    const healthCuts = ((await registry.getSingleMetric('parity_backfill_health_decisions_total')?.get())?.values ?? [])
      .filter((v) => v.labels.pace === 'decrease')
      .reduce((n, v) => n + v.value, 0);
    expect(guardCuts + healthCuts).toBeGreaterThanOrEqual(2); // 0.5 -> 0.25 -> 0.125 -> 0.0625 -> 0.05

    // Over the limit at the minimum: the guard holds the backfill and measures a new baseline.
    const held = await waitFor(
      'held to re-measure',
      async () => {
        const s = await status();
        return s.throttle.some((f) => f.reason === 'latency_guard') ? s : undefined;
      },
      30_000,
      20,
    );
    expect(held.state).toBe('throttled');
    expect(held.throttle.find((f) => f.reason === 'latency_guard')?.detail).toMatch(
      /probe p99 \d+(\.\d+)?ms over the limit \d+(\.\d+)?ms at the minimum duty cycle/,
    );
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/parity_backfill_duty_cycle_ratio 0\.05/);
    expect(Number(/^parity_backfill_latency_guard_p99_seconds (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0.14);

    // Slower, measured on what was committed: from a duty cycle of 5% (raised a step per clean window) instead of 25-50%.
    await waitFor('running again after the new baseline', async () => ((await status()).state === 'running' ? true : undefined), 30_000);
    await new Promise((r) => setTimeout(r, 2_000));
    const after = await recentRate('guard-knob', 2);
    expect(after).toBeLessThan(before / 2);

    // Status shows the pace of the process.
    const shown = cli(['backfill', 'status', '--spec', file]);
    expect((await shown.exit).code).toBe(0);
    expect(shown.stdout()).toMatch(/pace {7}duty cycle \d+(\.\d+)?% \(nice ratio \d+\.\d\)/);
    // The guard is either judging (its p99 and limit) or, over the limit at the minimum, re-measuring.
    expect(shown.stdout()).toMatch(/latency guard(: sql probe p99| measuring its baseline \(sql probe)/);

    await client.query(`UPDATE probe_knob SET delay = 0`);
    const result = await running;
    expect(result.outcome).toBe('completed');
    expect(result.rowsDone).toBe(ROWS);
    expect(await mismatches(client, 'orders_guard')).toBe(0);
    expect(await auditLog(client, result.runId)).toMatchObject({ gaps: 0, redone: 0, rows: ROWS });
    console.log(
      `guard: ${Math.round(before)} rows/s at ${startDuty * 100}%, ${Math.round(after)} rows/s after the cut; ${guardCuts} guard cuts, ${healthCuts} health cuts`,
    );
  });
});
