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
 *    (pacing off: the unthrottled speed under load). Between settings the table is vacuumed and a
 *    CHECKPOINT lets the server recycle the WAL segments written so far (counted for neither side;
 *    without it the later settings pay for creating WAL segments, which confounds the frontier).
 *    Per setting: rows/s while running, p99 of the transactions in its running windows, its ratio
 *    to the baseline (the first baseline plus every idle window of the whole run), and WAL bytes per
 *    row (WAL of the running windows minus the idle windows' WAL rate over the same time, divided by
 *    the rows; the server's WAL includes every other writer, so it is an estimate).
 * 3. rows_per_s_at_1_2x: the highest rows/s among the settings whose p99 ratio is at most 1.2;
 *    rows_per_s_within_1_2x_shown: the same among the settings whose ratio against their own idle
 *    windows (each running window paired with the idle one after it) is within 1.2x with 90%
 *    confidence, by a bootstrap over the pairs (oltp_p99_ratio_own_idle: ratio, ci90, pairs, verdict
 *    within / over / undecided; test/bench/paired-ratio.ts);
 *    backfill_during_rows_per_s and oltp_p99_ratio: those of the `default` setting.
 * 4. Was the machine quiet: load_alone_p99_ms_by_window (median and max of the p99 of each load-alone
 *    window: the baseline and every idle window) and `disturbed` (one of them over twice the median:
 *    a stall while the backfill was paused; stderr warns), and per window set the I/O stall of the
 *    whole machine (io_full_stall_ms_per_s in proc_*: PSI `full` of /proc/pressure/io, ms per s).
 *    idle_commit_ms: the commit latency of the idle server (400 commits, before the load starts and
 *    after it ends), the disk's yardstick across runs: a uniformly slow run is not `disturbed`.
 *
 * Options: --full, --quick (a smoke run of about three minutes: small tables, 4-s baseline, five pairs of 2-s windows,
 * settings default,4,off), --rows N, --oltp-rows N, --rate TX_PER_S (200), --connections N (4),
 * --workers N, --baseline-seconds S (15), --interleave-seconds S (4; quick 2), --windows N (8; quick 5),
 * --settings LIST (default,2,4,8,12,16,off), --min-samples N (1,000; quick 100: a setting whose running
 * windows hold fewer transactions is reported but not counted for rows_per_s_at_1_2x), --async-commit on|off (pace.asynchronousCommit of every
 * setting; default: the spec's), --min-batch-size N (backfill.minBatchSize), --sample-waits (the wait events of
 * the pgbench and backfill backends per setting, from pg_stat_activity every 10 ms), --no-checkpoint
 * (no CHECKPOINT between settings: shows what creating WAL segments costs the later ones), --guard-probe (the latency
 * guard's probe recorded through the frontier, and what the guard would decide per setting: startGuardProbe), --nice-backfill N|idle
 * (an experiment: this process and the backfill's backends at nice N, or SCHED_IDLE, during the frontier), --report FILE
 * (the frontier as an HTML page: test/bench/frontier-report.ts). A setting is
 * NAME[/KiB][/sync|async][/server|auto|pglz|lz4|zstd][/cold] (batch WAL target, commit mode, the batches'
 * wal_compression, no warm-up). --warmup-seconds S:
 * each setting but `off` and `/cold` first runs for S seconds (default: its running time, --windows x
 * --interleave-seconds), then VACUUM and CHECKPOINT, so its windows measure the steady state: a long
 * backfill finds the WAL segments its last checkpoint cycle wrote recycled ahead of it, and the
 * server creates none inside its windows. Every setting also reports the CPU of
 * this process and of the backfill's backends, and the WAL segments the server created.
 *
 * Where the foreground's added latency comes from (issue 22), per setting, in its running windows
 * and its own idle windows (the baseline: in the ratio's baseline windows):
 * - oltp_split_*: mean/p50/p99 of pgbench's latency, of its schedule lag (`-R`: scheduled start to
 *   actual start) and of the execution (latency without the lag; also per kind: the reads commit no
 *   WAL, so a tail they share with the writes is not the WAL flush), and the mean split of the slowest
 *   1%: execution, lag while the connection still ran its previous transaction (queue: slow earlier
 *   transactions), lag while it was free (start: pgbench's thread late, e.g. waiting for a CPU).
 * - proc_*: CPU seconds (utime + stime from /proc/<pid>/stat) of the backfill's backends, the
 *   pgbench backends, the pgbench process, this process (where the backfill's client side runs), the
 *   walwriter, checkpointer and background writer, the --sample-waits sampler's backend, and the
 *   machine; and the seconds they waited on a run queue (/proc/<pid>/task/N/schedstat, 2nd field).
 *   run_queue_wait_ms_per_tx: the pgbench backends' and process's run-queue wait per transaction.
 *   Linux only: a process not readable in /proc (the server on another host) gives null, and the
 *   bench says so. pgbench's logged `time` already includes the lag; the bench's p99 before this
 *   split added the lag again (oltp_p99_ratio_lag_counted_twice gives that figure). BENCH_THROTTLE (a YAML flow map for backfill.throttle) replaces the `default`
 * setting's throttle; BENCH_DUMP=FILE writes every transaction and the windows as JSON (and every guard probe with --guard-probe).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runBackfill } from '../../services/backfill/backfill.js';
import type { Spec } from '../../services/core/spec.js';
import { backfillBenchSpec } from './backfill-spec.js';
import { replayGuard } from './guard-replay.js';
import { pairedRatio } from './paired-ratio.js';
import { renderFrontierHtml } from './frontier-report.js';
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
    'sample-waits': { type: 'boolean' },
    'min-batch-size': { type: 'string' },
    'no-checkpoint': { type: 'boolean' },
    'warmup-seconds': { type: 'string' },
    'nice-backfill': { type: 'string' },
    'guard-probe': { type: 'boolean' },
    report: { type: 'string' },
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
const INTERLEAVE = num('interleave-seconds', values['interleave-seconds'], QUICK ? 2 : 4, 2);
const WINDOWS = num('windows', values.windows, QUICK ? 5 : 8, 1);
if (values['async-commit'] !== undefined && !['on', 'off'].includes(values['async-commit'])) {
  process.stderr.write(`bench:backfill: --async-commit takes on or off, got "${values['async-commit']}"\n`);
  process.exit(2);
}
/** --async-commit for every setting; undefined: the spec's default (`pace.asynchronousCommit`). */
const ASYNC = values['async-commit'] === undefined ? undefined : values['async-commit'] === 'on';
/** Fewest transactions in a setting's running windows for its ratio to count toward rows_per_s_at_1_2x (its p99 rests on n/100 of them). */
const MIN_SAMPLES = num('min-samples', values['min-samples'], QUICK ? 100 : 1_000, 1);
/** The foreground's p99 limit the frontier is drawn against (issue 22: within 1.2x of the load alone). */
const TARGET_RATIO = 1.2;
/** A setting's `/server`, `/auto`, `/lz4`...: its `pace.walCompression`. */
const WAL_COMPRESSION = ['server', 'auto', 'pglz', 'lz4', 'zstd'];
type Setting = { name: string; throttle: string | undefined; walBytesPerSecond: number | null; warm: boolean };
/**
 * A setting: `default`, `off`, or a WAL budget in MiB/s; any of them may add `/K`, the batches' WAL
 * target (`pace.batchWalBytes`) in KiB, and `/sync` or `/async` (`pace.asynchronousCommit` for this
 * setting): `4/16` is 4 MiB/s in batches of about 16 KiB of WAL, `4/sync` 4 MiB/s with synchronous commits;
 * `/server`, `/auto`, `/pglz`, `/lz4` or `/zstd` its `pace.walCompression` (`4/server`: the server's setting).
 */
const SETTINGS: Setting[] = (values.settings ?? (QUICK ? 'default,4,off' : 'default,2,4,8,12,16,off')).split(',').map((raw) => {
  const [name = '', ...allParts] = raw.trim().split('/');
  // `/cold`: no warm-up for this setting (what the first minutes of a backfill pay, against the warmed steady state).
  const cold = allParts.includes('cold');
  const parts = allParts.filter((x) => x !== 'cold');
  const commit = parts.find((x) => x === 'sync' || x === 'async');
  const compression = parts.find((x) => WAL_COMPRESSION.includes(x));
  const batchKiB = parts.find((x) => x !== commit && x !== compression);
  if (parts.length > (commit ? 1 : 0) + (compression ? 1 : 0) + (batchKiB === undefined ? 0 : 1)) {
    process.stderr.write(`bench:backfill: a setting is NAME[/KiB][/sync|async][/${WAL_COMPRESSION.join('|')}][/cold], got "${raw}"\n`);
    process.exit(2);
  }
  const asyncValue = commit === undefined ? ASYNC : commit === 'async';
  const asyncCommit = `${asyncValue === undefined ? '' : `, asynchronousCommit: ${asyncValue}`}${compression ? `, walCompression: ${compression}` : ''}`;
  const kib = batchKiB === undefined ? undefined : Number(batchKiB);
  if (kib !== undefined && !(kib >= 8)) {
    process.stderr.write(`bench:backfill: a setting's /K is the batch WAL target in KiB (at least 8), got "${raw}"\n`);
    process.exit(2);
  }
  const batch = kib === undefined ? '' : `, batchWalBytes: ${Math.round(kib * 1024)}`;
  const label = (n: string) =>
    `${n}${kib === undefined ? '' : `/${kib}KiB`}${commit === undefined ? '' : `/${commit}`}${compression ? `/${compression}` : ''}${cold ? '/cold' : ''}`;
  if (name === 'default') {
    const throttle =
      process.env.BENCH_THROTTLE ?? (!asyncCommit && !batch ? undefined : `{ pace: { ${`${asyncCommit}${batch}`.slice(2)} } }`);
    return { name: label(name), throttle, walBytesPerSecond: null, warm: !cold };
  }
  if (name === 'off')
    // Pacing off finishes the table within seconds: nothing to warm (and a warm-up would have copied it all).
    return {
      name: label(name),
      throttle: `{ pace: { enabled: false${asyncCommit}${batch} } }`,
      walBytesPerSecond: null,
      warm: false,
    };
  const mib = Number(name);
  if (!(mib > 0)) {
    process.stderr.write(
      `bench:backfill: --settings takes default, off and WAL budgets in MiB/s, each optionally /K (batch WAL in KiB), e.g. default,2,4/16,off; got "${raw}"\n`,
    );
    process.exit(2);
  }
  const bytes = Math.round(mib * 1024 * 1024);
  return {
    name: label(`${mib}MiB/s`),
    throttle: `{ pace: { mode: wal-rate, walBytesPerSecond: ${bytes}, minWalBytesPerSecond: ${bytes}, maxWalBytesPerSecond: ${bytes}${asyncCommit}${batch}, latencyGuard: { enabled: false } } }`,
    walBytesPerSecond: bytes,
    warm: !cold,
  };
});
const SAMPLE_WAITS = values['sample-waits'] === true;
/** --guard-probe: the latency guard's probe, recorded from the bench through the frontier (startGuardProbe). */
const GUARD_PROBE = values['guard-probe'] === true;
/** --report FILE: the frontier as an HTML page (chart and table), written at the end. */
const REPORT = values.report;
/** backfill.minBatchSize of every setting (the spec's default when not given). */
const MIN_BATCH = values['min-batch-size'] === undefined ? undefined : num('min-batch-size', values['min-batch-size'], 100, 1);
const isDefault = (name: string): boolean => name === 'default' || name.startsWith('default/');
/**
 * Seconds each setting runs before it is measured (a run of its own, then VACUUM and CHECKPOINT):
 * the server creates a WAL segment file only when none is left ahead, and a checkpoint recycles the
 * segments written since the last one as the next ones. A warm-up writing as much WAL as the measured
 * windows leaves them segments to reuse, as a backfill's steady state has after its first checkpoint
 * cycle. Default: the setting's running time (--windows x --interleave-seconds); 0: no warm-up.
 */
const WARMUP_SECONDS = num('warmup-seconds', values['warmup-seconds'], WINDOWS * INTERLEAVE, 0);
/**
 * --nice-backfill N (1-19) or idle (SCHED_IDLE): an experiment, not a product setting. From the frontier's start, this
 * process (the backfill's client side) and every backfill backend (renice'd within PROC_POLL_MS of
 * appearing; needs the right to renice the server's processes, e.g. root on the database host) run
 * at nice N, so the foreground wins the cores when both want one.
 */
const NICE_BACKFILL: number | 'idle' | undefined =
  values['nice-backfill'] === undefined
    ? undefined
    : values['nice-backfill'] === 'idle'
      ? 'idle'
      : num('nice-backfill', values['nice-backfill'], 0, 1);
if (typeof NICE_BACKFILL === 'number' && (NICE_BACKFILL > 19 || !Number.isInteger(NICE_BACKFILL))) {
  process.stderr.write(`bench:backfill: --nice-backfill takes a whole nice value from 1 to 19 or idle, got "${values['nice-backfill']}"\n`);
  process.exit(2);
}
/**
 * Lowers a process' CPU priority for --nice-backfill: a nice value, or `idle`: the SCHED_IDLE policy
 * (`chrt --idle`, every thread), which the kernel runs only when no normal task wants the core and
 * preempts at a normal task's wake-up, where nice 19 still takes its share of a contended core.
 */
const lowerPriority = (pid: number): void => {
  if (NICE_BACKFILL === 'idle') execFileSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(pid)], { stdio: 'pipe' });
  else setPriority(pid, NICE_BACKFILL!);
};

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
  const block = `${MIN_BATCH ? `  minBatchSize: ${MIN_BATCH}\n  batchSize: ${Math.max(MIN_BATCH, 1000)}\n` : ''}${throttle ? `  throttle: ${throttle}\n` : ''}`;
  return backfillBenchSpec({
    name: `bench-${table.replace(/_/g, '-')}${suffix}`,
    url,
    table,
    currency,
    ...(block ? { backfill: block } : {}),
  });
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
  /**
   * From the scheduled start to completion, ms: the `time` column of pgbench's log, which with `-R`
   * already includes the schedule lag (pgbench computes it from the scheduled start; until issue 22's
   * split the bench added the lag a second time).
   */
  latencyMs: number;
  /** pgbench's schedule lag (scheduled start to actual start), ms. */
  lagMs: number;
  /** From the actual start to completion (latency without the lag), ms: the server, the network, and the client reading the result. */
  execMs: number;
  /**
   * The part of the lag during which this transaction's connection was still running its previous
   * transaction (a client takes the next slot of its thread's schedule when its previous transaction
   * ends, so a slot due while every connection is busy waits): caused by slow earlier transactions.
   */
  queueMs: number;
  /** The rest of the lag: the connection was free but pgbench's thread started the transaction late (waiting for a CPU, or busy). */
  startMs: number;
}

/**
 * Parses pgbench's per-transaction log with `-R` (PostgreSQL 15: `client_id transaction_no time
 * script_no time_epoch time_us schedule_lag`, times in microseconds; `time` is measured from the
 * scheduled start, so it includes the lag). A line whose `time` is not a number (a failed or
 * skipped transaction) is left out.
 */
function parsePgbenchLog(text: string, kinds: readonly TxKind[]): Tx[] {
  const rows: { client: number; no: number; script: number; doneUs: number; timeUs: number; lagUs: number }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length < 7 || f.slice(0, 7).some((x) => !Number.isFinite(x))) continue;
    const [client = 0, no = 0, timeUs = 0, script = 0, epochS = 0, epochUs = 0, lagUs = 0] = f;
    rows.push({ client, no, timeUs, script, doneUs: epochS * 1e6 + epochUs, lagUs });
  }
  rows.sort((a, b) => a.client - b.client || a.no - b.no);
  const txs: Tx[] = [];
  let prev: (typeof rows)[number] | undefined;
  for (const r of rows) {
    const prevDone = prev && prev.client === r.client ? prev.doneUs : undefined;
    const scheduled = r.doneUs - r.timeUs;
    const began = scheduled + r.lagUs;
    const queueUs = prevDone === undefined ? 0 : Math.min(r.lagUs, Math.max(0, Math.min(began, prevDone) - scheduled));
    txs.push({
      kind: kinds[r.script] ?? 'read',
      doneUs: r.doneUs,
      latencyMs: r.timeUs / 1000,
      lagMs: r.lagUs / 1000,
      execMs: (r.timeUs - r.lagUs) / 1000,
      queueMs: queueUs / 1000,
      startMs: (r.lagUs - queueUs) / 1000,
    });
    prev = r;
  }
  return txs;
}

