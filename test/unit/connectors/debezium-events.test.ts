/**
 * What one change becomes in the debezium encoding (services/cdc/envelope.ts): the event, a tombstone
 * after a delete (`tombstones.on.delete`), nothing for `skipped.operations`, the key-change headers, and
 * the transaction block and BEGIN/END records (`provide.transaction.metadata`). The encoder is the real
 * connect-json one (no registry needed), so the assertions read the bytes a consumer reads.
 */
import { describe, expect, it } from 'vitest';
import type { RelationState } from '../../../connectors/postgres-source/change-builder.js';
import { avroType, createChangeEncoder, type TableEncoder } from '../../../connectors/kafka-sink/serde.js';
import { tableShape } from '../../../services/core/table-shape.js';
import { CONTEXT_HEADERS, EnvelopeBuilder, transactionContext, uuidV7 } from '../../../services/cdc/envelope.js';

const columns = [
  { name: 'id', kind: 'int' as const, connect: { type: 'int32' as const, optional: false } },
  { name: 'note', kind: 'string' as const, connect: { type: 'string' as const, optional: true } },
];
const shape = tableShape('p', 'public', 't', columns, ['id'], 'debezium');
const relation = {
  oid: 1,
  schema: 'public',
  table: 't',
  columns: [],
  keyColumns: ['id'],
  shape,
  name: 'public.t',
} as unknown as RelationState;
const noRegistry = { register: () => Promise.reject(new Error('connect-json needs no registry')) };

async function setup(debezium: ConstructorParameters<typeof EnvelopeBuilder>[0]['debezium'] = undefined): Promise<{
  envelopes: EnvelopeBuilder;
  encoder: TableEncoder;
}> {
  const encoder = await createChangeEncoder({ registry: noRegistry, format: 'connect-json', transactionTopic: 'p.transaction' }).forTable(
    shape,
  );
  const envelopes = new EnvelopeBuilder({
    topicPrefix: 'p',
    db: 'db',
    partitions: new Map([['p.public.t', 1]]),
    defaultPartitions: 1,
    ...(debezium ? { debezium } : {}),
  });
  return { envelopes, encoder };
}

const payload = (b: Buffer | null) => (b === null ? null : (JSON.parse(b.toString()) as { payload: Record<string, unknown> }).payload);
const tx = () => transactionContext(100n, 7, 1_700_000_000_000_000n);
const DEFAULTS = { 'tombstones.on.delete': true, 'skipped.operations': 't', 'provide.transaction.metadata': false } as const;

