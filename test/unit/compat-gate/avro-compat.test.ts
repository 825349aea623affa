import { describe, expect, test } from 'vitest';
import { checkAvroReaderWriter } from '../../../services/compat-gate/avro-compat.js';
import { parseAvroSchema } from '../../../services/compat-gate/avro-schema.js';
import { createAvroDatumReader, encodeAvroDatum } from '../../../services/compat-gate/avro-datum.js';
import { ParityError } from '../../../services/core/errors.js';

const check = (reader: unknown, writer: unknown) =>
  checkAvroReaderWriter(parseAvroSchema(JSON.stringify(reader)), parseAvroSchema(JSON.stringify(writer)));

const record = (name: string, fields: unknown[], extra: Record<string, unknown> = {}) => ({ type: 'record', name, fields, ...extra });

describe('Avro promotions', () => {
  test.each([
    ['long', 'int', true],
    ['float', 'int', true],
    ['float', 'long', true],
    ['double', 'float', true],
    ['double', 'long', true],
    ['bytes', 'string', true],
    ['string', 'bytes', true],
    ['int', 'long', false],
    ['float', 'double', false],
    ['long', 'float', false],
    ['string', 'int', false],
  ])('reader %s reads writer %s: %s', (reader, writer, ok) => {
    expect(check(reader, writer).length === 0).toBe(ok);
  });
});

describe('Avro records', () => {
  test('a reader field missing from the writer needs a default; the location and field path say which', () => {
    const writer = record('Order', [{ name: 'id', type: 'long' }]);
    const reader = record('Order', [
      { name: 'id', type: 'long' },
      { name: 'currency', type: 'string' },
    ]);
    const [inc, ...rest] = check(reader, writer);
    expect(rest).toEqual([]);
    expect(inc).toMatchObject({
      rule: 'READER_FIELD_MISSING_DEFAULT_VALUE',
      location: '/fields/1',
      fieldPath: 'currency',
      detail: 'currency',
    });
    expect(
      check(
        record('Order', [
          { name: 'id', type: 'long' },
          { name: 'currency', type: 'string', default: 'EUR' },
        ]),
        writer,
      ),
    ).toEqual([]);
  });

  test('a null default counts as a default', () => {
    const writer = record('R', []);
    expect(check(record('R', [{ name: 'x', type: ['null', 'string'], default: null }]), writer)).toEqual([]);
  });

  test('a writer field the reader does not know is skipped', () => {
    expect(check(record('R', []), record('R', [{ name: 'x', type: 'int' }]))).toEqual([]);
  });

  test('names are compared without namespace; reader aliases match the writer full name', () => {
    expect(check(record('a.b.R', []), record('x.y.R', []))).toEqual([]);
    expect(check(record('R2', []), record('R', []))[0]).toMatchObject({ rule: 'NAME_MISMATCH', location: '/name', detail: 'expected: R' });
    expect(check(record('R2', [], { namespace: 'ns', aliases: ['R'] }), record('R', [], { namespace: 'ns' }))).toEqual([]);
    // An unqualified alias takes the reader's namespace, so it does not match a writer elsewhere.
    expect(check(record('R2', [], { namespace: 'ns', aliases: ['R'] }), record('R', [], { namespace: 'other' }))).toHaveLength(1);
  });

  test('field aliases let a renamed field read the old one', () => {
    const writer = record('R', [{ name: 'total', type: 'long' }]);
    expect(check(record('R', [{ name: 'total_amount', type: 'long', aliases: ['total'] }]), writer)).toEqual([]);
  });

  test('nested records report nested locations and field paths', () => {
    const writer = record('Order', [{ name: 'address', type: record('Address', [{ name: 'zip', type: 'int' }]) }]);
    const reader = record('Order', [{ name: 'address', type: record('Address', [{ name: 'zip', type: 'string' }]) }]);
    expect(check(reader, writer)).toEqual([
      expect.objectContaining({ rule: 'TYPE_MISMATCH', location: '/fields/0/type/fields/0/type', fieldPath: 'address.zip' }),
    ]);
  });

  test('recursive records terminate and still find a change deep in the cycle', () => {
    const list = (valueType: string) => ({
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'value', type: valueType },
        { name: 'next', type: ['null', 'Node'], default: null },
      ],
    });
    expect(check(list('long'), list('int'))).toEqual([]);
    expect(check(list('int'), list('long'))).toEqual([expect.objectContaining({ rule: 'TYPE_MISMATCH', location: '/fields/0/type' })]);
  });
});

