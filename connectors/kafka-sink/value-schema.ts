/**
 * Registry schemas derived from a table's shape: the Debezium-style key record and value envelope, in
 * Avro or JSON Schema. Both formats describe the same JS values (see ValueKind).
 */
import { UNCHANGED_TOAST } from '../../services/core/change-event.js';
import type { ColumnShape, TableShape, ValueKind } from '../../services/core/table-shape.js';

/** Marks a field whose Avro name had to be adjusted; the decoder maps it back to the column name. */
export const COLUMN_DOC_PREFIX = 'pg-column:';

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Avro names allow only [A-Za-z0-9_]. Other characters become `_uXXXX` (Debezium's avro_unicode
 * adjustment); the original name travels in the field's `doc` so decoding is exact.
 */
export function avroFieldName(column: string): string {
  if (AVRO_NAME.test(column)) return column;
  let out = '';
  for (const ch of column) {
    out += /[A-Za-z0-9_]/.test(ch) ? ch : `_u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`;
  }
  return /^[0-9]/.test(out) ? `_${out}` : out;
}

/** `shop.public.orders-x` -> `shop.public.orders_x`: every dot-separated part a valid Avro name. */
export function avroNamespace(namespace: string): string {
  return namespace
    .split('.')
    .map((part) => (part === '' ? '_' : avroFieldName(part)))
    .join('.');
}

function avroKind(kind: ValueKind): string {
  switch (kind) {
    case 'boolean':
      return 'boolean';
    case 'int':
      return 'int';
    case 'int8':
      return 'long';
    case 'float':
      return 'double';
    case 'string':
    case 'bytea':
      return 'string';
  }
}

function avroColumnType(column: ColumnShape, nullable: boolean): unknown {
  const base = column.array ? { type: 'array', items: ['null', avroKind(column.kind)] } : avroKind(column.kind);
  if (!nullable) return base;
  // An unchanged TOASTed value travels as the UNCHANGED_TOAST string: non-string columns that can be
  // TOASTed (arrays) need a string branch for it.
  return column.array ? ['null', base, 'string'] : ['null', base];
}

function avroField(column: ColumnShape, nullable: boolean): Record<string, unknown> {
  const name = avroFieldName(column.name);
  const field: Record<string, unknown> = { name, type: avroColumnType(column, nullable) };
  if (name !== column.name) field.doc = `${COLUMN_DOC_PREFIX}${column.name}`;
  else if (column.pgType) field.doc = `pg-type:${column.pgType}`;
  if (nullable) field.default = null;
  return field;
}

export function avroKeySchema(shape: TableShape): Record<string, unknown> {
  const byName = new Map(shape.columns.map((c) => [c.name, c]));
  return {
    type: 'record',
    name: 'Key',
    namespace: avroNamespace(shape.namespace),
    fields: shape.keyColumns.map((k) => avroField(byName.get(k) ?? { name: k, kind: 'string' }, false)),
  };
}

/** The Debezium envelope: before/after rows, op, ts_ms and the source block. */
export function avroValueSchema(shape: TableShape): Record<string, unknown> {
  const namespace = avroNamespace(shape.namespace);
  const value = { type: 'record', name: 'Value', namespace, fields: shape.columns.map((c) => avroField(c, true)) };
  return {
    type: 'record',
    name: 'Envelope',
    namespace,
    fields: [
      { name: 'before', type: ['null', value], default: null },
      { name: 'after', type: ['null', `${namespace}.Value`], default: null },
      {
        name: 'source',
        type: {
          type: 'record',
          name: 'Source',
          namespace: 'io.debezium.connector.postgresql',
          fields: [
            { name: 'version', type: 'string' },
            { name: 'connector', type: 'string' },
            { name: 'name', type: 'string' },
            { name: 'ts_ms', type: 'long' },
            { name: 'snapshot', type: ['string', 'null'], default: 'false' },
            { name: 'db', type: 'string' },
            { name: 'sequence', type: ['null', 'string'], default: null },
            { name: 'ts_us', type: ['null', 'long'], default: null },
            { name: 'schema', type: 'string' },
            { name: 'table', type: 'string' },
            { name: 'txId', type: ['null', 'long'], default: null },
            { name: 'lsn', type: ['null', 'long'], default: null },
          ],
        },
      },
      { name: 'op', type: 'string' },
      { name: 'ts_ms', type: ['null', 'long'], default: null },
    ],
  };
}

function jsonKind(kind: ValueKind): Record<string, unknown> {
  switch (kind) {
    case 'boolean':
      return { type: 'boolean' };
    case 'int':
      return { type: 'integer' };
    case 'int8':
      return { type: 'string', pattern: '^-?[0-9]+$' };
    case 'float':
      // JSON has no NaN, Infinity or -0: those travel as the strings "NaN", "Infinity", "-Infinity", "-0".
      return {
        anyOf: [{ type: 'number' }, { type: 'string', enum: ['NaN', 'Infinity', '-Infinity', '-0'] }],
        $comment: 'parity-kind:float',
      };
    case 'string':
      return { type: 'string' };
    case 'bytea':
      return { type: 'string', $comment: 'parity-kind:bytea (base64)' };
  }
}

function jsonColumn(column: ColumnShape, nullable: boolean): Record<string, unknown> {
  const base = column.array ? { type: 'array', items: { anyOf: [{ type: 'null' }, jsonKind(column.kind)] } } : jsonKind(column.kind);
  const annotated = { ...base, description: column.pgType ?? column.kind };
  if (column.array) (annotated as Record<string, unknown>).$comment = `parity-kind:${column.kind}[]`;
  if (!nullable) return annotated;
  return { anyOf: [{ type: 'null' }, annotated, { const: UNCHANGED_TOAST }] };
}

export function jsonKeySchema(shape: TableShape): Record<string, unknown> {
  const byName = new Map(shape.columns.map((c) => [c.name, c]));
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: `${shape.namespace}.Key`,
    type: 'object',
    properties: Object.fromEntries(shape.keyColumns.map((k) => [k, jsonColumn(byName.get(k) ?? { name: k, kind: 'string' }, false)])),
    required: shape.keyColumns,
    additionalProperties: false,
  };
}

export function jsonValueSchema(shape: TableShape): Record<string, unknown> {
  const row = {
    type: 'object',
    properties: Object.fromEntries(shape.columns.map((c) => [c.name, jsonColumn(c, true)])),
    additionalProperties: false,
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: `${shape.namespace}.Envelope`,
    type: 'object',
    properties: {
      before: { anyOf: [{ type: 'null' }, row] },
      after: { anyOf: [{ type: 'null' }, row] },
      source: {
        type: 'object',
        properties: {
          version: { type: 'string' },
          connector: { type: 'string' },
          name: { type: 'string' },
          ts_ms: { type: 'integer' },
          snapshot: { anyOf: [{ type: 'string' }, { type: 'null' }] },
          db: { type: 'string' },
          sequence: { anyOf: [{ type: 'string' }, { type: 'null' }] },
          ts_us: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
          schema: { type: 'string' },
          table: { type: 'string' },
          txId: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
          lsn: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
        },
        required: ['version', 'connector', 'name', 'ts_ms', 'db', 'schema', 'table'],
      },
      op: { type: 'string', enum: ['c', 'u', 'd', 'r', 't'] },
      ts_ms: { anyOf: [{ type: 'integer' }, { type: 'null' }] },
    },
    required: ['before', 'after', 'source', 'op'],
  };
}
