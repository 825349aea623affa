/**
 * The reverse stream check and the window's evidence (issue 23), against the real PostgreSQL and
 * Redis, on a shadow-table migration: `parity reverse-sync run` (a child process) checks every key it
 * applied on the old side with the reconciler's stream check (sides swapped). Drift injected on the
 * old side during the window (a trigger that rewrites one key's old row whenever it is written) is
 * found by the stream check as confirmed drift, recorded, counted in the window's evidence, metrics,
 * the status JSON and page, and the report; once the old side matches again the window is clean and
 * its clean-since starts.
 */
import type { Redis } from 'ioredis';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reverseWindowReader } from '../../../services/cli/reverse-window-status.js';
import { createRedis } from '../../../services/core/clients.js';
import { silentLogger } from '../../../services/core/log.js';
import { ensurePrometheus } from '../../../services/stack/prometheus.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { buildReport } from '../../../services/reconciler/report.js';
import { renderHtml, renderMarkdown } from '../../../services/reconciler/report-render.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify } from '../../../services/reconciler/verify.js';
import { cutover } from '../../../services/reverse-sync/cutover.js';
import { reverseOrigin } from '../../../services/reverse-sync/names.js';
import { readStreamCounts } from '../../../services/reverse-sync/window-store.js';
import { type StatusSnapshot, collectStatus } from '../../../services/status/collect.js';
import { renderStatusPage } from '../../../services/status/page.js';
import { STACK, createTestDatabase, type TestDatabase } from '../../support/stack.js';
import {
  freePort,
  ordersSpec,
  ordersTableSql,
  ordersV2TableSql,
  phasesAtRamp,
  reverseCheck,
  type ReverseProcess,
  sleep,
  startReverseSync,
  upsertNew,
  waitForApplied,
  type WrittenSpec,
} from './support.js';

const DRIFTING_KEY = 7;
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
let loaded: WrittenSpec;
let sync: ReverseProcess | null = null;

const counts = () => readStreamCounts(pool, loaded.spec.control.schema, loaded.spec.name);

/** Waits until the stored stream counts satisfy `ok` (the check runs beside the apply, asynchronously). */
async function waitForCounts(ok: (c: NonNullable<Awaited<ReturnType<typeof counts>>>) => boolean, what: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = await counts();
    if (c && ok(c)) return c;
    if (Date.now() > deadline) throw new Error(`stream check: ${what} not reached: ${JSON.stringify(c)}\n${sync?.output().slice(-3000)}`);
    await sleep(200);
  }
}

let statusPort = 0;

/** The reverse sync's /metrics text. */
async function metricsText(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${statusPort}/metrics`)).text();
}

const status = () =>
  collectStatus({ spec: loaded.spec, control: pool, source: pool, redis, reverseWindow: reverseWindowReader(loaded.spec, { old: pool }) });

/** `parity serve`'s /api/status, as a child process serving the spec (the CLI wires the window reader in). */
async function servedStatus(): Promise<Record<string, any>> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [join(ROOT, 'services/cli/bin/parity.js'), 'serve', '--spec', loaded.path, '--port', String(port)],
    {
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!out.includes('status page:')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`parity serve did not start:\n${out}`);
      await sleep(50);
    }
    return (await (await fetch(`http://127.0.0.1:${port}/api/status`)).json()) as Record<string, any>;
  } finally {
    child.kill('SIGTERM');
  }
}

beforeAll(async () => {
  db = await createTestDatabase('source', 'revsc');
  pool = new pg.Pool({ connectionString: db.url, max: 6 });
  redis = createRedis(STACK.PARITY_REDIS_URL);
  await pool.query(`${ordersTableSql(30, 'g')}; ${ordersV2TableSql(30, 'g')}`);
  loaded = ordersSpec('rev-sc', {
    source: { database: db.url, table: 'orders' },
    target: { kind: 'shadow-table', table: 'orders_v2' },
    reconcile: { segmentRows: 400, bisectionThreshold: 25, settleMs: 300, retryWindowMs: 1_000 },
  });
});

