import { describe, expect, it } from 'vitest';
import { avroType, createChangeEncoder, type ChangeEnvelope, type RegistryClient } from '../../../connectors/kafka-sink/serde.js';
import { avroValueSchema } from '../../../connectors/kafka-sink/value-schema.js';
import { tableShape } from '../../../services/core/table-shape.js';

const registry: RegistryClient = { register: async (subject) => (subject.endsWith('-key') ? 7 : 9) };

const shape = tableShape(
  'shop',
  'public',
  'orders',
  [
    { name: 'id', kind: 'int8' },
    { name: 'qty', kind: 'int' },
    { name: 'price', kind: 'float' },
    { name: 'paid', kind: 'boolean' },
    { name: 'note', kind: 'string' },
    { name: 'blob', kind: 'bytea' },
    { name: 'tags', kind: 'string', array: true },
    { name: 'weird col', kind: 'string' },
  ],
  ['id'],
);

const row = (id: string, note: string | null) => ({
  id,
  qty: 3,
  price: -0.5,
  paid: true,
  note,
  blob: 'AAEC',
  tags: ['a', null, 'ü'],
  'weird col': 'x',
});

function envelope(
  overrides: Partial<Omit<ChangeEnvelope, 'source'>> & { source?: Partial<ChangeEnvelope['source']> } = {},
): ChangeEnvelope {
  const { source, ...rest } = overrides;
  return {
    before: row('9007199254740993', 'before'),
    after: row('9007199254740993', 'after — ünïcode ✓'),
    op: 'u',
    ts_ms: 1_763_700_000_123,
    ...rest,
    source: {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'shop',
      db: 'app',
      schema: 'public',
      table: 'orders',
      lsn: 2 ** 40 + 17,
      txId: 4_000_000_000,
      ts_ms: 1_763_700_000_000,
      ts_us: 1_763_700_000_000_456,
      snapshot: 'false',
      sequence: '0/16B3748:3',
      ...source,
    },
  } as ChangeEnvelope;
}

describe('Avro envelope fast path', () => {
  it('writes the same bytes as avsc does for the whole envelope', async () => {
    const encoder = await createChangeEncoder({ registry, format: 'avro' }).forTable(shape);
    const general = avroType(avroValueSchema(shape));
    const cases: ChangeEnvelope[] = [
      envelope(),
      envelope({ before: null, op: 'c' }),
      envelope({ after: null, op: 'd' }),
      envelope({ before: null, op: 'r', source: { snapshot: 'true', txId: null } }),
      envelope({ source: { schema: 'ßchema', table: 'tåble', name: 'n'.repeat(300) } }),
      envelope({ source: { sequence: 'x'.repeat(70_000) } }),
      envelope({ after: row('1', 'y'.repeat(200_000)) }),
    ];
    for (const e of cases) {
      const fast = encoder.encodeValue(e);
      // avsc's own encoding of the same value (renamed column as avsc sees it).
      const rename = (r: Record<string, unknown> | null) =>
        r === null ? null : Object.fromEntries(Object.entries(r).map(([k, v]) => [k === 'weird col' ? 'weird_u0020col' : k, v]));
      const expected = general.toBuffer({ ...e, before: rename(e.before), after: rename(e.after) });
      expect(fast.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 0, 9]));
      expect(fast.subarray(5).equals(expected)).toBe(true);
      expect(general.fromBuffer(fast.subarray(5))).toMatchObject({ op: e.op, source: { sequence: e.source.sequence } });
    }
  });

  it('falls back to avsc for values outside the fast path, and names a bad field', async () => {
    const encoder = await createChangeEncoder({ registry, format: 'avro' }).forTable(shape);
    const general = avroType(avroValueSchema(shape));
    // A long given as a decimal string: the general path handles it.
    const e = envelope({ source: { lsn: '12345' as unknown as number } });
    expect(general.fromBuffer(encoder.encodeValue(e).subarray(5))).toMatchObject({ source: { lsn: '12345' } });
    const bad = envelope({ after: { ...row('1', 'z'), qty: 'three' as unknown as number } });
    expect(() => encoder.encodeValue(bad)).toThrow(/after.*qty|qty/);
  });
});
