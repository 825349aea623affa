/**
 * Backfill benchmark. Prints progress to stderr and, as the last stdout line, one JSON object:
 *
 * - rows_per_s: a same-table backfill (the worked example's mapping) of 1M rows (10M with --full),
 *   unthrottled, wall time from start to the completed run (planning included).
 * - oltp_p99_ms_baseline / oltp_p99_ms_during: p99 latency of a fixed-rate OLTP load (checkout-like:
 *   point reads of any order, inserts of new orders with dual-write, status updates of recent
 *   orders) with no backfill, then while a backfill of the same table runs at the default throttle.
 *   Open loop: each transaction has a scheduled start and its latency counts from that moment, so a
 *   stall is not hidden by the load slowing down.
 *
 * Options: --full, --rows N, --oltp-rows N, --rate TX_PER_S, --baseline-seconds S, --workers N.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runBackfill } from '../../services/backfill/backfill.js';
import { parseSpec, type Spec } from '../../services/core/spec.js';
import { percentile } from '../../services/backfill/probe-window.js';
import { createTestDatabase } from '../support/stack.js';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean' },
    rows: { type: 'string' },
    'oltp-rows': { type: 'string' },
    rate: { type: 'string' },
    'baseline-seconds': { type: 'string' },
    workers: { type: 'string' },
    connections: { type: 'string' },
  },
});
const ROWS = Number(values.rows ?? (values.full ? 10_000_000 : 1_000_000));
const OLTP_ROWS = Number(values['oltp-rows'] ?? 1_000_000);
const RATE = Number(values.rate ?? 200);
const BASELINE_SECONDS = Number(values['baseline-seconds'] ?? 20);
const WORKERS = values.workers ? Number(values.workers) : undefined;
const CONNECTIONS = Number(values.connections ?? 4);

const log = (msg: string) => process.stderr.write(`[bench:backfill] ${msg}\n`);

async function createTable(db: pg.Client, table: string, rows: number): Promise<void> {
  await db.query(`CREATE TABLE public.${table} (
    id bigint PRIMARY KEY, customer_id integer NOT NULL, total_amount integer NOT NULL, status text NOT NULL DEFAULT 'paid',
    created_at timestamptz NOT NULL DEFAULT now(), total_amount_minor bigint, currency text)`);
  const chunk = 1_000_000;
  for (let lo = 1; lo <= rows; lo += chunk) {
    const hi = Math.min(rows, lo + chunk - 1);
    await db.query(`INSERT INTO public.${table} (id, customer_id, total_amount) SELECT g, g % 9973, ((g * 7919) % 100000)::int FROM generate_series($1::bigint, $2::bigint) g`, [lo, hi]);
  }
  await db.query(`VACUUM (ANALYZE) public.${table}`);
}

function specFor(url: string, table: string): Spec {
  const text = `apiVersion: parity/v1
name: bench-${table.replace(/_/g, '-')}
source: { database: "${url}", table: ${table} }
target: { kind: same-table }
key: [id]
mapping:
  total_amount_minor: total_amount::bigint
  currency: "'USD'::text"
infra:
  kafka: { brokers: ["127.0.0.1:19092"] }
  registry: { url: "http://127.0.0.1:18081/apis/ccompat/v7" }
  redis: { url: "redis://127.0.0.1:16379" }
cdc: { slot: bench_slot, publication: bench_pub, topicPrefix: bench }
`;
  return parseSpec(text, '<bench>').spec;
}

type TxKind = 'read' | 'insert' | 'update';

interface Sample {
  scheduledMs: number;
  latencyMs: number;
  kind: TxKind;
}

/**
 * The fixed-rate OLTP load: `rate` transactions per second over `connections` sessions, until
 * stopped. Mix: 50% point read of a random order, 25% insert of a new order (dual-writing the new
 * columns), 25% status update of one of the last 1,000 inserted orders.
 */
