/**
 * Logical decoding messages (`pg_logical_emit_message`) as Debezium writes them (issue 18): to
 * `<topicPrefix>.message`, key `{prefix}`, value `{op: "m", ts_ms, source, transaction, message:
 * {prefix, content}}`, transactional ones with their transaction's txId (and, with
 * `provide.transaction.metadata`, its block and a count in its END record), non-transactional ones
 * without, each durable on its own; `message.prefix.include.list` / `exclude.list` filter by prefix
 * (whole prefix, case-insensitive); parity's own prefixes (`parity.*`: heartbeats, watermarks) are never
 * written; the content follows `binary.handling.mode`. Real PostgreSQL, Kafka and registry.
 * test/conformance/debezium.test.ts compares the same records with Debezium's own.
 */
import { describe, expect, it } from 'vitest';
import { type DecodedEvent, EventDecoder, type Format, readRawTopic } from '../../support/debezium-compare.js';
import { KAFKA_BROKERS, STACK } from '../../support/stack.js';
import { deleteTopics, streamedTable, streamFrom, waitForSlotCatchUp } from './support.js';

async function readEvents(topic: string, format: Format, minMessages: number): Promise<DecodedEvent[]> {
  const raw = await readRawTopic(KAFKA_BROKERS, topic, { minMessages, idleMs: 2_000, timeoutMs: 60_000 });
  const decoder = new EventDecoder(format, STACK.PARITY_REGISTRY_URL);
  const out: DecodedEvent[] = [];
  for (const m of raw) out.push(await decoder.decode(m));
  return out;
}

interface MessagePayload {
  op: string;
  ts_ms: bigint | number;
  source: { schema: string; table: string; txId: bigint | number | null; lsn: bigint | number; snapshot: string };
  transaction: { id: string; total_order: bigint | number; data_collection_order: bigint | number } | null;
  message: { prefix: string; content: unknown };
}

const payloadOf = (e: DecodedEvent) => e.value!.payload as unknown as MessagePayload;
const num = (v: bigint | number | null) => (v === null ? null : Number(v));
/** A bytes field as decoded: JsonConverter writes bytes as Base64 text. */
const bytesOf = (content: unknown) => (typeof content === 'string' ? Buffer.from(content, 'base64') : Buffer.from(content as Uint8Array));

