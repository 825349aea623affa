/**
 * What a paced backfill costs in CPU per batch, with no foreground load: the same-table backfill of
 * the worked example's mapping at a fixed WAL budget, on a fresh table of --rows rows (300,000; a run
 * at 4 MiB/s takes about 17 s), --runs times (3). Reports, per run, the rows/s, the batches and their
 * rows, and the CPU of this process (the backfill's client side: `process.cpuUsage`, every thread) and
 * of the backfill's server backends (utime + stime from /proc/<pid>/stat of every session named
 * `parity-backfill`, read once a second and at the end; Linux, the server on this host), per batch
 * and per second. Progress on stderr, one JSON object as the last stdout line.
 *
 * Options: --mib N (the WAL budget in MiB/s, 4; 0: pacing off), --kib N (pace.batchWalBytes in KiB;
 * default: the spec's), --rows N, --runs N, --poll-ms N (the controller's poll interval; default
 * the product's 250 ms).
 *
 * Why: at 2-8 MiB/s most of a paced batch's CPU is its fixed cost (round trips, statements, commit),
 * not its rows, and on a machine the backfill shares with the foreground every CPU-millisecond of it
 * is one the foreground may wait for (BENCHMARKS.md, Backfill). Comparing two builds: run this bench
 * on each in turn, alternating, under the bench lock.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runBackfill } from '../../services/backfill/backfill.js';
import { backfillBenchSpec } from './backfill-spec.js';
import { createTestDatabase } from '../support/stack.js';

const { values } = parseArgs({
  options: {
    mib: { type: 'string' },
    kib: { type: 'string' },
    rows: { type: 'string' },
    runs: { type: 'string' },
    'poll-ms': { type: 'string' },
  },
});
const num = (name: string, value: string | undefined, fallback: number, min: number): number => {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < min) {
    process.stderr.write(`bench:backfill-cpu: --${name} must be a number >= ${min}, got "${value}"\n`);
    process.exit(2);
  }
  return n;
};
const MIB = num('mib', values.mib, 4, 0);
const KIB = values.kib === undefined ? undefined : num('kib', values.kib, 64, 8);
const ROWS = num('rows', values.rows, 300_000, 1_000);
const RUNS = num('runs', values.runs, 3, 1);
const POLL_MS = values['poll-ms'] === undefined ? undefined : num('poll-ms', values['poll-ms'], 250, 10);
const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s on Linux

const log = (msg: string) => process.stderr.write(`[bench:backfill-cpu] ${msg}\n`);

/** utime + stime of a process, seconds; undefined when it is gone or not readable. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ');
    return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS : undefined;
  } catch {
    return undefined;
  }
}

async function oneRun(run: number) {
  const db = await createTestDatabase('source', 'bfcpu');
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    await admin.query(`CREATE TABLE public.orders (
      id bigint PRIMARY KEY, customer_id integer NOT NULL, total_amount integer NOT NULL, status text NOT NULL DEFAULT 'paid',
      created_at timestamptz NOT NULL DEFAULT now(), total_amount_minor bigint, currency text)`);
    await admin.query(
      `INSERT INTO public.orders (id, customer_id, total_amount) SELECT g, g % 9973, ((g::bigint * 7919) % 100000)::int FROM generate_series(1, $1::bigint) g`,
      [ROWS],
    );
    await admin.query('VACUUM (ANALYZE) public.orders');
    await admin.query('CHECKPOINT');
    const bytes = Math.round(MIB * 1024 * 1024);
    const throttle =
      MIB > 0
        ? `{ pace: { mode: wal-rate, walBytesPerSecond: ${bytes}, minWalBytesPerSecond: ${bytes}, maxWalBytesPerSecond: ${bytes}${KIB ? `, batchWalBytes: ${Math.round(KIB * 1024)}` : ''}, latencyGuard: { enabled: false } } }`
        : '{ pace: { enabled: false } }';
    const spec = backfillBenchSpec({ name: `bench-cpu-${run}`, url: db.url, table: 'orders', backfill: `  throttle: ${throttle}\n` });
    // The last reading of each backfill backend (a backend that ends keeps its last reading).
    const backends = new Map<number, number>();
    const read = async (): Promise<void> => {
      const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'parity-backfill'`);
      for (const { pid } of rows as { pid: number }[]) {
        const s = cpuSeconds(pid);
        if (s !== undefined) backends.set(pid, s);
      }
    };
    // A backend that existed before the run starts from its reading then (none should: a fresh database).
    await read();
    const before = new Map(backends);
    const poller = setInterval(() => void read().catch(() => undefined), 1_000);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let result: Awaited<ReturnType<typeof runBackfill>>;
    try {
      result = await runBackfill({ spec, controlServer: false, ...(POLL_MS ? { pollMs: POLL_MS } : {}) });
    } finally {
      clearInterval(poller);
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await read();
    const backendSeconds = [...backends].reduce((sum, [pid, s]) => sum + s - (before.get(pid) ?? 0), 0);
    const clientSeconds = (cpu.user + cpu.system) / 1e6;
    const batches = Math.max(1, result.batches);
    return {
      run,
      rows: result.rowsDone,
      batches: result.batches,
      seconds: Math.round(seconds * 100) / 100,
      rows_per_s: Math.round(result.rowsDone / seconds),
      rows_per_batch: Math.round(result.rowsDone / batches),
      backend_cores: Math.round((backendSeconds / seconds) * 1000) / 1000,
      client_cores: Math.round((clientSeconds / seconds) * 1000) / 1000,
      backend_ms_per_batch: Math.round(((backendSeconds * 1000) / batches) * 1000) / 1000,
      client_ms_per_batch: Math.round(((clientSeconds * 1000) / batches) * 1000) / 1000,
    };
  } finally {
    await admin.end();
    await db.drop();
  }
}

const runs = [];
for (let i = 1; i <= RUNS; i++) {
  const r = await oneRun(i);
  log(
    `run ${i}: ${r.rows_per_s.toLocaleString('en-US')} rows/s, ${r.batches} batches of ${r.rows_per_batch} rows; CPU per batch: backend ${r.backend_ms_per_batch} ms, this process ${r.client_ms_per_batch} ms (cores ${r.backend_cores} + ${r.client_cores})`,
  );
  runs.push(r);
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
process.stdout.write(
  `${JSON.stringify({
    wal_mib_per_s: MIB,
    batch_wal_kib: KIB ?? null,
    rows: ROWS,
    poll_ms: POLL_MS ?? null,
    runs,
    median_backend_ms_per_batch: median(runs.map((r) => r.backend_ms_per_batch)),
    median_client_ms_per_batch: median(runs.map((r) => r.client_ms_per_batch)),
    median_rows_per_s: median(runs.map((r) => r.rows_per_s)),
  })}\n`,
);
process.exit(0);
