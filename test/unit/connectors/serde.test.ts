import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from '../../../connectors/kafka-sink/serde.js';
import { avroFieldName, avroNamespace, avroValueSchema } from '../../../connectors/kafka-sink/value-schema.js';
import { tableShape } from '../../../services/core/table-shape.js';
import { publicationOption, validateSlotName } from '../../../connectors/postgres-source/slot.js';

describe('serde helpers', () => {
  it('matches Kafka murmur2 reference values', () => {
    // From the Java client's UtilsTest: murmur2("21") = -973932308, murmur2("foobar") = -790332482.
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
  });

  it('pins a key to one partition whatever else is in the row', () => {
    const p = partitionForKey({ id: '42' }, ['id'], 6);
    expect(p).toBe(partitionForKey({ id: '42' }, ['id'], 6));
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(6);
    expect(partitionForKey(null, ['id'], 6)).toBe(0);
  });

  it('adjusts Avro names reversibly and keeps the column name in doc', () => {
    expect(avroFieldName('total_amount')).toBe('total_amount');
    expect(avroFieldName('weird col')).toBe('weird_u0020col');
    expect(avroFieldName('1st')).toBe('_1st');
    expect(avroNamespace('shop-eu.public.orders')).toBe('shop_u002deu.public.orders');
    const schema = avroValueSchema(tableShape('p', 'public', 't', [{ name: 'weird col', kind: 'string' }], []));
    const value = (schema.fields as { name: string; type: unknown[] }[])[0]!.type[1] as { fields: { name: string; doc?: string }[] };
    expect(value.fields[0]).toMatchObject({ name: 'weird_u0020col', doc: 'pg-column:weird col' });
  });

  it('validates slot names and quotes publication names for START_REPLICATION', () => {
    expect(() => validateSlotName('orders-cdc')).toThrow(/not a valid replication slot name/);
    expect(() => validateSlotName('orders_cdc')).not.toThrow();
    expect(publicationOption('Pub"x')).toBe('"Pub""x"');
  });
});
