import { describe, expect, it } from 'vitest';
import { UNCHANGED_TOAST } from '../../../services/core/change-event.js';
import { canonicalPayload, decodeValue, encodeValue, projectRow } from '../../../services/cache-versioner/payload.js';
import { compareEntry } from '../../../services/cache-versioner/inspector.js';
import type { CacheEntry } from '../../../services/cache-versioner/entry.js';

describe('payload', () => {
  it('round-trips change-event values, floats without a JSON form as strings', () => {
    for (const v of [true, 3, '9223372036854775807', '12.50', null, ['a', null], 1.5]) expect(decodeValue(encodeValue(v))).toEqual(v);
    expect(encodeValue(NaN)).toBe('"NaN"');
    expect(encodeValue(-Infinity)).toBe('"-Infinity"');
    expect(encodeValue(-0)).toBe('"-0"');
    expect(encodeValue(undefined)).toBe('null');
  });

  it('projects the listed columns, a missing one as null, and separates unchanged TOAST columns', () => {
    const p = projectRow({ id: 1, a: 'x', big: UNCHANGED_TOAST }, ['id', 'big', 'missing']);
    expect(p.columns).toEqual([
      ['id', '1'],
      ['missing', 'null'],
    ]);
    expect(p.unchanged).toEqual(['big']);
    expect(projectRow({ b: 1, a: 2 }, undefined).columns).toEqual([
      ['b', '1'],
      ['a', '2'],
    ]);
  });

  it('compares payloads independent of column order', () => {
    expect(
      canonicalPayload([
        ['b', '1'],
        ['a', '2'],
      ]),
    ).toBe(
      canonicalPayload([
        ['a', '2'],
        ['b', '1'],
      ]),
    );
  });
});

describe('compareEntry', () => {
  const entry = (kind: CacheEntry['kind'], columns: Array<[string, string]>): CacheEntry => ({
    key: 'k',
    position: '0000000000000001:0000000000',
    kind,
    keyValues: { id: 1 },
    commitTimeUs: null,
    writtenAtMs: 0,
    columns: new Map(columns),
  });
  it('accepts an equal row and names the differing columns otherwise', () => {
    expect(
      compareEntry(
        entry('value', [
          ['id', '1'],
          ['c', '"USD"'],
        ]),
        { id: 1, c: 'USD' },
        undefined,
      ).ok,
    ).toBe(true);
    expect(
      compareEntry(
        entry('value', [
          ['id', '1'],
          ['c', '"USD"'],
        ]),
        { id: 1, c: 'EUR' },
        undefined,
      ),
    ).toEqual({ ok: false, reason: 'value differs', columns: ['c'] });
  });
  it('flags a value for a deleted row and a tombstone for an existing row', () => {
    expect(compareEntry(entry('value', [['id', '1']]), null, undefined).reason).toBe('row deleted');
    expect(compareEntry(entry('tombstone', []), { id: 1 }, undefined).reason).toBe('row exists');
    expect(compareEntry(entry('tombstone', []), null, undefined).ok).toBe(true);
  });
});
