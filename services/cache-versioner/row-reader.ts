/**
 * Reads rows of the new representation from PostgreSQL as change-event values, so that a database
 * read and a cached payload compare exactly. Columns are read as text with the session settings the
 * CDC source uses (ISO dates, timestamptz in UTC, shortest exact floats, hex bytea), as each type's
 * output text, and converted by
 * the CDC's own converters (connectors/postgres-source/value-decoder.ts).
 */
import type pg from 'pg';
import type { Row } from '../core/change-event.js';
import { ParityError, fromPgError } from '../core/errors.js';
import { parseLsn, type Lsn } from '../core/lsn.js';
import { ident, qualified } from '../core/sql.js';
import { columnValueError } from '../../connectors/postgres-source/change-builder.js';
import { converterFor, scalarKind, type TextConverter } from '../../connectors/postgres-source/value-decoder.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Session settings under which text output matches the change events' values. */
export const TEXT_OUTPUT_SETTINGS: ReadonlyArray<[string, string]> = [
  ['DateStyle', 'ISO, MDY'],
  ['IntervalStyle', 'postgres'],
  ['TimeZone', 'UTC'],
  ['extra_float_digits', '1'],
  ['bytea_output', 'hex'],
];

/**
 * Every column as its type's output-function text, the text pgoutput sends, whatever pg's global type
 * parsers say. (A `::text` cast is not always that text: bool casts to "true", char(n) loses its
 * padding, inet gains a netmask.)
 */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

/** How one column is read: its name and its text converter (the CDC's). */
export interface ColumnReader {
  name: string;
  /** False when the table lacks the projected column. */
  present: boolean;
  convert: TextConverter;
}

/**
 * One result row's columns (`${alias}0`, `${alias}1`, ... in `columns` order) as change-event values.
 * A value its converter refuses stops the read with the CDC's error, naming the table and the column
 * (columnValueError), so the operator knows which value to look at.
 */
export function convertRow(table: string, columns: readonly ColumnReader[], texts: Record<string, string | null>, alias: string): Row {
  const row: Row = {};
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    const text = texts[`${alias}${i}`];
    try {
      row[column.name] = text === null || text === undefined ? null : column.convert(text);
    } catch (err) {
      throw columnValueError(err, table, column.name);
    }
  }
  return row;
}

export interface RowReaderOptions {
  schema: string;
  table: string;
  keyColumns: string[];
  /** Columns to read; undefined = every column. */
  projection: string[] | undefined;
}

export interface RowSnapshot {
  /** The database's WAL position when the read's snapshot was taken (replay position on a standby). */
  lsn: Lsn;
  rows: Map<string, Row | null>;
}

export interface RowReader {
  /** Column names read, in table order. */
  columns(db: Queryable): Promise<string[]>;
  /**
   * Reads the rows for `keys` in one read-only REPEATABLE READ transaction (one snapshot), keyed by
   * `keyText(key)`; null for a key with no row.
   */
  read(pool: pg.Pool, keys: Array<Record<string, unknown>>): Promise<RowSnapshot>;
}

/** The identity of a key inside the reader's result map. */
export function keyText(keyColumns: string[], key: Record<string, unknown>): string {
  return JSON.stringify(keyColumns.map((k) => (key[k] === null || key[k] === undefined ? null : String(key[k]))));
}

/** Columns of a table with their types resolved through domains to base types, arrays to elements. */
interface DescribedColumn {
  name: string;
  oid: number;
  array: boolean;
  type: string;
  /** The declared type as SQL (format_type: quoted where needed), for casts. */
  sqlType: string;
  /** An array's element separator (the element type's typdelim: `;` for box); null for a scalar. */
  delimiter: string | null;
}

async function describeColumns(db: Queryable, schema: string, table: string): Promise<DescribedColumn[]> {
  const { rows } = await db.query<DescribedColumn>(
    `WITH RECURSIVE cols AS (
       SELECT a.attnum, a.attname AS name, a.atttypid AS oid, format_type(a.atttypid, a.atttypmod) AS sql_type FROM pg_attribute a
        WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
     ), base AS (
       SELECT c.attnum, c.name, c.sql_type, t.oid, t.typtype, t.typbasetype, t.typelem, t.typcategory, t.typname, 0 AS depth
         FROM cols c JOIN pg_type t ON t.oid = c.oid
       UNION ALL
       SELECT b.attnum, b.name, b.sql_type, t.oid, t.typtype, t.typbasetype, t.typelem, t.typcategory, t.typname, b.depth + 1
         FROM base b JOIN pg_type t ON t.oid = b.typbasetype
        WHERE b.typtype = 'd' AND b.depth < 10
     ), resolved AS (
       SELECT DISTINCT ON (attnum) attnum, name, sql_type, oid, typelem, typcategory, typname FROM base WHERE typtype <> 'd' ORDER BY attnum, depth DESC
     )
     SELECT r.name,
            (CASE WHEN r.typcategory = 'A' THEN (SELECT CASE WHEN e.typtype = 'd' THEN e.typbasetype ELSE e.oid END FROM pg_type e WHERE e.oid = r.typelem) ELSE r.oid END)::int AS oid,
            r.typcategory = 'A' AS "array",
            r.typname AS type,
            r.sql_type AS "sqlType",
            (CASE WHEN r.typcategory = 'A' THEN (SELECT e.typdelim::text FROM pg_type e WHERE e.oid = r.typelem) END) AS delimiter
       FROM resolved r ORDER BY r.attnum`,
    [qualified(schema, table)],
  );
  return rows;
}