/**
 * Runs pgbench at a fixed rate for `seconds`; `pid` is pgbench's own process (for its CPU and
 * run-queue wait), `done` resolves with every transaction from its log.
 */
function runPgbench(
  url: string,
  scripts: ReturnType<typeof oltpScripts>,
  rate: number,
  connections: number,
  seconds: number,
): { pid: number | undefined; done: Promise<Tx[]> } {
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
  // The stack's clusters take passwords over TCP: hand pgbench the URL's through its environment.
  const env = u.password ? { ...process.env, PGPASSWORD: decodeURIComponent(u.password) } : process.env;
  const child = spawn(PGBENCH, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  const done = new Promise<Tx[]>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`pgbench exited ${code}: ${err.slice(-2000)}`);
        const kinds = scripts.map((sc) => sc.kind);
        // One log file per pgbench thread (-j 1: one); client ids are unique across them.
        resolve(
          readdirSync(dir)
            .filter((n) => n.startsWith('tx.'))
            .flatMap((name) => parsePgbenchLog(readFileSync(join(dir, name), 'utf8'), kinds)),
        );
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  return { pid: child.pid, done };
}

/** Time windows [from, to) in epoch microseconds. */
type Windows = [number, number][];

const latenciesIn = (txs: Tx[], windows: Windows, kind?: TxKind): number[] =>
  txs.filter((t) => windows.some(([from, to]) => t.doneUs >= from && t.doneUs < to) && (!kind || t.kind === kind)).map((t) => t.latencyMs);