describe('Avro enums, fixed, unions', () => {
  const en = (symbols: string[], extra: Record<string, unknown> = {}) => ({ type: 'enum', name: 'E', symbols, ...extra });

  test('a reader enum must know every writer symbol unless it has an enum default', () => {
    expect(check(en(['A', 'B']), en(['A', 'B', 'C']))[0]).toMatchObject({
      rule: 'MISSING_ENUM_SYMBOLS',
      detail: '[C]',
      location: '/symbols',
    });
    expect(check(en(['A', 'B'], { default: 'A' }), en(['A', 'B', 'C']))).toEqual([]);
    expect(check(en(['A', 'B', 'C']), en(['A', 'B']))).toEqual([]);
  });

  test('fixed types need the same size', () => {
    expect(check({ type: 'fixed', name: 'F', size: 4 }, { type: 'fixed', name: 'F', size: 8 })[0]).toMatchObject({
      rule: 'FIXED_SIZE_MISMATCH',
      detail: 'expected: 8, found: 4',
      location: '/size',
    });
  });

  test('every writer union branch must be readable; a reader union reads a writer type if any branch does', () => {
    expect(check(['null', 'string'], ['null', 'string', 'int'])).toEqual([
      expect.objectContaining({ rule: 'MISSING_UNION_BRANCH', location: '/2' }),
    ]);
    expect(check(['null', 'long'], 'int')).toEqual([]);
    expect(check('string', ['null', 'string'])).toEqual([expect.objectContaining({ rule: 'TYPE_MISMATCH', location: '/0' })]);
  });
});

describe('Avro parsing', () => {
  test.each([
    ['not JSON', '{"type":'],
    ['unknown named type', '{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}'],
    ['enum default not a symbol', '{"type":"enum","name":"E","symbols":["A"],"default":"B"}'],
    ['duplicate field', '{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}'],
    ['record without fields', '{"type":"record","name":"R"}'],
  ])('%s is bad input', (_label, text) => {
    expect(() => parseAvroSchema(text)).toThrow(ParityError);
    try {
      parseAvroSchema(text);
    } catch (err) {
      expect((err as ParityError).code).toBe('PARITY_BAD_INPUT');
    }
  });

  test('names inside a namespaced record resolve against its namespace', () => {
    const schema = parseAvroSchema(
      JSON.stringify({
        type: 'record',
        name: 'Outer',
        namespace: 'com.acme',
        fields: [
          { name: 'a', type: { type: 'enum', name: 'Status', symbols: ['X'] } },
          { name: 'b', type: 'Status' },
          { name: 'c', type: 'com.acme.Status' },
        ],
      }),
    );
    expect(
      schema.type === 'record' && schema.fields[1]?.type === schema.fields[0]?.type && schema.fields[2]?.type === schema.fields[0]?.type,
    ).toBe(true);
  });
});

describe('reading datums across schema versions', () => {
  const v1 = record('Order', [
    { name: 'id', type: 'long' },
    { name: 'status', type: en() },
  ]);
  function en() {
    return { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID', 'REFUNDED'] };
  }
  const readerOld = record('Order', [
    { name: 'id', type: 'long' },
    { name: 'status', type: { type: 'enum', name: 'Status', symbols: ['NEW', 'PAID'] } },
    { name: 'note', type: 'string', default: '' },
  ]);

  test('a datum is read through promotions and defaults', () => {
    const reader = createAvroDatumReader(JSON.stringify(readerOld), JSON.stringify(v1));
    expect(reader.read(encodeAvroDatum(JSON.stringify(v1), { id: 7, status: 'PAID' }))).toEqual({ id: 7, status: 'PAID', note: '' });
  });

  test('only the datums that hit the gap fail (an unknown symbol), not the whole schema pair', () => {
    const reader = createAvroDatumReader(JSON.stringify(readerOld), JSON.stringify(v1));
    expect(() => reader.read(encodeAvroDatum(JSON.stringify(v1), { id: 8, status: 'REFUNDED' }))).toThrow(/No match for REFUNDED/);
  });

  test('union branches resolve by full name, then by unqualified name, then by promotion', () => {
    const branches = (ns: string, x: string, items: string, values: string, symbols: string[]) => ({
      type: 'record',
      name: 'E',
      namespace: ns,
      fields: [
        {
          name: 'after',
          type: [
            'null',
            { type: 'record', name: 'V', fields: [{ name: 'x', type: x }] },
            { type: 'array', items },
            { type: 'map', values },
            { type: 'enum', name: 'S', symbols },
          ],
        },
      ],
    });
    const writer = JSON.stringify(branches('a.b', 'int', 'int', 'string', ['A']));
    const reader = createAvroDatumReader(JSON.stringify(branches('other', 'long', 'long', 'bytes', ['A', 'B'])), writer);
    // avsc wraps ambiguous unions as {branch: value} when encoding.
    const read = (after: unknown) => reader.read(encodeAvroDatum(writer, { after }));
    expect(read(null)).toEqual({ after: null });
    expect(read({ 'a.b.V': { x: 3 } })).toEqual({ after: { x: 3 } });
    expect(read({ array: [1, 2] })).toEqual({ after: [1, 2] });
    expect(read({ map: { k: 'v' } })).toEqual({ after: { k: Buffer.from('v') } });
    expect(read({ 'a.b.S': 'A' })).toEqual({ after: 'A' });
  });
});
