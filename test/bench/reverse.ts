/**
 * Reverse sync benchmark (issue 23): `npm run bench:reverse [-- --rate R] [-- --seconds S] [-- --pause-seconds P]
 * [-- --stream-check on|off]` (the reverse stream check beside the apply, on by default as in `reverse-sync run`).
 *
 * A same-table migration is cut over on its own database; reverse sync runs in this process (its
 * `onApplied` hook gives the exact commit time of every source transaction it applied).
 * 1. Steady state: writers paced at R single-row transactions/s (default 2,000) on the new columns
 *    for S seconds (default 20). lag = the apply transaction's commit (wall clock, this host) minus the
 *    source transaction's commit time (from the WAL); p50/p99 over every source transaction.
 * 2. Catch-up: reverse sync is stopped, the writers run at R/s for P seconds (default 60), then reverse
 *    sync starts again: changes_per_s = source transactions applied / time from the restart until the
 *    last one is applied.
 * 3. Beside it, the forward figure for the same WAL: a second slot created at the pause, read with
 *    `pg_recvlogical` (pgoutput proto 1, the same publication) to /dev/null: the decode ceiling one slot
 *    has on this machine, which bounds the reverse path and the forward CDC alike (bench:cdc measures
 *    the forward path through Kafka; BENCHMARKS.md has its quiet-machine figures).
 *
 * Progress goes to stderr; the last stdout line is one JSON object with the figures.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createRedis } from '../../services/core/clients.js';
import { silentLogger } from '../../services/core/log.js';
import { createMetricsRegistry } from '../../services/core/metrics.js';
import { reconcilerStreamCheckReverse } from '../../services/cli/reverse-verify.js';
import { cutover } from '../../services/reverse-sync/cutover.js';
import { reversePublication } from '../../services/reverse-sync/names.js';
import { ReverseSync } from '../../services/reverse-sync/reverse-sync.js';
import { phasesAtRamp, writeSpec } from '../integration/reverse-sync/support.js';
import { STACK, createTestDatabase, uniqueName } from '../support/stack.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    'pause-seconds': { type: 'string', default: '60' },
    rows: { type: 'string', default: '100000' },
    // The reverse stream check beside the apply, as `reverse-sync run` has it (default on).
    'stream-check': { type: 'string', default: 'on' },
  },
});
if (values['stream-check'] !== 'on' && values['stream-check'] !== 'off') throw new Error('--stream-check takes on or off');
const STREAM_CHECK = values['stream-check'] === 'on';
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const PAUSE = Number(values['pause-seconds']);
const ROWS = Number(values.rows);
const log = (line: string): void => void process.stderr.write(`[bench:reverse] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Paced single-row updates of the new columns: `rate` transactions/s over `connections` sessions. */
async function writeFor(pool: pg.Pool, rate: number, seconds: number, connections = 8): Promise<number> {
  let written = 0;
  const end = performance.now() + seconds * 1000;
  const perWorker = rate / connections;
  await Promise.all(
    Array.from({ length: connections }, async (_, w) => {
      const start = performance.now();
      let n = 0;
      while (performance.now() < end) {
        const due = start + (n / perWorker) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const id = 1 + Math.floor(Math.random() * ROWS);
        await pool.query('UPDATE public.orders SET total_amount_minor = $2::bigint, currency = $3 WHERE id = $1', [
          id,
          w * 10_000_000 + n,
          'USD',
        ]);
        n++;
        written++;
      }
    }),
  );
  return written;
}