function startOltp(url: string, table: string, firstNewId: number, rate: number, connections: number) {
  const samples: Sample[] = [];
  let stopped = false;
  let nextId = firstNewId;
  const t0 = performance.now();
  let scheduled = 0;
  const queue: number[] = [];
  const clients: pg.Client[] = [];
  const runOne = async (c: pg.Client, scheduledMs: number) => {
    const r = Math.random();
    let kind: TxKind;
    if (r < 0.5) {
      kind = 'read';
      await c.query(`SELECT id, status, total_amount FROM public.${table} WHERE id = $1`, [1 + Math.floor(Math.random() * (firstNewId - 1))]);
    } else if (r < 0.75 || nextId - firstNewId < 10) {
      kind = 'insert';
      const amount = Math.floor(Math.random() * 100_000);
      await c.query(`INSERT INTO public.${table} (id, customer_id, total_amount, total_amount_minor, currency) VALUES ($1, 1, $2, $3, 'USD')`, [nextId++, amount, amount]);
    } else {
      kind = 'update';
      const recent = Math.max(firstNewId, nextId - 1 - Math.floor(Math.random() * 1000));
      await c.query(`UPDATE public.${table} SET status = 'shipped' WHERE id = $1`, [recent]);
    }
    samples.push({ scheduledMs, latencyMs: performance.now() - t0 - scheduledMs, kind });
  };
  const done = (async () => {
    for (let i = 0; i < connections; i++) {
      const c = new pg.Client({ connectionString: url, application_name: 'bench-oltp' });
      await c.connect();
      clients.push(c);
    }
    const loops = clients.map(async (c) => {
      while (!stopped || queue.length > 0) {
        const due = queue.shift();
        if (due === undefined) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        await runOne(c, due);
      }
    });
    const pacer = (async () => {
      while (!stopped) {
        const now = performance.now() - t0;
        while (scheduled * (1000 / rate) <= now) queue.push(scheduled++ * (1000 / rate));
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    await Promise.all([pacer, ...loops]);
    await Promise.all(clients.map((c) => c.end()));
  })();
  return {
    /** Milliseconds on the load's own clock. */
    now: () => performance.now() - t0,
    stop: async () => {
      stopped = true;
      await done;
      return samples;
    },
  };
}

const p99 = (samples: Sample[], fromMs: number, toMs: number, kind?: TxKind): { p99: number; n: number } => {
  const inWindow = samples.filter((s) => s.scheduledMs >= fromMs && s.scheduledMs < toMs && (!kind || s.kind === kind)).map((s) => s.latencyMs);
  return { p99: percentile(inWindow, 0.99) ?? NaN, n: inWindow.length };
};
const byKind = (samples: Sample[], fromMs: number, toMs: number) =>
  Object.fromEntries((['read', 'insert', 'update'] as const).map((k) => [k, Number(p99(samples, fromMs, toMs, k).p99.toFixed(2))]));

const db = await createTestDatabase('source', 'benchbf');
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
try {
  log(`loading ${ROWS.toLocaleString('en-US')} rows (unthrottled run) and ${OLTP_ROWS.toLocaleString('en-US')} rows (OLTP run)`);
  await createTable(admin, 'orders_bulk', ROWS);
  await createTable(admin, 'orders_live', OLTP_ROWS);
  await admin.query('CHECKPOINT');

  log('run 1: unthrottled backfill');
  const t1 = performance.now();
  const bulk = await runBackfill({ spec: specFor(db.url, 'orders_bulk'), ...(WORKERS ? { workers: WORKERS } : {}), controlServer: false });
  const seconds = (performance.now() - t1) / 1000;
  const rowsPerS = Math.round(bulk.rowsDone / seconds);
  log(`  ${bulk.rowsDone.toLocaleString('en-US')} rows in ${seconds.toFixed(2)} s: ${rowsPerS.toLocaleString('en-US')} rows/s (${bulk.batches} batches)`);
  await admin.query('CHECKPOINT');

  log(`run 2: OLTP load at ${RATE} tx/s over ${CONNECTIONS} connections; ${BASELINE_SECONDS} s baseline, then a backfill at the default throttle`);
  const load = startOltp(db.url, 'orders_live', OLTP_ROWS + 1, RATE, CONNECTIONS);
  await new Promise((r) => setTimeout(r, 2_000)); // warm-up, not measured
  const baseFrom = load.now();
  await new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000));
  const baseTo = load.now();
  const duringFrom = load.now();
  const live = await runBackfill({ spec: specFor(db.url, 'orders_live'), ...(WORKERS ? { workers: WORKERS } : {}), controlServer: false });
  const duringTo = load.now();
  const samples = await load.stop();
  const baseline = p99(samples, baseFrom, baseTo);
  const during = p99(samples, duringFrom, duringTo);
  const mismatched = (await admin.query(`SELECT count(*)::int AS n FROM public.orders_live WHERE (total_amount_minor, currency) IS DISTINCT FROM (total_amount::bigint, 'USD')`)).rows[0].n;
  log(`  p99 by kind, baseline ${JSON.stringify(byKind(samples, baseFrom, baseTo))}, during ${JSON.stringify(byKind(samples, duringFrom, duringTo))}`);
  log(`  baseline p99 ${baseline.p99.toFixed(2)} ms over ${baseline.n} tx; during p99 ${during.p99.toFixed(2)} ms over ${during.n} tx (backfill ${((duringTo - duringFrom) / 1000).toFixed(1)} s, ${live.rowsDone.toLocaleString('en-US')} rows); mismatched rows after: ${mismatched}`);

  const result = {
    rows: bulk.rowsDone,
    rows_per_s: rowsPerS,
    seconds: Number(seconds.toFixed(3)),
    batches: bulk.batches,
    workers: WORKERS ?? 1,
    oltp_rate_tx_per_s: RATE,
    oltp_rows: OLTP_ROWS,
    oltp_p99_ms_baseline: Number(baseline.p99.toFixed(2)),
    oltp_p99_ms_during: Number(during.p99.toFixed(2)),
    oltp_p99_ratio: Number((during.p99 / baseline.p99).toFixed(2)),
    oltp_p99_ms_by_kind_baseline: byKind(samples, baseFrom, baseTo),
    oltp_p99_ms_by_kind_during: byKind(samples, duringFrom, duringTo),
    oltp_samples_baseline: baseline.n,
    oltp_samples_during: during.n,
    backfill_during_seconds: Number(((duringTo - duringFrom) / 1000).toFixed(2)),
    mismatched_rows_after: mismatched,
    target_rows_per_s: 100_000,
    target_oltp_p99_ratio: 1.2,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await admin.end();
  await db.drop();
}
