/**
 * The shape of a captured table as the Kafka side sees it: column names in table order, each with the
 * kind of JS value it carries. The PostgreSQL source maps catalog types onto these kinds
 * (connectors/postgres-source/value-decoder.ts); the serde derives the registry schemas from them.
 */
import type { ConnectSchema } from './connect-schema.js';
import { changeTopic } from './topics.js';

/**
 * The JS value a column decodes to in `envelope.before/after` (and in the key):
 * - `boolean`: `true` / `false`.
 * - `int`: a JS number (int2, int4).
 * - `int8`: an exact decimal **string** (int8, oid, xid8): JS numbers cannot hold every int8.
 * - `float`: a JS number (float4, float8), including `NaN`, `Infinity`, `-Infinity` and `-0`.
 * - `string`: exact PostgreSQL text output (numeric, dates, times, timestamps, intervals, uuid, json,
 *   jsonb, enums, text, char(n) with its padding, and any other type).
 * - `bytea`: base64 of the bytes.
 */
export type ValueKind = 'boolean' | 'int' | 'int8' | 'float' | 'string' | 'bytea';

export interface ColumnShape {
  /** The PostgreSQL column name, exactly. */
  name: string;
  kind: ValueKind;
  /** A one-dimensional array of `kind` values (elements may be null). */
  array?: boolean;
  /** The PostgreSQL type name, for documentation in the schema (e.g. "timestamptz", "order_state"). */
  pgType?: string;
  /**
   * Debezium encoding: the column's Connect schema as Debezium writes it (the row then carries Connect
   * values, see services/core/connect-schema.ts, and `kind` is not used).
   */
  connect?: ConnectSchema;
}

/**
 * The events' encoding: Debezium 3.x's Connect schemas and values, or parity's exact-text values
 * (the `ValueKind` table above; not Debezium-compatible).
 */
export type EventEncoding = 'debezium' | 'exact-text';

export interface TableShape {
  topic: string;
  /** Avro namespace / JSON Schema title prefix, e.g. "shop.public.orders". */
  namespace: string;
  schema: string;
  table: string;
  columns: ColumnShape[];
  /** Primary-key (replica identity) columns, in key order. Empty for a keyless table. */
  keyColumns: string[];
  /** Absent: exact-text. */
  encoding?: EventEncoding;
}

/** Builds a shape with Debezium's naming: topic and namespace `<prefix>.<schema>.<table>`. */
export function tableShape(
  topicPrefix: string,
  schema: string,
  table: string,
  columns: ColumnShape[],
  keyColumns: string[],
  encoding: EventEncoding = 'exact-text',
): TableShape {
  const topic = changeTopic(topicPrefix, schema, table);
  return { topic, namespace: topic, schema, table, columns, keyColumns, ...(encoding === 'debezium' ? { encoding } : {}) };
}

/** JSON.stringify that writes a bigint as its decimal text and a Buffer as hex (Connect values). */
export function stableJson(value: unknown): string {
  // Keys on the hot path (partitioning, key comparison) are arrays of strings and numbers: the replacer below
  // changes none of those, and JSON.stringify without a replacer is several times faster.
  if (Array.isArray(value) && value.every(isPlainScalar)) {
    // A bigint (an int64 key under the debezium encoding) is its decimal text, as the replacer writes it.
    return JSON.stringify(value.some((v) => typeof v === 'bigint') ? value.map((v) => (typeof v === 'bigint' ? v.toString() : v)) : value);
  }
  return JSON.stringify(value, function (this: unknown, k: string, v: unknown) {
    if (typeof v === 'bigint') return v.toString();
    const raw = (this as Record<string, unknown>)[k];
    if (Buffer.isBuffer(raw)) return raw.toString('hex');
    return v;
  });
}

function isPlainScalar(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint';
}

/** A stable fingerprint of a shape: equal shapes share registered schemas. */
export function shapeFingerprint(shape: TableShape): string {
  return stableJson([
    shape.topic,
    shape.encoding ?? 'exact-text',
    shape.columns.map((c) => [c.name, c.kind, c.array === true, c.pgType ?? '', c.connect ?? null]),
    shape.keyColumns,
  ]);
}
