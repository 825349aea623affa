/**
 * Dates and timestamps at PostgreSQL's extremes through the CDC's Debezium encoding (issue 18): year 1,
 * BC years down to 4714 BC, leap days, the 1582 Gregorian switch (proleptic, no gap), dates up to
 * 5874897 AD, timestamps up to the last microsecond a 64-bit MicroTimestamp holds (294247-01-10
 * 04:00:54.775807) and 294276 AD where the field allows it (milliseconds, ZonedTimestamp), infinity,
 * in scalars and arrays, through the snapshot and the stream. Read back with the decoder every consumer
 * uses, each value equals PostgreSQL's own text of it. A timestamp beyond what Debezium's int64 field
 * can hold stops the stream (the connector pauses, /healthz names the table, the column and what to do;
 * Debezium writes a wrong value there), and nothing from it on is published or acknowledged.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParityError } from '../../../services/core/errors.js';
import type { HealthReport } from '../../../services/core/http.js';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, runConnector, writeCdcSpec } from './support.js';

const COLUMNS = `id int PRIMARY KEY, d date, ts timestamp(6), ts3 timestamp(3), tstz timestamptz, da date[], tsa timestamp[]`;

/** [id, date, timestamp(6), timestamp(3), timestamptz, date[], timestamp[]] as SQL literals. */
const ROWS: string[] = [
  `(1, '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00.001', '0001-01-01 00:00:00+00',
    '{0001-01-01,"0001-12-31 BC"}', '{"0001-01-01 00:00:00"}')`,
  `(2, '4714-11-24 BC', '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00.999 BC', '4714-11-24 00:00:00+00 BC',
    '{"4714-11-24 BC","0005-02-29 BC"}', '{"4714-11-24 00:00:00 BC","0001-12-31 23:59:59.999999 BC"}')`,
  `(3, '5874897-12-31', '294247-01-10 04:00:54.775807', '294276-12-31 23:59:59.999', '294276-12-31 23:59:59.999999+00',
    '{5874897-12-31,275760-09-14}', '{"294247-01-10 04:00:54.775807","275760-09-13 00:00:00.000001"}')`,
  `(4, '1582-10-05', '1582-10-04 23:59:59.999999', '1582-10-15 00:00:00', '1582-10-10 12:00:00.5+00',
    '{1582-10-04,1582-10-15}', '{"1582-10-05 00:00:00"}')`,
  `(5, '2000-02-29', '1900-02-28 23:59:59.999999', '2000-02-29 12:00:00', '1600-02-29 00:00:00+00',
    '{0004-02-29,1600-02-29}', '{"2000-02-29 00:00:00.000001"}')`,
  `(6, 'infinity', 'infinity', '-infinity', 'infinity', '{infinity,-infinity}', '{infinity}')`,
  `(7, '-infinity', '-infinity', 'infinity', '-infinity', '{-infinity}', '{-infinity,NULL}')`,
];

/** PostgreSQL's own text of every value (TimeZone UTC, as the CDC's session), arrays element by element. */
const EXPECTED_SQL = `SELECT id, d::text, ts::text, ts3::text, tstz::text,
    (SELECT array_agg(x::text ORDER BY n) FROM unnest(da) WITH ORDINALITY u(x, n)) AS da,
    (SELECT array_agg(x::text ORDER BY n) FROM unnest(tsa) WITH ORDINALITY u(x, n)) AS tsa
  FROM extremes ORDER BY id`;

