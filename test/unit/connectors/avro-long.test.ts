import { describe, expect, test } from 'vitest';
import { readLong, writeLong } from '../../../connectors/kafka-sink/serde.js';

/** The zig-zag varint of a long, straight from the Avro specification, in BigInt. */
function reference(value: bigint): Buffer {
  let z = value >= 0n ? value << 1n : (-value << 1n) - 1n;
  const out: number[] = [];
  while (z >= 0x80n) {
    out.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  out.push(Number(z));
  return Buffer.from(out);
}

const EDGES = [0n, 1n, -1n, 63n, 64n, -64n, -65n, 2n ** 31n, 2n ** 35n - 1n, 2n ** 35n, 2n ** 52n - 1n, 2n ** 52n, -(2n ** 52n)];
const MORE = [2n ** 53n + 1n, 1_765_000_000_123_456_789n, -1_765_000_000_123_456_789n, 2n ** 63n - 1n, -(2n ** 63n)];

describe('Avro long varints', () => {
  test('every input form writes the specification bytes, and reads back exactly', () => {
    const values = [...EDGES, ...MORE];
    for (let i = 0; i < 2000; i++) {
      const bits = BigInt(Math.floor(Math.random() * 64));
      const v = BigInt.asIntN(64, BigInt(Math.floor(Math.random() * 2 ** 53)) << bits);
      values.push(v, -v);
    }
    for (const v of values) {
      const expected = reference(v);
      expect(Buffer.from(writeLong(v)), `bigint ${v}`).toEqual(expected);
      expect(Buffer.from(writeLong(v.toString())), `string ${v}`).toEqual(expected);
      if (Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v)
        expect(Buffer.from(writeLong(Number(v))), `number ${v}`).toEqual(expected);
      expect(readLong(Buffer.from(expected))).toBe(v.toString());
    }
  });
});
