/**
 * Backfill benchmark. Prints progress to stderr and, as the last stdout line, one JSON object:
 *
 * - rows_per_s: a same-table backfill (the worked example's mapping) of 1M rows (10M with --full),
 *   unthrottled, wall time from start to the completed run (planning included).
 * - oltp_p99_ms_baseline / oltp_p99_ms_during: p99 latency of a fixed-rate OLTP load run by pgbench
 *   in its own process (`-R`, open loop: latency counts from each transaction's scheduled start, so
 *   a stall is not hidden by the load slowing down). The mix is checkout-like: 50% point reads of any
 *   order, 25% inserts of new orders (dual-writing the new columns), 25% status updates of one of
 *   the last 1,000 orders. Baseline: no backfill; during: a backfill of the same table at the
 *   default throttle (the spec's defaults).
 *
 * Options: --full, --rows N, --oltp-rows N, --rate TX_PER_S, --baseline-seconds S, --workers N,
 * --connections N.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runBackfill } from '../../services/backfill/backfill.js';
import { parseSpec, type Spec } from '../../services/core/spec.js';
import { percentile } from '../../services/backfill/probe-window.js';
import { createTestDatabase, STACK } from '../support/stack.js';

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

const PGBENCH = join(STACK.PARITY_PG_BINDIR, 'pgbench');

export type TxKind = 'read' | 'insert' | 'update';

/** The pgbench scripts of the checkout-like mix on `table`, with their weights; new ids come from a sequence. */
function oltpScripts(table: string, rows: number): { kind: TxKind; weight: number; sql: string }[] {
  return [
    { kind: 'read', weight: 50, sql: `\\set id random(1, ${rows})\nSELECT id, status, total_amount FROM public.${table} WHERE id = :id;\n` },
    {
      kind: 'insert',
      weight: 25,
      sql: `\\set amount random(0, 99999)\nINSERT INTO public.${table} (id, customer_id, total_amount, total_amount_minor, currency) VALUES (nextval('public.${table}_new_ids'), 1, :amount, :amount, 'USD');\n`,
    },
    { kind: 'update', weight: 25, sql: `\\set back random(0, 999)\nUPDATE public.${table} SET status = 'shipped' WHERE id = (SELECT last_value FROM public.${table}_new_ids) - :back;\n` },
  ];
}

interface Tx {
  kind: TxKind;
  /** Completion time, epoch microseconds. */
  doneUs: number;
  /** From the scheduled start to completion (pgbench's time plus its schedule lag), ms. */
  latencyMs: number;
}

