import { describe, expect, it } from 'vitest';
import { createVersionedDecoder, schemaIdOf } from '../../../services/client/versioned-consumer.js';
import { isParityError } from '../../../services/core/errors.js';

interface OrderV3 extends Record<string, unknown> {
  id: number;
  total_amount_minor: number;
  currency: string;
  channel: string;
}

const decoder = createVersionedDecoder<OrderV3>({
  latest: 3,
  upgrades: {
    1: (r) => ({ id: r.id, total_amount_minor: r.total_amount }),
    2: (r) => ({ ...r }),
  },
  defaults: { currency: 'USD', channel: 'web' },
});

describe('versioned decoder', () => {
  it('upgrades a v1 record through every version and fills defaults', () => {
    expect(decoder.upgrade({ id: 1, total_amount: 1250 }, 1)).toEqual({ id: 1, total_amount_minor: 1250, currency: 'USD', channel: 'web' });
  });

  it('keeps values a newer version carries and does not touch the input', () => {
    const input = { id: 2, total_amount_minor: 99, currency: 'EUR' };
    expect(decoder.upgrade(input, 2)).toEqual({ id: 2, total_amount_minor: 99, currency: 'EUR', channel: 'web' });
    expect(input).toEqual({ id: 2, total_amount_minor: 99, currency: 'EUR' });
  });

  it('leaves null alone unless nullIsMissing', () => {
    expect(decoder.upgrade({ id: 3, total_amount_minor: 1, currency: null, channel: 'app' }, 3).currency).toBeNull();
    const lenient = createVersionedDecoder<OrderV3>({ latest: 1, upgrades: {}, defaults: { currency: 'USD' }, nullIsMissing: true });
    expect(lenient.upgrade({ id: 3, currency: null }, 1).currency).toBe('USD');
  });

  it('refuses unknown versions, non-records and missing upgrade functions', () => {
    expect(() => decoder.upgrade({ id: 1 }, 4)).toThrow(/version 4/);
    expect(() => decoder.upgrade('x', 1)).toThrow(/not a record/);
    try {
      createVersionedDecoder({ latest: 3, upgrades: { 1: (r) => r } });
      expect.unreachable();
    } catch (err) {
      expect(isParityError(err, 'PARITY_BAD_INPUT')).toBe(true);
      expect((err as Error).message).toMatch(/version 2 to 3/);
    }
  });

  it('reads the schema id of the Confluent wire format', () => {
    expect(schemaIdOf(Buffer.from([0, 0, 0, 1, 7, 42]))).toBe(263);
    expect(() => schemaIdOf(Buffer.from([1, 0, 0, 0, 1]))).toThrow(/wire format/);
  });
});
