/**
 * The expected new representation of a change event's row: the spec's mapping expressions are SQL,
 * so they are evaluated by the source database over the event's values (a VALUES row shaped like
 * the source table), normalized there exactly as batch verification does. One query per chunk of
 * events.
 */
import type pg from 'pg';
import { fromPgError } from '../core/errors.js';
import { ident } from '../core/sql.js';
import type { Row } from '../core/change-event.js';
import type { Projection } from './projection.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface SourceColumn {
  name: string;
  /** Full type, with typmod, so mapped values get the same types as from the table. */
  type: string;
  bytea: boolean;
}

/** The source table's columns, in table order. */
export async function sourceColumns(db: Queryable, projection: Projection): Promise<SourceColumn[]> {
  const { rows } = await db.query(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid = 'bytea'::regtype AS bytea
       FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [projection.source.from],
  );
  return rows.map((r) => ({ name: String(r.name), type: String(r.type), bytea: r.bytea === true }));
}

/** A decoded change-event value as PostgreSQL input text (the serde's JS values, see connectors/kafka-sink/serde.ts). */
export function pgInputText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (value === Infinity) return 'Infinity';
    if (value === -Infinity) return '-Infinity';
    return Object.is(value, -0) ? '-0' : String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) {
    const items = value.map((v) => {
      const t = pgInputText(v);
      return t === null ? 'NULL' : `"${t.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    });
    return `{${items.join(',')}}`;
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export interface Expectation {
  /** Canonical key text (what rows are matched on). */
  kt: string;
  /** Canonical expected values per compared column. */
  values: Array<string | null>;
}

/**
 * Evaluates the mapping over each row (the event's after image) inside the source database.
 * Returns one expectation per row, in order.
 */
export async function expectationsFor(db: Queryable, projection: Projection, columns: SourceColumn[], rows: Row[]): Promise<Expectation[]> {
  if (rows.length === 0) return [];
  const params: unknown[] = [];
  const add = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const tuples = rows.map((row, i) => {
    const cells = columns.map((c) => {
      const p = add(pgInputText(row[c.name]));
      return c.bytea ? `decode(${p}::text, 'base64')` : `${p}::text::${c.type}`;
    });
    return `(${i}, ${cells.join(', ')})`;
  });
  const side = projection.source;
  // Named like the source table, so mapping expressions that qualify columns with it still resolve.
  const alias = `${ident(side.table)}(parity_event_ord, ${columns.map((c) => ident(c.name)).join(', ')})`;
  const sql = `SELECT parity_event_ord AS i, ${side.keyText} AS kt, ${side.values.map((v, i) => `${v.piece} AS v${i}`).join(', ')}
                 FROM (VALUES ${tuples.join(', ')}) AS ${alias} ORDER BY parity_event_ord`;
  let result: Array<Record<string, string | null>>;
  try {
    ({ rows: result } = await db.query(sql, params));
  } catch (err) {
    throw fromPgError(err, 'evaluating the mapping over change events');
  }
  return result.map((r) => ({ kt: r.kt!, values: side.values.map((_, i) => r[`v${i}`] ?? null) }));
}
