/**
 * The Debezium encoding read back: every type of the fidelity table (test/integration/cdc/fidelity.test.ts)
 * streamed with `cdc.encoding: debezium` (Avro through the registry and connect-json) and decoded by the
 * one decoder every consumer uses (connectors/kafka-sink/serde.ts) comes back as the exact values of
 * the exact-text encoding, so the reconciler, the cache versioner and the demo compare the same values
 * whichever encoding the CDC writes. Only what Debezium's encoding does not keep differs, listed here:
 * an interval's months and days (MicroDuration folds them into microseconds, a month 30.4375 days) and
 * a numeric NaN (null). Expected values come from PostgreSQL itself, as in the fidelity test.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, runConnector, writeCdcSpec } from './support.js';
import {
  COLUMNS,
  EDGE_ROW,
  EDGE_INSERT,
  SPECIAL_FLOATS,
  BULK_INSERT,
  EXPECTED_SQL,
  expectedFromSql,
  latestAfter,
} from './fidelity-rows.js';

/** What Debezium's encoding cannot keep: the interval as microseconds, folded back as hours. */
const MICROS_PER_MONTH = 2_629_800_000_000n;
const LOSSY_SQL = `SELECT id, (extract(year from iv) * 12 + extract(month from iv))::bigint AS months, extract(day from iv)::bigint AS days,
   ((extract(hour from iv) * 3600 + extract(minute from iv) * 60) * 1000000 + extract(microseconds from iv))::bigint AS micros
   FROM fidelity WHERE id >= 10 OR id = 1`;

function durationHours(months: bigint, days: bigint, micros: bigint): string {
  const total = months * MICROS_PER_MONTH + days * 86_400_000_000n + micros;
  const negative = total < 0n;
  const abs = negative ? -total : total;
  const s = abs / 1_000_000n;
  const frac = abs % 1_000_000n;
  const pad = (n: bigint) => String(n).padStart(2, '0');
  return `${negative ? '-' : ''}${pad(s / 3600n)}:${pad((s / 60n) % 60n)}:${pad(s % 60n)}${frac === 0n ? '' : `.${String(frac).padStart(6, '0').replace(/0+$/, '')}`}`;
}

for (const format of ['avro', 'connect-json'] as const) {
  describe(`Debezium encoding read back (${format})`, () => {
    let db: TestDatabase;
    let client: pg.Client;
    const slot = uniqueName(`dbzrb_${format.replace('-', '_')}`);
    const prefix = uniqueName(`dbzrb${format.replace('-', '')}`);

    beforeAll(async () => {
      db = await createTestDatabase('source', 'dbzrb');
      client = new pg.Client({ connectionString: db.url, options: '-c timezone=UTC -c extra_float_digits=1' });
      await client.connect();
      await client.query(`CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped')`);
      await client.query(`CREATE TABLE fidelity (${COLUMNS})`);
    });

    afterAll(async () => {
      await client?.end();
      await db?.drop();
      await deleteTopics([`${prefix}.public.fidelity`]);
    });

    it('every type decodes to the exact-text values, but for what the encoding does not keep', async () => {
      const spec = writeCdcSpec({
        database: db.url,
        table: 'fidelity',
        slot,
        topicPrefix: prefix,
        format,
        encoding: 'debezium',
        snapshot: 'never',
      });
      const running = await runConnector(spec);
      try {
        await client.query(EDGE_INSERT);
        await client.query(SPECIAL_FLOATS);
        await client.query('INSERT INTO fidelity (id) VALUES (5)');
        await client.query(BULK_INSERT);
        await client.query('DELETE FROM fidelity WHERE id = 5');
        const expectedCount = 1 + 3 + 1 + 200 + 1;
        const changes = await readTopic(`${prefix}.public.fidelity`, (c) => c.length >= expectedCount);
        expect(changes.length).toBe(expectedCount);

        const lossy = new Map(
          (await client.query<{ id: number; months: string; days: string; micros: string }>(LOSSY_SQL)).rows.map((r) => [
            r.id,
            durationHours(BigInt(r.months), BigInt(r.days), BigInt(r.micros)),
          ]),
        );
        // Edge row: as the exact-text encoding writes it, the interval as its length, numeric NaN as null.
        expect(latestAfter(changes, 1, 'c')).toEqual({ ...EDGE_ROW, iv: lossy.get(1), num_any: null });

        const f2 = latestAfter(changes, 2)!;
        expect(Number.isNaN(f2.f4)).toBe(true);
        expect(f2.f8).toBe(Infinity);
        const f3 = latestAfter(changes, 3)!;
        expect(f3.f4).toBe(-Infinity);
        expect(Object.is(f3.f8, -0)).toBe(true);
        const f4 = latestAfter(changes, 4)!;
        expect(f4.f4).toBe(3.4028235e38);
        expect(f4.f8).toBe(1e-320);

        const nulls = latestAfter(changes, 5, 'c')!;
        expect(Object.entries(nulls).filter(([k, v]) => k !== 'id' && v !== null)).toEqual([]);

        const { rows } = await client.query(EXPECTED_SQL);
        expect(rows.length).toBe(200);
        for (const r of rows)
          expect(latestAfter(changes, r.id as number, 'c')).toEqual({ ...expectedFromSql(r), iv: lossy.get(r.id as number) });

        // A delete under REPLICA IDENTITY DEFAULT: the key, every other column null (none is NOT NULL here).
        const deleted = changes.find((c) => c.envelope.op === 'd')!;
        expect(deleted.key).toEqual({ id: 5 });
        expect(deleted.envelope.before).toMatchObject({ id: 5, i4: null });
        expect(deleted.envelope.source.snapshot).toBe('false');
      } finally {
        await running.stop();
      }
    });
  });
}
