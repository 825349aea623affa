/**
 * The versioned consumer against the real schema registry (Apicurio, Confluent-compatible API):
 * events written with v1 and v2 of a subject all come out in the v2 shape, with defaults.
 */
import { describe, expect, it } from 'vitest';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import { createVersionedConsumer } from '../../../services/client/versioned-consumer.js';
import { createSchemaRegistry } from '../../../services/core/clients.js';
import { STACK, uniqueName } from '../../support/stack.js';

const V1 = {
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'total_amount', type: 'int' },
  ],
};
const V2 = {
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'total_amount', type: 'int' },
    { name: 'total_amount_minor', type: ['null', 'long'], default: null },
    { name: 'currency', type: ['null', 'string'], default: null },
  ],
};

interface OrderV2 extends Record<string, unknown> {
  id: number;
  total_amount: number;
  total_amount_minor: number | null;
  currency: string | null;
}

describe('versioned consumer', () => {
  it('decodes v1 and v2 events into the v2 shape with defaults', async () => {
    const registry = createSchemaRegistry(STACK.PARITY_REGISTRY_URL);
    const subject = `${uniqueName('vc')}-value`;
    const { id: v1 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V1) }, { subject });
    const consumer = await createVersionedConsumer<OrderV2>({
      registry,
      subject,
      latest: 2,
      upgrades: { 1: (r) => ({ ...r, total_amount_minor: r.total_amount }) },
      defaults: { currency: 'USD' },
      nullIsMissing: true,
    });
    const oldEvent = await registry.encode(v1, { id: 1, total_amount: 1250 });
    // The producer moves on to v2 after the consumer started: the new id is resolved when first seen.
    const { id: v2 } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(V2) }, { subject });
    expect(v2).not.toBe(v1);
    const newEvent = await registry.encode(v2, { id: 2, total_amount: 990, total_amount_minor: 990, currency: 'EUR' });
    const newWithoutCurrency = await registry.encode(v2, { id: 3, total_amount: 5, total_amount_minor: 5, currency: null });

    expect(await consumer.decode(oldEvent)).toEqual({
      version: 1,
      record: { id: 1, total_amount: 1250, total_amount_minor: 1250, currency: 'USD' },
    });
    expect(await consumer.decode(newEvent)).toEqual({
      version: 2,
      record: { id: 2, total_amount: 990, total_amount_minor: 990, currency: 'EUR' },
    });
    expect((await consumer.decode(newWithoutCurrency)).record.currency).toBe('USD');

    const foreign = Buffer.from(newEvent);
    foreign.writeInt32BE(999_999_999, 1);
    await expect(consumer.decode(foreign)).rejects.toThrow(/schema id 999999999 is not one of versions 1..2/);

    // The subject is this test's own: remove it from the shared registry.
    for (const query of ['', '?permanent=true'])
      await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${encodeURIComponent(subject)}${query}`, { method: 'DELETE' });
  });
});
