/**
 * The cached payload: the spec's projection of the new representation, one JSON value per column.
 *
 * Values are the JS values of change events (services/core/table-shape.ts, ValueKind):
 * booleans, int as numbers, int8 as exact decimal strings, floats as numbers, every other type as
 * PostgreSQL's exact text output, bytea as base64, one-dimensional arrays of those. JSON has no NaN,
 * Infinity or -0, so those floats travel as the strings "NaN", "Infinity", "-Infinity", "-0", the same
 * convention as the change events' JSON Schema format.
 */
import { UNCHANGED_TOAST, type Row } from '../core/change-event.js';

/** One column value as the JSON text stored in the entry. */
export function encodeValue(value: unknown): string {
  return JSON.stringify(jsonSafe(value));
}

function jsonSafe(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (value === Infinity) return 'Infinity';
    if (value === -Infinity) return '-Infinity';
    if (Object.is(value, -0)) return '-0';
    return value;
  }
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(jsonSafe);
  return value;
}

/** Reads a stored column value back. */
export function decodeValue(text: string): unknown {
  return JSON.parse(text) as unknown;
}

export interface ProjectedRow {
  /** Column name and encoded value, for the columns this change carries. */
  columns: Array<[string, string]>;
  /** Columns whose value is the unchanged-TOAST placeholder: the cached value must be kept. */
  unchanged: string[];
}

/**
 * The payload columns of a row: the projection's columns (a projected column the row lacks, e.g.
 * before the expand step added it, is stored as null) or, without a projection, every column.
 */
export function projectRow(row: Row, projection: string[] | undefined): ProjectedRow {
  const names = projection ?? Object.keys(row);
  const columns: Array<[string, string]> = [];
  const unchanged: string[] = [];
  for (const name of names) {
    const value = row[name];
    if (value === UNCHANGED_TOAST) unchanged.push(name);
    else columns.push([name, encodeValue(value ?? null)]);
  }
  return { columns, unchanged };
}

/** Key column values of a row, as the JSON stored in the entry's `_key` field. */
export function keyJson(keyColumns: string[], values: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(keyColumns.map((k) => [k, jsonSafe(values[k])])));
}

/** Canonical text of a payload for comparisons: columns sorted by name. */
export function canonicalPayload(columns: Iterable<[string, string]>): string {
  return JSON.stringify([...columns].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