const p99Of = (txs: Tx[], windows: Windows, kind?: TxKind): { p99: number; n: number } => {
  const inWindow = latenciesIn(txs, windows, kind);
  return { p99: percentile(inWindow, 0.99) ?? NaN, n: inWindow.length };
};
const byKind = (txs: Tx[], windows: Windows) =>
  Object.fromEntries((['read', 'insert', 'update'] as const).map((k) => [k, Number(p99Of(txs, windows, k).p99.toFixed(2))]));

/**
 * Where the latency of the transactions completed inside `windows` went: p50/p99 of the latency,
 * of pgbench's schedule lag and of the execution (latency without the lag), and the mean split of
 * the slowest 1% (the tail the p99 reads): execution, lag while the connection was busy with its
 * previous transaction (queue), lag while it was free (start: pgbench's thread late).
 */
function splitOf(txs: Tx[], windows: Windows) {
  const inside = txs.filter((t) => windows.some(([from, to]) => t.doneUs >= from && t.doneUs < to));
  const q = (f: (t: Tx) => number, of: Tx[] = inside) => ({
    mean: of.length ? round(of.reduce((sum, t) => sum + f(t), 0) / of.length, 3) : null,
    p50: round(percentile(of.map(f), 0.5), 3),
    p99: round(percentile(of.map(f), 0.99), 3),
  });
  const tail = [...inside].sort((a, b) => b.latencyMs - a.latencyMs).slice(0, Math.ceil(inside.length / 100));
  const mean = (f: (t: Tx) => number) => (tail.length ? round(tail.reduce((sum, t) => sum + f(t), 0) / tail.length, 3) : null);
  return {
    n: inside.length,
    latency_ms: q((t) => t.latencyMs),
    lag_ms: q((t) => t.lagMs),
    exec_ms: q((t) => t.execMs),
    // Reads commit no WAL: an execution tail they share with the writes is not the WAL flush.
    exec_ms_by_kind: Object.fromEntries(
      (['read', 'insert', 'update'] as const).map((k) => [
        k,
        q(
          (t) => t.execMs,
          inside.filter((t) => t.kind === k),
        ),
      ]),
    ),
    slowest_1pct_mean_ms: {
      n: tail.length,
      latency: mean((t) => t.latencyMs),
      exec: mean((t) => t.execMs),
      lag_queue: mean((t) => t.queueMs),
      lag_start: mean((t) => t.startMs),
    },
  };
}

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
  /** WAL segment files created during the running windows (estimate; null without pg_ls_waldir). */
  walSegmentsCreated: number | null;
  completed: boolean;
  mismatched: number | null;
  guardMoves: Record<string, number>;
  pace: Awaited<ReturnType<typeof runBackfill>>['pace'] | null;
  /** CPU and run-queue wait of the processes of PROC_GROUPS in the running and in the idle windows. */
  procRunning: ProcTotals;
  procIdle: ProcTotals;
  warmup: WarmUp | null;
}

interface WarmUp {
  seconds: number;
  rows: number;
  /** WAL segment files the server created during the warm-up (the ones the measured windows need not create). */
  walSegmentsCreated: number | null;
  /** Segment files ahead of the insert position after the warm-up's CHECKPOINT. */
  segmentsAheadAfter: number | null;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/**
 * The processes whose CPU and run-queue wait the bench reads per window (Linux /proc; PostgreSQL runs
 * on this host in the stack). The backfill runs inside this process (`runBackfill`), so
 * `bench_process` holds its client side, the bench's own queries and, with --sample-waits, the
 * sampler's client; `wait_sampler_backend` is the sampler's server backend (polling every 10 ms).
 */
const PROC_GROUPS = [
  'backfill_backends',
  'pgbench_backends',
  'pgbench_client',
  'bench_process',
  'walwriter',
  'checkpointer',
  'background_writer',
  'wait_sampler_backend',
] as const;
type ProcGroup = (typeof PROC_GROUPS)[number];
/** A process's CPU ticks (utime + stime, all threads) and the ns its threads waited on a run queue; null: not readable as expected. */
type ProcReading = { ticks: number; runDelayNs: number | null } | null;

/** Whether this host has a Linux /proc at all. */
const PROC_AVAILABLE = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

/**
 * Reads /proc/<pid>/stat and the run-queue wait (2nd field of schedstat) summed over its threads;
 * 'gone' when the process has ended. `comm`: the process name it must have (a pid of a server on
 * another host may be some other process here, or none).
 */
function readProc(pid: number, comm?: string): ProcReading | 'gone' {
  if (!PROC_AVAILABLE) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 'gone';
  }
  try {
    if (comm !== undefined && stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== comm) return null;
    // Fields after the command (which is in parentheses and may hold spaces): utime and stime are the 12th and 13th.
    const rest = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    let runDelayNs: number | null = 0;
    try {
      for (const task of readdirSync(`/proc/${pid}/task`))
        runDelayNs += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[1]);
      if (!Number.isFinite(runDelayNs)) runDelayNs = null;
    } catch {
      runDelayNs = null;
    }
    return { ticks: Number(rest[11]) + Number(rest[12]), runDelayNs };
  } catch {
    return null;
  }
}

/** The whole machine's busy and total CPU ticks (/proc/stat), null when not readable. */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal
    const total = f.reduce((a, b) => a + b, 0);
    const busy = total - (f[3] ?? NaN) - (f[4] ?? NaN);
    return f.length === 8 && Number.isFinite(busy) ? { busy, total } : null;
  } catch {
    return null;
  }
}

/**
 * Microseconds in which every non-idle task of the machine was stalled on I/O (`full` of
 * /proc/pressure/io, Linux PSI), null when not readable. Stalls in the load-alone windows are the
 * disk's, not the backfill's: the sign of a disturbed run.
 */
function ioFullStallUs(): number | null {
  try {
    const line = readFileSync('/proc/pressure/io', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('full '));
    const total = Number(/total=(\d+)/.exec(line ?? '')?.[1]);
    return Number.isFinite(total) ? total : null;
  } catch {
    return null;
  }
}

interface ProcSnapshot {
  us: number;
  ioFullUs: number | null;
  /** process.cpuUsage() of this process, microseconds (the older node_cpu_share). */
  nodeUs: number;
  groups: Record<ProcGroup, Map<number, ProcReading>>;
  machine: { busy: number; total: number } | null;
}

/** CPU seconds and run-queue wait seconds per group over some windows; null when a process of the group was not readable. */
interface ProcTotals {
  seconds: number;
  cpu: Record<ProcGroup, number | null>;
  runQueue: Record<ProcGroup, number | null>;
  machineBusy: number | null;
  nodeCpu: number;
  /** Seconds in which every non-idle task was stalled on I/O (PSI `full`); null when not readable. */
  ioFullStall: number | null;
}
const emptyTotals = (): ProcTotals => ({
  ioFullStall: 0,
  seconds: 0,
  cpu: Object.fromEntries(PROC_GROUPS.map((g) => [g, 0])) as Record<ProcGroup, number | null>,
  runQueue: Object.fromEntries(PROC_GROUPS.map((g) => [g, 0])) as Record<ProcGroup, number | null>,
  machineBusy: 0,
  nodeCpu: 0,
});
/** Pids not readable in some window, per group (for the warning). */
const unreadable = new Set<ProcGroup>();

