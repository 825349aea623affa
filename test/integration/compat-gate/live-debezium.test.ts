/**
 * The compat gate's live checks on topics `parity cdc run` writes with the Debezium encoding: in
 * connect-json (JsonConverter's `{schema, payload}`, the writer schema embedded in each event, no
 * registry) and in Avro through the registry (every event carries `ts_ns`, a long past 2^53). Real
 * PostgreSQL, CDC, Kafka and registry; consumers with an Avro reader schema and with a Kafka Connect
 * schema; a column type change mid-stream makes a second writer schema, which one consumer cannot read.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka } from '../../../services/core/clients.js';
import { runCompatGate } from '../../../services/compat-gate/gate.js';
import { checkLiveEvents } from '../../../services/compat-gate/live.js';
import { writeTestSpec } from '../../support/spec.js';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, runConnector, writeCdcSpec } from '../cdc/support.js';

const kafka = createKafka(KAFKA_BROKERS, { clientId: 'parity-compat-debezium-test' });
const registry = createCcompatClient(STACK.PARITY_REGISTRY_URL);

/** An Avro reader of the Debezium envelope (only what it needs; the names must be the writer's). */
function avroReader(prefix: string, amount: unknown): string {
  const ns = `${prefix}.public.orders`;
  return JSON.stringify({
    type: 'record',
    name: 'Envelope',
    namespace: ns,
    fields: [
      {
        name: 'after',
        type: [
          'null',
          {
            type: 'record',
            name: 'Value',
            namespace: ns,
            fields: [
              { name: 'id', type: 'int' },
              { name: 'amount', type: ['null', amount], default: null },
            ],
          },
        ],
        default: null,
      },
      { name: 'op', type: 'string' },
      { name: 'ts_ns', type: ['null', 'long'], default: null },
    ],
  });
}

