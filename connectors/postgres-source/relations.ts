/**
 * Builds a captured table's RelationState, either from a pgoutput Relation message (streaming) or from
 * the catalog (snapshots). Both give the same columns, kinds and key for the same table definition, so
 * snapshot and stream events share one registered schema. Both read the column facts Debezium's
 * schema needs (typmod, NOT NULL, default, enum labels) from the catalog, at start and on each
 * Relation message (tables change during expand).
 */
import type pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { UNCHANGED_TOAST } from '../../services/core/change-event.js';
import {
  CONNECT_DECIMAL,
  type ConnectSchema,
  type ConnectStruct,
  type ConnectValue,
  twosComplementBytes,
} from '../../services/core/connect-schema.js';
import { ParityError } from '../../services/core/errors.js';
import { tableShape } from '../../services/core/table-shape.js';
import type { RelationState } from './change-builder.js';
import { type ColumnCatalogFacts, type SourceEncoding, type TypeResolver, columnFacts, keyColumnsOf, tableInfo } from './catalog.js';
import { type PgColumnFacts, debeziumColumn } from './debezium-types.js';
import { type DecodedColumn, type ResolvedType, decodedColumn } from './value-decoder.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Debezium's placeholder for an unchanged TOASTed value, in the column's own Connect type. */
function unavailableValue(schema: ConnectSchema): unknown {
  const scalar = (s: ConnectSchema): unknown =>
    s.type === 'string' ? UNCHANGED_TOAST : s.type === 'bytes' && s.name === undefined ? Buffer.from(UNCHANGED_TOAST) : null;
  if (schema.type === 'array') {
    const element = scalar(schema.items!);
    return element === null ? null : [element];
  }
  return scalar(schema);
}

/**
 * The value Debezium writes for a required column PostgreSQL did not send (a key-only old tuple): the
 * schema's default, else the type's zero (its JDBC converters' fallback).
 */
export function fallbackValue(schema: ConnectSchema): ConnectValue {
  if (schema.default !== undefined) return schema.default;
  switch (schema.type) {
    case 'int8':
    case 'int16':
    case 'int32':
    case 'float32':
    case 'float64':
      return 0;
    case 'int64':
      return 0n;
    case 'boolean':
      return false;
    case 'string':
      return '';
    case 'bytes':
      return schema.name === CONNECT_DECIMAL ? twosComplementBytes(0n) : Buffer.alloc(0);
    case 'array':
      return [];
    case 'map':
      return new Map();
    case 'struct': {
      const out: ConnectStruct = {};
      for (const f of schema.fields!) out[f.name] = f.schema.optional ? null : fallbackValue(f.schema);
      return out;
    }
  }
}

/** The PostgreSQL facts of one column, as debezium-types.ts reads them. */
export function pgColumnFacts(name: string, type: ResolvedType, facts: ColumnCatalogFacts | undefined, key: boolean): PgColumnFacts {
  const typmod = facts && facts.typmod >= 0 ? facts.typmod : (type.domainTypmod ?? -1);
  return {
    name,
    type: type.baseName ?? type.name.replace(/\[\]$/, ''),
    array: type.array,
    typmod,
    notNull: facts?.notNull ?? false,
    key,
    defaultExpr: facts?.defaultExpr ?? null,
    enumLabels: type.enumLabels ?? null,
    ...(type.delimiter === undefined ? {} : { delimiter: type.delimiter }),
  };
}

/**
 * The columns a relation's events carry: exact-text converters, or (debezium encoding) Debezium's
 * schema and converter per column, leaving out the columns Debezium leaves out (unknown types).
 */
function columnsFor(
  encoding: SourceEncoding,
  columns: { name: string; type: ResolvedType; facts: ColumnCatalogFacts | undefined }[],
  keyColumns: readonly string[],
): { columns: DecodedColumn[]; tuplePositions: number[] } {
  if (encoding.encoding === 'exact-text')
    return { columns: columns.map((c) => decodedColumn(c.name, c.type)), tuplePositions: columns.map((_, i) => i) };
  const out: DecodedColumn[] = [];
  const tuplePositions: number[] = [];
  for (const [position, c] of columns.entries()) {
    const column = debeziumColumn(pgColumnFacts(c.name, c.type, c.facts, keyColumns.includes(c.name)), encoding.debezium);
    if (!column) continue;
    const exact = decodedColumn(c.name, c.type);
    tuplePositions.push(position);
    out.push({
      ...exact,
      connect: column.schema,
      convert: column.fromText,
      unavailable: unavailableValue(column.schema),
      ...(column.schema.optional ? {} : { fallback: fallbackValue(column.schema) }),
    });
  }
  return { columns: out, tuplePositions };
}

export async function relationFromMessage(
  db: Queryable,
  types: TypeResolver,
  topicPrefix: string,
  message: Pgoutput.MessageRelation,
): Promise<RelationState> {
  const resolved = await types.resolve(message.columns.map((c) => c.typeOid));
  // The relation's own key flags mark every column under REPLICA IDENTITY FULL: the Kafka key comes
  // from the primary key in the catalog instead.
  const keyColumns = await keyColumnsOf(db, message.relationOid);
  const facts = types.encoding.encoding === 'debezium' ? await columnFacts(db, message.relationOid) : new Map<string, ColumnCatalogFacts>();
  const { columns, tuplePositions } = columnsFor(
    types.encoding,
    message.columns.map((c) => ({
      name: c.name,
      type: resolved.get(c.typeOid)!,
      // A column added after this Relation message was sent is not in it; a dropped one not in the catalog.
      facts: facts.get(c.name) ?? { typmod: c.typeMod, notNull: false, defaultExpr: null },
    })),
    keyColumns,
  );
  return {
    oid: message.relationOid,
    schema: message.schema,
    table: message.name,
    columns,
    tuplePositions,
    keyColumns,
    shape: tableShape(topicPrefix, message.schema, message.name, columns, keyColumns, types.encoding.encoding),
    name: `${message.schema}.${message.name}`,
  };
}

export async function relationFromCatalog(
  db: Queryable,
  types: TypeResolver,
  topicPrefix: string,
  schema: string,
  table: string,
): Promise<RelationState> {
  const info = await tableInfo(db, schema, table);
  if (!info)
    throw new ParityError('PARITY_BAD_INPUT', `table ${schema}.${table} does not exist on the source`, { hint: 'check the table name' });
  const resolved = await types.resolve(info.columns.map((c) => c.typeOid));
  const keyColumns = info.primaryKey.length > 0 ? info.primaryKey : info.identityIndexColumns;
  const { columns, tuplePositions } = columnsFor(
    types.encoding,
    info.columns.map((c) => ({ name: c.name, type: resolved.get(c.typeOid)!, facts: c })),
    keyColumns,
  );
  return {
    oid: info.oid,
    schema,
    table,
    columns,
    tuplePositions,
    keyColumns,
    shape: tableShape(topicPrefix, schema, table, columns, keyColumns, types.encoding.encoding),
    name: `${schema}.${table}`,
  };
}