describe('logical decoding messages, connect-json, with transaction metadata and an exclude list', () => {
  const t = streamedTable('lmsg', 'items', '(id int primary key, v text)');

  it('writes transactional and non-transactional messages as Debezium does, leaves out excluded and parity prefixes', async () => {
    const { running, c } = await streamFrom(t, {
      encoding: 'debezium',
      format: 'connect-json',
      partitions: 1,
      debezium: { 'provide.transaction.metadata': true, 'message.prefix.exclude.list': 'noise\\..*' },
    });
    const messageTopic = `${t.topicPrefix}.message`;
    try {
      await c.query(`SELECT pg_logical_emit_message(true, 'audit.orders', 'hello')`);
      await c.query('BEGIN');
      await c.query(`INSERT INTO items VALUES (1, 'one')`);
      const { rows } = await c.query<{ xid: string }>('SELECT txid_current()::text AS xid');
      await c.query(`SELECT pg_logical_emit_message(true, 'audit.orders', '\\x00ff'::bytea)`);
      await c.query('COMMIT');
      await c.query(`SELECT pg_logical_emit_message(false, 'signal', 'now')`);
      await c.query(`SELECT pg_logical_emit_message(true, 'noise.x', 'left out')`);
      await c.query(`SELECT pg_logical_emit_message(true, 'NOISE.Y', 'left out, case-insensitive')`);
      await c.query(`SELECT pg_logical_emit_message(true, 'parity.other', 'parity''s own')`);
      // A non-transactional message is durable on its own: the slot passes it.
      await waitForSlotCatchUp(c, t.slot);

      const events = await readEvents(messageTopic, 'connect-json', 3);
      expect(events.map((e) => (e.key!.payload as { prefix: string }).prefix)).toEqual(['audit.orders', 'audit.orders', 'signal']);
      expect(events[0]!.key!.schema).toMatchObject({ name: 'io.debezium.connector.postgresql.MessageKey', version: 1 });
      const valueSchema = events[0]!.value!.schema!;
      expect(valueSchema).toMatchObject({ name: 'io.debezium.connector.postgresql.MessageValue', version: 1 });
      expect(valueSchema.fields!.map((f) => f.field)).toEqual(['op', 'ts_ms', 'source', 'transaction', 'message']);
      expect(valueSchema.fields![4]).toMatchObject({ name: 'io.debezium.connector.postgresql.Message' });

      const [alone, inTx, loose] = events.map(payloadOf) as [MessagePayload, MessagePayload, MessagePayload];
      for (const p of [alone, inTx, loose]) {
        expect(p.op).toBe('m');
        expect(p.source).toMatchObject({ schema: '', table: '', snapshot: 'false' });
        expect(num(p.source.lsn)).toBeGreaterThan(0);
      }
      expect(bytesOf(alone.message.content).toString()).toBe('hello');
      expect([...bytesOf(inTx.message.content)]).toEqual([0x00, 0xff]);
      expect(bytesOf(loose.message.content).toString()).toBe('now');
      // Transactional: the txId of the transaction that emitted it, and its transaction block.
      expect(String(inTx.source.txId)).toBe(rows[0]!.xid);
      expect(alone.source.txId).not.toBeNull();
      expect(inTx.transaction).not.toBeNull();
      expect(inTx.transaction!.id.startsWith(`${rows[0]!.xid}:`)).toBe(true);
      expect(num(inTx.transaction!.total_order)).toBe(2);
      // Non-transactional: no transaction at all.
      expect(loose.source.txId).toBeNull();
      expect(loose.transaction).toBeNull();
      expect(num(loose.source.lsn)).toBeGreaterThan(num(inTx.source.lsn)!);

      // The transaction's END record counts its message under Debezium's collection name.
      const transactions = await readEvents(`${t.topicPrefix}.transaction`, 'connect-json', 4);
      const end = transactions
        .map(
          (e) => e.value!.payload as { status: string; id: string; data_collections: { data_collection: string; event_count: number }[] },
        )
        .find((v) => v.status === 'END' && v.id.startsWith(`${rows[0]!.xid}:`));
      expect(end?.data_collections.map((d) => [d.data_collection, Number(d.event_count)])).toEqual(
        expect.arrayContaining([
          ['public.items', 1],
          ['LOGICAL_DECODING_MESSAGE', 1],
        ]),
      );

      const metrics = await running.metrics.getSingleMetricAsString('parity_cdc_logical_messages_total');
      expect(metrics).toMatch(/outcome="written"} 3/);
      expect(metrics).toMatch(/outcome="filtered"} 2/);
    } finally {
      await c.end();
      await running.stop();
      await deleteTopics([messageTopic, `${t.topicPrefix}.transaction`]);
    }
  }, 120_000);
});

describe('logical decoding messages, Avro through the registry, with an include list and base64-url-safe content', () => {
  const t = streamedTable('lmsga', 'items', '(id int primary key)');

  it('writes only the included prefixes, the content as Java URL-safe Base64 (padded)', async () => {
    const { running, c } = await streamFrom(t, {
      encoding: 'debezium',
      format: 'avro',
      partitions: 1,
      debezium: { 'message.prefix.include.list': 'AUDIT\\..*,outbox', 'binary.handling.mode': 'base64-url-safe' },
    });
    const messageTopic = `${t.topicPrefix}.message`;
    try {
      await c.query(`SELECT pg_logical_emit_message(true, 'other', 'left out')`);
      await c.query(`SELECT pg_logical_emit_message(true, 'outbox.more', 'left out: the whole prefix must match')`);
      await c.query(`SELECT pg_logical_emit_message(true, 'audit.orders', '\\xfbff'::bytea)`);
      await c.query(`SELECT pg_logical_emit_message(false, 'outbox', 'x')`);
      await waitForSlotCatchUp(c, t.slot);
      const events = await readEvents(messageTopic, 'avro', 2);
      expect(events.map((e) => payloadOf(e).message)).toEqual([
        { prefix: 'audit.orders', content: '-_8=' },
        { prefix: 'outbox', content: 'eA==' },
      ]);
      const field = events[0]!.value!.schema!.fields!.find((f) => f.field === 'message')!;
      expect(field.fields!.find((f) => f.field === 'content')).toMatchObject({ type: 'string', optional: true });
      const subjects = (await (await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects`)).json()) as string[];
      expect(subjects).toEqual(expect.arrayContaining([`${messageTopic}-key`, `${messageTopic}-value`]));
    } finally {
      await c.end();
      await running.stop();
      await deleteTopics([messageTopic]);
      for (const subject of [`${messageTopic}-key`, `${messageTopic}-value`])
        await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${encodeURIComponent(subject)}`, { method: 'DELETE' }).catch(() => undefined);
    }
  }, 120_000);
});
