/**
 * Crash safety: `npx parity backfill run` is SIGKILLed (the whole process group) at random moments,
 * six times, then run to completion. The final state must be exact, the checkpoint log must tile
 * every range with no gap, and at most one batch may have been redone (the checkpoint commits with
 * its batch, so the expected number is zero).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { auditLog, cli, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

const ROWS = 300_000;

describe('backfill survives SIGKILL at random moments', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfkill');
    await createOrders(db.url, { rows: ROWS });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  async function rowsDone(): Promise<number> {
    const { rows } = await client
      .query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity.backfill_ranges`)
      .catch(() => ({ rows: [{ n: 0 }] }));
    return rows[0].n;
  }

  it('resumes after 6 kills with exact results and at most one batch redone', async () => {
    // Small fixed batches so the run is long enough to be killed mid-flight several times; batches
    // commit asynchronously (the default, stated here because it is what this test proves safe).
    const { file } = makeSpec({
      name: 'kill-resume',
      sourceUrl: db.url,
      backfill:
        '  batchSize: 250\n  minBatchSize: 250\n  maxBatchSize: 250\n  throttle:\n    pace: { asynchronousCommit: true, databaseCpus: 64 }',
    });
    const kills: { atRows: number; delayMs: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const before = await rowsDone();
      const run = cli(['backfill', 'run', '--spec', file, '--workers', '2', '--no-progress']);
      let delayMs: number;
      if (i === 0) {
        // Anywhere from start-up through planning to the first batches.
        delayMs = Math.floor(Math.random() * 2500);
        await new Promise((r) => setTimeout(r, delayMs));
      } else {
        // After this process has committed something, plus a random moment inside a batch.
        let exited = false;
        void run.exit.then(() => (exited = true));
        await waitFor(
          'progress by the child',
          async () => {
            if (exited) throw new Error(`the child exited before any progress: ${run.stderr().slice(-2000)}`);
            return (await rowsDone()) > before;
          },
          90_000,
        ).catch(async (err: Error) => {
          const { rows } = await client.query(
            `SELECT pid, application_name, state, wait_event_type, wait_event, left(query, 80) AS query FROM pg_stat_activity WHERE datname = current_database()`,
          );
          run.kill();
          throw new Error(`${err.message}\nchild stderr:\n${run.stderr().slice(-3000)}\nsessions: ${JSON.stringify(rows)}`);
        });
        delayMs = Math.floor(Math.random() * 400);
        await new Promise((r) => setTimeout(r, delayMs));
      }
      run.kill();
      const exit = await run.exit;
      expect(exit.signal ?? exit.code, run.stderr()).not.toBe(0);
      kills.push({ atRows: await rowsDone(), delayMs });
    }
    expect(kills.length).toBeGreaterThanOrEqual(5);
    expect(await rowsDone(), 'the kills must interrupt an unfinished run').toBeLessThan(ROWS);

    const final = cli(['backfill', 'run', '--spec', file, '--workers', '2', '--no-progress']);
    const exit = await final.exit;
    expect(exit.code, final.stderr()).toBe(0);
    expect(final.stdout()).toContain('complete');
    expect(final.stderr()).toMatch(/"asynchronousCommit":true/);

    expect(await mismatches(client)).toBe(0);
    const { rows: runs } = await client.query(`SELECT run_id, state, rows_planned FROM parity.backfill_runs`);
    expect(runs).toHaveLength(1);
    expect(runs[0].state).toBe('completed');
    const audit = await auditLog(client, Number(runs[0].run_id));
    expect(audit.gaps).toBe(0);
    expect(audit.redone).toBeLessThanOrEqual(1);
    expect(audit.rows).toBe(ROWS);
    // Ranges that a killed worker held were taken over by a later process.
    const { rows: claims } = await client.query(`SELECT count(*) FILTER (WHERE claims > 1)::int AS retaken FROM parity.backfill_ranges`);
    expect(claims[0].retaken).toBeGreaterThan(0);
    const { rows: ev } = await client.query(
      `SELECT passed, value FROM parity.evidence WHERE migration = 'kill-resume' AND kind = 'backfill'`,
    );
    expect(ev).toHaveLength(1);
    expect(ev[0].passed).toBe(true);
    expect(ev[0].value).toMatchObject({ complete: true, rows: ROWS });
    console.log(
      `kill-resume: kills ${JSON.stringify(kills)}; batches ${audit.batches}, redone ${audit.redone}, retaken ranges ${claims[0].retaken}`,
    );
  });
});
