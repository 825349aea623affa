/**
 * Test helper: a synthetic CDC stream of one `orders` table, encoded with the CDC's own serde and
 * produced to a test-owned topic, plus the state it leads to.
 */
import { type Admin, ListOffsetTimestamps } from '@platformatic/kafka';
import { ensureTopics } from '../../../connectors/kafka-sink/admin.js';
import type { KafkaClients, KafkaProducer } from '../../../services/core/clients.js';
import type pg from 'pg';
import {
  createChangeEncoder,
  createRegistryClient,
  encodeChange,
  tableShape,
  type TableEncoder,
} from '../../../connectors/kafka-sink/serde.js';
import type { ChangeEnvelope, Op, Row } from '../../../services/core/change-event.js';
import type { Position } from '../../../services/core/lsn.js';
import { REGISTRY } from '../../support/security.js';

/** Columns of the test table, with their change-event JS values. */
export const ORDERS_DDL = (table: string) =>
  `CREATE TABLE ${table} (id int4 PRIMARY KEY, total_amount_minor int8, currency text, price numeric(10,2), paid boolean, updated_at timestamptz, tags text[])`;

export interface Change {
  op: Op;
  key: Row;
  before: Row | null;
  after: Row | null;
  position: Position;
  commitTimeUs: bigint;
}

export function ordersShape(prefix: string, table: string) {
  return tableShape(
    prefix,
    'public',
    table,
    [
      { name: 'id', kind: 'int', pgType: 'int4' },
      { name: 'total_amount_minor', kind: 'int8', pgType: 'int8' },
      { name: 'currency', kind: 'string', pgType: 'text' },
      { name: 'price', kind: 'string', pgType: 'numeric' },
      { name: 'paid', kind: 'boolean', pgType: 'bool' },
      { name: 'updated_at', kind: 'string', pgType: 'timestamptz' },
      { name: 'tags', kind: 'string', array: true, pgType: 'text[]' },
    ],
    ['id'],
  );
}

/** A row state with values exactly as CDC would decode them. */
export function orderRow(id: number, version: number): Row {
  // PostgreSQL prints fractional seconds without trailing zeros.
  const micros = String(100000 + ((id * 7919 + version * 104729) % 900000)).replace(/0+$/, '');
  return {
    id,
    total_amount_minor: String(1000n * BigInt(id) + BigInt(version)),
    currency: version % 3 === 0 ? 'EUR' : 'USD',
    price: `${version}.${String(id % 100).padStart(2, '0')}`,
    paid: version % 2 === 0,
    updated_at: `2024-05-01 12:${String(version % 60).padStart(2, '0')}:00.${micros}+00`,
    tags: version % 4 === 0 ? null : ['a', `v${version}`, null],
  };
}

/**
 * A random but reproducible history: each key is inserted, updated, sometimes deleted and inserted
 * again. Positions increase strictly (one transaction per change, ordinal 0, or several changes in
 * one transaction with increasing ordinals).
 */
export function history(
  keys: number,
  changes: number,
  seed = 1,
  startLsn = 0x1000n,
): { changes: Change[]; final: Map<number, Row | null> } {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const state = new Map<number, Row | null>();
  const versions = new Map<number, number>();
  const out: Change[] = [];
  let lsn = startLsn;
  let ordinal = 0;
  for (let i = 0; i < changes; i++) {
    if (ordinal === 0 || rand() < 0.6) {
      lsn += BigInt(1 + Math.floor(rand() * 200));
      ordinal = 0;
    } else ordinal++;
    const id = 1 + Math.floor(rand() * keys);
    const current = state.get(id) ?? null;
    const version = (versions.get(id) ?? 0) + 1;
    versions.set(id, version);
    let op: Op;
    let after: Row | null;
    if (current === null) {
      op = 'c';
      after = orderRow(id, version);
    } else if (rand() < 0.15) {
      op = 'd';
      after = null;
    } else {
      op = 'u';
      after = orderRow(id, version);
    }
    out.push({
      op,
      key: { id },
      before: op === 'd' ? { id } : null,
      after,
      position: { commitLsn: lsn, ordinal },
      commitTimeUs: BigInt(Date.now()) * 1000n,
    });
    state.set(id, after);
  }
  return { changes: out, final: state };
}

