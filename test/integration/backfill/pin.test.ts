/**
 * Operator pins of the health controller's outputs at run time: `set wal-rate=N` fixes the WAL
 * budget (the guard and the health controller stop moving it) and `set workers=N` the workers in
 * service of every process; `auto` hands both back. Checked on the live process's status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill } from '../../../services/backfill/backfill.js';
import { applyControlCommand } from '../../../services/backfill/control-store.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

interface Status {
  state: string;
  pace: { walBytesPerSecond: number | null; pinned: boolean; workersActive: number } | null;
}

describe('operator pins of the WAL budget and the workers in service', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfpin');
    await createOrders(db.url, { rows: 100_000 });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('set wal-rate and set workers apply to the live process; auto returns them', async () => {
    // Neither the guard nor the health controller moves the budget here (on a shared cluster another
    // writer's CHECKPOINT would cut it): what moves it is the operator.
    const { spec } = makeSpec({
      name: 'pin',
      sourceUrl: db.url,
      backfill:
        '  throttle:\n    pace:\n      walBytesPerSecond: 524288\n      healthSignals: false\n      latencyGuard: { enabled: false }',
    });
    const running = runBackfill({ spec, workers: 2, pollMs: 100, controlPort: 0, controlToken: 'test-control-token-0123456789' });
    running.catch(() => undefined);
    const url = await waitFor(
      'control URL',
      async () =>
        (
          await client
            .query(`SELECT control_url FROM parity.backfill_processes WHERE control_url IS NOT NULL`)
            .catch(() => ({ rows: [] as { control_url: string }[] }))
        ).rows[0]?.control_url as string | undefined,
    );
    const status = async (): Promise<Status> => (await (await fetch(`${url}/status`)).json()) as Status;
    expect((await status()).pace).toMatchObject({ walBytesPerSecond: 524_288, pinned: false, workersActive: 2 });

    await applyControlCommand(client, 'parity', 'pin', { kind: 'set-wal-rate', bytesPerSecond: 1_048_576 }, 'test');
    await applyControlCommand(client, 'parity', 'pin', { kind: 'set-workers', workers: 1 }, 'test');
    const pinned = await waitFor(
      'the pins applied',
      async () => {
        const s = await status();
        return s.pace?.pinned && s.pace.workersActive === 1 ? s : undefined;
      },
      30_000,
    );
    expect(pinned.pace).toMatchObject({ walBytesPerSecond: 1_048_576, pinned: true, workersActive: 1 });
    // The process row (what `backfill status` shows) says so too.
    await waitFor(
      'the heartbeat to show the pin',
      async () => {
        const r = await client.query(`SELECT pace FROM parity.backfill_processes ORDER BY heartbeat_at DESC LIMIT 1`);
        return /WAL budget 1\.0 MiB\/s \(pinned by an operator\), 1 worker\(s\) in service/.test(String(r.rows[0]?.pace))
          ? true
          : undefined;
      },
      10_000,
    );

    await applyControlCommand(client, 'parity', 'pin', { kind: 'set-wal-rate', bytesPerSecond: null }, 'test');
    await applyControlCommand(client, 'parity', 'pin', { kind: 'set-workers', workers: null }, 'test');
    const unpinned = await waitFor(
      'the pins lifted',
      async () => {
        // Two commands: the process may apply them on different polls, so wait for both.
        const s = await status();
        return s.pace && !s.pace.pinned && s.pace.workersActive === 2 ? s : undefined;
      },
      30_000,
    );
    expect(unpinned.pace?.walBytesPerSecond).toBe(1_048_576); // control returns from the pinned value
    expect(unpinned.pace?.workersActive).toBe(2); // auto: every worker back in service
    // Let it finish fast, then check it is exact.
    await applyControlCommand(client, 'parity', 'pin', { kind: 'set-wal-rate', bytesPerSecond: 32 * 1024 * 1024 }, 'test');
    const result = await running;
    expect(result.outcome).toBe('completed');
    expect(await mismatches(client)).toBe(0);
  }, 240_000);
});
