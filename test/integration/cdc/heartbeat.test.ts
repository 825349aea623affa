/**
 * Idle captured table, busy database next door: with heartbeats on, the slot keeps advancing, so the
 * WAL it pins stays under one segment (16 MB) while another database writes far more than that.
 *
 * Physics: while WAL keeps coming the walsender never waits, so it sends no keepalives and only the
 * heartbeats move the slot; the lag is then about (cluster WAL rate) x (heartbeat interval) plus
 * decoding delay. The test writes a few MB/s with 0.5 s heartbeats. Other tests writing heavily to the
 * same cluster at the same time can push a sample over the bound, hence one retry.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, runConnector, writeCdcSpec } from './support.js';

const SEGMENT = 16 * 1024 * 1024;

describe('heartbeats on an idle table', () => {
  let idle: TestDatabase;
  let busy: TestDatabase;
  const slot = uniqueName('idle');
  const prefix = uniqueName('idle');

  beforeAll(async () => {
    idle = await createTestDatabase('source', 'cdcidle');
    busy = await createTestDatabase('source', 'cdcbusy');
    const c = new pg.Client({ connectionString: idle.url });
    await c.connect();
    await c.query('CREATE TABLE quiet (id int PRIMARY KEY, v text)');
    await c.end();
    const b = new pg.Client({ connectionString: busy.url });
    await b.connect();
    await b.query('CREATE TABLE noise (id bigserial PRIMARY KEY, pad text)');
    await b.end();
  });

  afterAll(async () => {
    await idle?.drop();
    await busy?.drop();
    await deleteTopics([`${prefix}.public.quiet`]);
  });

  it('keeps slot lag under one WAL segment while another database writes 3+ segments', { retry: 1 }, async () => {
    const spec = writeCdcSpec({
      database: idle.url,
      table: 'quiet',
      slot,
      topicPrefix: prefix,
      heartbeatIntervalSeconds: 0.5,
      snapshot: 'never',
    });
    const running = await runConnector(spec);
    const probe = new pg.Client({ connectionString: idle.url });
    const writer = new pg.Client({ connectionString: busy.url });
    await probe.connect();
    await writer.connect();
    try {
      const { rows: start } = await probe.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      let maxLag = 0;
      let samples = 0;
      let writing = true;
      const sampler = (async () => {
        while (writing) {
          const { rows } = await probe.query<{ lag: string }>(
            `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1`,
            [slot],
          );
          maxLag = Math.max(maxLag, Number(rows[0]!.lag));
          samples++;
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      // ~60 MB of WAL at a few MB/s in modest transactions, paced like a busy application.
      for (let i = 0; i < 120; i++) {
        await writer.query(`INSERT INTO noise (pad) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 1500) g`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // And a quiet spell afterwards: the idle slot must catch up to the end, not only keep up.
      await new Promise((r) => setTimeout(r, 4_000));
      writing = false;
      await sampler;
      const { rows: end } = await probe.query<{ written: string; lag: string }>(
        `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $2::pg_lsn)::bigint AS written,
                pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1`,
        [slot, start[0]!.lsn],
      );
      const written = Number(end[0]!.written);
      process.stderr.write(
        `heartbeat: wrote ${(written / 1048576).toFixed(1)} MB, max slot lag ${(maxLag / 1048576).toFixed(2)} MB over ${samples} samples, final ${end[0]!.lag} B\n`,
      );
      expect(written).toBeGreaterThan(3 * SEGMENT);
      expect(samples).toBeGreaterThan(10);
      expect(maxLag).toBeLessThan(SEGMENT);
      expect(Number(end[0]!.lag)).toBeLessThan(1024 * 1024);
      const metrics = await running.metrics.getSingleMetricAsString('parity_cdc_heartbeats_total');
      expect(metrics).toMatch(/stage="emitted"} [1-9]/);
      expect(metrics).toMatch(/stage="received"} [1-9]/);
    } finally {
      await probe.end();
      await writer.end();
      await running.stop();
    }
  });
});
