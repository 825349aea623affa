import { expect, test } from 'vitest';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { STACK, uniqueName } from '../../support/stack.js';

const registry = new SchemaRegistry({ host: STACK.PARITY_REGISTRY_URL });

const v1 = {
  type: 'record',
  name: 'Order',
  namespace: 'shop',
  fields: [
    { name: 'id', type: 'long' },
    { name: 'total_amount', type: 'int' },
  ],
};
const v2Compatible = { ...v1, fields: [...v1.fields, { name: 'currency', type: 'string', default: 'USD' }] };
const v2Incompatible = { ...v1, fields: [...v1.fields, { name: 'currency', type: 'string' }] };

async function rest(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${STACK.PARITY_REGISTRY_URL}${path}`, {
    method,
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

test('an Avro schema registers through the ccompat API and a record round-trips in the wire format', async () => {
  const subject = `${uniqueName('orders')}-value`;
  const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
  const encoded = await registry.encode(id, { id: 42, total_amount: 1999 });
  expect(encoded[0]).toBe(0); // Confluent wire format: magic byte, then the 4-byte schema id
  expect(encoded.readInt32BE(1)).toBe(id);
  expect(await registry.decode(encoded)).toEqual({ id: 42, total_amount: 1999 });
});

test('a level set through REST is enforced: an incompatible version is rejected with 409', async () => {
  const subject = `${uniqueName('orders')}-value`;
  await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
  // register() quietly sets BACKWARD; the level is set explicitly, then read back.
  const put = await rest('PUT', `/config/${subject}`, { compatibility: 'FULL' });
  expect(put.status).toBe(200);
  const get = await rest('GET', `/config/${subject}`);
  expect(get.json.compatibilityLevel).toBe('FULL');

  const rejected = await rest('POST', `/subjects/${subject}/versions`, { schemaType: 'AVRO', schema: JSON.stringify(v2Incompatible) });
  expect(rejected.status).toBe(409);
  const accepted = await rest('POST', `/subjects/${subject}/versions`, { schemaType: 'AVRO', schema: JSON.stringify(v2Compatible) });
  expect(accepted.status).toBe(200);
  const versions = await rest('GET', `/subjects/${subject}/versions`);
  expect(versions.json).toHaveLength(2);
});
