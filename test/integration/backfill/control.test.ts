/**
 * Runtime control of a running backfill, through `parity backfill ctl` (child processes) and the HTTP
 * endpoint on 127.0.0.1: pause (state and reason visible, nothing commits), set batch-size (the next
 * batches use it), set max-lag, resume, abort (PARITY_ABORTED, progress kept), and resume after abort.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, cli, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

const ROWS = 150_000;

interface Status {
  state: string;
  throttle: { reason: string; detail: string }[];
  batchSize: number;
  batchSizePinned: boolean;
  maxLagSeconds: number;
}

describe('backfill runtime control', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfctl');
    await createOrders(db.url, { rows: ROWS });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  const rowsDone = async (): Promise<number> =>
    (await client.query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity.backfill_ranges`).catch(() => ({ rows: [{ n: 0 }] })))
      .rows[0].n;
  const batchCount = async (): Promise<number> => (await client.query(`SELECT count(*)::int AS n FROM parity.backfill_batches`)).rows[0].n;

  it('pause, set, resume and abort through ctl and HTTP; a resumed run completes exactly', async () => {
    const { spec, file } = makeSpec({
      name: 'ctl',
      sourceUrl: db.url,
      backfill: '  batchSize: 300\n  minBatchSize: 100\n  maxBatchSize: 300\n  throttle:\n    pace: { databaseCpus: 64 }',
    }); // the cluster's other sessions are not this test's subject
    const token = 'test-control-token-0123456789';
    const running = runBackfill({ spec, workers: 1, pollMs: 100, controlPort: 0, controlToken: token });
    running.catch(() => undefined);
    await waitFor('progress', async () => (await rowsDone()) > 1_000);
    const url = await waitFor(
      'control URL',
      async () =>
        (await client.query(`SELECT control_url FROM parity.backfill_processes WHERE control_url IS NOT NULL`)).rows[0]?.control_url as
          | string
          | undefined,
    );
    const status = async (): Promise<Status> => (await (await fetch(`${url}/status`)).json()) as Status;

    // ctl pause: acknowledged by the live process, visible as reason "operator", nothing commits.
    const pause = cli(['backfill', 'ctl', '--spec', file, 'pause']);
    expect((await pause.exit).code, pause.stderr()).toBe(0);
    expect(pause.stdout()).toMatch(/^pause: recorded for run \d+; applied by 1 of 1 live process/);
    const paused = await status();
    expect(paused.state).toBe('throttled');
    expect(paused.throttle).toEqual([{ reason: 'operator', detail: expect.stringMatching(/^paused by .+ via ctl$/) }]);
    await new Promise((r) => setTimeout(r, 300));
    const frozen = await batchCount();
    const shown = cli(['backfill', 'status', '--spec', file]);
    expect((await shown.exit).code).toBe(0);
    expect(shown.stdout()).toMatch(/run \d+ running \(PAUSED\)/);
    expect(shown.stdout()).toMatch(/process .* throttled \(operator: paused by .* via ctl\)/);
    expect(shown.stdout()).toMatch(/last command pause by .* via ctl/);
    expect(await batchCount()).toBe(frozen);

    // set batch-size while paused, then resume: the next batches use the pinned size.
    const set = cli(['backfill', 'ctl', '--spec', file, 'set', 'batch-size=150']);
    expect((await set.exit).code, set.stderr()).toBe(0);
    expect((await status()).batchSize).toBe(150);
    const resume = cli(['backfill', 'ctl', '--spec', file, 'resume']);
    expect((await resume.exit).code, resume.stderr()).toBe(0);
    await waitFor('batches after resume', async () => (await batchCount()) >= frozen + 5);
    // A batch that ends its range walks only what is left of it (paced batches are sized by WAL, so
    // the pause can fall anywhere in a range); every other batch has the pinned size.
    const { rows: sizes } = await client.query(
      `SELECT b.rows FROM parity.backfill_batches b JOIN parity.backfill_ranges r USING (run_id, range_no)
        WHERE b.committed_at > (SELECT last_command_at FROM parity.backfill_runs) AND b.hi <> r.hi ORDER BY b.committed_at LIMIT 4`,
    );
    expect(sizes.map((r) => Number(r.rows))).toEqual([150, 150, 150, 150]);

    // The HTTP endpoint: the same commands, same effect, bad commands rejected with 400.
    const post = (command: string) =>
      fetch(`${url}/control`, {
        method: 'POST',
        body: JSON.stringify({ command }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      });
    const httpPause = await post('pause');
    expect(httpPause.status).toBe(200);
    expect((await status()).throttle[0]).toMatchObject({ reason: 'operator', detail: expect.stringMatching(/^paused by http /) });
    const bad = await post('set batch-size=lots');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/batch-size must be an integer/);
    expect((await post('set max-lag=0.5')).status).toBe(200);
    expect((await status()).maxLagSeconds).toBe(0.5);
    expect((await post('set batch-size=auto')).status).toBe(200);
    expect((await status()).batchSizePinned).toBe(false);
    expect((await post('resume')).status).toBe(200);
    expect((await status()).state).toBe('running');

    // ctl abort (issued while paused, so the run cannot finish first on a fast machine): the run
    // stops with PARITY_ABORTED; its progress is kept.
    await waitFor('more progress', async () => (await batchCount()) >= frozen + 10);
    expect((await post('pause')).status).toBe(200);
    const abort = cli(['backfill', 'ctl', '--spec', file, 'abort']);
    expect((await abort.exit).code, abort.stderr()).toBe(0);
    const err = await running.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PARITY_ABORTED' });
    expect((err as Error).message).toMatch(/was aborted by .* via ctl/);
    const kept = await rowsDone();
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(ROWS);
    const { rows: runs } = await client.query(`SELECT state FROM parity.backfill_runs`);
    expect(runs[0].state).toBe('aborted');

    // The next run resumes the aborted one from its checkpoints and finishes it.
    const resumed = await runBackfill({ spec, workers: 2, controlServer: false });
    expect(resumed.how).toBe('resumed');
    expect(resumed.outcome).toBe('completed');
    expect(resumed.processRows).toBe(ROWS - kept);
    expect(await mismatches(client)).toBe(0);
    const audit = await auditLog(client, resumed.runId);
    expect(audit).toMatchObject({ gaps: 0, redone: 0, rows: ROWS });
  });

  it('ctl without a run to control is a clear error', async () => {
    const { file } = makeSpec({ name: 'nothing-running', sourceUrl: db.url });
    const run = cli(['backfill', 'ctl', '--spec', file, 'pause']);
    expect((await run.exit).code).toBe(2);
    expect(run.stderr()).toMatch(/PARITY_BAD_INPUT: no backfill run of "nothing-running" to control/);
    const bad = cli(['backfill', 'ctl', '--spec', file, 'set', 'speed=11']);
    expect((await bad.exit).code).toBe(2);
    expect(bad.stderr()).toMatch(/unknown setting "speed" \(settable: batch-size, max-lag, wal-rate, workers\)/);
  });
});
