import { describe, expect, test } from 'vitest';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { checkSubject } from '../../../services/compat-gate/registry.js';
import { STACK, uniqueName } from '../../support/stack.js';

const client = createCcompatClient(STACK.PARITY_REGISTRY_URL);

const order = (fields: unknown[]) => JSON.stringify({ type: 'record', name: 'Order', namespace: 'shop', fields });
const v1 = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
]);
const v2Compatible = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'long' },
  { name: 'currency', type: 'string', default: 'USD' },
]);
const v2Incompatible = order([
  { name: 'id', type: 'long' },
  { name: 'total_amount', type: 'int' },
  { name: 'currency', type: 'string' },
]);

describe('registry checks against the real registry (ccompat API)', () => {
  test('an incompatible schema is rejected on registration with 409, and the local checker predicted it', async () => {
    const subject = `${uniqueName('compat')}-value`;
    await client.setLevel(subject, 'BACKWARD');
    expect((await client.register(subject, v1, 'AVRO')).status).toBe(200);

    const check = await checkSubject(client, { subject, type: 'avro', level: 'BACKWARD', candidate: v2Incompatible });
    expect(check.local.compatible).toBe(false);
    expect(check.local.messages).toEqual([
      expect.objectContaining({
        rule: 'READER_FIELD_MISSING_DEFAULT_VALUE',
        location: '/fields/2',
        fieldPath: 'currency',
        direction: 'backward',
        version: 1,
      }),
    ]);
    expect(check.registry.compatible).toBe(false);
    expect(check.findings.map((f) => f.kind)).toEqual(['incompatible']);

    const rejected = await client.register(subject, v2Incompatible, 'AVRO');
    expect(rejected.status).toBe(409);
    expect(await client.versions(subject)).toEqual([1]);
  });

  test('a compatible schema is predicted compatible and registers', async () => {
    const subject = `${uniqueName('compat')}-value`;
    await client.setLevel(subject, 'FULL');
    await client.register(subject, v1, 'AVRO');
    // int -> long is backward but not forward: FULL rejects it.
    const full = await checkSubject(client, { subject, type: 'avro', level: 'FULL', candidate: v2Compatible });
    expect(full.local.compatible).toBe(false);
    expect(full.registry.compatible).toBe(false);
    expect(full.local.messages.map((m) => `${m.direction} ${m.rule} ${m.fieldPath}`)).toEqual(['forward TYPE_MISMATCH total_amount']);

    const backward = await checkSubject(client, { subject, type: 'avro', level: 'BACKWARD', candidate: v2Compatible });
    expect(await client.getLevel(subject)).toBe('BACKWARD');
    expect(backward.compatible).toBe(true);
    expect(backward.findings).toEqual([]);
    expect((await client.register(subject, v2Compatible, 'AVRO')).status).toBe(200);
  });

  test('transitive levels: the registry and the local checker both look past the latest version', async () => {
    const subject = `${uniqueName('compat')}-value`;
    await client.setLevel(subject, 'NONE');
    const a = order([
      { name: 'id', type: 'long' },
      { name: 'status', type: 'string' },
    ]);
    const b = order([
      { name: 'id', type: 'long' },
      { name: 'status', type: 'string', default: 'new' },
    ]);
    // Readable by b's readers (status has a default there) but not by a's.
    const c = order([{ name: 'id', type: 'long' }]);
    await client.register(subject, a, 'AVRO');
    await client.register(subject, b, 'AVRO');
    const latestOnly = await checkSubject(client, { subject, type: 'avro', level: 'FORWARD', candidate: c });
    expect([latestOnly.local.compatible, latestOnly.registry.compatible]).toEqual([true, true]);
    const all = await checkSubject(client, { subject, type: 'avro', level: 'FORWARD_TRANSITIVE', candidate: c });
    expect([all.local.compatible, all.registry.compatible]).toEqual([false, false]);
    expect(all.local.messages[0]).toMatchObject({ version: 1, fieldPath: 'status' });
    // checkSubject left the subject at FORWARD_TRANSITIVE: registration enforces what both predicted.
    expect((await client.register(subject, c, 'AVRO')).status).toBe(409);
  });

  test('JSON Schema: a verdict where Apicurio differs from Confluent is reported as a disagreement', async () => {
    const subject = `${uniqueName('compat')}-value`;
    await client.setLevel(subject, 'BACKWARD');
    const before = JSON.stringify({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { currency: { const: 'EUR' } },
    });
    const after = JSON.stringify({
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: { currency: { enum: ['EUR'] } },
    });
    expect((await client.register(subject, before, 'JSON')).status).toBe(200);
    const check = await checkSubject(client, { subject, type: 'json', level: 'BACKWARD', candidate: after });
    // Confluent: const -> enum is a TYPE_CHANGED; Apicurio accepts it.
    expect(check.local.messages.map((m) => `${m.rule} ${m.location}`)).toEqual(['TYPE_CHANGED #/properties/currency']);
    expect(check.registry.compatible).toBe(true);
    expect(check.findings.map((f) => f.kind).sort()).toEqual(['incompatible', 'registry-disagreement']);
  });
});
