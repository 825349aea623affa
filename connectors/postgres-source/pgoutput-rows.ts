/**
 * pgoutput's row messages (Insert, Update, Delete) read by column position, as text.
 *
 * The replication library reads every column into a null-prototype object keyed by column name (a
 * hash map in V8) through a TextDecoder and a subarray per value; on the CDC hot path that was the
 * largest single share of the connector's CPU. Here a tuple is an array in the Relation message's
 * column order, each value read with one `Buffer#toString` straight from the message. Everything else
 * (Begin, Commit, Relation, Type, Origin, Truncate, logical messages) stays the library's.
 *
 * The meaning of each value is the library's: a string for a text value, null for SQL NULL, undefined
 * for an unchanged TOASTed value PostgreSQL did not send (an update's new tuple takes the old tuple's
 * value when there is one, as the library does). Format:
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */
import type { Pgoutput } from 'pg-logical-replication';

/** One column of a tuple: text, null (SQL NULL) or undefined (unchanged TOAST, not sent). */
export type ColumnText = string | null | undefined;

/** A tuple by column position: `tuple[i]` is `relation.columns[i]`. */
export type TupleTexts = ColumnText[];

export interface RowInsert {
  tag: 'insert';
  relation: Pgoutput.MessageRelation;
  new: TupleTexts;
}

export interface RowUpdate {
  tag: 'update';
  relation: Pgoutput.MessageRelation;
  /** The old key (REPLICA IDENTITY DEFAULT/INDEX, key changed): every non-key column null. */
  key: TupleTexts | null;
  /** The whole old row (REPLICA IDENTITY FULL). */
  old: TupleTexts | null;
  new: TupleTexts;
}

export interface RowDelete {
  tag: 'delete';
  relation: Pgoutput.MessageRelation;
  key: TupleTexts | null;
  old: TupleTexts | null;
}

export type RowMessage = RowInsert | RowUpdate | RowDelete;

const INSERT = 0x49; // 'I'
const UPDATE = 0x55; // 'U'
const DELETE = 0x44; // 'D'
const KEY = 0x4b; // 'K'
const OLD = 0x4f; // 'O'
const NEW = 0x4e; // 'N'
const TEXT = 0x74; // 't'
const NULL = 0x6e; // 'n'
const UNCHANGED_TOAST = 0x75; // 'u'

/** True for the message tags `parseRowMessage` reads. */
export function isRowMessage(buffer: Buffer): boolean {
  const tag = buffer[0];
  return tag === INSERT || tag === UPDATE || tag === DELETE;
}

/**
 * Reads an Insert, Update or Delete message (protocol version 1: no transaction id before the
 * relation). `relationFor` gives the relation of an oid as its latest Relation message described it.
 */
export function parseRowMessage(buffer: Buffer, relationFor: (oid: number) => Pgoutput.MessageRelation | undefined): RowMessage {
  const reader = new TupleReader(buffer);
  const tag = reader.byte();
  const oid = reader.int32() >>> 0;
  const relation = relationFor(oid);
  if (!relation) throw new Error(`pgoutput ${String.fromCharCode(tag)} message for relation ${oid} before its Relation message`);
  const width = relation.columns.length;
  const kind = reader.byte();
  switch (tag) {
    case INSERT:
      expect(kind, NEW, 'insert');
      return { tag: 'insert', relation, new: reader.tuple(width, null) };
    case UPDATE: {
      if (kind === NEW) return { tag: 'update', relation, key: null, old: null, new: reader.tuple(width, null) };
      if (kind !== KEY && kind !== OLD) throw unexpected(kind, 'update');
      const before = reader.tuple(width, null);
      expect(reader.byte(), NEW, 'update');
      if (kind === KEY) return { tag: 'update', relation, key: before, old: null, new: reader.tuple(width, null) };
      return { tag: 'update', relation, key: null, old: before, new: reader.tuple(width, before) };
    }
    case DELETE: {
      if (kind !== KEY && kind !== OLD) throw unexpected(kind, 'delete');
      const before = reader.tuple(width, null);
      return kind === KEY ? { tag: 'delete', relation, key: before, old: null } : { tag: 'delete', relation, key: null, old: before };
    }
    default:
      throw new Error(`not a pgoutput row message: ${String.fromCharCode(tag)}`);
  }
}

/** The text of column `name` in a tuple of `relation` (undefined when the relation has no such column). */
export function columnText(relation: Pgoutput.MessageRelation, tuple: TupleTexts, name: string): ColumnText {
  const columns = relation.columns;
  for (let i = 0; i < columns.length; i++) if (columns[i]!.name === name) return tuple[i];
  return undefined;
}

function expect(kind: number, wanted: number, what: string): void {
  if (kind !== wanted) throw unexpected(kind, what);
}

function unexpected(kind: number, what: string): Error {
  return new Error(`unexpected tuple kind ${String.fromCharCode(kind)} in a pgoutput ${what} message`);
}

class TupleReader {
  private position = 0;

  constructor(private readonly buffer: Buffer) {}

  byte(): number {
    this.need(1);
    return this.buffer[this.position++]!;
  }

  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.position);
    this.position += 4;
    return value;
  }

  /**
   * A TupleData of `width` columns. `fallback`: an update's old tuple, whose value stands in for an
   * unchanged TOASTed column of the new one.
   */
  tuple(width: number, fallback: TupleTexts | null): TupleTexts {
    const count = this.int16();
    if (count !== width) throw new Error(`pgoutput tuple has ${count} columns, its relation ${width}`);
    const out: TupleTexts = new Array(count);
    const buffer = this.buffer;
    for (let i = 0; i < count; i++) {
      const kind = this.byte();
      if (kind === TEXT) {
        const length = this.int32();
        this.need(length);
        out[i] = buffer.toString('utf8', this.position, this.position + length);
        this.position += length;
      } else if (kind === NULL) {
        out[i] = null;
      } else if (kind === UNCHANGED_TOAST) {
        out[i] = fallback ? fallback[i] : undefined;
      } else {
        // 'b' (binary) only comes with the `binary` option, which parity never asks for.
        throw new Error(`unexpected column kind ${String.fromCharCode(kind)} in a pgoutput tuple`);
      }
    }
    return out;
  }

  private int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.position);
    this.position += 2;
    return value;
  }

  private need(n: number): void {
    if (this.position + n > this.buffer.length) throw new Error('pgoutput message ends early');
  }
}
