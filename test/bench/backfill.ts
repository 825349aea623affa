/**
 * Backfill benchmark. Prints progress to stderr and, as the last stdout line, one JSON object:
 *
 * - rows_per_s: a same-table backfill (the worked example's mapping) of 1M rows (10M with --full),
 *   unthrottled (`throttle.pace.enabled: false`: batches back to back at targetBatchSeconds), wall
 *   time from start to the completed run (planning included).
 * - oltp_p99_ms_baseline / oltp_p99_ms_during: p99 latency of a fixed-rate OLTP load run by pgbench
 *   in its own process (`-R`, open loop: latency counts from each transaction's scheduled start, so
 *   a stall is not hidden by the load slowing down) on a table of --oltp-rows rows (300,000 by
 *   default: at the default pace a backfill of it takes minutes). The mix is checkout-like: 50% point
 *   reads of any order, 25% inserts of new orders (dual-writing the new columns), 25% status updates
 *   of one of the last 1,000 orders. After a warm-up and --baseline-seconds of load alone, a backfill
 *   of the same table runs at the default throttle (the spec's defaults: paced, latency guard on; it
 *   knows nothing about pgbench) and is paused and resumed every --interleave-seconds (10; 0: never)
 *   through the operator's control, so load-alone and load-with-backfill windows alternate under the
 *   same machine conditions. Baseline: the load-alone windows; during: the windows in which the
 *   backfill runs. The first second after each switch counts for neither.
 * - Also reported: that backfill's duration, rows/s, batches and their average size, the duty cycle
 *   it ended at, time slept and the guard's moves; and oltp_p99_ms_after, the same load after the
 *   backfill as a control for how much the p99 moves on its own.
 *
 * Options: --full, --rows N, --oltp-rows N, --rate TX_PER_S, --baseline-seconds S, --workers N,
 * --connections N, --interleave-seconds S. BENCH_THROTTLE (a YAML flow map for backfill.throttle)
 * benchmarks another throttle; BENCH_DUMP=FILE writes every transaction and the windows as JSON.
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
import { createMetricsRegistry } from '../../services/core/metrics.js';
import { applyControlCommand } from '../../services/backfill/control-store.js';
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
    'interleave-seconds': { type: 'string' },
  },
});
const ROWS = Number(values.rows ?? (values.full ? 10_000_000 : 1_000_000));
const OLTP_ROWS = Number(values['oltp-rows'] ?? 300_000);
const RATE = Number(values.rate ?? 200);
const BASELINE_SECONDS = Number(values['baseline-seconds'] ?? 30);
const WORKERS = values.workers ? Number(values.workers) : undefined;
const CONNECTIONS = Number(values.connections ?? 4);
const INTERLEAVE = Number(values['interleave-seconds'] ?? 10);

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

/** `throttle` is a YAML flow map placed under `backfill.throttle`; none means the spec's defaults. */
function specFor(url: string, table: string, throttle?: string): Spec {
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
${throttle ? `backfill:\n  throttle: ${throttle}\n` : ''}`;
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

/** Time windows [from, to) in epoch microseconds. */
type Windows = [number, number][];

const p99Of = (txs: Tx[], windows: Windows, kind?: TxKind): { p99: number; n: number } => {
  const inWindow = txs.filter((t) => windows.some(([from, to]) => t.doneUs >= from && t.doneUs < to) && (!kind || t.kind === kind)).map((t) => t.latencyMs);
  return { p99: percentile(inWindow, 0.99) ?? NaN, n: inWindow.length };
};
const byKind = (txs: Tx[], windows: Windows) =>
  Object.fromEntries((['read', 'insert', 'update'] as const).map((k) => [k, Number(p99Of(txs, windows, k).p99.toFixed(2))]));

const nowUs = (): number => Date.now() * 1000;

const db = await createTestDatabase('source', 'benchbf');
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
try {
  log(`loading ${ROWS.toLocaleString('en-US')} rows (unthrottled run) and ${OLTP_ROWS.toLocaleString('en-US')} rows (OLTP run)`);
  await createTable(admin, 'orders_bulk', ROWS);
  await createTable(admin, 'orders_live', OLTP_ROWS);
  await admin.query('CHECKPOINT');

  log('run 1: unthrottled backfill (pace off: batches back to back at targetBatchSeconds)');
  const t1 = performance.now();
  const bulk = await runBackfill({ spec: specFor(db.url, 'orders_bulk', '{ pace: { enabled: false } }'), ...(WORKERS ? { workers: WORKERS } : {}), controlServer: false });
  const seconds = (performance.now() - t1) / 1000;
  const rowsPerS = Math.round(bulk.rowsDone / seconds);
  log(`  ${bulk.rowsDone.toLocaleString('en-US')} rows in ${seconds.toFixed(2)} s: ${rowsPerS.toLocaleString('en-US')} rows/s (${bulk.batches} batches)`);
  // Run 1's million dead row versions would be vacuumed by autovacuum in the middle of run 2.
  await admin.query('DROP TABLE public.orders_bulk');
  await admin.query('CHECKPOINT');

  execFileSync(PGBENCH, ['--version']);
  await admin.query(`CREATE SEQUENCE public.orders_live_new_ids START ${OLTP_ROWS + 1}`);
  // pgbench runs for the baseline plus a generous allowance for the backfill (paced by default, so
  // slower than run 1); the backfill starts after the warm-up and the baseline, and the "during"
  // window is exactly its run. What pgbench runs after the backfill is reported as a control window.
  const WARMUP = 3;
  const ALLOWANCE = Number(process.env.BENCH_DURING_ALLOWANCE ?? 720);
  log(`run 2: pgbench OLTP load at ${RATE} tx/s over ${CONNECTIONS} connections for ${WARMUP + BASELINE_SECONDS + ALLOWANCE} s; baseline ${BASELINE_SECONDS} s, then a backfill at the default throttle`);
  const load = runPgbench(db.url, oltpScripts('orders_live', OLTP_ROWS), RATE, CONNECTIONS, WARMUP + BASELINE_SECONDS + ALLOWANCE);
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const baseFrom = nowUs();
  await new Promise((r) => setTimeout(r, BASELINE_SECONDS * 1000));
  const baseTo = nowUs();
  const registry = createMetricsRegistry({ defaultMetrics: false });
  const liveSpec = specFor(db.url, 'orders_live', process.env.BENCH_THROTTLE);
  // Interleaved A/B: every INTERLEAVE seconds the backfill is paused or resumed (the operator's
  // `ctl pause|resume`), so "no backfill" and "backfill" windows alternate under the same machine
  // conditions (this VM has stalls of 0.1-0.5 s with no backfill at all; a single before/after split
  // puts them wherever they happen to fall). The first second after each switch counts for neither
  // side (a pause takes effect at the next poll, after the batch in flight).
  const duringFrom = baseTo;
  const runWindows: Windows = [];
  const idleWindows: Windows = [[baseFrom, baseTo]];
  let finished = false;
  const livePromise = runBackfill({ spec: liveSpec, ...(WORKERS ? { workers: WORKERS } : {}), controlServer: false, metrics: registry }).finally(() => {
    finished = true;
  });
  let segmentFrom = duringFrom;
  let running = true;
  if (INTERLEAVE > 0) {
    await new Promise((r) => setTimeout(r, 2_000)); // the run and its control row exist
    while (!finished) {
      const wake = segmentFrom / 1000 + INTERLEAVE * 1000 - Date.now();
      await Promise.race([livePromise.catch(() => undefined), new Promise((r) => setTimeout(r, Math.max(0, wake)))]);
      const switchedAt = nowUs();
      (running ? runWindows : idleWindows).push([segmentFrom + (segmentFrom === duringFrom ? 0 : 1e6), switchedAt]);
      segmentFrom = switchedAt;
      if (finished) break;
      running = !running;
      await applyControlCommand(admin, liveSpec.control.schema, liveSpec.name, { kind: running ? 'resume' : 'pause' }, 'bench');
    }
  }
  const live = await livePromise;
  const duringTo = nowUs();
  if (INTERLEAVE <= 0) runWindows.push([duringFrom, duringTo]);
  const duringSeconds = (duringTo - duringFrom) / 1e6;
  const runSeconds = runWindows.reduce((sum, [from, to]) => sum + (to - from) / 1e6, 0);
  const pace = live.pace;
  log(
    `  backfill done in ${duringSeconds.toFixed(1)} s (${Math.round(live.rowsDone / duringSeconds).toLocaleString('en-US')} rows/s, ${live.batches} batches; ${INTERLEAVE > 0 ? `paused and resumed every ${INTERLEAVE} s, ${runSeconds.toFixed(0)} s of it running` : 'not interleaved'})` +
      (pace ? `; duty cycle at the end ${(pace.dutyCycle * 100).toFixed(1)}%, slept ${pace.sleptSeconds.toFixed(1)} s, guard baseline p99 ${pace.guard?.baselineP99Ms?.toFixed(2) ?? '-'} ms` : '; pace off') +
      '; waiting for pgbench to finish its run',
  );
  const txs = await load;
  const lastTx = txs.reduce((max, t) => Math.max(max, t.doneUs), 0);
  if (lastTx < duringTo) log(`  warning: pgbench ended ${((duringTo - lastTx) / 1e6).toFixed(1)} s before the backfill; raise BENCH_DURING_ALLOWANCE`);
  if (process.env.BENCH_DUMP) writeFileSync(process.env.BENCH_DUMP, JSON.stringify({ txs, idleWindows, runWindows, duringTo }));
  const baseline = p99Of(txs, idleWindows);
  const during = p99Of(txs, runWindows);
  // Control window: the load after the backfill, no backfill running. Not a target; it shows how
  // much the p99 moves on this machine without one.
  const afterFrom = duringTo + 2e6;
  const after = lastTx - afterFrom >= 10e6 ? p99Of(txs, [[afterFrom, lastTx + 1]]) : undefined;
  const moves = Object.fromEntries(((await registry.getSingleMetric('parity_backfill_latency_guard_moves_total')?.get())?.values ?? []).map((v) => [String(v.labels.move), v.value]));
  const { rows: batchRows } = await admin.query(
    `SELECT avg(b.rows)::float8 AS rows, avg(b.duration_ms)::float8 AS ms FROM parity.backfill_batches b WHERE b.run_id = $1`,
    [live.runId],
  );
  const mismatched = (await admin.query(`SELECT count(*)::int AS n FROM public.orders_live WHERE (total_amount_minor, currency) IS DISTINCT FROM (total_amount::bigint, 'USD')`)).rows[0].n;
  log(`  p99 by kind, baseline ${JSON.stringify(byKind(txs, idleWindows))}, during ${JSON.stringify(byKind(txs, runWindows))}`);
  log(`  baseline p99 ${baseline.p99.toFixed(2)} ms over ${baseline.n} tx; during p99 ${during.p99.toFixed(2)} ms over ${during.n} tx (${live.rowsDone.toLocaleString('en-US')} rows)${after ? `; after (control) p99 ${after.p99.toFixed(2)} ms over ${after.n} tx` : ''}; mismatched rows after: ${mismatched}`);

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
    oltp_p99_ms_by_kind_baseline: byKind(txs, idleWindows),
    oltp_p99_ms_by_kind_during: byKind(txs, runWindows),
    oltp_samples_baseline: baseline.n,
    oltp_samples_during: during.n,
    oltp_p99_ms_after: after ? Number(after.p99.toFixed(2)) : null,
    oltp_samples_after: after?.n ?? 0,
    backfill_during_seconds: Number(duringSeconds.toFixed(2)),
    backfill_during_rows_per_s: Math.round(live.rowsDone / duringSeconds),
    backfill_during_running_seconds: Number(runSeconds.toFixed(1)),
    oltp_interleave_seconds: INTERLEAVE,
    backfill_during_batches: live.batches,
    backfill_during_avg_batch_rows: Math.round(Number(batchRows[0]?.rows ?? 0)),
    backfill_during_avg_batch_ms: Number(Number(batchRows[0]?.ms ?? 0).toFixed(2)),
    backfill_during_duty_cycle_end: pace ? Number(pace.dutyCycle.toFixed(3)) : null,
    backfill_during_slept_seconds: pace ? Number(pace.sleptSeconds.toFixed(1)) : null,
    backfill_during_guard_baseline_p99_ms: pace?.guard?.baselineP99Ms != null ? Number(pace.guard.baselineP99Ms.toFixed(3)) : null,
    backfill_during_guard_moves: moves,
    backfill_during_guard_limit_ms: pace?.guard?.thresholdMs != null ? Number(pace.guard.thresholdMs.toFixed(3)) : null,
    mismatched_rows_after: mismatched,
    target_rows_per_s: 100_000,
    target_oltp_p99_ratio: 1.2,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await admin.end();
  await db.drop();
}
