/**
 * A concurrent writer (updates and inserts on the same table, dual-writing as the application does
 * in the migrate phase) runs for the whole backfill, and mid-run the throttle probe's p99 crosses its
 * limit. The throttle must engage with state and reason visible in HTTP /status, `parity backfill
 * status`, the metrics and the process row; no batch may commit while it holds; once the probe is fast
 * again the backfill finishes and the final state is exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, cli, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

const ROWS = 60_000;

describe('backfill under a concurrent writer, throttled by the probe p99', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfwriter');
    await createOrders(db.url, { rows: ROWS });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // The probe's latency is steered by this row: 0 s normally, 50 ms while the test "degrades" it.
    await client.query(`CREATE TABLE probe_knob (delay float8 NOT NULL)`);
    await client.query(`INSERT INTO probe_knob VALUES (0)`);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('stays exact, and pauses with reason probe_p99 while the probe is slow', async () => {
    const { spec, file } = makeSpec({
      name: 'writer-probe',
      sourceUrl: db.url,
      allowFunctions: ['pg_sleep'],
      backfill: [
        '  batchSize: 300',
        '  minBatchSize: 300',
        '  maxBatchSize: 300',
        '  throttle:',
        '    probe:',
        '      sql: SELECT pg_sleep((SELECT delay FROM probe_knob))',
        '      maxP99Ms: 25',
        '      intervalMs: 50',
        '      window: 5',
      ].join('\n'),
    });

    // The writer: two sessions of updates (dual-writing the new columns, or touching only status)
    // and inserts of new orders above the fixed upper key, as checkout would.
    let writing = true;
    const stats = { updates: 0, statusOnly: 0, inserts: 0 };
    const writer = async (seed: number) => {
      const w = new pg.Client({ connectionString: db.url });
      await w.connect();
      let next = ROWS + 1 + seed * 1_000_000;
      try {
        while (writing) {
          const r = Math.random();
          const id = 1 + Math.floor(Math.random() * ROWS);
          const amount = Math.floor(Math.random() * 100_000);
          if (r < 0.5) {
            await w.query(`UPDATE orders SET total_amount = $2, total_amount_minor = $3, currency = 'USD' WHERE id = $1`, [
              id,
              amount,
              amount,
            ]);
            stats.updates++;
          } else if (r < 0.7) {
            await w.query(`UPDATE orders SET status = 'shipped' WHERE id = $1`, [id]);
            stats.statusOnly++;
          } else {
            await w.query(
              `INSERT INTO orders (id, customer_id, total_amount, total_amount_minor, currency) VALUES ($1, 1, $2, $3, 'USD')`,
              [next++, amount, amount],
            );
            stats.inserts++;
          }
        }
      } finally {
        await w.end();
      }
    };
    const writerErrors: unknown[] = [];
    const writers = [writer(0), writer(1)].map((p) => p.catch((err: unknown) => writerErrors.push(err)));

    const registry = createMetricsRegistry({ defaultMetrics: false });
    const running = runBackfill({ spec, metrics: registry, workers: 2, pollMs: 100 });
    running.catch(() => undefined);
    const rowsDone = async () =>
      (await client.query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity.backfill_ranges`).catch(() => ({ rows: [{ n: 0 }] })))
        .rows[0].n as number;
    await waitFor('some progress', async () => (await rowsDone()) > 3_000);

    await client.query(`UPDATE probe_knob SET delay = 0.05`);
    const controlUrl = await waitFor('the control URL in the process row', async () => {
      const { rows } = await client.query(
        `SELECT control_url FROM parity.backfill_processes WHERE state <> 'exited' AND control_url IS NOT NULL`,
      );
      return rows[0]?.control_url as string | undefined;
    });
    const status = await waitFor('throttled state over HTTP', async () => {
      const s = (await (await fetch(`${controlUrl}/status`)).json()) as { state: string; throttle: { reason: string; detail: string }[] };
      return s.state === 'throttled' ? s : undefined;
    });
    expect(status.throttle.map((f) => f.reason)).toEqual(['probe_p99']);
    expect(status.throttle[0]?.detail).toMatch(/probe p99 \d+(\.\d+)?ms over \d+ samples > maxP99Ms 25/);

    // Give the batches in flight time to commit; after that nothing may move while throttled.
    await new Promise((r) => setTimeout(r, 500));
    const frozen = await rowsDone();
    const metrics = await (await fetch(`${controlUrl}/metrics`)).text();
    expect(metrics).toMatch(/parity_backfill_throttled 1/);
    expect(metrics).toMatch(/parity_backfill_throttle_active\{reason="probe_p99"\} 1/);
    expect(metrics).toMatch(/parity_backfill_throttle_active\{reason="operator"\} 0/);
    const shown = cli(['backfill', 'status', '--spec', file]);
    expect((await shown.exit).code).toBe(0);
    expect(shown.stdout()).toMatch(/throttled \(probe_p99: probe p99/);
    const health = await fetch(`${controlUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string; reason: string }).reason).toMatch(/^probe_p99/);
    expect(await rowsDone()).toBe(frozen);
    expect(frozen).toBeLessThan(ROWS);

    await client.query(`UPDATE probe_knob SET delay = 0`);
    const result = await running.finally(() => {
      writing = false;
    });
    await Promise.all(writers);

    expect(writerErrors).toEqual([]);
    expect(result.outcome).toBe('completed');
    // Inserts below the fixed upper key (before planning, or by the second writer's lower ids) are
    // walked too; inserts above it are the dual-write's.
    expect(result.rowsPlanned).toBeGreaterThanOrEqual(ROWS);
    expect(result.rowsDone).toBeGreaterThanOrEqual(result.rowsPlanned);
    expect(stats.updates + stats.statusOnly + stats.inserts).toBeGreaterThan(100);
    expect(await mismatches(client)).toBe(0);
    const audit = await auditLog(client, result.runId);
    expect(audit).toMatchObject({ gaps: 0, redone: 0, rows: result.rowsDone });
    const seconds = registry.getSingleMetric('parity_backfill_throttled_seconds_total');
    const probeSeconds = (await seconds?.get())?.values.find((v) => v.labels.reason === 'probe_p99')?.value ?? 0;
    expect(probeSeconds).toBeGreaterThan(0);
    console.log(`writer: ${JSON.stringify(stats)}; throttled ${probeSeconds.toFixed(2)} s on probe_p99`);
  });
});
