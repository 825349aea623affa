/**
 * The other throttle reasons against the real database and a real HTTP server: the flag file, the
 * HTTP health probe (non-2xx pauses), the CDC slot's lag (a real logical slot nobody consumes), and
 * load from pg_stat_activity (pause above maxActive, abort above abortActive). Each asserts the state
 * and reason, then that the backfill resumes (or aborts) as it should.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { runBackfill, type BackfillResult } from '../../../services/backfill/backfill.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { createOrders, makeSpec, mismatches, waitFor } from './fixtures.js';

interface Status {
  state: string;
  throttle: { reason: string; detail: string }[];
}

describe('backfill throttle signals', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'bfthrottle');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  async function statusOf(migration: string): Promise<() => Promise<Status>> {
    const url = await waitFor('control URL', async () => {
      const { rows } = await client
        .query(
          `SELECT p.control_url FROM parity.backfill_processes p JOIN parity.backfill_runs r USING (run_id) WHERE r.migration = $1 AND p.state <> 'exited' AND p.control_url IS NOT NULL`,
          [migration],
        )
        .catch(() => ({ rows: [] as { control_url: string }[] }));
      return rows[0]?.control_url;
    });
    return async () => (await (await fetch(`${url}/status`)).json()) as Status;
  }

  async function throttledBy(status: () => Promise<Status>, reason: string): Promise<Status> {
    return waitFor(`throttle reason ${reason}`, async () => {
      const s = await status();
      return s.state === 'throttled' && s.throttle.some((f) => f.reason === reason) ? s : undefined;
    });
  }

  const small = '  batchSize: 200\n  minBatchSize: 200\n  maxBatchSize: 200';

  it('flag file and HTTP probe: pause while present / non-2xx, resume after', async () => {
    await createOrders(db.url, { rows: 20_000 }, 'orders_flag');
    const dir = mkdtempSync(join(tmpdir(), 'parity-flag-'));
    const flag = join(dir, 'pause-backfill');
    writeFileSync(flag, '');
    let healthy = false;
    const server: Server = createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 503);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const probeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    try {
      const { spec } = makeSpec({
        name: 'flag-http',
        sourceUrl: db.url,
        table: 'orders_flag',
        backfill: `${small}\n  throttle:\n    flagFile: ${flag}\n    httpProbe: ${probeUrl}`,
      });
      const running = runBackfill({ spec, pollMs: 100 });
      running.catch(() => undefined);
      const status = await statusOf('flag-http');
      const both = await throttledBy(status, 'http_probe');
      await throttledBy(status, 'flag_file');
      expect(both.throttle.find((f) => f.reason === 'http_probe')?.detail).toMatch(
        /HTTP probe http:\/\/127\.0\.0\.1:\d+\/health (answered 503|failed: no answer yet)/,
      );
      const s = await throttledBy(status, 'flag_file');
      expect(s.throttle.find((f) => f.reason === 'flag_file')?.detail).toBe(`flag file ${flag} exists`);
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM parity.backfill_batches b JOIN parity.backfill_runs r USING (run_id) WHERE r.migration = 'flag-http'`,
      );
      expect(rows[0].n).toBe(0);
      rmSync(flag);
      const onlyHttp = await waitFor('flag reason gone', async () => {
        const st = await status();
        return st.throttle.every((f) => f.reason !== 'flag_file') ? st : undefined;
      });
      // The latency guard may still be measuring its baseline (it holds the backfill for 5 s at the start).
      expect(onlyHttp.throttle.map((f) => f.reason).filter((r) => r !== 'latency_guard')).toEqual(['http_probe']);
      healthy = true;
      const result: BackfillResult = await running;
      expect(result.outcome).toBe('completed');
      expect(await mismatches(client, 'orders_flag')).toBe(0);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('CDC slot lag: a slot nobody consumes throttles with reason slot_lag until it catches up', async () => {
    await createOrders(db.url, { rows: 200_000 }, 'orders_slot');
    const { spec } = makeSpec({
      name: 'slot-lag',
      sourceUrl: db.url,
      table: 'orders_slot',
      backfill: '  throttle:\n    maxLagSeconds: 1\n    pace: { databaseCpus: 64 }',
    }); // the cluster's other sessions are not this test's subject
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [spec.cdc.slot]);
    // WAL the slot has not consumed (about 50 MB), so the lag does not depend on what else the machine writes.
    await client.query(`CREATE TABLE wal_filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 200000) g`);
    const running = runBackfill({ spec, pollMs: 100 });
    running.catch(() => undefined);
    const status = await statusOf('slot-lag');
    const s = await throttledBy(status, 'slot_lag');
    expect(s.throttle.find((f) => f.reason === 'slot_lag')?.detail).toMatch(
      new RegExp(`CDC slot ${spec.cdc.slot} lag ~\\d+(\\.\\d+)?s \\(\\d+ bytes, no consumer connected\\) > max 1s`),
    );
    // The consumer catches up: the slot's confirmed position reaches the current WAL position.
    const consumer = new pg.Client({ connectionString: db.url });
    await consumer.connect();
    let consuming = true;
    const catchUp = (async () => {
      while (consuming) {
        await consumer.query(`SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [spec.cdc.slot]);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const result = await running;
      expect(result.outcome).toBe('completed');
    } finally {
      consuming = false;
      await catchUp.catch(() => undefined);
      await consumer.end();
      await client.query(`SELECT pg_drop_replication_slot($1)`, [spec.cdc.slot]);
    }
    expect(await mismatches(client, 'orders_slot')).toBe(0);
  });

  it('load: pauses above maxActive, aborts above abortActive', async () => {
    await createOrders(db.url, { rows: 20_000 }, 'orders_load');
    const { spec } = makeSpec({
      name: 'load',
      sourceUrl: db.url,
      table: 'orders_load',
      backfill: `${small}\n  throttle:\n    maxActive: 2\n    abortActive: 4`,
    });
    const sessions: pg.Client[] = [];
    const busy = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const c = new pg.Client({ connectionString: db.url, application_name: 'load-test' });
        await c.connect();
        sessions.push(c);
        c.query('SELECT pg_sleep(60)').catch(() => undefined);
      }
    };
    try {
      await busy(3);
      const running = runBackfill({ spec, pollMs: 100 });
      running.catch(() => undefined);
      const status = await statusOf('load');
      const s = await throttledBy(status, 'load');
      expect(s.throttle.find((f) => f.reason === 'load')?.detail).toMatch(/^\d+ active backends > maxActive 2$/);
      await busy(3);
      const err = await running.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PARITY_ABORTED' });
      expect((err as Error).message).toMatch(/aborted by load: \d+ active backends > abortActive 4 on two checks in a row/);
      const { rows } = await client.query(`SELECT state FROM parity.backfill_runs WHERE migration = 'load'`);
      expect(rows[0].state).toBe('aborted');
    } finally {
      for (const c of sessions) {
        await client
          .query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'load-test'`)
          .catch(() => undefined);
        await c.end().catch(() => undefined);
      }
    }
  });
});
