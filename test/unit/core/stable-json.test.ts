import { describe, expect, test } from 'vitest';
import { stableJson } from '../../../services/core/table-shape.js';

describe('stableJson', () => {
  // Keys hash to partitions through this text: the scalar fast path must write exactly what the general path does.
  test('arrays of scalars and bigints read the same as the general path', () => {
    expect(stableJson([12n, 'a', 1.5, null, true])).toBe('["12","a",1.5,null,true]');
    expect(stableJson([9007199254740993n])).toBe('["9007199254740993"]');
    expect(stableJson(['123'])).toBe(stableJson([123n]));
    // A Buffer inside takes the general path: hex text.
    expect(stableJson([Buffer.from([1, 255]), 1n])).toBe('["01ff","1"]');
    // Nested values too.
    expect(stableJson([{ b: 2n }, [3n]])).toBe('[{"b":"2"},["3"]]');
  });
});
