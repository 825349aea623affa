/**
 * `cdc.encoding: debezium` against what Debezium 3.6.0.Final itself wrote for the same workload
 * (test/conformance/debezium-3.6.0: all-types.sql run through Debezium's PostgreSQL connector with
 * JsonConverter, schemas enabled). parity runs the same SQL (snapshot part, then streamed part) on
 * the real stack, and every event (snapshot rows, insert, update, delete + tombstone, key change as
 * delete + tombstone + create with the key headers, a column added) is compared with Debezium's:
 * - connect-json: key and value schemas equal, payload rows equal, envelope and source equal but for
 *   the ALLOWED differences below;
 * - avro through the registry: the events decoded with the registered schema, their logical values
 *   equal Debezium's, and the registered schema carries Debezium's semantic names and parameters.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactRow, fieldTypeOfConnectJson, parseConnectJson } from '../../../connectors/kafka-sink/debezium-serde.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, type TestDatabase, uniqueName } from '../../support/stack.js';
import { decoder, deleteTopics, kafka, runConnector, waitForSlotCatchUp } from './support.js';

const DIR = fileURLToPath(new URL('../../conformance/debezium-3.6.0/', import.meta.url));

interface Captured {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
}

/**
 * What parity may write differently from the captured run, each with its reason. Everything not
 * listed here must be equal.
 */
const ALLOWED = {
  'source.ts_ms/ts_us/ts_ns, envelope ts_ms/ts_us/ts_ns': 'clock readings of another run',
  'source.txId, source.lsn, transaction.id': 'WAL positions and transaction ids of another database',
  'source.sequence': 'WAL positions of another run (its shape, [previous commit end, lsn], is checked against the transaction topic)',
  'source.name, source.db, schema names': 'the topic prefix and database are the test\'s own ("dbz", "dbzconf" in the capture)',
  'snapshot rows source.txId/lsn': "parity's snapshot has no transaction id (Debezium reports its snapshot transaction's)",
  'edge-types: first snapshot marker':
    "the capture's connector snapshotted all_types before edge_types, so its first edge_types row is first_in_data_collection; parity streams the one table, whose first row is first",
  "edge-types: big_text default 'ab''c'":
    'Debezium 3.6 cuts the default at the doubled quote ("ab"); parity carries PostgreSQL\'s default ("ab\'c")',
  'dates in snapshot rows':
    "Debezium's snapshot reads dates through JDBC (infinity as the driver's constants, a BC date without its era); parity writes what its stream writes",
} as const;

interface Workload {
  name: 'all-types' | 'edge-types';
  table: string;
  /** Debezium's topic prefix in the capture. */
  prefix: string;
  /** SQL run before the workload (what the capture's database already had). */
  setup: string;
  /** The snapshot part and the streamed part of the workload file. */
  parts: [string, string];
  expected: Captured[];
}

function workload(name: Workload['name']): Workload {
  const sql = readFileSync(`${DIR}${name}.sql`, 'utf8');
  const clean = (text: string) =>
    text
      .split('\n')
      .filter((l) => !l.startsWith('--'))
      .join('\n');
  let parts: [string, string];
  if (name === 'all-types') {
    const [, p1 = '', p2 = ''] = sql.split(/^-- Part \d\s*$/m);
    parts = [clean(p1), clean(p2)];
  } else {
    const [p1 = '', p2 = ''] = sql.split(/^-- streamed\s*$/m);
    parts = [clean(p1), clean(p2)];
  }
  return {
    name,
    table: name === 'all-types' ? 'all_types' : 'edge_types',
    prefix: name === 'all-types' ? 'dbz' : 'dbz2',
    // edge-types ran in the database all-types had made (its mood type).
    setup: name === 'all-types' ? '' : "create type mood as enum ('sad','ok','happy')",
    parts,
    expected: JSON.parse(readFileSync(`${DIR}${name}.change-events.json`, 'utf8')) as Captured[],
  };
}

