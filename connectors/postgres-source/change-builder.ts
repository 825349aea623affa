/**
 * pgoutput messages -> row changes with exact values. Decisions that consumers rely on:
 * - update/delete `before`: the whole old row with REPLICA IDENTITY FULL; otherwise updates carry no
 *   before-image (null) and deletes carry the key columns with every other column null (Debezium's
 *   behaviour).
 * - a primary-key change becomes a delete of the old key followed by a create of the new key, in that
 *   order and in the same transaction (Debezium's behaviour; the debezium encoding adds the tombstone
 *   and the old/new key headers, services/cdc/pipeline.ts).
 * - an unchanged TOASTed value that PostgreSQL did not send becomes UNCHANGED_TOAST, never undefined.
 * - TRUNCATE becomes one `op: t` change per truncated table, with no key and no rows.
 */
import { type Op, type Row, UNCHANGED_TOAST } from '../../services/core/change-event.js';
import { ParityError } from '../../services/core/errors.js';
import type { Lsn } from '../../services/core/lsn.js';
import { type TableShape, stableJson } from '../../services/core/table-shape.js';
import type { TupleTexts } from './pgoutput-rows.js';
import type { PgoutputMessage } from './replication-stream.js';
import type { DecodedColumn } from './value-decoder.js';

/** A captured table as of its latest Relation message. */
export interface RelationState {
  oid: number;
  schema: string;
  table: string;
  columns: DecodedColumn[];
  /** `columns[i]`'s index in a pgoutput tuple of this relation (the debezium encoding leaves some out). */
  tuplePositions: number[];
  /** Kafka key columns: the primary key (else the replica identity index). */
  keyColumns: string[];
  shape: TableShape;
  /** "schema.table", as metrics and logs name the table. */
  name: string;
}

export interface SourceChange {
  relation: RelationState;
  op: Op;
  key: Row | null;
  before: Row | null;
  after: Row | null;
  /** The LSN of the change record itself (Debezium's source.lsn). */
  changeLsn: Lsn;
  /** Set on the delete and the create a primary-key change becomes (Debezium's key-change headers). */
  keyChange?: { oldKey: Row; newKey: Row };
}

type Tuple = TupleTexts | null | undefined;

/**
 * A value a column's converter refuses (a timestamp beyond what the encoding's field can hold, text it
 * cannot read) stops the stream; the error names the table, the column and the value's fate, so the
 * operator knows what to fix. The converter's own code and hint are kept.
 */
export function columnValueError(err: unknown, table: string | undefined, column: string): ParityError {
  const where = `${table ? `table ${table}, ` : ''}column ${column}`;
  if (err instanceof ParityError) {
    return new ParityError(err.code, `${where}: ${err.message}`, {
      ...(err.hint ? { hint: err.hint } : {}),
      details: { ...err.details, ...(table ? { table } : {}), column },
      cause: err,
    });
  }
  return new ParityError('PARITY_DECODE', `${where}: ${(err as Error).message}`, { details: { column }, cause: err });
}

/**
 * Converts a pgoutput tuple (all text, by position: `positions[i]` is `columns[i]`'s index in it) to
 * exact values; missing (unchanged TOAST) -> placeholder.
 */
export function decodeTuple(columns: DecodedColumn[], positions: readonly number[], tuple: Tuple, table?: string): Row | null {
  if (!tuple) return null;
  const row: Row = {};
  let i = 0;
  try {
    for (; i < columns.length; i++) {
      const column = columns[i]!;
      const text = tuple[positions[i]!];
      row[column.name] =
        text === undefined
          ? column.unavailable !== undefined
            ? column.unavailable
            : UNCHANGED_TOAST
          : text === null
            ? null
            : column.convert(text);
    }
  } catch (err) {
    throw columnValueError(err, table, columns[i]!.name);
  }
  return row;
}

/**
 * A key-only tuple (REPLICA IDENTITY DEFAULT/INDEX): key columns set, every other column null (in the
 * debezium encoding a required column holds its fallback, as Debezium writes it).
 */
function decodeKeyTuple(columns: DecodedColumn[], positions: readonly number[], tuple: Tuple, table: string): Row | null {
  if (!tuple) return null;
  const row: Row = {};
  let i = 0;
  try {
    for (; i < columns.length; i++) {
      const column = columns[i]!;
      const text = tuple[positions[i]!];
      row[column.name] = text === undefined || text === null ? (column.fallback ?? null) : column.convert(text);
    }
  } catch (err) {
    throw columnValueError(err, table, columns[i]!.name);
  }
  return row;
}

export function keyOf(relation: RelationState, row: Row | null): Row | null {
  if (!row || relation.keyColumns.length === 0) return null;
  const key: Row = {};
  for (const column of relation.keyColumns) key[column] = row[column] ?? null;
  return key;
}

/** Canonical text of a key, for comparisons (DBLog eviction, PK-change detection). */
export function keyText(key: Row | null): string {
  return key ? stableJson(Object.values(key)) : '';
}

/** The row changes one data message stands for (empty for messages that carry no row). */
export function changesOf(
  message: PgoutputMessage,
  changeLsn: Lsn,
  relationFor: (oid: number) => RelationState | undefined,
): SourceChange[] {
  switch (message.tag) {
    case 'insert': {
      const relation = required(relationFor(message.relation.relationOid), message.relation.relationOid);
      const after = decodeTuple(relation.columns, relation.tuplePositions, message.new, relation.name);
      return [{ relation, op: 'c', key: keyOf(relation, after), before: null, after, changeLsn }];
    }
    case 'update': {
      const relation = required(relationFor(message.relation.relationOid), message.relation.relationOid);
      const after = decodeTuple(relation.columns, relation.tuplePositions, message.new, relation.name);
      const before = message.old
        ? decodeTuple(relation.columns, relation.tuplePositions, message.old, relation.name)
        : message.key
          ? decodeKeyTuple(relation.columns, relation.tuplePositions, message.key, relation.name)
          : null;
      const newKey = keyOf(relation, after);
      const oldKey = before ? keyOf(relation, before) : null;
      if (oldKey && newKey && keyText(oldKey) !== keyText(newKey)) {
        const keyChange = { oldKey, newKey };
        return [
          { relation, op: 'd', key: oldKey, before, after: null, changeLsn, keyChange },
          { relation, op: 'c', key: newKey, before: null, after, changeLsn, keyChange },
        ];
      }
      // Without REPLICA IDENTITY FULL there is no before-image, only (when the key changed) the old key.
      return [{ relation, op: 'u', key: newKey, before: message.old ? before : null, after, changeLsn }];
    }
    case 'delete': {
      const relation = required(relationFor(message.relation.relationOid), message.relation.relationOid);
      const before = message.old
        ? decodeTuple(relation.columns, relation.tuplePositions, message.old, relation.name)
        : decodeKeyTuple(relation.columns, relation.tuplePositions, message.key, relation.name);
      return [{ relation, op: 'd', key: keyOf(relation, before), before, after: null, changeLsn }];
    }
    case 'truncate': {
      const out: SourceChange[] = [];
      for (const rel of message.relations) {
        if (!rel) continue;
        const relation = relationFor(rel.relationOid);
        if (relation) out.push({ relation, op: 't', key: null, before: null, after: null, changeLsn });
      }
      return out;
    }
    default:
      return [];
  }
}

function required(relation: RelationState | undefined, oid: number): RelationState {
  if (!relation) throw new Error(`change for relation ${oid} before its Relation message`);
  return relation;
}
