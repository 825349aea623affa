/**
 * The CDC hot path's shortcuts give exactly what the general code gives: a one-column key's partition
 * (murmur2 of the key's canonical text, written into a reused buffer) and a Connect Decimal's bytes
 * (Number arithmetic instead of BigInt for small values).
 */
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from '../../../connectors/kafka-sink/serde.js';
import { parseDecimal, smallDecimalBytes } from '../../../connectors/postgres-source/debezium-types.js';
import { twosComplementBytes } from '../../../services/core/connect-schema.js';
import { stableJson } from '../../../services/core/table-shape.js';

/** The partition as the general path computes it (stableJson of the key values, murmur2, modulo). */
function reference(values: unknown[], partitions: number): number {
  return (murmur2(Buffer.from(stableJson(values))) & 0x7fffffff) % partitions;
}

describe('partitionForKey of a one-column key', () => {
  const values: unknown[] = [
    0,
    -0,
    1,
    -1,
    42,
    2 ** 31,
    -(2 ** 31) - 1,
    Number.MAX_SAFE_INTEGER,
    1.5,
    -0.000001,
    1e21,
    1e-7,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    0n,
    -5n,
    2n ** 63n - 1n,
    -(2n ** 70n),
    '',
    '42',
    'order-7',
    'quote " and backslash \\',
    'tab\tnewline\ncontrol\u0001',
    'ü€漢字',
    '😀 emoji',
    '\ud800 lone surrogate',
    '\u2028 line separator',
    'x'.repeat(100),
    'x'.repeat(101),
    '€'.repeat(100),
    '\u0001'.repeat(100),
    null,
    true,
    Buffer.from('ab'),
  ];

  it('lands where the canonical text of the key says, for every kind of value', () => {
    for (const partitions of [2, 3, 7, 12, 100]) {
      for (const v of values)
        expect(partitionForKey({ id: v }, ['id'], partitions), `${String(v)} / ${partitions}`).toBe(reference([v], partitions));
    }
    // A missing key column is null, as in the general path.
    expect(partitionForKey({}, ['id'], 7)).toBe(reference([null], 7));
  });

  it('spreads integer and bigint keys as before over many values', () => {
    for (let i = -2000; i < 20_000; i += 7) {
      expect(partitionForKey({ id: i }, ['id'], 3)).toBe(reference([i], 3));
      expect(partitionForKey({ id: BigInt(i) * 1_000_003n }, ['id'], 5)).toBe(reference([String(BigInt(i) * 1_000_003n)], 5));
    }
  });

  it('murmur2 over a prefix of a buffer equals murmur2 of that prefix', () => {
    const data = Buffer.from('a-little-bit-long-string with more');
    for (let n = 0; n <= data.length; n++) expect(murmur2(data, n)).toBe(murmur2(Buffer.from(data.subarray(0, n))));
  });
});

/** What the general path writes for `text` at `scale` (texts with at most `scale` fraction digits). */
function decimalReference(text: string, scale: number): Buffer {
  const [unscaled, from] = parseDecimal(text)!;
  return twosComplementBytes(unscaled * 10n ** BigInt(scale - from));
}

describe('smallDecimalBytes', () => {
  it('writes the general path bytes for plain decimal texts', () => {
    const texts = [
      '0',
      '0.00',
      '-0.00',
      '1',
      '-1',
      '1.5',
      '127',
      '128',
      '-128',
      '-129',
      '255',
      '256',
      '32767',
      '32768',
      '-32768',
      '-32769',
    ];
    texts.push('12.34', '-399841.62', '0.01', '-0.01', '000123.40', '999999999999.99', '-999999999999.99', '123456789012345');
    for (const text of texts) {
      for (const scale of [2, 4, 0]) {
        const frac = text.includes('.') ? text.split('.')[1]!.length : 0;
        if (frac > scale) continue;
        const fast = smallDecimalBytes(text, scale);
        const expected = decimalReference(text, scale);
        // Within 15 digits (scale included) the fast path must take it.
        if (text.replace(/[-.]/g, '').length + scale - frac <= 15) expect(fast, `${text} at scale ${scale}`).not.toBeNull();
        if (fast !== null) expect(fast.toString('hex'), `${text} at scale ${scale}`).toBe(expected.toString('hex'));
      }
    }
  });

  it('matches on the byte-size boundaries and random values up to 2^53', () => {
    for (let bits = 1; bits <= 53; bits++) {
      for (const n of [2 ** bits - 1, 2 ** bits, -(2 ** bits), -(2 ** bits) - 1]) {
        if (!Number.isSafeInteger(n) || String(Math.abs(n)).length > 15) continue;
        const text = String(n);
        expect(smallDecimalBytes(text, 0)!.toString('hex'), text).toBe(twosComplementBytes(BigInt(n)).toString('hex'));
      }
    }
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5000; i++) {
      const digits = 1 + Math.floor(random() * 13);
      const unscaled = Math.floor(random() * 10 ** digits) * (random() < 0.5 ? -1 : 1);
      const scale = Math.floor(random() * 3);
      const abs = String(Math.abs(unscaled)).padStart(scale + 1, '0');
      const text = `${unscaled < 0 ? '-' : ''}${scale > 0 ? `${abs.slice(0, -scale)}.${abs.slice(-scale)}` : abs}`;
      expect(smallDecimalBytes(text, 2)!.toString('hex'), text).toBe(decimalReference(text, 2).toString('hex'));
    }
  });

  it('leaves the rest to the general path', () => {
    // Rounding (more fraction digits than the scale), exponents, NaN and infinities, signs and spaces
    // PostgreSQL does not write, more digits than a double holds exactly, negative scales.
    for (const [text, scale] of [
      ['1.005', 2],
      ['1e5', 2],
      ['NaN', 2],
      ['Infinity', 2],
      ['-Infinity', 2],
      ['+1', 2],
      [' 1', 2],
      ['', 2],
      ['-', 2],
      ['.', 2],
      ['1.2.3', 2],
      ['1234567890123456', 0],
      ['99999999999999.9', 2],
      ['12', -1],
    ] as const)
      expect(smallDecimalBytes(text, scale), `${text} at scale ${scale}`).toBeNull();
  });
});
