import { describe, expect, it } from 'vitest';
import { createChangeEncoder } from '../../../connectors/kafka-sink/serde.js';
import { tableShape } from '../../../services/core/table-shape.js';
import type { RegistryClient } from '../../../connectors/kafka-sink/registry-client.js';
import type { ChangeEnvelope } from '../../../services/core/change-event.js';

/** A stand-in registry: every schema gets id 1 (the encoder only needs an id). */
const registry = { register: async () => 1 } as unknown as RegistryClient;

describe('Avro encoding errors (17.5)', () => {
  it('name the column and its types, never the value (it reaches the pause reason, /healthz and cdc status)', async () => {
    const shape = tableShape(
      'p',
      'public',
      'people',
      [
        { name: 'id', kind: 'int', pgType: 'int4' },
        { name: 'age', kind: 'int', pgType: 'int4' },
      ],
      ['id'],
    );
    const encoder = await createChangeEncoder({ registry, format: 'avro' }).forTable(shape);
    const after = { id: 1, age: 'Jane Doe, 12 Acacia Avenue' } as unknown as Record<string, unknown>;
    const envelope = { before: null, after, source: {}, op: 'c', ts_ms: 0 } as unknown as ChangeEnvelope;
    let error: Error | undefined;
    try {
      encoder.encodeValue(envelope);
    } catch (err) {
      error = err as Error;
    }
    expect(error).toMatchObject({ code: 'PARITY_SERIALIZE' });
    expect(error?.message).toMatch(/column age \(int4, Avro int\)/);
    expect(error?.message).not.toContain('Jane Doe');
    expect(JSON.stringify((error as unknown as { details: unknown }).details)).not.toContain('Jane Doe');
  });
});
