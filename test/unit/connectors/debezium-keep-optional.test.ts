/**
 * A registered optional field stays optional (connectors/kafka-sink/debezium-serde.ts): after
 * `SET NOT NULL` the Debezium row keeps the field the value subject already holds as optional, so the
 * registered schema is never narrowed; the key struct and columns nothing registered are untouched.
 */
import { describe, expect, it } from 'vitest';
import { tableShape } from '../../../services/core/table-shape.js';
import { debeziumAvroSchemas, debeziumSchemas, registeredOptionalFields } from '../../../connectors/kafka-sink/debezium-serde.js';

const columns = (currencyOptional: boolean) => [
  { name: 'id', kind: 'int' as const, connect: { type: 'int32' as const, optional: false } },
  { name: 'currency', kind: 'string' as const, connect: { type: 'string' as const, optional: currencyOptional } },
  { name: 'region', kind: 'string' as const, connect: { type: 'string' as const, optional: false, default: 'eu' } },
  { name: 'amount', kind: 'int' as const, connect: { type: 'int32' as const, optional: currencyOptional, default: 0 } },
];

const before = tableShape('p', 'public', 'orders', columns(true), ['id'], 'debezium');
const after = tableShape('p', 'public', 'orders', columns(false), ['id'], 'debezium');

describe('registered optional fields', () => {
  it('reads the optional columns of a registered Debezium envelope', () => {
    const registered = debeziumAvroSchemas(debeziumSchemas(before)).value;
    expect([...registeredOptionalFields(registered)].sort()).toEqual(['amount', 'currency']);
  });

  it('reads nothing from what is not an envelope', () => {
    expect(registeredOptionalFields(null).size).toBe(0);
    expect(registeredOptionalFields('string').size).toBe(0);
    expect(registeredOptionalFields({ type: 'record', name: 'X', fields: [{ name: 'a', type: ['null', 'int'] }] }).size).toBe(0);
    expect(registeredOptionalFields({ type: 'record', name: 'E', fields: [{ name: 'before', type: ['null', 'p.Value'] }] }).size).toBe(0);
  });

  it('keeps registered optional fields optional after SET NOT NULL: the same Avro schema as before', () => {
    const registered = debeziumAvroSchemas(debeziumSchemas(before)).value;
    const narrowed = debeziumAvroSchemas(debeziumSchemas(after)).value;
    // Without the registry's record the fields would be narrowed (what BACKWARD refuses) ...
    expect(narrowed).not.toEqual(registered);
    // ... with it, the value schema is the registered one, byte for byte as JSON (same id, no new version).
    const kept = debeziumSchemas(after, 'none', registeredOptionalFields(registered));
    expect(JSON.stringify(debeziumAvroSchemas(kept).value)).toBe(JSON.stringify(registered));
    // A defaulted optional column keeps its default-first union.
    const amount = kept.row.fields!.find((f) => f.name === 'amount')!.schema;
    expect(amount).toEqual({ type: 'int32', optional: true, default: 0 });
    // The envelope's before/after are the widened row.
    expect(kept.envelope.fields!.find((f) => f.name === 'after')!.schema.fields).toEqual(kept.row.fields);
  });

  it('leaves the key struct and unregistered columns as the table says', () => {
    const kept = debeziumSchemas(after, 'none', new Set(['id', 'currency']));
    // The key's bytes decide the partition: never widened, even when a registered row held it optional.
    expect(kept.key!.fields).toEqual([{ name: 'id', schema: { type: 'int32', optional: false } }]);
    expect(kept.row.fields!.find((f) => f.name === 'id')!.schema.optional).toBe(true);
    // A NOT NULL column no version registered as optional (region, amount here) stays required.
    expect(kept.row.fields!.find((f) => f.name === 'region')!.schema).toEqual({ type: 'string', optional: false, default: 'eu' });
    expect(kept.row.fields!.find((f) => f.name === 'amount')!.schema.optional).toBe(false);
    // The shape's own Connect schemas are not modified.
    expect(after.columns[1]!.connect!.optional).toBe(false);
  });

  it('reads adjusted field names (field.name.adjustment.mode) as the row names them', () => {
    const shape = tableShape(
      'p',
      'public',
      't',
      [
        { name: 'id', kind: 'int', connect: { type: 'int32', optional: false } },
        { name: 'order-ref', kind: 'string', connect: { type: 'string', optional: false } },
      ],
      ['id'],
      'debezium',
    );
    const kept = debeziumSchemas(shape, 'avro', new Set(['order_ref']));
    expect(kept.row.fields!.find((f) => f.name === 'order_ref')!.schema.optional).toBe(true);
  });
});
