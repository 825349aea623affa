/**
 * Fenced by default: without --fence-token the backfill takes its own token from the coordinator's
 * fence table (shared by the processes of one run), prints it, and every batch checks it in its own
 * transaction. A backfill started with an older token is rejected by the database, and a running one
 * stops writing as soon as a newer token is issued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { currentToken, issueToken } from '../../../services/core/fence.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { cli, createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

const BATCHES = '  batchSize: 200\n  minBatchSize: 200\n  maxBatchSize: 200\n';
const FAST = `${BATCHES}  throttle:\n    pace:\n      enabled: false`;
// Paced at a fixed 5 % duty cycle: slow enough that the test acts while the run is still writing.
const SLOW = `${BATCHES}  throttle:\n    pace:\n      mode: duty-cycle\n      dutyCycle: 0.05\n      minDutyCycle: 0.05\n      maxDutyCycle: 0.05\n      latencyGuard: { enabled: false }`;

describe('backfill fenced by default', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bffence');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  const done = async () =>
    (await client.query(`SELECT coalesce(sum(rows_done), 0)::int AS n FROM parity.backfill_ranges`).catch(() => ({ rows: [{ n: 0 }] })))
      .rows[0].n as number;

  it('takes its own token and prints it; an older token is rejected; a newer one stops its batches in the database', async () => {
    await createOrders(db.url, { rows: 30_000 }, 'orders');
    const { spec, file } = makeSpec({ name: 'default-fence', sourceUrl: db.url, backfill: SLOW });
    const before = await issueToken(client, 'parity', 'default-fence', 'an earlier holder');

    // No --fence-token: the run takes a newer token than the earlier holder's, and says so.
    const first = cli(['backfill', 'run', '--spec', file, '--no-progress']);
    await waitFor('the run to write', async () => (await done()) > 2_000);
    const token = await currentToken(client, 'parity', 'default-fence');
    expect(token).toBe(before + 1n);
    expect(first.stderr()).toContain(`backfill fencing token ${token} for "default-fence" (issued to run`);

    // The earlier holder (any process still carrying the older token) is rejected by the database.
    const stale = await runBackfill({ spec, controlServer: false, fenceToken: before }).catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: 'PARITY_STALE_FENCE' });

    // A newer holder (the coordinator's DDL lock, a repair) takes the scope: the running backfill's
    // next batch fails its fence check inside its transaction, and nothing more of it commits.
    await issueToken(client, 'parity', 'default-fence', 'a newer holder');
    const written = 30_000 - (await mismatches(client));
    const exit = await first.exit;
    // (Its exit code is the CLI's for PARITY_STALE_FENCE; what matters here is that it stopped, and why.)
    expect(exit.code, first.stderr()).not.toBe(0);
    expect(first.stderr()).toContain('PARITY_STALE_FENCE');
    expect(30_000 - (await mismatches(client))).toBe(written);
    expect(written).toBeLessThan(30_000);
    // `backfill status` names the token and who holds it.
    const fencedOut = cli(['backfill', 'status', '--spec', file]);
    await fencedOut.exit;
    expect(fencedOut.stdout()).toContain(`fence        token ${token + 1n} for "default-fence", held by a newer holder since`);

    // Started again without a token, the run takes a new one and completes from its checkpoints.
    const resumed = await runBackfill({ spec, controlServer: false });
    expect(resumed).toMatchObject({ outcome: 'completed', how: 'resumed', rowsDone: 30_000, fenceToken: String(token + 2n) });
    expect(await mismatches(client)).toBe(0);
    const status = cli(['backfill', 'status', '--spec', file]);
    await status.exit;
    expect(status.stdout()).toContain(`fence        token ${token + 2n} for "default-fence", held by this run since`);
  });

  it('two processes of one run share its token instead of fencing each other out', async () => {
    await createOrders(db.url, { rows: 20_000 }, 'orders_two');
    const { file } = makeSpec({ name: 'shared-fence', sourceUrl: db.url, table: 'orders_two', backfill: FAST });
    const a = cli(['backfill', 'run', '--spec', file, '--workers', '1', '--no-progress']);
    const b = cli(['backfill', 'run', '--spec', file, '--workers', '1', '--no-progress']);
    const [ea, eb] = await Promise.all([a.exit, b.exit]);
    expect(ea.code, a.stderr()).toBe(0);
    expect(eb.code, b.stderr()).toBe(0);
    const token = await currentToken(client, 'parity', 'shared-fence');
    expect(
      [a.stderr(), b.stderr()].filter((e) => e.includes(`backfill fencing token ${token} for "shared-fence" (issued to run`)),
    ).toHaveLength(1);
    expect(
      [a.stderr(), b.stderr()].filter((e) =>
        e.includes(`backfill fencing token ${token} for "shared-fence" (shared with the other processes of run`),
      ),
    ).toHaveLength(1);
    expect(await mismatches(client, 'orders_two')).toBe(0);
  });
});
