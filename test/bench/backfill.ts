/**
 * Backfill benchmark: the frontier of backfill speed against foreground latency. Prints progress to
 * stderr and, as the last stdout line, one JSON object.
 *
 * 1. rows_per_s: a same-table backfill (the worked example's mapping) of --rows rows (1M; 10M with
 *    --full), unthrottled (`throttle.pace.enabled: false`: batches back to back at
 *    targetBatchSeconds), wall time from start to the completed run (planning included).
 * 2. The frontier: a fixed-rate open-loop OLTP load by pgbench in its own process (`-R`: latency from
 *    each transaction's scheduled start, so a stall is not hidden) on a table of --oltp-rows rows
 *    (1M), checkout-like: 50% point reads of any order, 25% inserts of new orders (dual-writing the new
 *    columns), 25% status updates of one of the last 1,000 orders. After a warm-up and
 *    --baseline-seconds of load alone, each throttle setting in turn backfills the same table (each
 *    with its own constant in the mapping, so every row really changes) for --windows running
 *    windows of --interleave-seconds, each followed by an idle window of the same length (the
 *    backfill paused through the operator control, as `parity backfill ctl pause|resume`): load-alone
 *    and with-backfill windows alternate under the same machine conditions. The first second after
 *    each switch counts for neither. The settings (--settings): `default` (the spec's defaults: WAL
 *    budget moved by the latency guard and the health controller; its guard's 10-s baseline, with the
 *    backfill held, counts for neither side), fixed WAL budgets in MiB/s with the guard off, and `off`
 *    (pacing off: the unthrottled speed under load). Between settings the table is vacuumed (counted
 *    for neither side).
 *    Per setting: rows/s while running, p99 of the transactions in its running windows, its ratio
 *    to the baseline (the first baseline plus every idle window of the whole run), and WAL bytes per
 *    row (WAL of the running windows minus the idle windows' WAL rate over the same time, divided by
 *    the rows; the server's WAL includes every other writer, so it is an estimate).
 * 3. rows_per_s_at_1_2x: the highest rows/s among the settings whose p99 ratio is at most 1.2;
 *    backfill_during_rows_per_s and oltp_p99_ratio: those of the `default` setting.
 *
 * Options: --full, --quick (a smoke run of about a minute: small tables, 4-s baseline, 3-s windows,
 * settings default,4,off), --rows N, --oltp-rows N, --rate TX_PER_S (200), --connections N (4),
 * --workers N, --baseline-seconds S (15), --interleave-seconds S (10), --windows N (2),
 * --settings LIST (default,2,4,8,16,off), --min-samples N (1,000; quick 100: a setting whose running
 * windows hold fewer transactions is reported but not counted for rows_per_s_at_1_2x), --async-commit on|off (pace.asynchronousCommit of every
 * setting; default on). BENCH_THROTTLE (a YAML flow map for backfill.throttle) replaces the `default`
 * setting's throttle; BENCH_DUMP=FILE writes every transaction and the windows as JSON.
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
    quick: { type: 'boolean' },
    rows: { type: 'string' },
    'oltp-rows': { type: 'string' },
    rate: { type: 'string' },
    'baseline-seconds': { type: 'string' },
    workers: { type: 'string' },
    connections: { type: 'string' },
    'interleave-seconds': { type: 'string' },
    windows: { type: 'string' },
    settings: { type: 'string' },
    'async-commit': { type: 'string' },
    'min-samples': { type: 'string' },
  },
});
const QUICK = values.quick === true;
const num = (name: string, value: string | undefined, fallback: number, min = 0): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`bench:backfill: --${name} must be a number >= ${min}, got "${value}"\n`);
    process.exit(2);
  }
  return n;
};
const ROWS = num('rows', values.rows, values.full ? 10_000_000 : QUICK ? 50_000 : 1_000_000, 1);
const OLTP_ROWS = num('oltp-rows', values['oltp-rows'], QUICK ? 30_000 : 1_000_000, 1_000);
const RATE = num('rate', values.rate, 200, 1);
const BASELINE_SECONDS = num('baseline-seconds', values['baseline-seconds'], QUICK ? 4 : 15, 1);
const WORKERS = values.workers ? num('workers', values.workers, 1, 1) : undefined;
const CONNECTIONS = num('connections', values.connections, 4, 1);
const INTERLEAVE = num('interleave-seconds', values['interleave-seconds'], QUICK ? 3 : 10, 2);
const WINDOWS = num('windows', values.windows, QUICK ? 1 : 2, 1);
const ASYNC = (values['async-commit'] ?? 'on') !== 'off';
/** Fewest transactions in a setting's running windows for its ratio to count toward rows_per_s_at_1_2x (its p99 rests on n/100 of them). */
const MIN_SAMPLES = num('min-samples', values['min-samples'], QUICK ? 100 : 1_000, 1);
type Setting = { name: string; throttle: string | undefined; walBytesPerSecond: number | null };
const SETTINGS: Setting[] = (values.settings ?? (QUICK ? 'default,4,off' : 'default,2,4,8,16,off')).split(',').map((raw) => {
  const name = raw.trim();
  const asyncCommit = `asynchronousCommit: ${ASYNC}`;
  if (name === 'default')
    return { name, throttle: process.env.BENCH_THROTTLE ?? (ASYNC ? undefined : `{ pace: { ${asyncCommit} } }`), walBytesPerSecond: null };
  if (name === 'off') return { name, throttle: `{ pace: { enabled: false, ${asyncCommit} } }`, walBytesPerSecond: null };
  const mib = Number(name);
  if (!(mib > 0)) {
    process.stderr.write(`bench:backfill: --settings takes default, off and WAL budgets in MiB/s (e.g. default,2,4,off), got "${name}"\n`);
    process.exit(2);
  }
  const bytes = Math.round(mib * 1024 * 1024);
  return {
    name: `${mib}MiB/s`,
    throttle: `{ pace: { mode: wal-rate, walBytesPerSecond: ${bytes}, minWalBytesPerSecond: ${bytes}, maxWalBytesPerSecond: ${bytes}, ${asyncCommit}, latencyGuard: { enabled: false } } }`,
    walBytesPerSecond: bytes,
  };
});

