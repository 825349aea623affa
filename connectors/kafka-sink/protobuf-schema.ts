/**
 * Protobuf schemas derived from a table's shape, for `cdc.format: protobuf`: the same envelope and the
 * same JS values as the Avro schemas (value-schema.ts), as `.proto` text registered under
 * TopicNameStrategy. Field numbers are column positions (1-based, in table order); names that are
 * not Protobuf identifiers are adjusted like Avro's and the column name travels in `json_name`.
 *
 * | ValueKind | Protobuf           | JS value                              |
 * |-----------|--------------------|---------------------------------------|
 * | boolean   | bool               | boolean                               |
 * | int       | int32              | number                                |
 * | int8      | int64              | exact decimal string                  |
 * | float     | double             | number (float4 is exact in a double)  |
 * | string    | string             | string (exact PostgreSQL text)        |
 * | bytea     | string             | base64 string                         |
 * | T[]       | message TList      | Array, null elements kept             |
 *
 * Every row column is `optional` (absent = SQL NULL). An array column's list message carries
 * `unavailable = true` for an unchanged TOASTed value; text columns carry the placeholder string,
 * as Avro does.
 */
import type { ColumnShape, TableShape, ValueKind } from '../../services/core/table-shape.js';
import { avroFieldName, avroNamespace } from './value-schema.js';

/** The envelope is the first message of the value schema: its message indexes are `[0]`. */
export const ENVELOPE_INDEXES = [0] as const;
/** The key is the only message of the key schema. */
export const KEY_INDEXES = [0] as const;

const SCALAR: Record<ValueKind, string> = {
  boolean: 'bool',
  int: 'int32',
  int8: 'int64',
  float: 'double',
  string: 'string',
  bytea: 'string',
};
const LIST: Record<ValueKind, string> = {
  boolean: 'BoolList',
  int: 'Int32List',
  int8: 'Int64List',
  float: 'DoubleList',
  string: 'StringList',
  bytea: 'BytesBase64List',
};

/** The Protobuf field name of a column (Avro's adjustment: both allow [A-Za-z0-9_], not a leading digit). */
export function protobufFieldName(column: string): string {
  return avroFieldName(column);
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function fieldLine(column: ColumnShape, number: number, optional: boolean): string {
  const name = protobufFieldName(column.name);
  const type = column.array ? LIST[column.kind] : SCALAR[column.kind];
  const label = optional && !column.array ? 'optional ' : '';
  const option = name !== column.name ? ` [json_name = ${quote(column.name)}]` : '';
  const comment = column.pgType ? ` // pg-type: ${column.pgType.replace(/[\r\n]/g, ' ')}` : '';
  return `  ${label}${type} ${name} = ${number}${option};${comment}`;
}

function listMessages(columns: readonly ColumnShape[]): string[] {
  const kinds = [...new Set(columns.filter((c) => c.array).map((c) => c.kind))];
  return kinds.map(
    (kind) =>
      `message ${LIST[kind]} {\n  message Item {\n    optional ${SCALAR[kind]} value = 1;\n  }\n  repeated Item items = 1;\n  // An unchanged TOASTed array that PostgreSQL did not send.\n  bool unavailable = 2;\n}\n`,
  );
}

/** The value schema: the Debezium envelope with the row as message `Value`. */
export function protobufValueSchema(shape: TableShape): string {
  const rows = shape.columns.map((c, i) => fieldLine(c, i + 1, true));
  return [
    'syntax = "proto3";',
    `package ${avroNamespace(shape.namespace)};`,
    '',
    `// Change events of ${shape.schema}.${shape.table}: Debezium's envelope, written by parity.`,
    'message Envelope {',
    '  Value before = 1;',
    '  Value after = 2;',
    '  Source source = 3;',
    '  string op = 4;',
    '  optional int64 ts_ms = 5;',
    '}',
    '',
    'message Value {',
    ...rows,
    '}',
    '',
    'message Source {',
    '  string version = 1;',
    '  string connector = 2;',
    '  string name = 3;',
    '  int64 ts_ms = 4;',
    '  optional string snapshot = 5;',
    '  string db = 6;',
    '  optional string sequence = 7;',
    '  optional int64 ts_us = 8;',
    '  string schema = 9;',
    '  string table = 10;',
    '  optional int64 txId = 11;',
    '  optional int64 lsn = 12;',
    '}',
    '',
    ...listMessages(shape.columns),
  ].join('\n');
}

/** The key schema: the primary-key columns, never null. */
export function protobufKeySchema(shape: TableShape): string {
  const byName = new Map(shape.columns.map((c) => [c.name, c]));
  const keyColumns = shape.keyColumns.map((k) => byName.get(k) ?? { name: k, kind: 'string' as const });
  return [
    'syntax = "proto3";',
    `package ${avroNamespace(shape.namespace)};`,
    '',
    'message Key {',
    ...keyColumns.map((c, i) => fieldLine(c, i + 1, false)),
    '}',
    '',
    ...listMessages(keyColumns),
  ].join('\n');
}
