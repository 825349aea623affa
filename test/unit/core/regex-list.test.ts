import { describe, expect, it } from 'vitest';
import { parseRegexList, regexListFilter, splitRegexList } from '../../../services/core/regex-list.js';

describe("Debezium's include/exclude lists", () => {
  it('splits at commas not escaped, trims items and drops empty ones', () => {
    expect(splitRegexList(' a , b\\,c ,, d')).toEqual(['a', 'b,c', 'd']);
  });

  it('matches the whole name, case-insensitively', () => {
    const [p] = parseRegexList('audit\\..*');
    expect(p!.test('AUDIT.orders')).toBe(true);
    expect(p!.test('xaudit.orders')).toBe(false);
    expect(parseRegexList('outbox')[0]!.test('outbox.more')).toBe(false);
  });

  it('names the item that is not a regular expression', () => {
    expect(() => parseRegexList('ok,(broken')).toThrow(/"\(broken" is not a regular expression/);
  });

  it('an include list passes only its names, an exclude list every other, neither all', () => {
    const include = regexListFilter('a.*,b', undefined);
    expect(['a1', 'b', 'b1', 'c'].filter(include)).toEqual(['a1', 'b']);
    const exclude = regexListFilter(undefined, 'a.*,b');
    expect(['a1', 'b', 'b1', 'c'].filter(exclude)).toEqual(['b1', 'c']);
    expect(['x', ''].filter(regexListFilter(undefined, undefined))).toEqual(['x', '']);
    expect(['x'].filter(regexListFilter('  ', undefined))).toEqual(['x']);
  });
});