function specFile(db: TestDatabase, table: string, slot: string, prefix: string, format: 'connect-json' | 'avro'): string {
  const dir = mkdtempSync(join(tmpdir(), 'parity-dbz-'));
  const file = join(dir, 'spec.json');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'parity/v1',
      name: slot.replace(/_/g, '-'),
      source: { database: db.url, schema: 'public', table },
      target: { kind: 'same-table' },
      key: ['id'],
      mapping: { parity_unused: 'id' },
      infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
      cdc: {
        slot,
        publication: `${slot}_pub`,
        topicPrefix: prefix,
        encoding: 'debezium',
        format,
        partitions: 1,
        heartbeatIntervalSeconds: 0,
        statusPort: 0,
        // As the capture ran (all-types.sql's header).
        debezium: { 'provide.transaction.metadata': true },
      },
    }),
  );
  return file;
}

interface RawMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  message: {
    key?: Buffer | null;
    value?: Buffer | null;
    headers?: Map<string, Buffer>;
    offset: bigint;
    timestamp: bigint;
    partition: number;
  };
}

async function readRaw(topic: string, count: number, timeoutMs = 60_000): Promise<RawMessage[]> {
  const consumer = kafka.consumer({ groupId: `test-${topic}-${Math.random().toString(16).slice(2)}`, maxWaitMs: 200 });
  const out: RawMessage[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const reading = (async () => {
      for await (const m of stream) {
        const headers: Record<string, string> = {};
        for (const [k, v] of (m.headers as Map<Buffer | string, Buffer>) ?? []) headers[String(k)] = String(v);
        const key = (m.key as Buffer | undefined) ?? null;
        const value = (m.value as Buffer | undefined) ?? null;
        out.push({
          key: key && key.length > 0 ? key : null,
          value: value && value.length > 0 ? value : null,
          headers,
          message: {
            key,
            value,
            headers: new Map(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
            offset: m.offset,
            timestamp: m.timestamp,
            partition: m.partition,
          },
        });
      }
    })().catch(() => undefined);
    const deadline = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await stream.close().catch(() => undefined);
    await reading;
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return out;
}

/** Debezium's names in a text, turned into the test's (topic prefix and database). */
function ours(text: string, w: Workload, prefix: string, db: string): string {
  return text
    .replace('"snapshot":"first_in_data_collection"', '"snapshot":"first"')
    .replaceAll('"default":"ab","field":"big_text"', `"default":"ab'c","field":"big_text"`)
    .replaceAll(`"${w.prefix}.public.`, `"${prefix}.public.`)
    .replaceAll(`"name":"${w.prefix}"`, `"name":${JSON.stringify(prefix)}`)
    .replaceAll('"dbzconf"', JSON.stringify(db));
}

const VOLATILE_SOURCE = ['ts_ms', 'ts_us', 'ts_ns', 'txId', 'lsn', 'sequence'];

function withoutVolatile(payload: Record<string, unknown>): Record<string, unknown> {
  const source = { ...(payload.source as Record<string, unknown>) };
  for (const k of VOLATILE_SOURCE) delete source[k];
  const { ts_ms: _a, ts_us: _b, ts_ns: _c, ...rest } = payload;
  const transaction = payload.transaction as Record<string, unknown> | null;
  // The id's LSN part is a WAL position of another run; the transaction id a number of another database.
  return { ...rest, source, transaction: transaction ? { ...transaction, id: typeof transaction.id } : null };
}

/**
 * Debezium's snapshot reads a `date` through JDBC (see ALLOWED): `infinity` becomes a driver constant
 * and a BC date loses its era (0001-01-01 BC reads as 0001-01-01). Its day number for such a row.
 */
function jdbcSnapshotDate(days: unknown): boolean {
  return typeof days === 'number' && (Math.abs(days) > 100_000_000 || days <= -719_162);
}

/** Both rows with `d` set aside where Debezium's snapshot wrote a JDBC date. */
function setAsideJdbcDate<T extends Record<string, unknown> | null>(got: T, want: T, wantDays: unknown): [T, T] {
  if (!got || !want || !jdbcSnapshotDate(wantDays)) return [got, want];
  return [
    { ...got, d: 'jdbc-date' },
    { ...want, d: 'jdbc-date' },
  ];
}

function expectedOps(EXPECTED: Captured[]): string[] {
  return EXPECTED.map((e) => (e.value ? (JSON.parse(e.value) as { payload: { op: string } }).payload.op : 'tombstone'));
}

describe.each([workload('all-types'), workload('edge-types')])(
  'cdc.encoding: debezium equals Debezium 3.6.0.Final on the $name workload',
  (w) => {
    const EXPECTED = w.expected;
    const runs: { db: TestDatabase; prefix: string; slot: string; topic: string; stop: () => Promise<void> }[] = [];

    async function run(
      format: 'connect-json' | 'avro',
    ): Promise<{ messages: RawMessage[]; prefix: string; db: TestDatabase; topic: string }> {
      const db = await createTestDatabase('source', 'dbz');
      const slot = uniqueName('dbz').replace(/-/g, '_');
      const prefix = uniqueName('dbz');
      const topic = `${prefix}.public.${w.table}`;
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query("SET TIME ZONE 'UTC'");
        if (w.setup) await client.query(w.setup);
        await client.query(w.parts[0]);
        const connector = await runConnector(specFile(db, w.table, slot, prefix, format));
        runs.push({ db, prefix, slot, topic, stop: () => connector.stop() });
        // One statement per transaction, as the capture ran them.
        for (const statement of w.parts[1]
          .split(/;\s*\n/)
          .map((t) => t.trim())
          .filter(Boolean))
          await client.query(statement);
        await waitForSlotCatchUp(client, slot);
      } finally {
        await client.end();
      }
      const messages = await readRaw(topic, EXPECTED.length);
      return { messages, prefix, db, topic };
    }

    afterAll(async () => {
      for (const r of runs) {
        await r.stop().catch(() => undefined);
        await deleteTopics([r.topic, `${r.prefix}.transaction`]);
        await r.db.drop().catch(() => undefined);
      }
    });

    beforeAll(() => {
      expect(Object.keys(ALLOWED).length).toBeGreaterThan(0);
    });

    it('connect-json: the same events, schemas and values as Debezium wrote, but for the allowed differences', async () => {
      const { messages, prefix, db } = await run('connect-json');
      if (w.name === 'all-types') {
        // Debezium's transaction topic: BEGIN and END of each transaction that has events.
        const captured = JSON.parse(readFileSync(`${DIR}all-types.transactions.json`, 'utf8')) as Captured[];
        const records = await readRaw(`${prefix}.transaction`, captured.length);
        const volatile = (doc: { schema: unknown; payload: Record<string, unknown> }) => ({
          schema: doc.schema,
          // ids and times are of another run; the counts and statuses must agree.
          payload: { ...doc.payload, id: typeof doc.payload.id, ts_ms: typeof doc.payload.ts_ms },
        });
        expect(records.map((r) => volatile(JSON.parse(r.value!.toString())))).toEqual(
          captured.map((c) => volatile(JSON.parse(ours(c.value!, w, prefix, db.name)))),
        );
        // BEGIN's id is the id in the events' transaction block.
        const firstBlock = (
          JSON.parse(messages.find((m) => m.value && JSON.parse(m.value.toString()).payload.op === 'c')!.value!.toString()) as {
            payload: { transaction: { id: string } };
          }
        ).payload.transaction.id;
        expect((JSON.parse(records[0]!.value!.toString()) as { payload: { id: string } }).payload.id).toBe(firstBlock);
        // source.sequence as Debezium writes it: [the previous transaction's commit end (its END id), this lsn].
        const ends = records
          .map((r) => (JSON.parse(r.value!.toString()) as { payload: { status: string; id: string } }).payload)
          .filter((p) => p.status === 'END')
          .map((p) => p.id.split(':')[1]!);
        const streamed = messages
          .filter((m) => m.value)
          .map((m) => (JSON.parse(m.value!.toString()) as { payload: { op: string; source: Record<string, unknown> } }).payload)
          .filter((p) => p.op !== 'r');
        const txIds = [...new Set(streamed.map((p) => p.source.txId))];
        for (const p of streamed) {
          const [last, lsn] = JSON.parse(p.source.sequence as string) as [string | null, string];
          expect(lsn).toBe(String(p.source.lsn));
          const n = txIds.indexOf(p.source.txId);
          expect(last, `sequence of tx ${String(p.source.txId)}`).toBe(n === 0 ? null : ends[n - 1]);
        }
      }
      const ops = messages.map((m) => (m.value ? (JSON.parse(m.value.toString()) as { payload: { op: string } }).payload.op : 'tombstone'));
      expect(ops).toEqual(expectedOps(EXPECTED));
      EXPECTED.forEach((expected, i) => {
        const actual = messages[i]!;
        const where = `event ${i} (${ops[i]})`;
        // Keys: schema and payload, as text.
        expect(actual.key?.toString() ?? null, `${where} key`).toBe(expected.key === null ? null : ours(expected.key, w, prefix, db.name));
        // Debezium's key-change headers.
        for (const h of ['__debezium.oldkey', '__debezium.newkey'])
          expect(actual.headers[h], `${where} header ${h}`).toBe(expected.headers?.[h]);
        if (expected.value === null) {
          expect(actual.value, `${where} tombstone`).toBeNull();
          return;
        }
        const want = JSON.parse(ours(expected.value, w, prefix, db.name)) as { schema: unknown; payload: Record<string, unknown> };
        const got = JSON.parse(actual.value!.toString()) as { schema: unknown; payload: Record<string, unknown> };
        expect(got.schema, `${where} value schema`).toEqual(want.schema);
        const snapshot = want.payload.op === 'r';
        const gotPayload = withoutVolatile(got.payload);
        const wantPayload = withoutVolatile(want.payload);
        if (snapshot) {
          const wantAfter = wantPayload.after as Record<string, unknown> | null;
          [gotPayload.after, wantPayload.after] = setAsideJdbcDate(
            gotPayload.after as Record<string, unknown> | null,
            wantAfter,
            wantAfter?.d,
          );
        }
        expect(gotPayload, `${where} payload`).toEqual(wantPayload);
        // The exact payload text of the row (floats as Java prints them, bytes as base64, defaults).
        if (!snapshot) {
          const rowText = (text: string) => {
            const start = text.indexOf('"payload":');
            const body = text.slice(start);
            return body.slice(0, body.indexOf('"source":'));
          };
          expect(rowText(actual.value!.toString()), `${where} payload text`).toBe(rowText(ours(expected.value, w, prefix, db.name)));
        }
      });
    }, 180_000);

    it("avro through the registry: decoded with the registered schemas, the logical values are Debezium's", async () => {
      const { messages, prefix, db, topic } = await run('avro');
      const dec = decoder();
      const events = messages.filter((m) => m.value !== null);
      const wanted = EXPECTED.filter((e) => e.value !== null);
      expect(messages.length).toBe(EXPECTED.length);
      expect(events.length).toBe(wanted.length);
      for (let i = 0; i < wanted.length; i++) {
        const want = parseConnectJson(ours(wanted[i]!.value!, w, prefix, db.name)) as {
          schema: { fields: Record<string, unknown>[] };
          payload: Record<string, unknown>;
        };
        const afterSchema = want.schema.fields.find((f) => f.field === 'after')! as { fields: Record<string, unknown>[] };
        const rowType = fieldTypeOfConnectJson(afterSchema);
        const expectRow = (row: unknown) => exactRow(rowType.fields!, row as Record<string, unknown> | null);
        const got = await dec.decode(topic, events[i]!.message);
        const where = `event ${i} (${String(want.payload.op)})`;
        expect(got.envelope.op, where).toBe(want.payload.op);
        const snapshot = want.payload.op === 'r';
        const wantDays = (want.payload.after as Record<string, unknown> | null)?.d;
        const [gotAfter, wantAfter] = setAsideJdbcDate(got.envelope.after, expectRow(want.payload.after), snapshot ? wantDays : undefined);
        expect(gotAfter, `${where} after`).toEqual(wantAfter);
        expect(got.envelope.before, `${where} before`).toEqual(expectRow(want.payload.before));
        const source = got.envelope.source as unknown as Record<string, unknown>;
        expect(source.snapshot, `${where} snapshot marker`).toBe((want.payload.source as Record<string, unknown>).snapshot);
        expect(source.version).toBe('3.6.0.Final');
      }
      // The registered value schema carries Debezium's semantic names and parameters.
      const response = await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${topic}-value/versions/1`);
      const registered = JSON.parse(((await response.json()) as { schema: string }).schema) as {
        name: string;
        fields: { name: string; type: unknown }[];
      };
      expect(registered.name).toBe('Envelope');
      const text = JSON.stringify(registered);
      for (const name of [
        'io.debezium.time.MicroTimestamp',
        'io.debezium.time.ZonedTimestamp',
        'io.debezium.data.VariableScaleDecimal',
        'io.debezium.data.Uuid',
        'io.debezium.data.Json',
        'io.debezium.data.Enum',
        'org.apache.kafka.connect.data.Decimal',
        'io.debezium.connector.postgresql.Source',
      ])
        expect(text, name).toContain(name);
    }, 180_000);
  },
);
