import { describe, expect, it } from 'vitest';
import { cacheKeys, parseTemplate, renderKey, templatePattern } from '../../../services/cache-versioner/keys.js';
import { isParityError } from '../../../services/core/errors.js';

describe('key templates', () => {
  it('renders each {column} from the row, numbers and exact int8 strings alike', () => {
    const t = parseTemplate('v2', 'order:v2:{id}');
    expect(t.columns).toEqual(['id']);
    expect(renderKey(t, { id: 42 })).toBe('order:v2:42');
    expect(renderKey(t, { id: '9223372036854775807' })).toBe('order:v2:9223372036854775807');
  });

  it('renders several key columns in template order', () => {
    const t = parseTemplate('v1', 'line:{order_id}:{line_no}');
    expect(renderKey(t, { line_no: 3, order_id: 'a-1' })).toBe('line:a-1:3');
  });

  it('refuses a missing or null key value instead of writing "undefined"', () => {
    const t = parseTemplate('v1', 'order:v1:{id}');
    expect(() => renderKey(t, {})).toThrow(/no value for key column "id"/);
    expect(() => renderKey(t, { id: null })).toThrow(/no value for key column "id"/);
  });

  it('refuses templates without a column or with an empty {}', () => {
    let err: unknown;
    try {
      parseTemplate('v1', 'order:v1');
    } catch (e) {
      err = e;
    }
    expect(isParityError(err, 'PARITY_SPEC_INVALID')).toBe(true);
    expect(() => parseTemplate('v1', 'order:{}:{id}')).toThrow(/empty \{\}/);
  });

  it('builds a SCAN pattern with glob characters of the literal parts escaped', () => {
    expect(templatePattern(parseTemplate('v1', 'order:v1:{id}'))).toBe('order:v1:*');
    expect(templatePattern(parseTemplate('v1', 'o*[x]?:{id}:{b}'))).toBe('o\\*\\[x\\]\\?:*:*');
  });

  it('keeps control keys of one migration in one hash slot and leases on the entry slot', () => {
    const keys = cacheKeys('orders-multicurrency');
    expect(keys.config).toBe('parity:cache:{orders-multicurrency}:config');
    expect(keys.audit).toBe('parity:cache:{orders-multicurrency}:audit');
    expect(keys.written('v1', 12)).toBe('parity:cache:{orders-multicurrency}:written:v1:12');
    expect(keys.lease('order:v2:{42}')).toBe('parity:lease:order:v2:{42}');
  });
});