describe('live checks on Debezium-encoded topics', () => {
  let db: TestDatabase;
  let avroDb: TestDatabase;
  const prefixes = { json: uniqueName('livejson'), avro: uniqueName('liveavro') };
  const topics = { json: `${prefixes.json}.public.orders`, avro: `${prefixes.avro}.public.orders` };

  beforeAll(async () => {
    db = await createTestDatabase('source', 'livedbz');
    avroDb = await createTestDatabase('source', 'livedbz');
  });

  afterAll(async () => {
    await db?.drop();
    await avroDb?.drop();
    await deleteTopics(Object.values(topics));
    for (const s of [`${topics.avro}-value`, `${topics.avro}-key`]) {
      await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${encodeURIComponent(s)}`, { method: 'DELETE' }).catch(() => undefined);
    }
  });

  async function stream(
    format: 'connect-json' | 'avro',
    database: TestDatabase,
    prefix: string,
    writes: (c: pg.Client) => Promise<void>,
    events: number,
  ) {
    const table = 'orders';
    const c = new pg.Client({ connectionString: database.url });
    await c.connect();
    try {
      await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, amount int)`);
      const spec = writeCdcSpec({
        database: database.url,
        table,
        slot: uniqueName(`live_${format.replace('-', '_')}`),
        topicPrefix: prefix,
        encoding: 'debezium',
        format,
        snapshot: 'never',
        // One partition: the sample's order is the write order, so the table's first schema is embedded schema #1.
        partitions: 1,
      });
      const running = await runConnector(spec);
      try {
        await writes(c);
        await readTopic(`${prefix}.public.${table}`, (x) => x.length >= events, 60_000);
      } finally {
        await running.stop();
      }
    } finally {
      await c.end();
    }
  }

  it('connect-json: each embedded schema is a writer, Avro and Kafka Connect readers read through resolution', async () => {
    await stream(
      'connect-json',
      db,
      prefixes.json,
      async (c) => {
        await c.query('INSERT INTO orders VALUES (1, 100), (2, 200), (3, 300)');
        await c.query('ALTER TABLE orders ALTER COLUMN amount TYPE text');
        await c.query(`INSERT INTO orders VALUES (4, 'four'), (5, 'five')`);
        await c.query('DELETE FROM orders WHERE id = 1');
      },
      6,
    );
    // The Kafka Connect consumer is built with the table's first schema, as JsonConverter embeds it.
    const first = await readFirstValue(topics.json);
    const connectReader = JSON.stringify((JSON.parse(first) as { schema: unknown }).schema);
    const report = await checkLiveEvents({
      kafka,
      registry,
      topic: topics.json,
      consumers: [
        { name: 'connect-v1', readerSchema: connectReader },
        { name: 'avro-text', readerSchema: avroReader(prefixes.json, 'string') },
      ],
    });
    expect(report.complete).toBe(true);
    expect(report.notWireFormat).toBe(0);
    expect(report.undecodable).toEqual([]);
    expect(report.tombstones).toBe(1);
    expect(report.sampled).toBe(7);
    // Two embedded schemas: the table before and after the type change.
    expect(report.byVersion).toEqual([
      { schemaId: -1, embeddedSchema: `${prefixes.json}.public.orders.Envelope`, events: 3 },
      { schemaId: -2, embeddedSchema: `${prefixes.json}.public.orders.Envelope`, events: 3 },
    ]);
    const byName = Object.fromEntries(report.consumers.map((c) => [c.consumer, c]));
    // The int reader reads the first schema's events and the delete (its amount is null), not the two text inserts.
    expect(byName['connect-v1']).toMatchObject({ readable: 4, failed: 2 });
    expect(byName['connect-v1']!.byVersion.find((v) => v.schemaId === -2)).toMatchObject({ events: 3, readable: 1, failed: 2 });
    expect(byName['connect-v1']!.byVersion.find((v) => v.schemaId === -2)!.firstError).toMatch(/string/);
    // The text reader: the other way round.
    expect(byName['avro-text']).toMatchObject({ readable: 3, failed: 3 });
    const finding = report.findings.find((f) => f.kind === 'consumer-cannot-read' && f.consumer === 'connect-v1');
    // The gate itself (`parity compat gate`): a connect-json subject has nothing registered, its live rows count per embedded schema.
    const spec = writeTestSpec({
      name: uniqueName('gate-json').replace(/_/g, '-'),
      events: {
        subjects: [
          {
            subject: `${topics.json}-value`,
            compatibility: 'BACKWARD',
            type: 'avro',
            consumers: [
              { name: 'connect-v1', readerSchema: 'connect-v1.json' },
              { name: 'avro-text', readerSchema: 'avro-text.avsc' },
            ],
          },
        ],
      },
    });
    writeFileSync(join(dirname(spec.path), 'connect-v1.json'), connectReader);
    writeFileSync(join(dirname(spec.path), 'avro-text.avsc'), avroReader(prefixes.json, 'string'));
    const gate = await runCompatGate(spec, { registry, kafka });
    expect(gate.passed).toBe(false);
    expect(gate.rows.filter((r) => r.check === 'live').map((r) => `${r.consumer} ${r.verdict} ${r.detail}`)).toEqual([
      'connect-v1 FAIL 4 readable, 2 failed of 6 sampled (connect-json#1 3/3, connect-json#2 1/3)',
      'avro-text FAIL 3 readable, 3 failed of 6 sampled (connect-json#1 0/3, connect-json#2 3/3)',
    ]);
    expect(finding?.message).toMatch(
      /cannot read 2 of 3 sampled event\(s\) written with the connect-json schema .*orders\.Envelope \(#2 embedded\)/,
    );
  });

  it('connect-json: a payload that does not fit its own schema is undecodable, and a JSON Schema reader fails clearly', async () => {
    const topic = `${topics.json}`;
    const first = await readFirstValue(topic);
    const broken = first.replace(
      /"payload":\{"before":null,"after":\{"id":1,"amount":100\}/,
      '"payload":{"before":null,"after":{"id":"one","amount":100}',
    );
    expect(broken).not.toBe(first);
    const { analyzeEvents } = await import('../../../services/compat-gate/live.js');
    const report = await analyzeEvents(topic, [Buffer.from(first), Buffer.from(broken)], async () => undefined, [
      { name: 'json-schema', readerSchema: JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' }) },
    ]);
    expect(report.undecodable).toHaveLength(1);
    expect(report.undecodable[0]!.firstError).toMatch(/does not fit its embedded schema: payload\.after\.id/);
    expect(report.consumers[0]).toMatchObject({ readable: 0, failed: 1 });
    expect(report.consumers[0]!.byVersion[0]!.firstError).toMatch(/Avro or a Kafka Connect reader schema/);
  });

  it('Avro through the registry: Debezium events (ts_ns past 2^53) decode and are read', async () => {
    await stream(
      'avro',
      avroDb,
      prefixes.avro,
      async (c) => {
        await c.query('INSERT INTO orders VALUES (1, 100), (2, 200)');
      },
      2,
    );
    const report = await checkLiveEvents({
      kafka,
      registry,
      topic: topics.avro,
      consumers: [{ name: 'avro-int', readerSchema: avroReader(prefixes.avro, 'int') }],
    });
    expect(report.undecodable).toEqual([]);
    expect(report.byVersion).toHaveLength(1);
    expect(report.byVersion[0]).toMatchObject({ version: 1, events: 2 });
    expect(report.consumers[0]).toMatchObject({ readable: 2, failed: 0 });
  });
});

/** The first message value of a topic's partitions (as text). */
async function readFirstValue(topic: string): Promise<string> {
  const { sampleRecentEvents } = await import('../../../services/compat-gate/live.js');
  const { values } = await sampleRecentEvents(kafka, topic, { perPartition: 1_000 });
  const texts = values.filter((v): v is Buffer => v !== null).map((v) => v.toString('utf8'));
  const insert = texts.find((t) => t.includes('"after":{"id":1,'));
  expect(insert).toBeDefined();
  return insert!;
}