/**
 * Adds the window between two snapshots to `into`. A process that started inside the window counts
 * from zero; one that ended inside it (a backfill backend when its run completes) up to its last
 * reading (`known`).
 */
function addWindow(into: ProcTotals, a: ProcSnapshot, b: ProcSnapshot): void {
  into.seconds += (b.us - a.us) / 1e6;
  into.nodeCpu += (b.nodeUs - a.nodeUs) / 1e6;
  for (const g of PROC_GROUPS) {
    let cpu: number | null = 0;
    let rq: number | null = 0;
    for (const [pid, r1] of b.groups[g]) {
      const r0 = a.groups[g].get(pid);
      if (r1 === null || r0 === null) {
        unreadable.add(g);
        cpu = null;
        rq = null;
        break;
      }
      cpu += ((r1.ticks - (r0?.ticks ?? 0)) * TICK_MS) / 1000;
      rq =
        rq === null || r1.runDelayNs === null || (r0 && r0.runDelayNs === null) ? null : rq + (r1.runDelayNs - (r0?.runDelayNs ?? 0)) / 1e9;
    }
    const c = into.cpu[g];
    into.cpu[g] = c === null || cpu === null ? null : c + cpu;
    const q = into.runQueue[g];
    into.runQueue[g] = q === null || rq === null ? null : q + rq;
  }
  into.machineBusy =
    into.machineBusy === null || !a.machine || !b.machine ? null : into.machineBusy + ((b.machine.busy - a.machine.busy) * TICK_MS) / 1000;
  into.ioFullStall =
    into.ioFullStall === null || a.ioFullUs === null || b.ioFullUs === null ? null : into.ioFullStall + (b.ioFullUs - a.ioFullUs) / 1e6;
}

/** A ProcTotals as JSON: CPU and run-queue seconds per group (null: not readable, e.g. the server on another host). */
const totalsJson = (t: ProcTotals) => ({
  seconds: round(t.seconds, 2),
  cpu_seconds: { ...Object.fromEntries(PROC_GROUPS.map((g) => [g, round(t.cpu[g], 3)])), machine_busy: round(t.machineBusy, 3) },
  run_queue_wait_seconds: Object.fromEntries(PROC_GROUPS.map((g) => [g, round(t.runQueue[g], 3)])),
  io_full_stall_ms_per_s: t.ioFullStall === null || t.seconds <= 0 ? null : round((t.ioFullStall * 1000) / t.seconds, 2),
});

/**
 * --sample-waits: every 10 ms, what the active pgbench backends (and the backfill's) wait on, from
 * pg_stat_activity (`CPU` when active with no wait event: running, or runnable and waiting for a core).
 */
interface WaitSample {
  us: number;
  fg: Record<string, number>;
  bf: Record<string, number>;
}
function startWaitSampler(url: string): { stop: () => Promise<WaitSample[]> } {
  return sessionLoop(url, 'parity-bench-sampler', 10, async (client) => {
    const r = await client.query(
      `SELECT application_name = 'pgbench' AS fg, coalesce(wait_event_type || ':' || wait_event, 'CPU') AS w, count(*)::int AS n
         FROM pg_stat_activity
        WHERE state = 'active' AND datname = current_database() AND application_name IN ('pgbench', 'parity-backfill') AND pid <> pg_backend_pid()
        GROUP BY 1, 2`,
    );
    const sample: WaitSample = { us: nowUs(), fg: {}, bf: {} };
    for (const row of r.rows as { fg: boolean; w: string; n: number }[]) (row.fg ? sample.fg : sample.bf)[row.w] = row.n;
    return sample;
  });
}

/**
 * --guard-probe: what the latency guard sees. The guard's default probe (`SELECT txid_current()`, a
 * commit flushed like an OLTP commit's) every `intervalMs` on a session of its own, from the load's
 * start to the frontier's end, each sample kept with the time it ended. Per setting the bench gives
 * the probe's p99 in the running and the setting's own idle windows and what the guard would decide
 * over each (replayGuard, against the probe's load-alone baseline): how the guard's view of a
 * setting compares with the foreground's. It adds the probe's 20 commits a second to every setting,
 * as the default setting's own guard does.
 */
function startGuardProbe(url: string, intervalMs: number): { stop: () => Promise<{ us: number; ms: number }[]> } {
  return sessionLoop(url, 'parity-bench-probe', intervalMs, async (client) => {
    const ms = await commitMs(client);
    return { us: nowUs(), ms };
  });
}

/** One commit of the guard's default probe (`SELECT txid_current()`), its duration in ms. */
async function commitMs(client: pg.Client): Promise<number> {
  const t0 = performance.now();
  await client.query('SELECT txid_current()');
  return performance.now() - t0;
}

/**
 * A loop on a session of its own (`application_name` = name) from now until stopped: `take`, then a
 * pause of `pauseMs`, again. stop() waits for the last `take` and gives what each returned, in order.
 */
function sessionLoop<T>(url: string, name: string, pauseMs: number, take: (client: pg.Client) => Promise<T>): { stop: () => Promise<T[]> } {
  const samples: T[] = [];
  let stopped = false;
  const client = new pg.Client({ connectionString: url, application_name: name });
  const done = (async () => {
    await client.connect();
    while (!stopped) {
      samples.push(await take(client));
      await sleep(pauseMs);
    }
    await client.end();
  })();
  // A session ended under the loop (a failed run's drop) rejects `done`; stop() still reports it.
  done.catch(() => undefined);
  return {
    stop: async () => {
      stopped = true;
      await done;
      return samples;
    },
  };
}

/**
 * The disk's yardstick, apart from any load: `n` commits (`SELECT txid_current()`, 5 ms apart) on the
 * otherwise idle server, their p50 and p99 in ms. Two runs whose load-alone windows look alike to each
 * other can still differ in this (an 8-kB fdatasync here took 123 us and 315 us twenty minutes apart),
 * so it tells a uniformly slow run, which `disturbed` cannot see, from a quiet one.
 */
async function idleCommitLatency(
  client: pg.Client,
  n = 400,
): Promise<{ n: number; p50: number | null; p99: number | null; max: number | null }> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    ms.push(await commitMs(client));
    await sleep(5);
  }
  return { n, p50: round(percentile(ms, 0.5), 3), p99: round(percentile(ms, 0.99), 3), max: round(Math.max(...ms), 3) };
}

/** Mean active backends per wait event over the samples inside `windows` (Little: extra mean active = rate x extra latency). */
function waitProfile(samples: WaitSample[], windows: Windows, side: 'fg' | 'bf'): { samples: number; mean_active: Record<string, number> } {
  const inside = samples.filter((x) => windows.some(([from, to]) => x.us >= from && x.us < to));
  const sums: Record<string, number> = {};
  for (const x of inside) for (const [w, n] of Object.entries(x[side])) sums[w] = (sums[w] ?? 0) + n;
  const mean = Object.fromEntries(
    Object.entries(sums)
      .sort((a, b) => b[1] - a[1])
      .map(([w, n]) => [w, Number((n / Math.max(1, inside.length)).toFixed(4))]),
  );
  return { samples: inside.length, mean_active: mean };
}

const db = await createTestDatabase('source', 'benchbf');
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
/**
 * cpuNow's own session: the 250-ms poller and the windows' readings would otherwise send a query on
 * `admin` while it runs another (VACUUM, CHECKPOINT, a control command), which pg queues and warns about.
 */
const procDb = new pg.Client({ connectionString: db.url });
await procDb.connect();
/** The last pg_stat_activity read on procDb: each waits for it, so no two overlap. */
let procQuery: Promise<unknown> = Promise.resolve();
/** pgbench's own process, once started. */
let pgbenchPid: number | undefined;
/**
 * The last reading of every process ever seen, with its group. A snapshot holds them all, so a
 * process that ended keeps its last reading: a backfill backend that ends inside a window (its run
 * completed) counts up to the last poll (every 250 ms, PROC_POLL_MS), and one that ended before the
 * window adds nothing. A pid seen but never readable (the server on another host) stays null.
 */
