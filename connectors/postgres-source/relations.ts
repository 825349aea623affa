/**
 * Builds a captured table's RelationState, either from a pgoutput Relation message (streaming) or from
 * the catalog (snapshots). Both give the same columns, kinds and key for the same table definition, so
 * snapshot and stream events share one registered schema.
 */
import type pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { ParityError } from '../../services/core/errors.js';
import { tableShape } from '../../services/core/table-shape.js';
import type { RelationState } from './change-builder.js';
import { type TypeResolver, keyColumnsOf, tableInfo } from './catalog.js';
import { decodedColumn } from './value-decoder.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export async function relationFromMessage(
  db: Queryable,
  types: TypeResolver,
  topicPrefix: string,
  message: Pgoutput.MessageRelation,
): Promise<RelationState> {
  const resolved = await types.resolve(message.columns.map((c) => c.typeOid));
  const columns = message.columns.map((c) => decodedColumn(c.name, resolved.get(c.typeOid)!));
  // The relation's own key flags mark every column under REPLICA IDENTITY FULL: the Kafka key comes
  // from the primary key in the catalog instead.
  const keyColumns = await keyColumnsOf(db, message.relationOid);
  return {
    oid: message.relationOid,
    schema: message.schema,
    table: message.name,
    columns,
    keyColumns,
    shape: tableShape(topicPrefix, message.schema, message.name, columns, keyColumns),
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
  const columns = info.columns.map((c) => decodedColumn(c.name, resolved.get(c.typeOid)!));
  const keyColumns = info.primaryKey.length > 0 ? info.primaryKey : info.identityIndexColumns;
  return {
    oid: info.oid,
    schema,
    table,
    columns,
    keyColumns,
    shape: tableShape(topicPrefix, schema, table, columns, keyColumns),
    name: `${schema}.${table}`,
  };
}