/** pg_recvlogical from `slot` until it has passed `upTo`; returns the seconds it took. */
async function recvlogicalSeconds(url: string, slot: string, publication: string, upTo: string): Promise<number> {
  const u = new URL(url);
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      'pg_recvlogical',
      [
        '-h',
        u.hostname,
        '-p',
        u.port,
        '-U',
        decodeURIComponent(u.username),
        '-d',
        u.pathname.slice(1),
        '--slot',
        slot,
        '--start',
        '-f',
        '/dev/null',
        '-o',
        'proto_version=1',
        '-o',
        `publication_names=${publication}`,
        '-E',
        upTo,
        '--no-loop',
      ],
      { env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_recvlogical exited ${code}: ${err}`))));
  });
  return (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  const db = await createTestDatabase('source', 'benchrev');
  const pool = new pg.Pool({ connectionString: db.url, max: 12 });
  const redis = createRedis(STACK.PARITY_REDIS_URL);
  const syncs: ReverseSync[] = [];
  try {
    await pool.query(
      `CREATE TABLE public.orders (id int PRIMARY KEY, total_amount int, currency text, total_amount_minor bigint);
       INSERT INTO public.orders SELECT g, g, 'USD', g FROM generate_series(1, ${ROWS}) g; ANALYZE public.orders`,
    );
    const name = uniqueName('bench-rev').replace(/_/g, '-');
    const slot = name.replace(/-/g, '_');
    const loaded = writeSpec({
      name,
      source: { database: db.url, table: 'orders' },
      target: { kind: 'same-table' },
      key: ['id'],
      mapping: { total_amount_minor: 'total_amount::bigint', currency: "'USD'::text" },
      reverse: { mapping: { total_amount: "CASE WHEN currency = 'USD' THEN total_amount_minor::integer END" } },
      cdc: { slot, publication: slot, topicPrefix: name },
    });
    await phasesAtRamp(pool, loaded);
    await cutover({ spec: loaded.spec, db: pool, control: pool, redis, logger: silentLogger() }, { actor: 'bench', reason: 'bench' });

    let lags: number[] = [];
    let applied = 0;
    let lastAppliedAt = 0;
    const start = async (): Promise<{ sync: ReverseSync; done: Promise<void>; client: pg.Client }> => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const sync = new ReverseSync({
        spec: loaded.spec,
        databaseUrl: db.url,
        pool,
        control: pool,
        applyClient: client,
        logger: silentLogger(),
        registry: createMetricsRegistry({ defaultMetrics: false }),
        ...(STREAM_CHECK ? { streamCheck: reconcilerStreamCheckReverse(loaded, { logger: silentLogger() }) } : {}),
        onApplied: (txs, at) => {
          for (const tx of txs) {
            if (tx.keys === 0) continue;
            lags.push(at - tx.commitTimeMs);
            applied++;
          }
          lastAppliedAt = performance.now();
        },
      });
      syncs.push(sync);
      const done = sync.run();
      while (sync.status.state === 'starting') await sleep(20);
      return { sync, done, client };
    };

    // 1. Steady state.
    let run = await start();
    log(`steady: ${RATE} writes/s for ${SECONDS} s`);
    const steadyWritten = await writeFor(pool, RATE, SECONDS);
    const drainStart = performance.now();
    while (applied < steadyWritten && performance.now() - drainStart < 120_000) await sleep(50);
    const steadyLags = [...lags].sort((a, b) => a - b);
    const steadyRate = steadyWritten / SECONDS;
    log(
      `steady: ${steadyWritten} written (${steadyRate.toFixed(0)}/s), ${steadyLags.length} applied; lag p50 ${percentile(steadyLags, 50)} ms, p99 ${percentile(steadyLags, 99)} ms`,
    );
    await run.sync.stop();
    await run.done;
    await run.client.end();

    // 2. Catch-up after a pause, with a second slot for the forward decode ceiling over the same WAL.
    const ceilingSlot = `${slot}_ceiling`;
    await pool.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [ceilingSlot]);
    log(`pause: reverse sync stopped, ${RATE} writes/s for ${PAUSE} s`);
    const pausedWritten = await writeFor(pool, RATE, PAUSE);
    const { rows } = await pool.query('SELECT pg_current_wal_lsn()::text AS lsn');
    lags = [];
    applied = 0;
    const restart = performance.now();
    run = await start();
    while (applied < pausedWritten) {
      if (performance.now() - restart > 600_000) throw new Error(`catch-up did not finish: ${applied} of ${pausedWritten}`);
      await sleep(50);
    }
    const catchupSeconds = (lastAppliedAt - restart) / 1000;
    const catchupRate = applied / catchupSeconds;
    log(`catch-up: ${applied} changes in ${catchupSeconds.toFixed(2)} s (${catchupRate.toFixed(0)}/s)`);
    await run.sync.stop();
    await run.done;
    await run.client.end();
    const ceilingSeconds = await recvlogicalSeconds(db.url, ceilingSlot, reversePublication(loaded.spec), rows[0].lsn);
    const ceilingRate = pausedWritten / ceilingSeconds;
    log(`forward decode ceiling (pg_recvlogical, same WAL): ${ceilingRate.toFixed(0)} changes/s`);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'reverse',
        stream_check: STREAM_CHECK,
        steady: {
          target_rate: RATE,
          achieved_rate: Math.round(steadyRate),
          seconds: SECONDS,
          applied: steadyLags.length,
          lag_p50_ms: Math.round(percentile(steadyLags, 50)),
          lag_p99_ms: Math.round(percentile(steadyLags, 99)),
          lag_p99_target_ms: 1000,
        },
        catchup: {
          pause_seconds: PAUSE,
          changes: applied,
          seconds: Number(catchupSeconds.toFixed(3)),
          changes_per_s: Math.round(catchupRate),
          target_changes_per_s: 20_000,
        },
        forward: {
          decode_ceiling_changes_per_s: Math.round(ceilingRate),
          note: 'pg_recvlogical over the same WAL; bench:cdc measures the forward path through Kafka',
        },
      })}\n`,
    );
  } finally {
    for (const s of syncs) await s.stop().catch(() => undefined);
    redis.disconnect();
    await pool.end();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