const known = new Map<number, { group: ProcGroup; reading: ProcReading }>();
const PROC_POLL_MS = 250;
/** --nice-backfill: on from the frontier's start; the backends renice'd so far and the failures. */
let niceOn = false;
const reniced = new Set<number>();
const niceFailures: string[] = [];
let procPoller: NodeJS.Timeout | undefined;
/** --sample-waits and --guard-probe loops, once started: a failed run stops them before the drop. */
let sampler: ReturnType<typeof startWaitSampler> | undefined;
let guardProbe: ReturnType<typeof startGuardProbe> | undefined;
/** The processes of PROC_GROUPS now: server processes from pg_stat_activity, read from /proc. */
const cpuNow = async (): Promise<ProcSnapshot> => {
  const query = procQuery.then(() =>
    procDb.query(
      `SELECT pid, CASE WHEN backend_type IN ('walwriter', 'checkpointer', 'background writer') THEN replace(backend_type, ' ', '_')
                        WHEN application_name = 'parity-backfill' THEN 'backfill_backends'
                        WHEN application_name = 'pgbench' THEN 'pgbench_backends'
                        ELSE 'wait_sampler_backend' END AS grp
         FROM pg_stat_activity
        WHERE backend_type IN ('walwriter', 'checkpointer', 'background writer')
           OR (datname = current_database() AND application_name IN ('parity-backfill', 'pgbench', 'parity-bench-sampler'))`,
    ),
  );
  procQuery = query.catch(() => undefined);
  const rows = (await query).rows as { pid: number; grp: ProcGroup }[];
  const u = process.cpuUsage();
  const current: [number, ProcGroup, string | undefined][] = rows.map(({ pid, grp }) => [pid, grp, 'postgres']);
  if (pgbenchPid !== undefined) current.push([pgbenchPid, 'pgbench_client', 'pgbench']);
  current.push([process.pid, 'bench_process', undefined]);
  for (const [pid, group, comm] of current) {
    const reading = readProc(pid, comm);
    // Gone between the query and the read: its last reading (if any) stands.
    if (reading !== 'gone') known.set(pid, { group, reading });
    // Only a process /proc shows as a local postgres backend (never a pid of another host's server).
    if (NICE_BACKFILL !== undefined && niceOn && group === 'backfill_backends' && reading && reading !== 'gone' && !reniced.has(pid)) {
      reniced.add(pid);
      try {
        lowerPriority(pid);
      } catch (e) {
        niceFailures.push(`${pid}: ${(e as Error).message}`);
      }
    }
  }
  const groups = Object.fromEntries(PROC_GROUPS.map((g) => [g, new Map<number, ProcReading>()])) as ProcSnapshot['groups'];
  for (const [pid, { group, reading }] of known) groups[group].set(pid, reading);
  return { us: nowUs(), ioFullUs: ioFullStallUs(), nodeUs: u.user + u.system, groups, machine: machineTicks() };
};
/**
 * The WAL segment being written and the segment files already there beyond it (recycled or
 * preallocated). A segment the server has to create (zero-filled, 16 MiB, synced) is created by
 * whoever writes the WAL out first, under the WAL write lock, usually a foreground commit.
 */
const walSegments = async (): Promise<{ seg: number; ahead: number } | null> =>
  admin
    .query(
      `SELECT floor(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0') / pg_size_bytes(current_setting('wal_segment_size'))::float8)::float8 AS seg,
              (SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_insert_lsn()))::int AS ahead`,
    )
    .then(
      (r) => r.rows[0] as { seg: number; ahead: number },
      () => null,
    );
/**
 * WAL held back by replication slots (every database of the cluster): a checkpoint recycles no
 * segment a slot still needs, so while a slot lags the server creates every new segment (inside
 * foreground commits' WAL writes) and neither the CHECKPOINT between settings nor the warm-up helps.
 */
