import { describe, expect, it } from 'vitest';
import { DEBEZIUM_TYPE_DEFAULTS, debeziumColumn } from '../../../connectors/postgres-source/debezium-types.js';
import { arrayDelimiter, byteaToBase64, converterFor, parseArrayText } from '../../../connectors/postgres-source/value-decoder.js';
import { UNCHANGED_TOAST } from '../../../services/core/change-event.js';
import { decodeTuple } from '../../../connectors/postgres-source/change-builder.js';
import { decodedColumn } from '../../../connectors/postgres-source/value-decoder.js';

describe('value decoder', () => {
  it('keeps int8 exact as text and floats as their exact doubles, including NaN, infinities and -0', () => {
    expect(converterFor({ kind: 'int8', array: false, name: 'int8' })('9223372036854775807')).toBe('9223372036854775807');
    const f = converterFor({ kind: 'float', array: false, name: 'float8' });
    expect(f('0.30000000000000004')).toBe(0.1 + 0.2);
    expect(Number.isNaN(f('NaN') as number)).toBe(true);
    expect(f('Infinity')).toBe(Infinity);
    expect(f('-Infinity')).toBe(-Infinity);
    expect(Object.is(f('-0'), -0)).toBe(true);
  });

  it('turns bytea hex and escape output into base64', () => {
    expect(byteaToBase64('\\x00ff10')).toBe(Buffer.from([0, 255, 16]).toString('base64'));
    expect(byteaToBase64('\\x')).toBe('');
    expect(byteaToBase64('a\\000\\\\b')).toBe(Buffer.from([0x61, 0, 0x5c, 0x62]).toString('base64'));
  });

  it('parses array text: quoting, escapes, NULL, nesting, explicit bounds', () => {
    expect(parseArrayText('{}')).toEqual([]);
    expect(parseArrayText('{1,NULL,3}')).toEqual(['1', null, '3']);
    expect(parseArrayText('{"a b","c\\"d","NULL",NULL,"x\\\\y"}')).toEqual(['a b', 'c"d', 'NULL', null, 'x\\y']);
    expect(parseArrayText('{{1,2},{3,4}}')).toEqual([
      ['1', '2'],
      ['3', '4'],
    ]);
    expect(parseArrayText('[0:1]={7,8}')).toEqual(['7', '8']);
    expect(() => parseArrayText('{1,2')).toThrow(/unterminated|malformed/);
  });

  it("splits array text on the element type's delimiter: box[] uses ';', its elements hold commas", () => {
    // What PostgreSQL's array_out prints for box[] values (typdelim ';').
    expect(parseArrayText('{(1,1),(0,0);(3,3),(2,2)}', ';')).toEqual(['(1,1),(0,0)', '(3,3),(2,2)']);
    expect(parseArrayText('{(1,1),(0,0);NULL}', ';')).toEqual(['(1,1),(0,0)', null]);
    expect(parseArrayText('{{(1,1),(0,0);(2,2),(1,1)};{NULL;(4,4),(3,3)}}', ';')).toEqual([
      ['(1,1),(0,0)', '(2,2),(1,1)'],
      [null, '(4,4),(3,3)'],
    ]);
    // Quoted elements may hold the delimiter; a quoted NULL is the text NULL.
    expect(parseArrayText('{"a;b";"NULL";"c\\"d"}', ';')).toEqual(['a;b', 'NULL', 'c"d']);
    expect(parseArrayText('[2:3]={(1,1),(0,0);(2,2),(0,0)}', ';')).toEqual(['(1,1),(0,0)', '(2,2),(0,0)']);
    // The comma is an ordinary character under ';' and the other way round.
    expect(parseArrayText('{a,b;c}', ';')).toEqual(['a,b', 'c']);
    expect(parseArrayText('{a;b,c}')).toEqual(['a;b', 'c']);
    // With the wrong delimiter a 2-D box[] is refused, as it was before the fix.
    expect(() => parseArrayText('{{(1,1),(0,0)};{(2,2),(0,0)}}')).toThrow(/malformed/);
  });

  it('reads box[] by its delimiter in both encodings, from typdelim or the built-in knowledge', () => {
    expect(arrayDelimiter('box')).toBe(';');
    expect(arrayDelimiter('point')).toBe(',');
    const text = '{(1,1),(0,0);NULL;"(3,3),(2,2)"}';
    const expected = ['(1,1),(0,0)', null, '(3,3),(2,2)'];
    // The source's catalog gives typdelim; without it the element's name decides.
    expect(converterFor({ kind: 'string', array: true, name: 'box[]', baseName: 'box', delimiter: ';' })(text)).toEqual(expected);
    expect(converterFor({ kind: 'string', array: true, name: 'box[]', baseName: 'box' })(text)).toEqual(expected);
    expect(converterFor({ kind: 'string', array: true, name: 'box[]' })(text)).toEqual(expected);
    // A user type declared with DELIMITER '|' follows its typdelim.
    expect(converterFor({ kind: 'string', array: true, name: 'pair[]', baseName: 'pair', delimiter: '|' })('{1,2|3,4}')).toEqual([
      '1,2',
      '3,4',
    ]);
    // Debezium 3.6.0 knows no box: left out by default, opaque bytes per element with include.unknown.datatypes.
    const facts = { name: 'b', type: 'box', array: true, typmod: -1, notNull: false };
    expect(debeziumColumn(facts)).toBeNull();
    const column = debeziumColumn(facts, { ...DEBEZIUM_TYPE_DEFAULTS, 'include.unknown.datatypes': true })!;
    expect(column.schema).toMatchObject({ type: 'array', items: { type: 'bytes', optional: true } });
    expect(column.fromText(text)).toEqual(expected.map((v) => (v === null ? null : Buffer.from(v, 'utf8'))));
  });

  it('converts array elements with the element kind', () => {
    expect(converterFor({ kind: 'int', array: true, name: 'int4[]' })('{1,NULL,-3}')).toEqual([1, null, -3]);
    expect(converterFor({ kind: 'boolean', array: true, name: 'bool[]' })('{t,f}')).toEqual([true, false]);
    expect(converterFor({ kind: 'bytea', array: true, name: 'bytea[]' })('{"\\\\x01"}')).toEqual(['AQ==']);
  });

  it('maps a missing (unchanged TOAST) value to the placeholder and NULL to null, never undefined', () => {
    const columns = [
      decodedColumn('id', { kind: 'int', array: false, name: 'int4' }),
      decodedColumn('big', { kind: 'string', array: false, name: 'text' }),
      decodedColumn('n', { kind: 'string', array: false, name: 'text' }),
    ];
    const row = decodeTuple(columns, [0, 1, 2], ['1', undefined, null])!;
    expect(row).toEqual({ id: 1, big: UNCHANGED_TOAST, n: null });
    expect(Object.values(row).includes(undefined)).toBe(false);
  });
});
