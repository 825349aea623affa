/**
 * pgoutput row messages read by position: the same values the replication library reads by name, for
 * every tuple kind (text, NULL, unchanged TOAST) and every Update/Delete form, checked against the
 * library's own parser on the same bytes; malformed messages are refused, never half-read.
 */
import { type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { columnText, parseRowMessage, type TupleTexts } from '../../../connectors/postgres-source/pgoutput-rows.js';
import { TextPgoutputPlugin } from '../../../connectors/postgres-source/replication-stream.js';

type Value = string | null | 'TOAST';

const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const cstring = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const byte = (c: string) => Buffer.from(c, 'latin1');

function relationMessage(oid: number, names: string[], keys: string[]): Buffer {
  const columns = names.map((name) => Buffer.concat([Buffer.from([keys.includes(name) ? 1 : 0]), cstring(name), int32(25), int32(-1)]));
  return Buffer.concat([byte('R'), int32(oid), cstring('public'), cstring('t'), byte('d'), int16(names.length), ...columns]);
}

function tupleData(values: Value[]): Buffer {
  const parts = values.map((v) => {
    if (v === null) return byte('n');
    if (v === 'TOAST') return byte('u');
    const text = Buffer.from(v, 'utf8');
    return Buffer.concat([byte('t'), int32(text.length), text]);
  });
  return Buffer.concat([int16(values.length), ...parts]);
}

const insert = (oid: number, values: Value[]) => Buffer.concat([byte('I'), int32(oid), byte('N'), tupleData(values)]);
const update = (oid: number, values: Value[], before?: { kind: 'K' | 'O'; values: Value[] }) =>
  Buffer.concat([byte('U'), int32(oid), ...(before ? [byte(before.kind), tupleData(before.values)] : []), byte('N'), tupleData(values)]);
const del = (oid: number, kind: 'K' | 'O', values: Value[]) => Buffer.concat([byte('D'), int32(oid), byte(kind), tupleData(values)]);

const NAMES = ['id', 'name', 'body', 'note'];

/** Both parsers, fed the same Relation message first. */
function parsers() {
  const library = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const ours = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const relation = relationMessage(16_384, NAMES, ['id']);
  library.parse(relation);
  ours.parse(relation);
  return { library, ours };
}

/** The library's tuple (by name) as positions, for comparison. */
const byPosition = (tuple: Record<string, unknown> | null) => (tuple ? NAMES.map((n) => tuple[n]) : null);

describe('pgoutput row messages by position', () => {
  const cases: [string, Buffer][] = [
    ['insert with text, unicode, empty and NULL', insert(16_384, ['1', 'Zoë 🚀', '', null])],
    ['update without a before-image', update(16_384, ['2', 'b', 'TOAST', null])],
    ['update with the old key (key changed)', update(16_384, ['3', 'c', 'x', null], { kind: 'K', values: ['2', null, null, null] })],
    [
      'update with the whole old row (unchanged TOAST taken from it)',
      update(16_384, ['4', 'd', 'TOAST', 'n'], { kind: 'O', values: ['4', 'c', 'long body', null] }),
    ],
    ['delete with the key', del(16_384, 'K', ['5', null, null, null])],
    ['delete with the whole old row', del(16_384, 'O', ['6', 'f', 'g', 'h'])],
  ];
  for (const [name, buffer] of cases) {
    it(`${name}: same values as the library's parser`, () => {
      const { library, ours } = parsers();
      const expected = library.parse(buffer) as Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete;
      const actual = ours.parse(buffer);
      expect(actual.tag).toBe(expected.tag);
      if (actual.tag !== 'insert' && actual.tag !== 'update' && actual.tag !== 'delete') throw new Error('not a row message');
      expect(actual.relation.relationOid).toBe(16_384);
      if ('new' in actual) expect(actual.new).toEqual(byPosition((expected as Pgoutput.MessageInsert).new));
      if (actual.tag !== 'insert') {
        const e = expected as Pgoutput.MessageUpdate | Pgoutput.MessageDelete;
        expect(actual.old).toEqual(byPosition(e.old));
        // The library keeps only key columns of a key tuple; PostgreSQL sends the others as NULL.
        if (e.key) expect(actual.key?.[0]).toBe(e.key.id);
        else expect(actual.key).toBeNull();
      }
    });
  }

  it('keeps an unchanged TOAST value undefined when there is no old row to take it from', () => {
    const { ours } = parsers();
    const message = ours.parse(update(16_384, ['7', 'TOAST', 'TOAST', null]));
    expect(message.tag === 'update' && message.new).toEqual(['7', undefined, undefined, null]);
  });

  it('columnText finds a column by name', () => {
    const { ours } = parsers();
    const message = ours.parse(insert(16_384, ['8', 'eight', 'b', null]));
    if (message.tag !== 'insert') throw new Error('not an insert');
    expect(columnText(message.relation, message.new, 'name')).toBe('eight');
    expect(columnText(message.relation, message.new, 'note')).toBeNull();
    expect(columnText(message.relation, message.new, 'missing')).toBeUndefined();
  });

  it('refuses a row message of an unknown relation, a truncated message, a wrong column count and binary values', () => {
    const relations = new Map<number, Pgoutput.MessageRelation>();
    const { ours } = parsers();
    const known = ours.parse(relationMessage(16_385, ['a'], ['a'])) as Pgoutput.MessageRelation;
    relations.set(16_385, known);
    const relationFor = (oid: number) => relations.get(oid);
    expect(() => parseRowMessage(insert(99, ['1']), relationFor)).toThrow(/relation 99 before its Relation message/);
    const whole = insert(16_385, ['12345']);
    expect(() => parseRowMessage(whole.subarray(0, whole.length - 2), relationFor)).toThrow(/ends early/);
    expect(() => parseRowMessage(insert(16_385, ['1', '2']), relationFor)).toThrow(/2 columns, its relation 1/);
    const binary = Buffer.concat([byte('I'), int32(16_385), byte('N'), int16(1), byte('b'), int32(1), Buffer.from([7])]);
    expect(() => parseRowMessage(binary, relationFor)).toThrow(/column kind b/);
    expect(() => parseRowMessage(Buffer.concat([byte('I'), int32(16_385), byte('K'), tupleData(['1'])]), relationFor)).toThrow(
      /tuple kind K in a pgoutput insert/,
    );
  });

  it('reads a relation oid above 2^31 (oids are unsigned)', () => {
    const { ours } = parsers();
    ours.parse(relationMessage(3_000_000_000, ['a'], ['a']));
    const message = ours.parse(insert(3_000_000_000, ['x']));
    expect(message.tag === 'insert' && (message.new as TupleTexts)).toEqual(['x']);
  });
});
