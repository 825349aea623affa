/**
 * Fidelity: every PostgreSQL type the issue lists travels through the real connector, Kafka and the
 * registry (Avro, JSON Schema and Protobuf, the last read back by a Confluent-framing Protobuf decoder)
 * and decodes to exactly the documented JS value. Expected values are
 * written out by hand for the edge cases, and derived by PostgreSQL itself (to_json, encode) for bulk
 * rows, so the check never goes through the connector's own conversion code.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST } from '../../../services/core/change-event.js';
import { createTestDatabase, STACK, type TestDatabase, uniqueName } from '../../support/stack.js';
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

for (const format of ['avro', 'json', 'protobuf'] as const) {
  describe(`fidelity (${format})`, () => {
    let db: TestDatabase;
    let client: pg.Client;
    const slot = uniqueName(`fid_${format}`);
    const prefix = uniqueName(`fid${format}`);

    beforeAll(async () => {
      db = await createTestDatabase('source', 'cdcfid');
      client = new pg.Client({ connectionString: db.url, options: '-c timezone=UTC -c extra_float_digits=1' });
      await client.connect();
      await client.query(`CREATE TYPE order_state AS ENUM ('new', 'paid', 'shipped')`);
      await client.query(`CREATE TABLE fidelity (${COLUMNS})`);
      await client.query(`CREATE TABLE fidelity_full (${COLUMNS.replace('order_state', 'text')})`);
      await client.query('ALTER TABLE fidelity_full REPLICA IDENTITY FULL');
    });

    afterAll(async () => {
      await client?.end();
      await db?.drop();
      await deleteTopics([`${prefix}.public.fidelity`, `${prefix}.public.fidelity_full`]);
    });

    it('decodes every type exactly, NULLs as null, an unchanged TOASTed value as the placeholder', async () => {
      const spec = writeCdcSpec({
        database: db.url,
        table: 'fidelity',
        slot,
        topicPrefix: prefix,
        format,
        tables: ['public.fidelity_full'],
        snapshot: 'never',
      });
      const running = await runConnector(spec);
      try {
        await client.query(EDGE_INSERT);
        await client.query(SPECIAL_FLOATS);
        await client.query('INSERT INTO fidelity (id) VALUES (5)');
        await client.query(BULK_INSERT);
        // A large incompressible value is TOASTed out of line; updating another column leaves it unsent.
        await client.query(`UPDATE fidelity SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g) WHERE id = 1`);
        await client.query('UPDATE fidelity SET i4 = 1 WHERE id = 1');
        await client.query(
          `INSERT INTO fidelity_full (id, big, t) VALUES (1, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g), 'before')`,
        );
        await client.query(`UPDATE fidelity_full SET t = 'after' WHERE id = 1`);

        const expectedCount = 1 + 3 + 1 + 200 + 2;
        const changes = await readTopic(`${prefix}.public.fidelity`, (c) => c.length >= expectedCount);
        expect(changes.length).toBe(expectedCount);

        // Edge row, hand-written expectations.
        expect(latestAfter(changes, 1, 'c')).toEqual(EDGE_ROW);

        // NaN, infinities, -0, float4 max, a float8 subnormal.
        const f2 = latestAfter(changes, 2)!;
        expect(Number.isNaN(f2.f4)).toBe(true);
        expect(f2.f8).toBe(Infinity);
        const f3 = latestAfter(changes, 3)!;
        expect(f3.f4).toBe(-Infinity);
        expect(Object.is(f3.f8, -0)).toBe(true);
        const f4 = latestAfter(changes, 4)!;
        expect(f4.f4).toBe(3.4028235e38);
        expect(f4.f8).toBe(1e-320);

        // All NULLs.
        const nulls = latestAfter(changes, 5)!;
        expect(
          Object.entries(nulls)
            .filter(([k]) => k !== 'id')
            .every(([, v]) => v === null),
        ).toBe(true);

        // Bulk rows against PostgreSQL's own rendering.
        const { rows } = await client.query(EXPECTED_SQL);
        expect(rows.length).toBe(200);
        for (const r of rows) expect(latestAfter(changes, r.id as number, 'c')).toEqual(expectedFromSql(r));

        // Unchanged TOAST under REPLICA IDENTITY DEFAULT: explicit placeholder, never undefined.
        const updates = changes.filter((c) => c.key?.id === 1 && c.envelope.op === 'u');
        expect(updates).toHaveLength(2);
        const last = updates[1]!.envelope;
        expect(last.after!.big).toBe(UNCHANGED_TOAST);
        expect(last.after!.i4).toBe(1);
        expect(last.before).toBeNull();
        expect(Object.values(last.after!).includes(undefined)).toBe(false);
        // The first update did change it: the full value was sent.
        expect((updates[0]!.envelope.after!.big as string).length).toBe(128_000);

        // REPLICA IDENTITY FULL: complete before-image and the TOASTed value carried over.
        const full = await readTopic(`${prefix}.public.fidelity_full`, (c) => c.length >= 2);
        const u = full.find((c) => c.envelope.op === 'u')!.envelope;
        expect(u.before!.t).toBe('before');
        expect(u.after!.t).toBe('after');
        expect((u.after!.big as string).length).toBe(128_000);
        expect(u.after!.big).toBe(u.before!.big);

        // Envelope and headers.
        const first = changes.find((c) => c.key?.id === 1)!;
        expect(first.envelope.source).toMatchObject({
          connector: 'postgresql',
          schema: 'public',
          table: 'fidelity',
          snapshot: 'false',
          db: db.name,
          name: prefix,
        });
        expect(first.envelope.source.txId).toBeGreaterThan(0);
        expect(first.position.ordinal).toBe(0);
        expect(first.envelope.source.sequence).toMatch(/^[0-9A-F]+\/[0-9A-F]+:0$/);

        // The subjects carry the format asked for (TopicNameStrategy), not a silent fallback.
        const registered = (await (
          await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${prefix}.public.fidelity-value/versions/latest`)
        ).json()) as { schemaType?: string; schema: string };
        expect(registered.schemaType ?? 'AVRO').toBe({ avro: 'AVRO', json: 'JSON', protobuf: 'PROTOBUF' }[format]);
        if (format === 'protobuf') expect(registered.schema).toMatch(/^syntax = "proto3";\npackage [\w.]+\.public\.fidelity;/);
      } finally {
        await running.stop();
      }
    });
  });
}