const slotsHoldingWal = async (): Promise<{ slots: number; bytes: number; names: string[] }> => {
  const r = await admin.query(
    `SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::float8 AS bytes FROM pg_replication_slots
      WHERE restart_lsn IS NOT NULL AND pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) > pg_size_bytes(current_setting('wal_segment_size')) * 4
      ORDER BY restart_lsn`,
  );
  const rows = r.rows as { slot_name: string; bytes: number }[];
  return { slots: rows.length, bytes: rows.reduce((max, x) => Math.max(max, Number(x.bytes)), 0), names: rows.map((x) => x.slot_name) };
};
const walPosition = async (): Promise<number> =>
  Number((await admin.query(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::float8 AS b`)).rows[0].b);
try {
  log(
    `${QUICK ? 'quick run: ' : ''}loading ${ROWS.toLocaleString('en-US')} rows (unthrottled run) and ${OLTP_ROWS.toLocaleString('en-US')} rows (frontier)`,
  );
  const held = await slotsHoldingWal();
  if (held.slots > 0)
    log(
      `warning: ${held.slots} replication slot(s) of this cluster hold back ${(held.bytes / 2 ** 30).toFixed(1)} GiB of WAL (${held.names.slice(0, 5).join(', ')}${held.slots > 5 ? ', ...' : ''}): no WAL segment can be recycled, so every setting pays for creating its segments inside foreground commits and the warm-up cannot help; drop the stale slots, or run on a cluster without them, for steady-state figures`,
    );
  await createTable(admin, 'orders_bulk', ROWS);
  await admin.query('CHECKPOINT');

  log('run 1: unthrottled backfill (pace off: batches back to back at targetBatchSeconds)');
  const t1 = performance.now();
  const w1 = await walPosition();
  const bulk = await runBackfill({
    spec: specFor(db.url, 'orders_bulk', `{ pace: { enabled: false${ASYNC === undefined ? '' : `, asynchronousCommit: ${ASYNC}`} } }`),
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
  const BETWEEN = 8; // start-up of a setting's run, and the VACUUM and CHECKPOINT after it
  const AFTER = 15; // load alone after the last setting: the after-control window
  const planned =
    WARMUP +
    BASELINE_SECONDS +
    SETTINGS.reduce(
      (sum, st) =>
        sum +
        2 * WINDOWS * INTERLEAVE +
        (isDefault(st.name) ? GUARD_HOLD : 0) +
        BETWEEN +
        (st.warm && WARMUP_SECONDS > 0 ? WARMUP_SECONDS + (isDefault(st.name) ? GUARD_HOLD : 0) + BETWEEN : 0),
      0,
    ) +
    AFTER;
  log(
    `run 2: pgbench OLTP load at ${RATE} tx/s over ${CONNECTIONS} connections for up to ${planned} s; baseline ${BASELINE_SECONDS} s, then ${SETTINGS.map((st) => st.name).join(', ')}: ${WARMUP_SECONDS > 0 ? `${WARMUP_SECONDS} s of warm-up and a CHECKPOINT (not /cold, not off), then ` : ''}${WINDOWS} x (${INTERLEAVE} s running + ${INTERLEAVE} s paused) each`,
  );
  const idleCommitBefore = await idleCommitLatency(admin);
  log(`  idle server, commit latency before the load: p50 ${idleCommitBefore.p50} ms, p99 ${idleCommitBefore.p99} ms`);
  const pgbench = runPgbench(db.url, oltpScripts('orders_live', OLTP_ROWS), RATE, CONNECTIONS, planned);
  pgbenchPid = pgbench.pid;
  // Keeps the last readings of processes that end inside a window (see `known`).
  // A poll still waiting (a slow server) is not queued behind again.
  let polling = false;
  procPoller = setInterval(() => {
    if (polling) return;
    polling = true;
    void cpuNow()
      .catch(() => undefined)
      .finally(() => {
        polling = false;
      });
  }, PROC_POLL_MS);
  if (NICE_BACKFILL !== undefined) {
    niceOn = true;
    try {
      lowerPriority(process.pid);
    } catch (e) {
      niceFailures.push(`this process: ${(e as Error).message}`);
    }
    log(
      `  --nice-backfill: this process and the backfill's backends at ${NICE_BACKFILL === 'idle' ? 'SCHED_IDLE' : `nice ${NICE_BACKFILL}`} from here on`,
    );
  }
  const load = pgbench.done.finally(() => (pgbenchPid = undefined));
  load.catch(() => undefined); // awaited below; a failure before then must not end the process unhandled
  sampler = SAMPLE_WAITS ? startWaitSampler(db.url) : undefined;
  const guardDefaults = specFor(db.url, 'orders_live').backfill.throttle.pace.latencyGuard;
  guardProbe = GUARD_PROBE ? startGuardProbe(db.url, guardDefaults.intervalMs) : undefined;
  await sleep(WARMUP * 1000);
  const baseFrom = nowUs();
  const baseCpu0 = await cpuNow();
  await sleep(BASELINE_SECONDS * 1000);
  const baseCpu1 = await cpuNow();
  const baseline0: Windows = [[baseFrom, nowUs()]];
  const procBaseline = emptyTotals();
  addWindow(procBaseline, baseCpu0, baseCpu1);
  let walIdleBytes = 0;
  let walIdleSeconds = 0;

  const throttleActiveIn = async (registry: ReturnType<typeof createMetricsRegistry>, reason: string): Promise<number> =>
    (await registry.getSingleMetric('parity_backfill_throttle_active')?.get())?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
  /** The default setting's guard holds the backfill while it measures its baseline: wait that out (at most GUARD_HOLD s). */
  const waitForGuard = async (registry: ReturnType<typeof createMetricsRegistry>, finished: () => boolean): Promise<void> => {
    const until = Date.now() + GUARD_HOLD * 1000;
    while (Date.now() < until && !finished() && (await throttleActiveIn(registry, 'latency_guard')) === 0) await sleep(100);
    while (Date.now() < until && !finished() && (await throttleActiveIn(registry, 'latency_guard')) === 1) await sleep(100);
  };
  /**
   * The warm-up: the setting runs as a run of its own (its own constant, so its rows really change)
   * for WARMUP_SECONDS, then VACUUM and CHECKPOINT, which recycles the WAL segments it wrote as the
   * next ones. Counted for neither side.
   */
  const warmUp = async (setting: Setting, i: number): Promise<WarmUp> => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const stop = new AbortController();
    let finished = false;
    const running = runBackfill({
      spec: specFor(db.url, 'orders_live', setting.throttle, `-${i}-warmup`, `W${i}`),
      ...(WORKERS ? { workers: WORKERS } : {}),
      controlServer: false,
      metrics: registry,
      signal: stop.signal,
    }).finally(() => (finished = true));
    if (isDefault(setting.name)) await waitForGuard(registry, () => finished);
    const seg0 = await walSegments();
    const t0 = performance.now();
    await Promise.race([running, sleep(WARMUP_SECONDS * 1000)]);
    const seconds = (performance.now() - t0) / 1000;
    const seg1 = await walSegments();
    stop.abort();
    const result = await running;
    await admin.query('VACUUM public.orders_live');
    await admin.query('CHECKPOINT');
    return {
      seconds: round(seconds, 1) ?? 0,
      rows: result.rowsDone,
      walSegmentsCreated: seg0 && seg1 ? Math.max(0, seg1.seg - seg0.seg - Math.max(0, seg0.ahead - seg1.ahead)) : null,
      segmentsAheadAfter: (await walSegments())?.ahead ?? null,
    };
  };

  const results: SettingResult[] = [];
  for (const [i, setting] of SETTINGS.entries()) {
    const warmup = setting.warm && WARMUP_SECONDS > 0 ? await warmUp(setting, i) : null;
    if (warmup)
      log(
        `  ${setting.name}: warmed up ${warmup.seconds} s (${warmup.rows.toLocaleString('en-US')} rows, ${warmup.walSegmentsCreated ?? '?'} WAL segments created), CHECKPOINT: ${warmup.segmentsAheadAfter ?? '?'} segments ahead`,
      );
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
    // The first running window starts with the run (planning counts, as in rows_per_s), except for
    // the default setting, whose guard holds the backfill while it measures its baseline: neither side.
    let startFrom = nowUs();
    let startWal = await walPosition();
    let startCpu = await cpuNow();
    let startSeg = await walSegments();
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
    if (isDefault(setting.name)) {
      await waitForGuard(registry, () => finished);
      startFrom = nowUs();
      startWal = await walPosition();
      startCpu = await cpuNow();
      startSeg = await walSegments();
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
      walSegmentsCreated: 0,
      completed: false,
      mismatched: null,
      guardMoves: {},
      pace: null,
      procRunning: emptyTotals(),
      procIdle: emptyTotals(),
      warmup,
    };
    for (let w = 0; w < WINDOWS && !finished; w++) {
      // Running window (after a resume, the first second counts for neither side).
      let from = startFrom;
      let wal0 = startWal;
      let rows0 = 0;
      let cpu0 = w === 0 ? startCpu : await cpuNow();
      let seg0 = w === 0 ? startSeg : await walSegments();
      if (w > 0) {
        await control('resume');
        await sleep(1_000);
        from = nowUs();
        wal0 = await walPosition();
        rows0 = await rowsOfRun();
        cpu0 = await cpuNow();
        seg0 = await walSegments();
      }
      await Promise.race([running, sleep(from / 1000 + INTERLEAVE * 1000 - (w > 0 ? 1_000 : 0) - Date.now())]);
      const to = nowUs();
      const cpu1 = await cpuNow();
      res.walRunBytes += (await walPosition()) - wal0;
      const seg1 = await walSegments();
      // Segments entered minus those that were already there; a checkpoint in between (which recycles) makes it an underestimate.
      if (seg0 && seg1 && res.walSegmentsCreated !== null)
        res.walSegmentsCreated += Math.max(0, seg1.seg - seg0.seg - Math.max(0, seg0.ahead - seg1.ahead));
      else res.walSegmentsCreated = null;
      addWindow(res.procRunning, cpu0, cpu1);
      res.rows += (await rowsOfRun()) - rows0;
      res.runSeconds += (to - from) / 1e6;
      res.runWindows.push([from, to]);
      if (finished) break;
      await control('pause');
      await sleep(1_000);
      const idleFrom = nowUs();
      const idleCpu0 = await cpuNow();
      const walI = await walPosition();
      await sleep(INTERLEAVE * 1000 - 1_000);
      const idleTo = nowUs();
      addWindow(res.procIdle, idleCpu0, await cpuNow());
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
    // Between settings: the dead row versions of this one go, and a checkpoint lets the server
    // recycle the WAL segments written so far (neither side). Without it each setting inherits the
    // segments the previous ones left: the later ones find none ahead and pay for creating them (a
    // 16 MiB zero-filled, synced file, written under the WAL write lock that foreground commits wait
    // on), which a long backfill pays only in its first checkpoint cycle (the server recycles as many
    // segments as the last cycles used).
    await admin.query('VACUUM public.orders_live');
    if (values['no-checkpoint'] !== true) await admin.query('CHECKPOINT');
  }
  const endUs = nowUs();
  clearInterval(procPoller);
  log('  waiting for pgbench to finish its run (the rest is the after-control window)');
  const txs = await load;
  const idleCommitAfter = await idleCommitLatency(admin);
  log(`  idle server, commit latency after the load: p50 ${idleCommitAfter.p50} ms, p99 ${idleCommitAfter.p99} ms`);
  const waitSamples = (await sampler?.stop()) ?? [];
  const probeSamples = (await guardProbe?.stop()) ?? [];
  sampler = undefined;
  guardProbe = undefined;
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
        // --guard-probe: every probe (the time it ended, µs, and its duration, ms), to try other guard rules on.
        ...(GUARD_PROBE ? { guardProbe: probeSamples } : {}),
      }),
    );
  const baseline = p99Of(txs, idleAll);
  // The bench's p99 before the split added pgbench's lag to its `time`, which already holds it: kept for comparison with older runs.
  const p99LagTwice = (windows: Windows) =>
    percentile(
      txs.filter((t) => windows.some(([from, to]) => t.doneUs >= from && t.doneUs < to)).map((t) => t.latencyMs + t.lagMs),
      0.99,
    ) ?? NaN;
  const baselineLagTwice = p99LagTwice(idleAll);
  const splitBaseline = splitOf(txs, idleAll);
  const procIdleAll = [procBaseline, ...results.map((r) => r.procIdle)].reduce((sum, t) => {
    sum.seconds += t.seconds;
    sum.nodeCpu += t.nodeCpu;
    sum.machineBusy = sum.machineBusy === null || t.machineBusy === null ? null : sum.machineBusy + t.machineBusy;
    sum.ioFullStall = sum.ioFullStall === null || t.ioFullStall === null ? null : sum.ioFullStall + t.ioFullStall;
    for (const g of PROC_GROUPS) {
      const c = sum.cpu[g];
      const tc = t.cpu[g];
      sum.cpu[g] = c === null || tc === null ? null : c + tc;
      const w = sum.runQueue[g];
      const tw = t.runQueue[g];
      sum.runQueue[g] = w === null || tw === null ? null : w + tw;
    }
    return sum;
  }, emptyTotals());
  /** Run-queue wait per transaction, ms, of the pgbench backends and client over windows holding `n` transactions. */
  const rqPerTx = (t: ProcTotals, n: number) => ({
    pgbench_backends: n > 0 && t.runQueue.pgbench_backends !== null ? round((t.runQueue.pgbench_backends * 1000) / n, 3) : null,
    pgbench_client: n > 0 && t.runQueue.pgbench_client !== null ? round((t.runQueue.pgbench_client * 1000) / n, 3) : null,
  });
  const idleWalRate = walIdleSeconds > 0 ? walIdleBytes / walIdleSeconds : 0;
  const afterFrom = endUs + 2e6;
  const after = lastTx - afterFrom >= 10e6 ? p99Of(txs, [[afterFrom, lastTx + 1]]) : undefined;
  /** --guard-probe: the probe's durations inside `windows`, in the order taken. */
  const probeIn = (windows: Windows): number[] =>
    probeSamples.filter((x) => windows.some(([from, to]) => x.us >= from && x.us < to)).map((x) => x.ms);
  const probeBaseline = probeIn(baseline0);
  const replay = (samples: number[]) => {
    const r = replayGuard(guardDefaults, probeBaseline, samples);
    return { ...r, limit_ms: r.limit_ms === null ? null : round(r.limit_ms) };
  };
  const probeP99 = (samples: number[]) => (samples.length > 0 ? round(percentile(samples, 0.99) as number) : null);
  const guardProbeOf = (running: number[], ownIdle: number[]) => ({
    samples_running: running.length,
    p99_ms_running: probeP99(running),
    p99_ms_own_idle: probeP99(ownIdle),
    replay_running: replay(running),
    replay_own_idle: replay(ownIdle),
  });
  const frontier = results.map((r) => {
    const during = p99Of(txs, r.runWindows);
    const ownIdle = p99Of(txs, r.idleWindows);
    const splitRunning = splitOf(txs, r.runWindows);
    const splitIdle = splitOf(txs, r.idleWindows);
    const rps = r.runSeconds > 0 ? r.rows / r.runSeconds : 0;
    const walPerRow = r.rows > 0 ? (r.walRunBytes - idleWalRate * r.runSeconds) / r.rows : null;
    // Each running window against the idle window right after it (the last running window of a run
    // that completed has none).
    const paired = pairedRatio(
      r.idleWindows.map((idle, k) => ({ running: latenciesIn(txs, r.runWindows.slice(k, k + 1)), idle: latenciesIn(txs, [idle]) })),
      TARGET_RATIO,
    );
    return {
      setting: r.setting.name,
      wal_budget_bytes_per_s: r.setting.walBytesPerSecond,
      rows_per_s: Math.round(rps),
      oltp_p99_ms: round(during.p99),
      oltp_p99_ratio: round(during.p99 / baseline.p99),
      oltp_samples: during.n,
      eligible: during.n >= MIN_SAMPLES,
      oltp_p99_ms_own_idle: round(ownIdle.p99),
      oltp_p99_ratio_own_idle: {
        ratio: round(paired.ratio),
        ci90: paired.ci90 ? ([round(paired.ci90[0]), round(paired.ci90[1])] as [number, number]) : null,
        pairs: paired.pairs,
        verdict: paired.verdict,
      },
      // Each window's own p99 (in order), to show how much one window's tail moves the pooled one.
      oltp_p99_ms_by_window: {
        running: r.runWindows.map((w) => round(p99Of(txs, [w]).p99)),
        own_idle: r.idleWindows.map((w) => round(p99Of(txs, [w]).p99)),
      },
      wal_bytes_per_row: walPerRow === null ? null : Math.round(walPerRow),
      wal_segments_created: r.walSegmentsCreated,
      warmup: r.warmup
        ? {
            seconds: r.warmup.seconds,
            rows: r.warmup.rows,
            wal_segments_created: r.warmup.walSegmentsCreated,
            segments_ahead_after_checkpoint: r.warmup.segmentsAheadAfter,
          }
        : null,
      running_seconds: round(r.runSeconds, 1),
      completed: r.completed,
      mismatched_rows_after: r.mismatched,
      wal_budget_end_bytes_per_s: r.pace?.walBytesPerSecond ?? null,
      guard_moves: r.guardMoves,
      health: r.pace?.health ? r.pace.health.reasons.map((x) => x.reason) : null,
      node_cpu_share: r.runSeconds > 0 ? round(r.procRunning.nodeCpu / r.runSeconds, 3) : null,
      backend_cpu_share:
        r.runSeconds > 0 && r.procRunning.cpu.backfill_backends !== null
          ? round(r.procRunning.cpu.backfill_backends / r.runSeconds, 3)
          : null,
      oltp_p99_ratio_lag_counted_twice: round(p99LagTwice(r.runWindows) / baselineLagTwice),
      oltp_split_running: splitRunning,
      oltp_split_own_idle: splitIdle,
      proc_running: totalsJson(r.procRunning),
      proc_own_idle: r.idleWindows.length > 0 ? totalsJson(r.procIdle) : null,
      run_queue_wait_ms_per_tx: { running: rqPerTx(r.procRunning, splitRunning.n), own_idle: rqPerTx(r.procIdle, splitIdle.n) },
      ...(GUARD_PROBE ? { guard_probe: guardProbeOf(probeIn(r.runWindows), probeIn(r.idleWindows)) } : {}),
      ...(SAMPLE_WAITS
        ? {
            waits_oltp_running: waitProfile(waitSamples, r.runWindows, 'fg'),
            waits_oltp_idle: waitProfile(waitSamples, r.idleWindows, 'fg'),
            waits_backfill_running: waitProfile(waitSamples, r.runWindows, 'bf'),
          }
        : {}),
    };
  });
  for (const f of frontier)
    if (f.guard_probe)
      log(
        `  ${f.setting.padEnd(9)} guard probe p99 running / own idle: ${f.guard_probe.p99_ms_running} / ${f.guard_probe.p99_ms_own_idle} ms; the guard would cut ${f.guard_probe.replay_running.cuts} of ${f.guard_probe.replay_running.windows} windows running, ${f.guard_probe.replay_own_idle.cuts} of ${f.guard_probe.replay_own_idle.windows} idle`,
      );
  for (const f of frontier)
    log(
      `  ${f.setting.padEnd(9)} ${String(f.rows_per_s).padStart(8)} rows/s  p99 ${f.oltp_p99_ms} ms (x${f.oltp_p99_ratio}, ${f.oltp_samples} tx)  ${f.wal_bytes_per_row ?? '-'} WAL bytes/row, ${f.wal_segments_created ?? '?'} WAL segments created`,
    );
  for (const f of frontier) {
    const o = f.oltp_p99_ratio_own_idle;
    log(
      `  ${f.setting.padEnd(9)} against its own idle windows: x${o.ratio}${o.ci90 ? `, 90% ${o.ci90[0]}-${o.ci90[1]}` : ''} over ${o.pairs} pairs: ${o.verdict === 'within' ? `within ${TARGET_RATIO}x` : o.verdict === 'over' ? `over ${TARGET_RATIO}x` : 'undecided'}`,
    );
  }
  if (SAMPLE_WAITS) {
    const top = (p: ReturnType<typeof waitProfile>) =>
      Object.entries(p.mean_active)
        .slice(0, 5)
        .map(([w, n]) => `${w} ${n}`)
        .join(', ');
    log(`  waits of the OLTP backends (mean active), load alone: ${top(waitProfile(waitSamples, idleAll, 'fg'))}`);
    for (const f of frontier)
      if (f.waits_oltp_running && f.waits_backfill_running)
        log(`  ${f.setting.padEnd(9)} OLTP: ${top(f.waits_oltp_running)}; backfill: ${top(f.waits_backfill_running)}`);
  }
  for (const f of frontier) log(`  ${f.setting.padEnd(9)} CPU: node ${f.node_cpu_share}, backfill backends ${f.backend_cpu_share} (cores)`);
  const splitLine = (x: ReturnType<typeof splitOf>) =>
    `latency mean/p50/p99 ${x.latency_ms.mean}/${x.latency_ms.p50}/${x.latency_ms.p99} ms: exec ${x.exec_ms.mean}/${x.exec_ms.p50}/${x.exec_ms.p99} (reads ${x.exec_ms_by_kind.read?.p99}, inserts ${x.exec_ms_by_kind.insert?.p99}, updates ${x.exec_ms_by_kind.update?.p99} at p99), lag ${x.lag_ms.mean}/${x.lag_ms.p50}/${x.lag_ms.p99}; slowest 1% (${x.slowest_1pct_mean_ms.n} tx) ${x.slowest_1pct_mean_ms.latency} = exec ${x.slowest_1pct_mean_ms.exec} + queue ${x.slowest_1pct_mean_ms.lag_queue} + start ${x.slowest_1pct_mean_ms.lag_start}`;
  log(`  where the latency goes (${splitBaseline.n} tx load alone): ${splitLine(splitBaseline)}`);
  for (const f of frontier) log(`  ${f.setting.padEnd(9)} running: ${splitLine(f.oltp_split_running)}`);
  /** Cores (CPU seconds per second) of a group in totals `t`. */
  const cores = (t: ProcTotals, x: number | null) => (x === null || t.seconds <= 0 ? 'null' : (x / t.seconds).toFixed(3));
  const procLine = (t: ProcTotals) =>
    `CPU cores: backfill ${cores(t, t.cpu.backfill_backends)}, bench process ${cores(t, t.cpu.bench_process)}, pgbench backends ${cores(t, t.cpu.pgbench_backends)}, pgbench ${cores(t, t.cpu.pgbench_client)}, walwriter ${cores(t, t.cpu.walwriter)}, checkpointer ${cores(t, t.cpu.checkpointer)}, sampler ${cores(t, t.cpu.wait_sampler_backend)}, machine ${cores(t, t.machineBusy)}; run-queue wait s/s: pgbench backends ${cores(t, t.runQueue.pgbench_backends)}, pgbench ${cores(t, t.runQueue.pgbench_client)}, backfill ${cores(t, t.runQueue.backfill_backends)}, bench process ${cores(t, t.runQueue.bench_process)}`;
  log(`  load alone (${procIdleAll.seconds.toFixed(1)} s): ${procLine(procIdleAll)}`);
  for (const r of results) {
    log(`  ${r.setting.name.padEnd(9)} running: ${procLine(r.procRunning)}`);
    log(`  ${r.setting.name.padEnd(9)} own idle: ${procLine(r.procIdle)}`);
  }
  for (const f of frontier)
    log(
      `  ${f.setting.padEnd(9)} run-queue wait per tx, running / own idle: pgbench backends ${f.run_queue_wait_ms_per_tx.running.pgbench_backends} / ${f.run_queue_wait_ms_per_tx.own_idle.pgbench_backends} ms, pgbench ${f.run_queue_wait_ms_per_tx.running.pgbench_client} / ${f.run_queue_wait_ms_per_tx.own_idle.pgbench_client} ms`,
    );
  for (const f of frontier)
    log(
      `  ${f.setting.padEnd(9)} p99 by window, running / own idle: ${f.oltp_p99_ms_by_window.running.join(', ')} / ${f.oltp_p99_ms_by_window.own_idle.join(', ')} ms`,
    );
  if (niceFailures.length > 0)
    log(`  warning: --nice-backfill could not renice ${niceFailures.length} process(es): ${niceFailures.slice(0, 3).join('; ')}`);
  if (unreadable.size > 0)
    log(
      `  note: /proc had no readable process for ${[...unreadable].join(', ')} (the cluster on another host, or not Linux): those CPU and run-queue figures are null`,
    );
  // Was the machine quiet? The load alone should look the same in every window: a load-alone window
  // whose p99 is over twice the median of them held a stall that was not the backfill's (it was
  // paused), so the ratios of this run say more about the machine than about the settings.
  const loneP99 = idleAll.map((w) => p99Of(txs, [w]).p99).filter((x) => Number.isFinite(x));
  const loneMedian = percentile(loneP99, 0.5) ?? NaN;
  const loneMax = loneP99.reduce((a, b) => Math.max(a, b), 0);
  const disturbed = loneP99.length > 0 && loneMax > 2 * loneMedian;
  if (disturbed)
    log(
      `  warning: a DISTURBED run: the load alone had a p99 of ${loneMax.toFixed(2)} ms in one window against a median of ${loneMedian.toFixed(2)} ms over its ${loneP99.length} windows (every non-idle task stalled on I/O ${procIdleAll.ioFullStall === null ? '?' : ((procIdleAll.ioFullStall * 1000) / Math.max(1, procIdleAll.seconds)).toFixed(1)} ms/s while the backfill was paused): its ratios are not quiet-machine figures`,
    );
  const within = frontier.filter((f) => f.oltp_p99_ratio !== null && f.oltp_p99_ratio <= TARGET_RATIO && f.oltp_samples >= MIN_SAMPLES);
  // The same question, answered only where the run is sure: the interval of the ratio against each
  // setting's own idle windows is under the limit.
  const shown = frontier.filter((f) => f.oltp_p99_ratio_own_idle.verdict === 'within' && f.oltp_samples >= MIN_SAMPLES);
  const bestShown = shown.reduce<(typeof frontier)[number] | undefined>((a, f) => (!a || f.rows_per_s > a.rows_per_s ? f : a), undefined);
  const best = within.reduce<(typeof frontier)[number] | undefined>((a, f) => (!a || f.rows_per_s > a.rows_per_s ? f : a), undefined);
  const def = frontier.find((f) => f.setting === 'default') ?? frontier.find((f) => isDefault(f.setting));
  const defResult = results.find((r) => r.setting.name === def?.setting);
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
    asynchronous_commit: ASYNC ?? specFor(db.url, 'orders_live').backfill.throttle.pace.asynchronousCommit,
    rows_per_s_at_1_2x: best?.rows_per_s ?? null,
    rows_per_s_at_1_2x_setting: best?.setting ?? null,
    rows_per_s_within_1_2x_shown: bestShown?.rows_per_s ?? null,
    rows_per_s_within_1_2x_shown_setting: bestShown?.setting ?? null,
    oltp_p99_ratio_own_idle: def?.oltp_p99_ratio_own_idle ?? null,
    backfill_during_rows_per_s: def?.rows_per_s ?? null,
    oltp_p99_ratio: def?.oltp_p99_ratio ?? null,
    oltp_p99_ms_baseline: round(baseline.p99),
    oltp_split_baseline: splitBaseline,
    proc_baseline: totalsJson(procIdleAll),
    proc_unreadable: [...unreadable],
    oltp_p99_ms_during: def?.oltp_p99_ms ?? null,
    oltp_p99_ms_by_kind_baseline: byKind(txs, idleAll),
    oltp_p99_ms_by_kind_during: defResult ? byKind(txs, defResult.runWindows) : null,
    oltp_samples_baseline: baseline.n,
    load_alone_p99_ms_by_window: { median: round(loneMedian), max: round(loneMax), windows: loneP99.length },
    disturbed,
    idle_commit_ms: { before: idleCommitBefore, after: idleCommitAfter },
    oltp_p99_ms_after: after ? round(after.p99) : null,
    oltp_rate_tx_per_s: RATE,
    oltp_rows: OLTP_ROWS,
    oltp_interleave_seconds: INTERLEAVE,
    windows_per_setting: WINDOWS,
    warmup_seconds: WARMUP_SECONDS,
    nice_backfill: NICE_BACKFILL ?? null,
    nice_backfill_backends: reniced.size,
    nice_backfill_failures: niceFailures.slice(0, 10),
    slots_holding_wal: held.slots,
    slots_held_wal_bytes: Math.round(held.bytes),
    idle_wal_bytes_per_s: Math.round(idleWalRate),
    ...(GUARD_PROBE
      ? {
          // The probe's load-alone baseline and, over every later idle window, the cuts the guard would make with no backfill running.
          guard_probe_baseline: {
            samples: probeBaseline.length,
            p99_ms: probeP99(probeBaseline),
            replay_idle_windows: replay(probeIn(results.flatMap((r) => r.idleWindows))),
          },
        }
      : {}),
    frontier,
    target_rows_per_s: 250_000,
    target_rows_per_s_at_1_2x: 20_000,
    target_oltp_p99_ratio: TARGET_RATIO,
  };
  if (REPORT) {
    writeFileSync(REPORT, renderFrontierHtml(result, `parity backfill frontier, ${new Date().toISOString().slice(0, 16)} UTC`));
    log(`  frontier page: ${REPORT}`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  clearInterval(procPoller);
  // Only after a failure: the run's own error is what matters, not how the loops' sessions ended.
  await Promise.allSettled([sampler?.stop(), guardProbe?.stop()]);
  await procQuery;
  await procDb.end();
  await admin.end();
  await db.drop();
}