afterAll(async () => {
  if (sync && sync.child.exitCode === null) sync.child.kill('SIGKILL');
  await sync?.exited;
  // The replication origin is cluster-wide (the database's drop takes the reverse slot): drop it too.
  await pool
    ?.query('SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1', [reverseOrigin(loaded.spec)])
    .catch(() => undefined);
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
});

describe('reverse stream check and the window evidence', () => {
  it('checks every applied key on the old side: matches while the old side is current', async () => {
    await phasesAtRamp(pool, loaded);
    await cutover({ spec: loaded.spec, db: pool, control: pool, redis, logger: silentLogger() }, { actor: 'test', reason: 'cut over' });
    statusPort = await freePort();
    sync = await startReverseSync(loaded.path, ['--verify-every', '0', '--status-port', String(statusPort)]);
    for (let key = 1; key <= 10; key++) await upsertNew(pool, key, 100 + key);
    await waitForApplied(pool, loaded);
    const c = await waitForCounts((x) => x.checked >= 10 && x.inFlight === 0, '10 keys checked');
    expect(c.matched).toBeGreaterThanOrEqual(10);
    expect(c.confirmedDrift).toBe(0);
    const check = await reverseCheck(loaded, { old: pool });
    expect(check.clean).toBe(true);
    expect(check.stream?.confirmedDriftSinceLast).toBe(0);
  }, 90_000);

  it('drift injected on the old side during the window is found by the stream check and shows in the evidence, metrics, status and report', async () => {
    // An old-side trigger that rewrites one key's row whenever it is written: the old side drifts from reverse(new).
    await pool.query(`
      CREATE FUNCTION public.drift() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.id = ${DRIFTING_KEY} THEN NEW.total_amount := NEW.total_amount + 1; END IF; RETURN NEW; END $$;
      CREATE TRIGGER drift BEFORE INSERT OR UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION public.drift()`);
    await upsertNew(pool, DRIFTING_KEY, 7_001);
    await upsertNew(pool, 8, 8_001);
    await waitForApplied(pool, loaded);
    const c = await waitForCounts((x) => x.confirmedDrift >= 1 && x.inFlight === 0, 'confirmed drift');
    expect(c.confirmedDrift).toBe(1);
    // Recorded like the forward stream reconciler's mismatches, under the reverse migration name.
    const { rows } = await pool.query(
      `SELECT key, expected, actual, reason FROM ${loaded.spec.control.schema}.reconcile_mismatches WHERE migration = $1`,
      [`${loaded.spec.name}-reverse`],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].key).toEqual([String(DRIFTING_KEY)]);
    expect(rows[0].expected).toEqual({ total_amount: '7001' });
    // (the upsert fires the trigger on its insert and again on its update)
    expect(rows[0].actual).toEqual({ total_amount: '7003' });
    const metrics = await metricsText();
    expect(metrics).toMatch(/parity_reverse_stream_checks_total\{[^}]*result="mismatch"[^}]*\} 1/);
    // Prometheus naming holds for the new families too.
    const lint = spawnSync(ensurePrometheus().promtool, ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);

    // The window check: the stream's drift since the previous check and the segment verification both see it.
    const dirty = await reverseCheck(loaded, { old: pool });
    expect(dirty.clean).toBe(false);
    expect(dirty.cleanSince).toBeNull();
    expect(dirty.stream?.confirmedDriftSinceLast).toBe(1);
    expect(dirty.verification.confirmedDrift).toBe(1);

    // The status JSON as \`parity serve\` serves it at /api/status, and the page.
    const snapshot = await servedStatus();
    const w = snapshot.reverseWindow;
    expect(w.state).toBe('open');
    expect(w.slot.lagBytes).toEqual(expect.any(Number));
    expect(w.stream).toMatchObject({ confirmedDrift: 1, inFlight: 0 });
    expect(w.unrepresentable).toBe(0);
    expect(w.evidence).toMatchObject({
      clean: false,
      cleanSince: null,
      segment: { confirmedDrift: 1, inFlight: 0 },
      stream: { confirmedDriftSinceLast: 1, confirmedDrift: 1 },
    });
    expect(snapshot.verdict.reasons.some((r: string) => r.startsWith('reverse window: reverse window NOT clean'))).toBe(true);
    expect(renderStatusPage(snapshot as StatusSnapshot)).toMatch(/id="reverse-verdict" data-clean="false"/);
  }, 120_000);

  it('once the old side matches again the window is clean, clean-since starts, and the report shows both checks', async () => {
    await pool.query('DROP TRIGGER drift ON public.orders');
    await upsertNew(pool, DRIFTING_KEY, 7_002);
    await waitForApplied(pool, loaded);
    await waitForCounts((x) => x.checked >= 13 && x.inFlight === 0, 'the repaired key checked');
    expect((await counts())?.confirmedDrift).toBe(1);
    const clean = await reverseCheck(loaded, { old: pool });
    expect(clean.stream?.confirmedDriftSinceLast).toBe(0);
    expect(clean.verification.confirmedDrift).toBe(0);
    expect(clean.clean).toBe(true);
    expect(clean.cleanSince).not.toBeNull();
    const snapshot = await status();
    expect(snapshot.reverseWindow?.evidence).toMatchObject({ clean: true, cleanSince: clean.cleanSince });
    expect(snapshot.verdict.reasons.filter((r) => r.startsWith('reverse window'))).toEqual([]);

    // The verification report (of a forward run) carries the window's section.
    await runVerify(
      loaded,
      { ...DEFAULT_VERIFY_OPTIONS, jobs: 1 },
      { logger: silentLogger(), registry: createMetricsRegistry({ defaultMetrics: false }) },
    );
    const report = await buildReport(pool, loaded);
    expect(report.reverseWindow?.latest).toMatchObject({
      clean: true,
      segment: { confirmedDrift: 0 },
      stream: { confirmedDriftSinceLast: 0 },
    });
    expect(report.reverseWindow?.history.map((h) => h.clean)).toEqual([true, false, true]);
    expect(renderMarkdown(report)).toContain('## Reverse window');
    expect(renderMarkdown(report)).toMatch(
      /stream check: confirmed drift since the previous check \/ in all \/ in flight \(keys\) \| 0 \/ 1 \/ 0/,
    );
    expect(renderHtml(report)).toContain('id="reverse-window"');
  }, 120_000);

  it("reverse sync's own window checks (--verify-every) publish the evidence as metrics", async () => {
    sync!.child.kill('SIGTERM');
    expect(await sync!.exited).toBe(0);
    statusPort = await freePort();
    sync = await startReverseSync(loaded.path, ['--verify-every', '1', '--status-port', String(statusPort)]);
    const deadline = Date.now() + 60_000;
    let text = await metricsText();
    while (!/^parity_reverse_window_clean(\{[^}]*\})? 1$/m.test(text)) {
      if (Date.now() > deadline) throw new Error(`no clean window check in the metrics:\n${text}\n${sync.output().slice(-2000)}`);
      await sleep(500);
      text = await metricsText();
    }
    const value = (name: string, labels = ''): number => {
      const line = text.split('\n').find((l) => l.startsWith(name) && l.includes(labels) && !l.startsWith('#'));
      return Number(line?.split(' ').at(-1));
    };
    expect(value('parity_reverse_drift_rows', 'check="segment",state="confirmed"')).toBe(0);
    expect(value('parity_reverse_drift_rows', 'check="stream",state="confirmed"')).toBe(0);
    expect(value('parity_reverse_unrepresentable_rows')).toBe(0);
    // clean since the first clean check of the previous test: its evidence is carried over
    const cleanSince = (await reverseCheck(loaded, { old: pool })).cleanSince!;
    expect(value('parity_reverse_window_clean_since_timestamp_seconds')).toBeCloseTo(Date.parse(cleanSince) / 1000, 0);
    expect(value('parity_reverse_slot_lag_bytes')).toBeGreaterThanOrEqual(0);
  }, 120_000);
});
