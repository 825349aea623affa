/**
 * Resumability and shared runs, with real processes: `parity verify` is SIGKILLed mid-run, then two
 * processes resume the same run together (claiming segments with FOR UPDATE SKIP LOCKED). At most
 * one segment is verified twice (the one the killed process held), and the resumed run's final
 * report equals the report of an uninterrupted run over the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpec } from '../../../services/core/spec.js';
import { sleep } from '../../../services/core/retry.js';
import { buildReport, comparableReport } from '../../../services/reconciler/report.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, type TestDatabase } from '../../support/stack.js';
import { exec, query } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let src: TestDatabase;
let tgt: TestDatabase;
let dir: string;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_res_s'), createTestDatabase('target', 'rc_res_t')]);
  dir = mkdtempSync(join(tmpdir(), 'parity-resume-'));
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(
  specFile: string,
  extra: string[],
): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'services/cli/bin/parity.js'), 'verify', '--spec', specFile, '--recheck-wait-ms', '100', ...extra],
    {
      cwd: ROOT,
      env: { ...process.env, PARITY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

describe('resume after SIGKILL, shared by several processes', () => {
  it('redoes at most the killed segment and ends with the same report as an uninterrupted run', async () => {
    await exec(
      src.url,
      `CREATE TABLE items (id int PRIMARY KEY, qty int, sku text)`,
      `INSERT INTO items SELECT g, g % 100, 'sku-' || g FROM generate_series(1, 24000) g`,
      `ANALYZE items`,
    );
    await exec(
      tgt.url,
      `CREATE TABLE items (id int PRIMARY KEY, qty int, sku text)`,
      `INSERT INTO items SELECT g, g % 100, 'sku-' || g FROM generate_series(1, 24000) g`,
      `UPDATE items SET qty = -1 WHERE id IN (17, 9000, 23999)`,
      `DELETE FROM items WHERE id = 12000`,
      `ANALYZE items`,
    );
    const specFile = join(dir, 'items.yaml');
    writeFileSync(
      specFile,
      stringify({
        apiVersion: 'parity/v1',
        name: 'resume-items',
        source: { database: src.url, table: 'items' },
        target: { kind: 'other-database', database: tgt.url, table: 'items' },
        key: ['id'],
        mapping: { qty: 'qty', sku: 'sku' },
        infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
        cdc: { slot: 'resume_items', publication: 'resume_items', topicPrefix: 'resume' },
        reconcile: { segmentRows: 1000, bisectionThreshold: 50 },
      }),
    );

    // 1. Start, let a few segments finish, SIGKILL.
    const first = run(specFile, ['--jobs', '1', '--segment-pause-ms', '200']);
    const control = new pg.Client({ connectionString: tgt.url });
    await control.connect();
    try {
      let done = 0;
      for (let i = 0; i < 600 && done < 4; i++) {
        await sleep(100);
        const r = await control
          .query(`SELECT count(*) FILTER (WHERE status = 'done')::int AS n FROM parity.verify_segments`)
          .catch(() => ({ rows: [{ n: 0 }] }));
        done = r.rows[0].n;
      }
      expect(done).toBeGreaterThanOrEqual(4);
      first.child.kill('SIGKILL');
      await first.done;
      const [{ id: runId, status, segments: total }] = (await control.query(`SELECT id, status, segments FROM parity.verify_runs`)).rows;
      expect(status).toBe('running');
      expect(total).toBeGreaterThan(20);
      const before = (
        await control.query(`SELECT count(*)::int AS n FROM parity.verify_segments WHERE run_id = $1 AND status = 'done'`, [runId])
      ).rows[0].n as number;
      expect(before).toBeLessThan(total);

      // 2. Two processes resume the same run together.
      // A short pause per segment keeps both in the run long enough to share it despite start-up skew.
      const a = run(specFile, ['--jobs', '1', '--segment-pause-ms', '150']);
      const b = run(specFile, ['--jobs', '1', '--segment-pause-ms', '150']);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      expect([ra.code, rb.code]).toEqual([1, 1]);
      for (const r of [ra, rb]) expect(r.stdout).toContain(`run ${runId} (joined an unfinished run)`);
      expect(ra.stdout).toContain('confirmed drift: 4 rows');

      const twice = await query<{ seg_no: number }>(
        tgt.url,
        `SELECT seg_no FROM parity.verify_attempts WHERE run_id = $1 GROUP BY seg_no HAVING count(*) > 1`,
        [runId],
      );
      expect(twice.length).toBeLessThanOrEqual(1);
      const workers = await query<{ n: number }>(
        tgt.url,
        `SELECT count(DISTINCT split_part(worker, '/', 1))::int AS n FROM parity.verify_segments WHERE run_id = $1`,
        [runId],
      );
      expect(workers[0]!.n).toBeGreaterThanOrEqual(2);
      const attempts = await query<{ n: number }>(tgt.url, `SELECT count(*)::int AS n FROM parity.verify_attempts WHERE run_id = $1`, [
        runId,
      ]);
      expect(attempts[0]!.n).toBeLessThanOrEqual(total + 1);

      // 3. An uninterrupted run over the same data reports the same.
      const whole = run(specFile, ['--jobs', '2']);
      const rw = await whole.done;
      expect(rw.code).toBe(1);
      const runs = (await control.query(`SELECT id FROM parity.verify_runs WHERE status = 'done' ORDER BY id`)).rows.map((r) =>
        Number(r.id),
      );
      expect(runs).toHaveLength(2);
      const loaded = loadSpec(specFile);
      const resumed = await buildReport(control, loaded, runs[0]);
      const uninterrupted = await buildReport(control, loaded, runs[1]);
      expect(resumed.confirmedDrift).toBe(4);
      expect(resumed.segments).toHaveLength(total);
      expect(comparableReport(resumed)).toEqual(comparableReport(uninterrupted));
    } finally {
      await control.end();
    }
  });
});