export function createRowReader(options: RowReaderOptions): RowReader {
  /** Describes the table afresh on each use: an expand step may add a projected column at any time. */
  async function columnReaders(db: Queryable): Promise<{ payload: ColumnReader[]; keys: Array<ColumnReader & { sqlType: string }> }> {
    let described: DescribedColumn[];
    try {
      described = await describeColumns(db, options.schema, options.table);
    } catch (err) {
      throw fromPgError(err, `cannot describe ${options.schema}.${options.table}`);
    }
    if (described.length === 0) {
      throw new ParityError('PARITY_BAD_INPUT', `table ${options.schema}.${options.table} has no columns or does not exist`, {
        hint: 'check source/target in the spec',
      });
    }
    const byName = new Map(described.map((c) => [c.name, c]));
    const missingKeys = options.keyColumns.filter((k) => !byName.has(k));
    if (missingKeys.length > 0) {
      throw new ParityError('PARITY_BAD_INPUT', `${options.schema}.${options.table} has no key column(s) ${missingKeys.join(', ')}`, {
        hint: 'fix key in the spec',
      });
    }
    const reader = (col: DescribedColumn): ColumnReader => ({
      name: col.name,
      present: true,
      convert: converterFor({ kind: scalarKind(col.oid), array: col.array, name: col.type, delimiter: col.delimiter ?? ',' }),
    });
    // A projected column the table lacks (the expand step has not added it yet) reads as null, which
    // is how the versioner stores it.
    const payload = (options.projection ?? described.map((c) => c.name)).map((name) => {
      const col = byName.get(name);
      return col ? reader(col) : { name, present: false, convert: () => null };
    });
    const keys = options.keyColumns.map((k) => {
      const col = byName.get(k) as DescribedColumn;
      return { ...reader(col), sqlType: col.sqlType };
    });
    return { payload, keys };
  }

  return {
    async columns(db) {
      return (await columnReaders(db)).payload.map((c) => c.name);
    },
    async read(pool, keys) {
      const table = `${options.schema}.${options.table}`;
      const client = await pool.connect();
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        for (const [name, value] of TEXT_OUTPUT_SETTINGS) await client.query(`SELECT set_config($1, $2, true)`, [name, value]);
        // The snapshot is taken by this first data statement, and the WAL position read inside it is
        // at or after every commit the snapshot sees.
        const pos = await client.query<{ lsn: string }>(
          `SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn`,
        );
        const { payload, keys: keyCols } = await columnReaders(client);
        const select = [
          ...keyCols.map((c, i) => `t.${ident(c.name)} AS k${i}`),
          ...payload.map((c, i) => (c.present ? `t.${ident(c.name)} AS c${i}` : `NULL::text AS c${i}`)),
        ].join(', ');
        // The wanted keys as text arrays, joined on the key columns cast to their own types, so the
        // primary-key index serves the lookups.
        const unnest = keyCols.map((_, i) => `$${i + 1}::text[]`).join(', ');
        const aliases = keyCols.map((_, i) => `w${i}`).join(', ');
        const on = keyCols.map((c, i) => `t.${ident(c.name)} = w.w${i}::${c.sqlType}`).join(' AND ');
        const sql = `SELECT ${select} FROM ${qualified(options.schema, options.table)} t JOIN unnest(${unnest}) AS w(${aliases}) ON ${on}`;
        const rows = new Map<string, Row | null>();
        for (const key of keys) rows.set(keyText(options.keyColumns, key), null);
        const wanted = [...new Map(keys.map((k) => [keyText(options.keyColumns, k), k])).values()];
        for (let i = 0; i < wanted.length; i += 1000) {
          const chunk = wanted.slice(i, i + 1000);
          const params = options.keyColumns.map((k) =>
            chunk.map((key) => (key[k] === null || key[k] === undefined ? null : String(key[k]))),
          );
          const { rows: found } = await client.query<Record<string, string | null>>({
            text: sql,
            values: params,
            types: TEXT_TYPES,
          } as pg.QueryConfig);
          for (const r of found) {
            rows.set(keyText(options.keyColumns, convertRow(table, keyCols, r, 'k')), convertRow(table, payload, r, 'c'));
          }
        }
        await client.query('COMMIT');
        return { lsn: parseLsn(pos.rows[0]?.lsn ?? '0/0'), rows };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (err instanceof ParityError) throw err;
        throw fromPgError(err, `cannot read ${options.schema}.${options.table}`);
      } finally {
        client.release();
      }
    },
  };
}
