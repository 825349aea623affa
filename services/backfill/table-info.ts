/**
 * What the catalog says about the tables a backfill touches: columns with their exact types, and the
 * index that makes keyset ranges possible. Read once at start-up, before anything is written, so a
 * bad spec fails with a clear error and nothing half-applied.
 */
import type pg from 'pg';
import { ParityError } from '../core/errors.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface ColumnInfo {
  name: string;
  /** `format_type` of the column: a type name PostgreSQL itself quotes, safe to use in a cast. */
  type: string;
  notNull: boolean;
  generated: boolean;
}

export interface TableInfo {
  schema: string;
  table: string;
  columns: Map<string, ColumnInfo>;
}

export interface KeyIndex {
  name: string;
  unique: boolean;
}

/** Reads a table's columns; null when the table (or view) does not exist. */
export async function describeTable(db: Queryable, schema: string, table: string): Promise<TableInfo | null> {
  const { rows } = await db.query<{ attname: string; type: string; attnotnull: boolean; generated: boolean; relkind: string }>(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, a.attgenerated <> '' AS generated, c.relkind
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
      ORDER BY a.attnum`,
    [schema, table],
  );
  if (rows.length === 0) return null;
  const columns = new Map<string, ColumnInfo>();
  for (const r of rows) {
    if (r.attname) columns.set(r.attname, { name: r.attname, type: r.type, notNull: r.attnotnull, generated: r.generated });
  }
  return { schema, table, columns };
}

/**
 * The btree index whose leading columns are exactly the key, in order (what an `ORDER BY key` range
 * walk scans), and whether some unique index covers exactly the key columns (without it, keyset
 * pagination could skip rows sharing a key at a batch boundary).
 */
export async function findKeyIndex(
  db: Queryable,
  schema: string,
  table: string,
  key: readonly string[],
): Promise<{ scan: KeyIndex | undefined; unique: boolean }> {
  const { rows } = await db.query<{ name: string; unique: boolean; columns: string[]; nkey: number }>(
    `SELECT i.relname AS name, x.indisunique AS unique, x.indnkeyatts AS nkey,
            array(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                   ORDER BY k.ord) AS columns
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class c ON c.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_am am ON am.oid = i.relam
      WHERE n.nspname = $1 AND c.relname = $2 AND am.amname = 'btree'
        AND x.indisvalid AND x.indisready AND x.indpred IS NULL AND x.indexprs IS NULL
      ORDER BY x.indisprimary DESC, x.indisunique DESC, i.relname`,
    [schema, table],
  );
  const scan = rows.find((r) => key.every((k, i) => r.columns[i] === k));
  const keySet = new Set(key);
  const unique = rows.some((r) => r.unique && r.nkey === key.length && r.columns.slice(0, r.nkey).every((c) => keySet.has(c)));
  return { scan: scan ? { name: scan.name, unique: scan.unique } : undefined, unique };
}

export function tableName(info: { schema: string; table: string }): string {
  return `${info.schema}.${info.table}`;
}

/** Fails with PARITY_BAD_INPUT unless the table exists. */
export function requireTable(info: TableInfo | null, schema: string, table: string, where: string): TableInfo {
  if (!info) {
    throw new ParityError('PARITY_BAD_INPUT', `table ${schema}.${table} does not exist in the ${where} database`, {
      hint: `check ${where === 'source' ? 'source.schema and source.table' : 'target.schema and target.table'} in the spec (and that the expand step created it)`,
    });
  }
  return info;
}