const log = (msg: string) => process.stderr.write(`[bench:backfill] ${msg}\n`);

async function createTable(db: pg.Client, table: string, rows: number): Promise<void> {
  await db.query(`CREATE TABLE public.${table} (
    id bigint PRIMARY KEY, customer_id integer NOT NULL, total_amount integer NOT NULL, status text NOT NULL DEFAULT 'paid',
    created_at timestamptz NOT NULL DEFAULT now(), total_amount_minor bigint, currency text)`);
  const chunk = 1_000_000;
  for (let lo = 1; lo <= rows; lo += chunk) {
    const hi = Math.min(rows, lo + chunk - 1);
    await db.query(
      `INSERT INTO public.${table} (id, customer_id, total_amount) SELECT g, g % 9973, ((g * 7919) % 100000)::int FROM generate_series($1::bigint, $2::bigint) g`,
      [lo, hi],
    );
  }
  await db.query(`VACUUM (ANALYZE) public.${table}`);
}

/**
 * `throttle` is a YAML flow map placed under `backfill.throttle`; none means the spec's defaults.
 * `currency` is the constant the mapping writes (each frontier setting its own, so every row changes).
 */
function specFor(url: string, table: string, throttle?: string, suffix = '', currency = 'USD'): Spec {
  const text = `apiVersion: parity/v1
name: bench-${table.replace(/_/g, '-')}${suffix}
source: { database: "${url}", table: ${table} }
target: { kind: same-table }
key: [id]
mapping:
  total_amount_minor: total_amount::bigint
  currency: "'${currency}'::text"
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
    {
      kind: 'read',
      weight: 50,
      sql: `\\set id random(1, ${rows})\nSELECT id, status, total_amount FROM public.${table} WHERE id = :id;\n`,
    },
    {
      kind: 'insert',
      weight: 25,
      sql: `\\set amount random(0, 99999)\nINSERT INTO public.${table} (id, customer_id, total_amount, total_amount_minor, currency) VALUES (nextval('public.${table}_new_ids'), 1, :amount, :amount, 'USD');\n`,
    },
    {
      kind: 'update',
      weight: 25,
      sql: `\\set back random(0, 999)\nUPDATE public.${table} SET status = 'shipped' WHERE id = (SELECT last_value FROM public.${table}_new_ids) - :back;\n`,
    },
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
function runPgbench(
  url: string,
  scripts: ReturnType<typeof oltpScripts>,
  rate: number,
  connections: number,
  seconds: number,
): Promise<Tx[]> {
  const dir = mkdtempSync(join(tmpdir(), 'parity-bench-'));
  const files = scripts.map((sc) => {
    const file = join(dir, `${sc.kind}.sql`);
    writeFileSync(file, sc.sql);
    return ['-f', `${file}@${sc.weight}`];
  });
  const u = new URL(url);
  const args = [
    '-h',
    u.hostname,
    '-p',
    u.port,
    '-U',
    decodeURIComponent(u.username),
    '-n',
    ...files.flat(),
    '-R',
    String(rate),
    '-c',
    String(connections),
    '-j',
    '1',
    '-T',
    String(seconds),
    '-l',
    `--log-prefix=${join(dir, 'tx')}`,
    u.pathname.slice(1),
  ];
  return new Promise((resolve, reject) => {
    // The stack's clusters take passwords over TCP: hand pgbench the URL's through its environment.
    const env = u.password ? { ...process.env, PGPASSWORD: decodeURIComponent(u.password) } : process.env;
    const child = spawn(PGBENCH, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
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
            txs.push({
              kind: scripts[Number(f[3])]?.kind ?? 'read',
              doneUs: Number(f[4]) * 1e6 + Number(f[5]),
              latencyMs: (Number(f[2]) + Number(f[6])) / 1000,
            });
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
  const inWindow = txs
    .filter((t) => windows.some(([from, to]) => t.doneUs >= from && t.doneUs < to) && (!kind || t.kind === kind))
    .map((t) => t.latencyMs);
  return { p99: percentile(inWindow, 0.99) ?? NaN, n: inWindow.length };
};
const byKind = (txs: Tx[], windows: Windows) =>
  Object.fromEntries((['read', 'insert', 'update'] as const).map((k) => [k, Number(p99Of(txs, windows, k).p99.toFixed(2))]));

const nowUs = (): number => Date.now() * 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const round = (n: number | null | undefined, digits = 2): number | null =>
  n === null || n === undefined || !Number.isFinite(n) ? null : Number(n.toFixed(digits));

interface SettingResult {
  setting: Setting;
  runWindows: Windows;
  idleWindows: Windows;
  rows: number;
  runSeconds: number;
  walRunBytes: number;
  completed: boolean;
  mismatched: number | null;
  guardMoves: Record<string, number>;
  pace: Awaited<ReturnType<typeof runBackfill>>['pace'] | null;
}

const db = await createTestDatabase('source', 'benchbf');
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
const walPosition = async (): Promise<number> =>
  Number((await admin.query(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8 AS b`)).rows[0].b);