for (const format of ['avro', 'connect-json'] as const) {
  describe(`temporal extremes through the Debezium encoding (${format})`, () => {
    let db: TestDatabase;
    let client: pg.Client;
    const slot = uniqueName(`tmpx_${format.replace('-', '_')}`);
    const prefix = uniqueName(`tmpx${format.replace('-', '')}`);
    const topic = `${prefix}.public.extremes`;

    beforeAll(async () => {
      db = await createTestDatabase('source', 'tmpx');
      client = new pg.Client({ connectionString: db.url, options: '-c timezone=UTC' });
      await client.connect();
      await client.query(`CREATE TABLE extremes (${COLUMNS})`);
    });

    afterAll(async () => {
      await client?.end();
      await db?.drop();
      await deleteTopics([topic]);
    });

    it("snapshot and stream carry every extreme value exactly; one beyond the field's range pauses the CDC naming table and column", async () => {
      // Rows 1-4 go through the snapshot, 5-7 and updates of 1-4 through the stream.
      await client.query(`INSERT INTO extremes VALUES ${ROWS.slice(0, 4).join(', ')}`);
      const spec = writeCdcSpec({ database: db.url, table: 'extremes', slot, topicPrefix: prefix, format, encoding: 'debezium' });
      const running = await runConnector(spec);
      let paused: HealthReport | null = null;
      try {
        await client.query(`INSERT INTO extremes VALUES ${ROWS.slice(4).join(', ')}`);
        await client.query(`UPDATE extremes SET d = d, ts = ts WHERE id <= 4`);
        const expectedCount = 4 + 3 + 4;
        const changes = await readTopic(topic, (c) => c.length >= expectedCount);
        expect(changes.length).toBe(expectedCount);

        const { rows } = await client.query<Record<string, unknown>>(EXPECTED_SQL);
        expect(rows.length).toBe(7);
        for (const expected of rows) {
          const id = expected.id as number;
          const events = changes.filter((c) => (c.key as { id: number }).id === id);
          expect(events.map((e) => e.envelope.op).sort(), `row ${id}`).toEqual(id <= 4 ? ['r', 'u'] : ['c']);
          for (const event of events) expect(event.envelope.after, `row ${id} ${event.envelope.op}`).toEqual(expected);
        }

        // 294276 AD in a microsecond timestamp: past 2^63 - 1 microseconds since 1970.
        await client.query(`INSERT INTO extremes (id, ts) VALUES (8, '294276-12-31 23:59:59.999999')`);
        await client.query(`INSERT INTO extremes (id) VALUES (9)`);
        const deadline = Date.now() + 60_000;
        while (running.connector.health().status !== 'paused' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        paused = running.connector.health();
        // Still paused on the same value through its retries (each a new session failing on it), never
        // showing streaming in between: nothing skips it.
        const seen = new Set<string>();
        for (const until = Date.now() + 4_000; Date.now() < until; ) {
          seen.add(running.connector.health().status);
          await new Promise((r) => setTimeout(r, 10));
        }
        expect([...seen]).toEqual(['paused']);
        expect(running.connector.health()).toMatchObject({
          status: 'paused',
          reason: expect.stringMatching(/^table public\.extremes, column ts: /),
        });
      } finally {
        await running.stop();
      }
      expect(paused?.status).toBe('paused');
      expect(paused?.reason).toMatch(
        /^table public\.extremes, column ts: timestamp "294276-12-31 23:59:59\.999999" cannot be written as a Debezium MicroTimestamp.*exceed a 64-bit integer.*what to do: .*exact-text encoding/,
      );
      // Nothing of the refused row, nor of the row after it, was published.
      const after = await readTopic(topic, () => false, 3_000);
      expect(after.length).toBe(4 + 3 + 4);
    });
  });
}

describe('temporal extremes: a value beyond the field in the initial snapshot', () => {
  let db: TestDatabase;
  const slot = uniqueName('tmpx_snap');
  const prefix = uniqueName('tmpxsnap');

  beforeAll(async () => {
    db = await createTestDatabase('source', 'tmpxs');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(`CREATE TABLE extremes (id int PRIMARY KEY, ts timestamp(6))`);
    await client.query(`INSERT INTO extremes VALUES (1, '2024-01-01 00:00:00'), (2, '294276-12-31 23:59:59.999999')`);
    await client.end();
  });

  afterAll(async () => {
    await db?.drop();
    await deleteTopics([`${prefix}.public.extremes`]);
  });

  it('stops the connector with the error naming table and column; nothing of the chunk is published', async () => {
    const spec = writeCdcSpec({ database: db.url, table: 'extremes', slot, topicPrefix: prefix, encoding: 'debezium' });
    const failure = await runConnector(spec).then(
      async (running) => {
        await running.stop();
        return null;
      },
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ParityError);
    expect((failure as ParityError).code).toBe('PARITY_DECODE');
    expect((failure as ParityError).message).toMatch(/^table public\.extremes, column ts: timestamp "294276-12-31 23:59:59\.999999"/);
    const published = await readTopic(`${prefix}.public.extremes`, () => false, 3_000);
    expect(published).toEqual([]);
  });
});