describe('debezium events of one change', () => {
  it('a delete is followed by a tombstone with the same key; none when tombstones.on.delete is off', async () => {
    const { envelopes, encoder } = await setup(DEFAULTS);
    const change = { op: 'd' as const, key: { id: 1 }, before: { id: 1, note: 'x' }, after: null, changeLsn: 90n };
    const out = envelopes.buildAll(encoder, relation, change, { commitLsn: 100n, ordinal: 0 }, tx(), 'false');
    expect(out.map((m) => payload(m.value)?.op ?? 'tombstone')).toEqual(['d', 'tombstone']);
    expect(out[1]!.key).toEqual(out[0]!.key);
    expect(out[1]!.partition).toBe(out[0]!.partition);
    const off = await setup({ ...DEFAULTS, 'tombstones.on.delete': false });
    expect(off.envelopes.buildAll(off.encoder, relation, change, { commitLsn: 100n, ordinal: 0 }, tx(), 'false')).toHaveLength(1);
  });

  it('skipped.operations writes nothing for the named operations (truncates by default)', async () => {
    const { envelopes, encoder } = await setup();
    const truncate = { op: 't' as const, key: null, before: null, after: null };
    expect(envelopes.buildAll(encoder, relation, truncate, { commitLsn: 100n, ordinal: 0 }, tx(), 'false')).toEqual([]);
    const skipUpdates = await setup({ ...DEFAULTS, 'skipped.operations': 'u,t' });
    const update = { op: 'u' as const, key: { id: 1 }, before: null, after: { id: 1, note: 'y' } };
    expect(skipUpdates.envelopes.buildAll(skipUpdates.encoder, relation, update, { commitLsn: 100n, ordinal: 0 }, tx(), 'false')).toEqual(
      [],
    );
    const none = await setup({ ...DEFAULTS, 'skipped.operations': 'none' });
    const truncates = none.envelopes.buildAll(none.encoder, relation, truncate, { commitLsn: 100n, ordinal: 0 }, tx(), 'false', 0);
    expect(truncates).toHaveLength(1);
    // Debezium's truncate event: no key, no rows, op t.
    expect(truncates[0]!.key).toBeNull();
    expect(payload(truncates[0]!.value)).toMatchObject({ op: 't', before: null, after: null, transaction: null });
  });

  it("a key change: the delete names the new key, the create the old one, beside parity's headers", async () => {
    const { envelopes, encoder } = await setup(DEFAULTS);
    const keyChange = { oldKey: { id: 3 }, newKey: { id: 30 } };
    const t = tx();
    const [del, tomb] = envelopes.buildAll(
      encoder,
      relation,
      { op: 'd', key: { id: 3 }, before: { id: 3, note: null }, after: null, keyChange },
      { commitLsn: 100n, ordinal: 0 },
      t,
      'false',
    );
    const [create] = envelopes.buildAll(
      encoder,
      relation,
      { op: 'c', key: { id: 30 }, before: null, after: { id: 30, note: null }, keyChange },
      { commitLsn: 100n, ordinal: 1 },
      t,
      'false',
    );
    expect(del!.headers['__debezium.newkey']).toBe('{"id":30}');
    expect(tomb!.headers['__debezium.newkey']).toBe('{"id":30}');
    expect(create!.headers['__debezium.oldkey']).toBe('{"id":3}');
    expect(create!.headers['__debezium.newkey']).toBeUndefined();
    expect(String(create!.headers['parity.ordinal'])).toBe('1');
  });

  it("extended.headers.enabled: Debezium 3's context headers on every event and tombstone, one run id per start; none when off", async () => {
    const { envelopes, encoder } = await setup(DEFAULTS);
    const del = { op: 'd' as const, key: { id: 1 }, before: { id: 1, note: 'x' }, after: null };
    const out = [
      ...envelopes.buildAll(encoder, relation, del, { commitLsn: 100n, ordinal: 0 }, tx(), 'false'),
      ...envelopes.buildAll(
        encoder,
        relation,
        { ...del, op: 'c', before: null, after: { id: 1, note: null } },
        { commitLsn: 100n, ordinal: 1 },
        tx(),
        'false',
      ),
    ];
    expect(out).toHaveLength(3);
    const text = (v: unknown) => (v === undefined ? undefined : String(v));
    for (const m of out) {
      expect(text(m.headers[CONTEXT_HEADERS.connectorLogicalName])).toBe('p');
      expect(text(m.headers[CONTEXT_HEADERS.taskId])).toBe('0');
      expect(text(m.headers[CONTEXT_HEADERS.connectorName])).toBe('postgresql');
      expect(text(m.headers[CONTEXT_HEADERS.runId])).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(text(m.headers['parity.commit_lsn'])).toBeDefined();
    }
    // One run id per connector start (EnvelopeBuilder), shared as the same Buffer by every event.
    expect(out[2]!.headers[CONTEXT_HEADERS.runId]).toBe(out[0]!.headers[CONTEXT_HEADERS.runId]);
    const again = await setup(DEFAULTS);
    const other = again.envelopes.buildAll(again.encoder, relation, del, { commitLsn: 100n, ordinal: 0 }, tx(), 'false')[0]!;
    expect(text(other.headers[CONTEXT_HEADERS.runId])).not.toBe(text(out[0]!.headers[CONTEXT_HEADERS.runId]));
    const off = await setup({ ...DEFAULTS, 'extended.headers.enabled': false });
    const plain = off.envelopes.buildAll(off.encoder, relation, del, { commitLsn: 100n, ordinal: 0 }, tx(), 'false')[0]!;
    expect(Object.keys(plain.headers).filter((h) => h.startsWith('__debezium.context.'))).toEqual([]);
  });

  it('uuidV7: the time in the first 48 bits, version 7, variant 10', () => {
    const id = uuidV7(0x0123_4567_89ab);
    expect(id).toMatch(/^01234567-89ab-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(uuidV7(1)).not.toBe(uuidV7(1));
  });

  it('provide.transaction.metadata: the block counts from 1, BEGIN and END carry its id and the counts', async () => {
    const { envelopes, encoder } = await setup({ ...DEFAULTS, 'provide.transaction.metadata': true });
    const t = tx();
    const first = envelopes.buildAll(
      encoder,
      relation,
      { op: 'c', key: { id: 1 }, before: null, after: { id: 1, note: null }, changeLsn: 90n },
      { commitLsn: 100n, ordinal: 0 },
      t,
      'false',
    );
    const second = envelopes.buildAll(
      encoder,
      relation,
      { op: 'c', key: { id: 2 }, before: null, after: { id: 2, note: null }, changeLsn: 95n },
      { commitLsn: 100n, ordinal: 1 },
      t,
      'false',
    );
    expect(payload(first[0]!.value)!.transaction).toEqual({ id: '7:90', total_order: 1, data_collection_order: 1 });
    expect(payload(second[0]!.value)!.transaction).toEqual({ id: '7:90', total_order: 2, data_collection_order: 2 });
    const transactions = encoder.debezium!.transactions!;
    const begin = envelopes.transactionMessage(transactions, t, 'BEGIN')!;
    const end = envelopes.transactionMessage(transactions, t, 'END', 120n)!;
    expect(begin.topic).toBe('p.transaction');
    expect(payload(begin.value)).toMatchObject({ status: 'BEGIN', id: '7:90', event_count: null });
    expect(payload(end.value)).toMatchObject({
      status: 'END',
      id: '7:120',
      event_count: 2,
      data_collections: [{ data_collection: 'public.t', event_count: 2 }],
    });
    // The next transaction's sequence names this one's commit end.
    envelopes.committed(120n);
    const next = envelopes.buildAll(
      encoder,
      relation,
      { op: 'c', key: { id: 3 }, before: null, after: { id: 3, note: null }, changeLsn: 130n },
      { commitLsn: 140n, ordinal: 0 },
      transactionContext(140n, 8, 1n),
      'false',
    );
    expect((payload(next[0]!.value)!.source as { sequence: string }).sequence).toBe('["120","130"]');
  });

  it('snapshot rows carry no transaction block and no previous commit', async () => {
    const { envelopes, encoder } = await setup({ ...DEFAULTS, 'provide.transaction.metadata': true });
    envelopes.committed(120n);
    const [row] = envelopes.buildAll(
      encoder,
      relation,
      { op: 'r', key: { id: 1 }, before: null, after: { id: 1, note: null } },
      { commitLsn: 99n, ordinal: 0 },
      transactionContext(99n, null, 1n),
      'first',
    );
    const p = payload(row!.value)!;
    expect(p.transaction).toBeNull();
    expect((p.source as { snapshot: string; sequence: string }).snapshot).toBe('first');
    expect((p.source as { sequence: string }).sequence).toBe('[null,"99"]');
  });

  it('Avro refuses a column name Avro cannot hold unless field.name.adjustment.mode adjusts it, saying which setting', async () => {
    const odd = tableShape(
      'p',
      'public',
      'odd',
      [{ name: 'order-id', kind: 'int', connect: { type: 'int32', optional: false } }],
      ['order-id'],
      'debezium',
    );
    const registered: string[] = [];
    const registry = { register: async (subject: string) => (registered.push(subject), registered.length) };
    await expect(createChangeEncoder({ registry, format: 'avro' }).forTable(odd)).rejects.toMatchObject({
      code: 'PARITY_BAD_INPUT',
      retriable: false,
      message: expect.stringContaining('"order-id"'),
      hint: expect.stringContaining('field.name.adjustment.mode'),
    });
    expect(registered).toEqual([]);
    const adjusted = await createChangeEncoder({ registry, format: 'avro', fieldNameAdjustment: 'avro' }).forTable(odd);
    expect(adjusted.debezium!.schemas.row.fields!.map((f) => f.name)).toEqual(['order_id']);
    expect(adjusted.encodeKey({ 'order-id': 5 })!.subarray(5)).toEqual(Buffer.from([10]));
  });

  it('Avro takes int64 bigints as they are and a map (hstore.handling.mode: map) as an object', async () => {
    const shapeWithMap = tableShape(
      'p',
      'public',
      'm',
      [
        { name: 'id', kind: 'int8', connect: { type: 'int64', optional: false } },
        {
          name: 'h',
          kind: 'string',
          connect: { type: 'map', optional: true, keys: { type: 'string', optional: false }, values: { type: 'string', optional: true } },
        },
      ],
      ['id'],
      'debezium',
    );
    const schemas: unknown[] = [];
    const registry = { register: async (_subject: string, schema: unknown) => (schemas.push(schema), schemas.length) };
    const encoder = await createChangeEncoder({ registry, format: 'avro' }).forTable(shapeWithMap);
    const { envelopes } = await setup(DEFAULTS);
    const [message] = envelopes.buildAll(
      encoder,
      { ...relation, shape: shapeWithMap, name: 'public.m' } as RelationState,
      {
        op: 'c',
        key: { id: 9007199254740993n },
        before: null,
        after: {
          id: 9007199254740993n,
          h: new Map([
            ['a', '1'],
            ['b', null],
          ]),
        },
        changeLsn: 1n,
      },
      { commitLsn: 2n, ordinal: 0 },
      tx(),
      'false',
    );
    const value = avroType(schemas[0]).fromBuffer(message!.value!.subarray(5)) as {
      after: { id: string; h: Record<string, string | null> };
    };
    expect(value.after).toEqual({ id: '9007199254740993', h: { a: '1', b: null } });
    expect(avroType(schemas[1]).fromBuffer(message!.key!.subarray(5))).toEqual({ id: '9007199254740993' });
  });
});