/** Runs pgbench at a fixed rate for `seconds`; resolves with every transaction from its log. */
function runPgbench(url: string, scripts: ReturnType<typeof oltpScripts>, rate: number, connections: number, seconds: number): Promise<Tx[]> {
  const dir = mkdtempSync(join(tmpdir(), 'parity-bench-'));
  const files = scripts.map((sc) => {
    const file = join(dir, `${sc.kind}.sql`);
    writeFileSync(file, sc.sql);
    return ['-f', `${file}@${sc.weight}`];
  });
  const u = new URL(url);
  const args = ['-h', u.hostname, '-p', u.port, '-U', decodeURIComponent(u.username), '-n', ...files.flat(), '-R', String(rate), '-c', String(connections), '-j', '1', '-T', String(seconds), '-l', `--log-prefix=${join(dir, 'tx')}`, u.pathname.slice(1)];
  return new Promise((resolve, reject) => {
    const child = spawn(PGBENCH, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`pgbench exited ${code}: ${err.slice(-2000)}`);
        const txs: Tx[] = [];
        for (const name of readdirSync(dir).filter((n) => n.startsWith('tx.'))) {
          for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
            const f = line.trim().split(/\s+/);
            if (f.length < 7) continue;
            // client tx_no time_us script epoch_s epoch_us schedule_lag_us
            txs.push({ kind: scripts[Number(f[3])]?.kind ?? 'read', doneUs: Number(f[4]) * 1e6 + Number(f[5]), latencyMs: (Number(f[2]) + Number(f[6])) / 1000 });
          }
        }
        resolve(txs);
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

const p99Of = (txs: Tx[], fromUs: number, toUs: number, kind?: TxKind): { p99: number; n: number } => {
  const inWindow = txs.filter((t) => t.doneUs >= fromUs && t.doneUs < toUs && (!kind || t.kind === kind)).map((t) => t.latencyMs);
  return { p99: percentile(inWindow, 0.99) ?? NaN, n: inWindow.length };
};
const byKind = (txs: Tx[], fromUs: number, toUs: number) =>
  Object.fromEntries((['read', 'insert', 'update'] as const).map((k) => [k, Number(p99Of(txs, fromUs, toUs, k).p99.toFixed(2))]));

const nowUs = (): number => Date.now() * 1000;

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

  execFileSync(PGBENCH, ['--version']);
  await admin.query(`CREATE SEQUENCE public.orders_live_new_ids START ${OLTP_ROWS + 1}`);
  // pgbench runs for the baseline plus a generous allowance for the backfill; the backfill starts
  // after the warm-up and the baseline, and the "during" window is exactly its run.
  const WARMUP = 3;
  const ALLOWANCE = Number(process.env.BENCH_DURING_ALLOWANCE ?? 45);
  log(`run 2: pgbench OLTP load at ${RATE} tx/s over ${CONNECTIONS} connections for ${WARMUP + BASELINE_SECONDS + ALLOWANCE} s; baseline ${BASELINE_SECONDS} s, then a backfill at the default throttle`);
  const load = runPgbench(db.url, oltpScripts('orders_live', OLTP_ROWS), RATE, CONNECTIONS, WARMUP + BASELINE_SECONDS + ALLOWANCE);
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const baseFrom = nowUs();
  await new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000));
  const baseTo = nowUs();
  const live = await runBackfill({ spec: specFor(db.url, 'orders_live'), ...(WORKERS ? { workers: WORKERS } : {}), controlServer: false });
  const duringTo = nowUs();
  const duringFrom = baseTo;
  log(`  backfill done in ${((duringTo - duringFrom) / 1e6).toFixed(1)} s; waiting for pgbench to finish its run`);
  const txs = await load;
  const lastTx = Math.max(...txs.map((t) => t.doneUs));
  if (lastTx < duringTo) log(`  warning: pgbench ended ${((duringTo - lastTx) / 1e6).toFixed(1)} s before the backfill; raise BENCH_DURING_ALLOWANCE`);
  const baseline = p99Of(txs, baseFrom, baseTo);
  const during = p99Of(txs, duringFrom, duringTo);
  const mismatched = (await admin.query(`SELECT count(*)::int AS n FROM public.orders_live WHERE (total_amount_minor, currency) IS DISTINCT FROM (total_amount::bigint, 'USD')`)).rows[0].n;
  log(`  p99 by kind, baseline ${JSON.stringify(byKind(txs, baseFrom, baseTo))}, during ${JSON.stringify(byKind(txs, duringFrom, duringTo))}`);
  log(`  baseline p99 ${baseline.p99.toFixed(2)} ms over ${baseline.n} tx; during p99 ${during.p99.toFixed(2)} ms over ${during.n} tx (${live.rowsDone.toLocaleString('en-US')} rows); mismatched rows after: ${mismatched}`);

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
    oltp_p99_ms_by_kind_baseline: byKind(txs, baseFrom, baseTo),
    oltp_p99_ms_by_kind_during: byKind(txs, duringFrom, duringTo),
    oltp_samples_baseline: baseline.n,
    oltp_samples_during: during.n,
    backfill_during_seconds: Number(((duringTo - duringFrom) / 1e6).toFixed(2)),
    mismatched_rows_after: mismatched,
    target_rows_per_s: 100_000,
    target_oltp_p99_ratio: 1.2,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await admin.end();
  await db.drop();
}
