/**
 * `npm run bench:verify [-- --full] [--rows N] [--levels L1,L2,...] [--jobs N] [--keep] [--no-reladiff]`:
 * batch verification across the two local PostgreSQL clusters (source and target), 1M rows (10M with
 * --full, any count with --rows), at the drift levels `--levels` (percent of rows differing; default
 * 0,0.01,1,50,100).
 *
 * Per level: `seconds` (verification inside a fresh process, timed from its start of work to the
 * recorded result, rechecks included), `wall_seconds` (the same process from spawn to exit, start-up
 * included), `rows_per_s`, `found` (confirmed drift rows), `injected`, `peak_rss_mb` (that process's
 * peak resident set), and beside it, in the same run on the same tables, `reladiff_seconds` (reladiff
 * 0.6 from PyPI, wall time) and `reladiff_found`. reladiff is installed when missing into
 * `<cache dir>/reladiff-venv` (the stack's cache directory, `PARITY_CACHE_DIR`, default
 * ~/.cache/parity) with `python3 -m venv` and pip; a failed install fails the bench (`--no-reladiff`
 * skips the peer on purpose). `ceiling_seconds` is the raw cost measured in the same run: count(*)
 * plus an md5 hash aggregate over the same columns, both sides at once (best of two); level 0 also
 * reports `vs_ceiling` (seconds / ceiling). When the compiled CLI exists (`npm run build`), each level
 * also runs `parity verify --json` itself: `cli_wall_seconds` (spawn to exit, Node start-up included,
 * what a user waits) and `cli_found`; `wall_vs_reladiff` compares that (else `wall_seconds`) with
 * reladiff's wall time. `load_average` (1 min, at start and end) says how busy the machine was.
 *
 * Live-write handling: the spec's CDC slot exists on the source and is kept caught up (advanced to
 * the current WAL position every 100 ms, as a running `parity cdc run` keeps it), so differing rows
 * are re-checked as soon as the stream has passed them, which is how verification runs next to a
 * live CDC. The 0.01% level also reports `seconds_without_slot`: the same run against a spec whose
 * slot does not exist, where each differing row waits the fixed no-slot recheck delay (1 s).
 *
 * Progress goes to stderr; the last stdout line is one JSON object.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { stringify } from 'yaml';
import { withDatabase } from '../../services/core/clients.js';
import { silentLogger } from '../../services/core/log.js';
import { createMetricsRegistry } from '../../services/core/metrics.js';
import { loadSpec } from '../../services/core/spec.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify } from '../../services/reconciler/verify.js';
import { stackConfig } from '../../services/stack/config.js';
import { KAFKA_BROKERS, STACK } from '../support/stack.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RELADIFF_VENV = join(stackConfig().cacheDir, 'reladiff-venv');
const RELADIFF = join(RELADIFF_VENV, 'bin', 'reladiff');
const CLI = join(ROOT, 'services', 'cli', 'bin', 'parity.js');
const CLI_DIST = join(ROOT, 'dist', 'services', 'cli', 'main.js');
const COLUMNS = ['customer_id', 'amount', 'status', 'created_at', 'note'];

function log(message: string): void {
  process.stderr.write(`[bench:verify] ${message}\n`);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function sql(url: string, ...statements: string[]): Promise<pg.QueryResult[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: pg.QueryResult[] = [];
    for (const s of statements) out.push(await c.query(s));
    return out;
  } finally {
    await c.end();
  }
}

/** Worker mode: one verification in this process, its own timing and peak RSS on stdout. */
async function worker(specFile: string, jobs: number, recheckWaitMs: number | null): Promise<void> {
  const loaded = loadSpec(specFile);
  const started = performance.now();
  const outcome = await runVerify(
    loaded,
    { ...DEFAULT_VERIFY_OPTIONS, jobs, newRun: true, recheckWaitMs },
    { logger: silentLogger(), registry: createMetricsRegistry({ defaultMetrics: false }) },
  );
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(
    `${JSON.stringify({ seconds, found: outcome.result.confirmedDrift, inFlight: outcome.result.inFlight, rows: outcome.result.sourceRows, peak_rss_mb: process.resourceUsage().maxRSS / 1024 })}\n`,
  );
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000 }));
  });
}