export function envelopeOf(change: Change, table: string): ChangeEnvelope {
  const ms = Number(change.commitTimeUs / 1000n);
  return {
    before: change.before,
    after: change.after,
    op: change.op,
    ts_ms: ms,
    source: {
      version: 'test',
      connector: 'postgresql',
      name: 'test',
      db: 'test',
      schema: 'public',
      table,
      lsn: Number(change.position.commitLsn),
      txId: 1,
      ts_ms: ms,
      ts_us: Number(change.commitTimeUs),
      snapshot: 'false',
      sequence: '',
    },
  };
}

export interface TestStream {
  topic: string;
  encoder: TableEncoder;
  producer: KafkaProducer;
  admin: Admin;
  partitions: number;
  /** Produces changes in the given order; stamps each with the current time as its commit time. */
  send(changes: Change[], table: string): Promise<void>;
  /** Sends raw bytes (for dead-letter tests). */
  sendRaw(value: Buffer, key?: Buffer): Promise<void>;
  close(): Promise<void>;
}

export async function createTestStream(kafka: KafkaClients, prefix: string, table: string, partitions = 3): Promise<TestStream> {
  const shape = ordersShape(prefix, table);
  await ensureTopics(kafka, [shape.topic], partitions);
  const admin = kafka.admin();
  const encoder = await createChangeEncoder({
    registry: createRegistryClient(REGISTRY),
    format: 'avro',
  }).forTable(shape);
  const producer = kafka.producer();
  return {
    topic: shape.topic,
    encoder,
    producer,
    admin,
    partitions,
    async send(changes, tableName) {
      for (let i = 0; i < changes.length; i += 500) {
        const messages = changes.slice(i, i + 500).map((c) => {
          const stamped = { ...c, commitTimeUs: BigInt(Date.now()) * 1000n };
          const m = encodeChange(
            encoder,
            { key: c.key, envelope: envelopeOf(stamped, tableName), position: c.position, txId: 1, commitTimeUs: stamped.commitTimeUs },
            partitions,
          );
          return {
            topic: shape.topic,
            partition: m.partition,
            ...(m.key ? { key: m.key } : {}),
            ...(m.value ? { value: m.value } : {}),
            headers: m.headers,
          };
        });
        await producer.send({ messages });
      }
    },
    async sendRaw(value, key) {
      await producer.send({ messages: [{ topic: shape.topic, partition: 0, ...(key ? { key } : {}), value }] });
    },
    async close() {
      await producer.close();
      await admin.deleteTopics({ topics: [shape.topic] }).catch(() => undefined);
      await admin.close();
    },
  };
}

/** Sum of the latest offsets of a topic's partitions (= messages produced). */
export async function endOffsets(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const meta = await admin.metadata({ topics: [topic], forceUpdate: true });
  const partitions = Array.from({ length: meta.topics.get(topic)?.partitionsCount ?? 0 }, (_, partitionIndex) => ({
    partitionIndex,
    timestamp: ListOffsetTimestamps.LATEST,
  }));
  const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions }] });
  return new Map((listed?.partitions ?? []).map((p) => [p.partitionIndex, p.offset]));
}

/** The group's committed offsets per partition (-1 when none). */
export async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Map<number, bigint>> {
  const [entry] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
  const partitions = entry?.topics.find((t) => t.name === topic)?.partitions ?? [];
  return new Map(partitions.map((p) => [p.partitionIndex, p.committedOffset]));
}

/** Writes `rows` (change-event values) into the test table as its current state. */
export async function loadRows(pool: pg.Pool, table: string, rows: Row[]): Promise<void> {
  for (const r of rows) {
    await pool.query(
      `INSERT INTO ${table} (id, total_amount_minor, currency, price, paid, updated_at, tags) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET total_amount_minor = EXCLUDED.total_amount_minor, currency = EXCLUDED.currency, price = EXCLUDED.price,
         paid = EXCLUDED.paid, updated_at = EXCLUDED.updated_at, tags = EXCLUDED.tags`,
      [r.id, r.total_amount_minor, r.currency, r.price, r.paid, r.updated_at, r.tags],
    );
  }
}