try {
  log(
    `${QUICK ? 'quick run: ' : ''}loading ${ROWS.toLocaleString('en-US')} rows (unthrottled run) and ${OLTP_ROWS.toLocaleString('en-US')} rows (frontier)`,
  );
  await createTable(admin, 'orders_bulk', ROWS);
  await admin.query('CHECKPOINT');

  log('run 1: unthrottled backfill (pace off: batches back to back at targetBatchSeconds)');
  const t1 = performance.now();
  const w1 = await walPosition();
  const bulk = await runBackfill({
    spec: specFor(db.url, 'orders_bulk', `{ pace: { enabled: false, asynchronousCommit: ${ASYNC} } }`),
    ...(WORKERS ? { workers: WORKERS } : {}),
    controlServer: false,
  });
  const seconds = (performance.now() - t1) / 1000;
  const bulkWalPerRow = ((await walPosition()) - w1) / Math.max(1, bulk.rowsDone);
  const rowsPerS = Math.round(bulk.rowsDone / seconds);
  log(
    `  ${bulk.rowsDone.toLocaleString('en-US')} rows in ${seconds.toFixed(2)} s: ${rowsPerS.toLocaleString('en-US')} rows/s (${bulk.batches} batches, ~${Math.round(bulkWalPerRow)} WAL bytes/row)`,
  );
  // Run 1's dead row versions would be vacuumed by autovacuum in the middle of the frontier.
  await admin.query('DROP TABLE public.orders_bulk');
  await createTable(admin, 'orders_live', OLTP_ROWS);
  await admin.query('CHECKPOINT');

  execFileSync(PGBENCH, ['--version']);
  await admin.query(`CREATE SEQUENCE public.orders_live_new_ids START ${OLTP_ROWS + 1}`);
  const WARMUP = 3;
  const GUARD_HOLD = 12; // the default guard's 10-s baseline with the backfill held, and a margin
  const BETWEEN = 4; // start-up of a setting's run and the VACUUM after it
  const AFTER = 15; // load alone after the last setting: the after-control window
  const planned =
    WARMUP +
    BASELINE_SECONDS +
    SETTINGS.reduce((sum, st) => sum + 2 * WINDOWS * INTERLEAVE + (st.name === 'default' ? GUARD_HOLD : 0) + BETWEEN, 0) +
    AFTER;
  log(
    `run 2: pgbench OLTP load at ${RATE} tx/s over ${CONNECTIONS} connections for up to ${planned} s; baseline ${BASELINE_SECONDS} s, then ${SETTINGS.map((st) => st.name).join(', ')}: ${WINDOWS} x (${INTERLEAVE} s running + ${INTERLEAVE} s paused) each`,
  );
  const load = runPgbench(db.url, oltpScripts('orders_live', OLTP_ROWS), RATE, CONNECTIONS, planned);
  await sleep(WARMUP * 1000);
  const baseFrom = nowUs();
  await sleep(BASELINE_SECONDS * 1000);
  const baseline0: Windows = [[baseFrom, nowUs()]];
  let walIdleBytes = 0;
  let walIdleSeconds = 0;

  const results: SettingResult[] = [];
  for (const [i, setting] of SETTINGS.entries()) {
    const currency = `S${i}`;
    const spec = specFor(db.url, 'orders_live', setting.throttle, `-${i}`, currency);
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const stop = new AbortController();
    let finished = false;
    let failure: unknown;
    const rowsOfRun = async (): Promise<number> =>
      Number(
        (
          await admin
            .query(
              `SELECT coalesce(sum(r.rows_done), 0)::float8 AS n FROM parity.backfill_ranges r JOIN parity.backfill_runs u USING (run_id) WHERE u.migration = $1`,
              [spec.name],
            )
            .catch(() => ({ rows: [{ n: 0 }] }))
        ).rows[0].n,
      );
    const throttleActive = async (reason: string): Promise<number> =>
      (await registry.getSingleMetric('parity_backfill_throttle_active')?.get())?.values.find((v) => v.labels.reason === reason)?.value ??
      0;
    // The first running window starts with the run (planning counts, as in rows_per_s), except for
    // the default setting, whose guard holds the backfill while it measures its baseline: neither side.
    let startFrom = nowUs();
    let startWal = await walPosition();
    const running = runBackfill({
      spec,
      ...(WORKERS ? { workers: WORKERS } : {}),
      controlServer: false,
      metrics: registry,
      signal: stop.signal,
    })
      .then(
        (r) => r,
        (err: unknown) => ((failure = err), undefined),
      )
      .finally(() => (finished = true));
    if (setting.name === 'default') {
      const until = Date.now() + GUARD_HOLD * 1000;
      while (Date.now() < until && !finished && (await throttleActive('latency_guard')) === 0) await sleep(100);
      while (Date.now() < until && !finished && (await throttleActive('latency_guard')) === 1) await sleep(100);
      startFrom = nowUs();
      startWal = await walPosition();
    }
    const control = async (kind: 'pause' | 'resume') =>
      applyControlCommand(admin, spec.control.schema, spec.name, { kind }, 'bench').catch(() => undefined);
    const res: SettingResult = {
      setting,
      runWindows: [],
      idleWindows: [],
      rows: 0,
      runSeconds: 0,
      walRunBytes: 0,
      completed: false,
      mismatched: null,
      guardMoves: {},
      pace: null,
    };
    for (let w = 0; w < WINDOWS && !finished; w++) {
      // Running window (after a resume, the first second counts for neither side).
      let from = startFrom;
      let wal0 = startWal;
      let rows0 = 0;
      if (w > 0) {
        await control('resume');
        await sleep(1_000);
        from = nowUs();
        wal0 = await walPosition();
        rows0 = await rowsOfRun();
      }
      await Promise.race([running, sleep(from / 1000 + INTERLEAVE * 1000 - (w > 0 ? 1_000 : 0) - Date.now())]);
      const to = nowUs();
      res.walRunBytes += (await walPosition()) - wal0;
      res.rows += (await rowsOfRun()) - rows0;
      res.runSeconds += (to - from) / 1e6;
      res.runWindows.push([from, to]);
      if (finished) break;
      await control('pause');
      await sleep(1_000);
      const idleFrom = nowUs();
      const walI = await walPosition();
      await sleep(INTERLEAVE * 1000 - 1_000);
      const idleTo = nowUs();
      walIdleBytes += (await walPosition()) - walI;
      walIdleSeconds += (idleTo - idleFrom) / 1e6;
      res.idleWindows.push([idleFrom, idleTo]);
    }
    stop.abort();
    if (!finished) await control('resume');
    const result = await running;
    if (failure) throw failure;
    res.completed = result?.outcome === 'completed';
    res.pace = result?.pace ?? null;
    res.guardMoves = Object.fromEntries(
      ((await registry.getSingleMetric('parity_backfill_latency_guard_moves_total')?.get())?.values ?? []).map((v) => [
        String(v.labels.move),
        v.value,
      ]),
    );
    if (res.completed) {
      res.mismatched = Number(
        (
          await admin.query(
            `SELECT count(*)::int AS n FROM public.orders_live WHERE id <= $1 AND (total_amount_minor, currency) IS DISTINCT FROM (total_amount::bigint, $2::text)`,
            [OLTP_ROWS, currency],
          )
        ).rows[0].n,
      );
    }
    log(
      `  ${setting.name}: ${Math.round(res.rows / Math.max(res.runSeconds, 1e-9)).toLocaleString('en-US')} rows/s over ${res.runSeconds.toFixed(1)} s running${res.completed ? ` (completed; ${res.mismatched} mismatched)` : ''}${res.pace ? `; ${res.pace.walBytesPerSecond !== null ? `WAL budget at the end ${(res.pace.walBytesPerSecond / 1048576).toFixed(1)} MiB/s` : `duty cycle ${(res.pace.dutyCycle * 100).toFixed(1)}%`}` : ''}`,
    );
    results.push(res);
    // Between settings: the dead row versions of this one go (neither side).
    await admin.query('VACUUM public.orders_live');
  }
  const endUs = nowUs();
  log('  waiting for pgbench to finish its run (the rest is the after-control window)');
  const txs = await load;
  const lastTx = txs.reduce((max, t) => Math.max(max, t.doneUs), 0);
  if (lastTx < endUs)
    log(`  warning: pgbench ended ${((endUs - lastTx) / 1e6).toFixed(1)} s before the last setting; its windows lack load`);
  const idleAll: Windows = [...baseline0, ...results.flatMap((r) => r.idleWindows)];
  if (process.env.BENCH_DUMP)
    writeFileSync(
      process.env.BENCH_DUMP,
      JSON.stringify({
        txs,
        idleAll,
        settings: results.map((r) => ({ name: r.setting.name, runWindows: r.runWindows, idleWindows: r.idleWindows })),
      }),
    );
  const baseline = p99Of(txs, idleAll);
  const idleWalRate = walIdleSeconds > 0 ? walIdleBytes / walIdleSeconds : 0;
  const afterFrom = endUs + 2e6;
  const after = lastTx - afterFrom >= 10e6 ? p99Of(txs, [[afterFrom, lastTx + 1]]) : undefined;
  const frontier = results.map((r) => {
    const during = p99Of(txs, r.runWindows);
    const ownIdle = p99Of(txs, r.idleWindows);
    const rps = r.runSeconds > 0 ? r.rows / r.runSeconds : 0;
    const walPerRow = r.rows > 0 ? (r.walRunBytes - idleWalRate * r.runSeconds) / r.rows : null;
    return {
      setting: r.setting.name,
      wal_budget_bytes_per_s: r.setting.walBytesPerSecond,
      rows_per_s: Math.round(rps),
      oltp_p99_ms: round(during.p99),
      oltp_p99_ratio: round(during.p99 / baseline.p99),
      oltp_samples: during.n,
      eligible: during.n >= MIN_SAMPLES,
      oltp_p99_ms_own_idle: round(ownIdle.p99),
      wal_bytes_per_row: walPerRow === null ? null : Math.round(walPerRow),
      running_seconds: round(r.runSeconds, 1),
      completed: r.completed,
      mismatched_rows_after: r.mismatched,
      wal_budget_end_bytes_per_s: r.pace?.walBytesPerSecond ?? null,
      guard_moves: r.guardMoves,
      health: r.pace?.health ? r.pace.health.reasons.map((x) => x.reason) : null,
    };
  });
  for (const f of frontier)
    log(
      `  ${f.setting.padEnd(9)} ${String(f.rows_per_s).padStart(8)} rows/s  p99 ${f.oltp_p99_ms} ms (x${f.oltp_p99_ratio}, ${f.oltp_samples} tx)  ${f.wal_bytes_per_row ?? '-'} WAL bytes/row`,
    );
  const within = frontier.filter((f) => f.oltp_p99_ratio !== null && f.oltp_p99_ratio <= 1.2 && f.oltp_samples >= MIN_SAMPLES);
  const best = within.reduce<(typeof frontier)[number] | undefined>((a, f) => (!a || f.rows_per_s > a.rows_per_s ? f : a), undefined);
  const def = frontier.find((f) => f.setting === 'default');
  const defResult = results.find((r) => r.setting.name === 'default');
  log(
    `  baseline p99 ${baseline.p99.toFixed(2)} ms over ${baseline.n} tx; rows_per_s_at_1_2x ${best?.rows_per_s ?? 'none'} (${best?.setting ?? '-'})${after ? `; after (control) p99 ${after.p99.toFixed(2)} ms` : ''}`,
  );

  const result = {
    quick: QUICK,
    rows: bulk.rowsDone,
    rows_per_s: rowsPerS,
    seconds: Number(seconds.toFixed(3)),
    batches: bulk.batches,
    wal_bytes_per_row_unthrottled: Math.round(bulkWalPerRow),
    workers: WORKERS ?? 1,
    asynchronous_commit: ASYNC,
    rows_per_s_at_1_2x: best?.rows_per_s ?? null,
    rows_per_s_at_1_2x_setting: best?.setting ?? null,
    backfill_during_rows_per_s: def?.rows_per_s ?? null,
    oltp_p99_ratio: def?.oltp_p99_ratio ?? null,
    oltp_p99_ms_baseline: round(baseline.p99),
    oltp_p99_ms_during: def?.oltp_p99_ms ?? null,
    oltp_p99_ms_by_kind_baseline: byKind(txs, idleAll),
    oltp_p99_ms_by_kind_during: defResult ? byKind(txs, defResult.runWindows) : null,
    oltp_samples_baseline: baseline.n,
    oltp_p99_ms_after: after ? round(after.p99) : null,
    oltp_rate_tx_per_s: RATE,
    oltp_rows: OLTP_ROWS,
    oltp_interleave_seconds: INTERLEAVE,
    windows_per_setting: WINDOWS,
    idle_wal_bytes_per_s: Math.round(idleWalRate),
    frontier,
    target_rows_per_s: 250_000,
    target_rows_per_s_at_1_2x: 20_000,
    target_oltp_p99_ratio: 1.2,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await admin.end();
  await db.drop();
}