async function ceiling(sourceUrl: string, targetUrl: string): Promise<number> {
  const text = `concat_ws(',', ${['id', ...COLUMNS].map((c) => `quote_nullable(${c}::text)`).join(', ')})`;
  const q = `SELECT count(*) AS n, sum(('x' || substr(md5(${text}), 1, 16))::bit(64)::bigint) AS s FROM bench`;
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    await Promise.all([sql(sourceUrl, q), sql(targetUrl, q)]);
    best = Math.min(best, (performance.now() - started) / 1000);
  }
  return best;
}

/** Installs reladiff into the stack's cache directory when it is not there yet (a failure stops the bench). */
async function ensureReladiff(): Promise<void> {
  if (existsSync(RELADIFF)) return;
  log(`installing reladiff 0.6.0 into ${RELADIFF_VENV}`);
  const venv = await run('python3', ['-m', 'venv', RELADIFF_VENV]);
  if (venv.code !== 0)
    throw new Error(`python3 -m venv failed (exit ${venv.code}): ${venv.stderr.slice(-1000)}; install python3-venv or pass --no-reladiff`);
  const pip = await run(join(RELADIFF_VENV, 'bin', 'pip'), ['install', '--quiet', 'reladiff==0.6.0', 'psycopg2-binary']);
  if (pip.code !== 0 || !existsSync(RELADIFF)) {
    rmSync(RELADIFF_VENV, { recursive: true, force: true });
    throw new Error(
      `pip install reladiff failed (exit ${pip.code}): ${pip.stderr.slice(-1000)}; pass --no-reladiff to run without the peer`,
    );
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--worker')
    return worker(process.argv[3]!, Number(process.argv[4]), process.argv[5] === 'default' ? null : Number(process.argv[5]));
  const full = process.argv.includes('--full');
  const rows = Number(arg('--rows') ?? (full ? 10_000_000 : 1_000_000));
  const jobs = Number(arg('--jobs') ?? 2);
  const recheckWaitMs = arg('--recheck-wait-ms') ?? 'default';
  const keep = process.argv.includes('--keep');
  const levelsArg = (arg('--levels') ?? '0,0.01,1,50,100').split(',').map(Number);
  if (levelsArg.some((p) => !Number.isFinite(p) || p < 0 || p > 100))
    throw new Error(`--levels takes percentages between 0 and 100, e.g. 0,1,50,100`);
  const useReladiff = !process.argv.includes('--no-reladiff');
  if (useReladiff) await ensureReladiff();
  const sourceUrl = withDatabase(STACK.PARITY_SOURCE_URL, 'parity_bench_verify_src');
  const targetUrl = withDatabase(STACK.PARITY_TARGET_URL, 'parity_bench_verify_tgt');
  const dir = mkdtempSync(join(tmpdir(), 'parity-bench-verify-'));

  log(`${rows} rows, jobs ${jobs}, levels ${levelsArg.join(', ')}%, reladiff ${useReladiff ? 'on' : 'off (--no-reladiff)'}`);
  const ddl = `CREATE TABLE bench (id bigint PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL, note text)`;
  const fill = `INSERT INTO bench SELECT g, (g::bigint * 7919) % 100000, ((g::bigint * 104729) % 1000000) / 100.0, (ARRAY['new','paid','shipped','cancelled'])[1 + g % 4],
                timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', 'note ' || g FROM generate_series(1, ${rows}) g`;
  const loadAtStart = loadavg()[0]!;
  const started = performance.now();
  await Promise.all(
    [
      [STACK.PARITY_SOURCE_URL, 'parity_bench_verify_src', sourceUrl],
      [STACK.PARITY_TARGET_URL, 'parity_bench_verify_tgt', targetUrl],
    ].map(async ([admin, db, url]) => {
      // A slot left by an interrupted run would keep the database from being dropped.
      await sql(admin!, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${db}'`);
      await sql(admin!, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`, `CREATE DATABASE ${db}`);
      await sql(url!, ddl, fill, 'VACUUM ANALYZE bench');
    }),
  );
  log(`loaded both sides in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const writeSpec = (file: string, slot: string): string => {
    writeFileSync(
      join(dir, file),
      stringify({
        apiVersion: 'parity/v1',
        name: 'bench-verify',
        source: { database: sourceUrl, table: 'bench' },
        target: { kind: 'other-database', database: targetUrl, table: 'bench' },
        key: ['id'],
        mapping: Object.fromEntries(COLUMNS.map((c) => [c, c])),
        infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
        cdc: { slot, publication: 'bench_verify', topicPrefix: 'benchverify' },
        reconcile: { segmentRows: 100_000, bisectionThreshold: 2000, jobs },
      }),
    );
    return join(dir, file);
  };
  const specFile = writeSpec('bench.yaml', 'bench_verify');
  const noSlotSpecFile = writeSpec('bench-no-slot.yaml', 'bench_verify_absent');

  // A caught-up CDC stream, as far as verification can tell: the slot follows the WAL.
  await sql(sourceUrl, `SELECT pg_create_logical_replication_slot('bench_verify', 'test_decoding')`);
  const advancer = new pg.Client({ connectionString: sourceUrl });
  await advancer.connect();
  let advancing = true;
  const advance = (async () => {
    while (advancing) {
      await advancer.query(`SELECT pg_replication_slot_advance('bench_verify', pg_current_wal_lsn())`).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  const ceilingSeconds = await ceiling(sourceUrl, targetUrl);
  log(`ceiling (count + md5 aggregate, both sides at once): ${ceilingSeconds.toFixed(2)} s`);

  const levels = [];
  let drifted = false;
  for (const pct of levelsArg) {
    // Evenly spread ids: every step-th id (the middle one of each step), `injected` of them.
    const step = pct > 0 ? Math.max(1, Math.floor(100 / pct)) : 0;
    const injected = step > 0 ? Math.floor(rows / step) : 0;
    // Each level starts from equal tables: undo the previous level's drift, then inject this one's.
    if (drifted)
      await sql(targetUrl, `UPDATE bench SET note = 'note ' || id WHERE note IS DISTINCT FROM 'note ' || id`, 'VACUUM ANALYZE bench');
    if (injected > 0)
      await sql(
        targetUrl,
        `UPDATE bench SET note = 'drift ' || id WHERE id % ${step} = ${(step - Math.floor(step / 2)) % step} AND id <= ${injected * step}`,
        'VACUUM ANALYZE bench',
      );
    drifted = injected > 0;

    const verifyOnce = async (file: string) => {
      const w = await run(process.execPath, [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--worker',
        file,
        String(jobs),
        recheckWaitMs,
      ]);
      if (w.code !== 0) throw new Error(`verification worker failed: ${w.stderr.slice(-2000)}`);
      return {
        w,
        r: JSON.parse(w.stdout.trim().split('\n').at(-1)!) as {
          seconds: number;
          found: number;
          inFlight: number;
          rows: number;
          peak_rss_mb: number;
        },
      };
    };
    const { w, r } = await verifyOnce(specFile);
    const cli = existsSync(CLI_DIST) ? await run(process.execPath, [CLI, 'verify', '--spec', specFile, '--new-run', '--json']) : null;
    let cliFound: number | null = null;
    if (cli) {
      if (cli.code !== 0 && cli.code !== 1) throw new Error(`parity verify failed (exit ${cli.code}): ${cli.stderr.slice(-2000)}`);
      cliFound = (JSON.parse(cli.stdout) as { confirmedDrift: number }).confirmedDrift;
    }
    const level: Record<string, unknown> = {
      drift_pct: pct,
      seconds: Number(r.seconds.toFixed(2)),
      wall_seconds: Number(w.seconds.toFixed(2)),
      ...(cli ? { cli_wall_seconds: Number(cli.seconds.toFixed(2)), cli_found: cliFound } : {}),
      rows_per_s: Math.round(rows / r.seconds),
      found: r.found,
      injected,
      in_flight: r.inFlight,
      peak_rss_mb: Math.round(r.peak_rss_mb),
    };
    log(
      `drift ${pct}%: ${r.seconds.toFixed(2)} s (wall ${w.seconds.toFixed(2)} s${cli ? `, CLI wall ${cli.seconds.toFixed(2)} s, CLI found ${cliFound}` : ''}), found ${r.found}/${injected}, peak RSS ${Math.round(r.peak_rss_mb)} MB`,
    );
    if (pct === 0.01) {
      const noSlot = await verifyOnce(noSlotSpecFile);
      level.seconds_without_slot = Number(noSlot.r.seconds.toFixed(2));
      level.found_without_slot = noSlot.r.found;
      log(`  without a CDC slot (fixed recheck delay): ${noSlot.r.seconds.toFixed(2)} s, found ${noSlot.r.found}`);
    }
    if (useReladiff) {
      const rd = await run(RELADIFF, [
        sourceUrl.replace(/^postgres:/, 'postgresql:'),
        'bench',
        targetUrl.replace(/^postgres:/, 'postgresql:'),
        'bench',
        '-k',
        'id',
        ...COLUMNS.flatMap((c) => ['-c', c]),
        '-s',
        '--json',
        '-j',
        String(jobs),
      ]);
      let reladiffFound: number | null = null;
      try {
        const stats = JSON.parse(rd.stdout.slice(rd.stdout.indexOf('{'))) as {
          rows_A?: number;
          total?: number;
          updated?: number;
          exclusive_A?: number;
          exclusive_B?: number;
        };
        reladiffFound = (stats.updated ?? 0) + (stats.exclusive_A ?? 0) + (stats.exclusive_B ?? 0);
      } catch {
        log(`reladiff output not understood (exit ${rd.code}): ${rd.stdout.slice(-300)} ${rd.stderr.slice(-500)}`);
      }
      level.reladiff_seconds = rd.code === 0 || rd.code === 1 ? Number(rd.seconds.toFixed(2)) : null;
      level.reladiff_found = reladiffFound;
      // Both timed from process spawn to exit: start-up counts for both tools.
      if (typeof level.reladiff_seconds === 'number')
        level.wall_vs_reladiff = Number(((cli?.seconds ?? w.seconds) / level.reladiff_seconds).toFixed(2));
      log(`  reladiff: ${rd.seconds.toFixed(2)} s, found ${reladiffFound}`);
    }
    if (pct === 0) level.vs_ceiling = Number((r.seconds / ceilingSeconds).toFixed(2));
    levels.push(level);
  }

  advancing = false;
  await advance;
  await advancer.end();
  await sql(sourceUrl, `SELECT pg_drop_replication_slot('bench_verify')`);
  if (!keep) {
    await sql(STACK.PARITY_SOURCE_URL, `DROP DATABASE IF EXISTS parity_bench_verify_src WITH (FORCE)`);
    await sql(STACK.PARITY_TARGET_URL, `DROP DATABASE IF EXISTS parity_bench_verify_tgt WITH (FORCE)`);
  }
  rmSync(dir, { recursive: true, force: true });
  const load = [Number(loadAtStart.toFixed(2)), Number(loadavg()[0]!.toFixed(2))];
  process.stdout.write(
    `${JSON.stringify({ rows, jobs, ceiling_seconds: Number(ceilingSeconds.toFixed(2)), load_average: load, levels })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench:verify] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
