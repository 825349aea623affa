import { describe, expect, it } from 'vitest';
import { jsonbText } from '../../../services/reconciler/jsonb-text.js';

describe('jsonbText (the text of x::jsonb)', () => {
  it('orders keys by length then bytes, spaces after ":" and ","', () => {
    expect(jsonbText('{"b":1.0, "a": [1e2, "x\\u00e9\\n"], "aa":null}')).toBe('{"a": [100, "xé\\n"], "b": 1.0, "aa": null}');
  });

  it('keeps the last of duplicate keys and drops insignificant whitespace', () => {
    expect(jsonbText(' { "k" : 1 ,\n "k": 2 } ')).toBe('{"k": 2}');
  });

  it('escapes like escape_json: quotes, backslashes, short escapes, other controls as \\u00xx', () => {
    expect(jsonbText('"a\\"b\\\\c\\/d\\u0001\\t"')).toBe('"a\\"b\\\\c/d\\u0001\\t"');
  });

  it('prints scalars and empty containers', () => {
    expect(jsonbText('true')).toBe('true');
    expect(jsonbText('[]')).toBe('[]');
    expect(jsonbText('{}')).toBe('{}');
    expect(jsonbText('-0.50')).toBe('-0.50');
  });

  it('orders multi-byte keys by their UTF-8 length, not their character count', () => {
    // "z" is 1 byte; "ab" and "é" are 2 bytes each, so they tie on length and "ab" (0x61) sorts before "é" (0xc3).
    expect(jsonbText('{"é": 1, "ab": 2, "z": 3}')).toBe('{"z": 3, "ab": 2, "é": 1}');
  });

  it('accepts already-parsed values', () => {
    expect(jsonbText({ b: [1, 2], a: 'x' })).toBe('{"a": "x", "b": [1, 2]}');
  });

  it('rejects text that is not JSON', () => {
    expect(() => jsonbText('{"a": }')).toThrow(SyntaxError);
    expect(() => jsonbText('[1, 2] x')).toThrow(SyntaxError);
  });
});
