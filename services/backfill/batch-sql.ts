/**
 * The SQL of one batch, per target kind. Every identifier comes from the spec and goes through
 * `ident`/`qualified`; key values travel as text parameters cast to the key column's catalog type, so
 * any key type (bigint, uuid, text, timestamps, composites) round-trips exactly. Each write is one
 * idempotent statement: running a batch twice changes nothing the second time.
 */
import { ident, qualified } from '../core/sql.js';

/** A key value as the text of each key column (`col::text`), in key order. */
export type KeyValue = string[];

export interface KeyShape {
  columns: string[];
  /** Source catalog types of the key columns, for casting parameters. */
  types: string[];
}

export interface TargetColumn {
  name: string;
  /** SQL over the source row (the spec mapping, or the key column itself). */
  expression: string;
  /** Target catalog type; expressions are cast to it so comparisons match what is stored. */
  type: string;
}

export interface BatchShape {
  source: { schema: string; table: string };
  target: { schema: string; table: string };
  key: KeyShape;
  /** Key columns of the target (same names as the source key), with their expressions. */
  targetKey: TargetColumn[];
  /** Non-key columns written by the backfill. */
  columns: TargetColumn[];
}

export interface Sql {
  text: string;
  values: unknown[];
}

const row = (parts: string[]): string => `ROW(${parts.join(', ')})`;

function keyColumns(key: KeyShape, alias?: string): string {
  return key.columns.map((c) => (alias ? `${alias}.${ident(c)}` : ident(c))).join(', ');
}

/** `(k1, k2)` as a row for comparisons; row comparison uses the btree index on (k1, k2). */
function keyRow(key: KeyShape): string {
  return `(${keyColumns(key)})`;
}

function paramRow(key: KeyShape, first: number): string {
  return `(${key.types.map((t, i) => `$${first + i}::${t}`).join(', ')})`;
}

/**
 * `(key) > (lo) AND (key) <= (hi)` with parameters from `$first`; a null `lo` means "from the start",
 * a null `hi` "to the end".
 * Ranges are half-open on the left, so consecutive ranges and batches never overlap.
 */
export function rangePredicate(key: KeyShape, lo: KeyValue | null, hi: KeyValue | null, first = 1): Sql {
  const parts: string[] = [];
  const values: unknown[] = [];
  let n = first;
  if (lo) {
    parts.push(`${keyRow(key)} > ${paramRow(key, n)}`);
    values.push(...lo);
    n += key.columns.length;
  }
  if (hi) {
    parts.push(`${keyRow(key)} <= ${paramRow(key, n)}`);
    values.push(...hi);
  }
  return { text: parts.length > 0 ? parts.join(' AND ') : 'TRUE', values };
}

/** The key columns as text, aliased k0, k1, ... (how keys are stored in checkpoints). */
function keyAsText(key: KeyShape, alias?: string): string {
  return key.columns.map((c, i) => `${alias ? `${alias}.` : ''}${ident(c)}::text AS k${i}`).join(', ');
}

const orderBy = (key: KeyShape, direction = ''): string => key.columns.map((c) => `${ident(c)}${direction}`).join(', ');

/**
 * Key types whose `max` aggregate orders as their default btree opclass does (a single-column key of
 * one of these gets the cheaper bounds of `boundsSelect`). Others (uuid has no `max`; varchar's is
 * text's, through a cast) keep the window form.
 */
const MAX_KEY_TYPES = /^(smallint|integer|bigint|numeric(\(\d+(,\d+)?\))?|text|date|timestamp(\(\d\))? with(out)? time zone)$/;

/**
 * The bounds of the next `limit` keys after the predicate's lower bound: one row with the key
 * columns of the last of them (named as the key columns) and `n`, how many there are; no row when
 * there are none. One index walk of at most `limit` entries (keyset, never OFFSET). A single-column
 * key of a type with a `max` takes `max` and `count(*)` over the walk (a plain aggregate, about four
 * times cheaper than a window count and a sort of the walked keys, which every other key takes).
 */
function boundsSelect(shape: Pick<BatchShape, 'source' | 'key'>, pred: string, limitParam: number): string {
  const walk = `SELECT ${keyColumns(shape.key)} FROM ${qualified(shape.source.schema, shape.source.table)}
                      WHERE ${pred} ORDER BY ${orderBy(shape.key)} LIMIT $${limitParam}`;
  const [only] = shape.key.columns;
  if (shape.key.columns.length === 1 && only !== undefined && MAX_KEY_TYPES.test(shape.key.types[0] ?? '')) {
    return `SELECT max(s.${ident(only)}) AS ${ident(only)}, count(*) AS n
               FROM (${walk}) s HAVING count(*) > 0`;
  }
  return `SELECT ${keyColumns(shape.key, 's')}, count(*) OVER () AS n
               FROM (${walk}) s
              ORDER BY ${shape.key.columns.map((c) => `s.${ident(c)} DESC`).join(', ')} LIMIT 1`;
}

/**
 * The upper bound of the next batch: the last of the next `limit` keys after `lo` (keyset, never
 * OFFSET), and how many keys the batch holds. One index-only walk of at most `limit` entries.
 */
export function batchBoundsSql(shape: BatchShape, lo: KeyValue | null, hi: KeyValue, limit: number): Sql {
  const pred = rangePredicate(shape.key, lo, hi);
  return {
    text: `SELECT ${keyAsText(shape.key, 'b')}, b.n FROM (${boundsSelect(shape, pred.text, pred.values.length + 1)}) b`,
    values: [...pred.values, limit],
  };
}

/**
 * One statement for a same-table or shadow-table batch: the bounds of `batchBoundsSql` and the write
 * of `sameTableUpdateSql` / `shadowUpsertSql` over (lo, the batch's last key]. Returns one row (none
 * when the range holds no key after `lo`): the last key as text (k0, k1, ...), the keys walked (`n`)
 * and the rows written (`changed`).
 *
 * Why one statement: a paced backfill runs many small batches (each one's WAL is one small burst for
 * the foreground's commits to flush), so the round trips of each batch are most of its cost in CPU,
 * on both sides, competing with the foreground for the same cores. Bounds and write also see one
 * snapshot; the write still re-checks each row a concurrent transaction changed (READ COMMITTED).
 */
export function batchWriteSql(
  shape: BatchShape,
  kind: 'same-table' | 'shadow-table',
  lo: KeyValue | null,
  hi: KeyValue,
  limit: number,
): Sql {
  const bounds = rangePredicate(shape.key, lo, hi);
  const keys = shape.key.columns.map((c) => `b.${ident(c)}`).join(', ');
  // The write's interval: the same lo parameters ($1...), and the batch's last key from `b` (a row
  // comparison with a row subquery: an init plan, so the key index bounds the scan as with parameters).
  const parts = [`${keyRow(shape.key)} <= (SELECT ${keys} FROM parity_bounds b)`];
  if (lo) parts.unshift(`${keyRow(shape.key)} > ${paramRow(shape.key, 1)}`);
  const pred: Sql = { text: parts.join(' AND '), values: [] };
  const write = kind === 'same-table' ? sameTableUpdate(shape, pred) : shadowUpsert(shape, pred);
  return {
    text: `WITH parity_bounds AS (${boundsSelect(shape, bounds.text, bounds.values.length + 1)}),
           parity_write AS (${write.text} RETURNING 1)
           SELECT ${keyAsText(shape.key, 'b')}, b.n, (SELECT count(*) FROM parity_write)::int AS changed FROM parity_bounds b`,
    values: [...bounds.values, limit],
  };
}

/** The last key of the table (the fixed upper bound of a run), as text. */
export function upperKeySql(shape: Pick<BatchShape, 'source' | 'key'>): Sql {
  return {
    text: `SELECT ${keyAsText(shape.key)} FROM ${qualified(shape.source.schema, shape.source.table)} ORDER BY ${orderBy(shape.key, ' DESC')} LIMIT 1`,
    values: [],
  };
}

const cast = (c: TargetColumn): string => `((${c.expression}))::${c.type}`;

/**
 * same-table: `UPDATE src SET (new...) = ROW(mapping...) WHERE key in (lo, hi] AND (new...) IS
 * DISTINCT FROM (mapping...)`. The UPDATE re-checks each row it waits for against the latest version
 * (READ COMMITTED), so a concurrent write is never overwritten with a value computed from an older row.
 */
export function sameTableUpdateSql(shape: BatchShape, lo: KeyValue | null, hi: KeyValue): Sql {
  return sameTableUpdate(shape, rangePredicate(shape.key, lo, hi));
}

function sameTableUpdate(shape: BatchShape, pred: Sql): Sql {
  const cols = shape.columns.map((c) => ident(c.name));
  const exprs = shape.columns.map(cast);
  return {
    text: `UPDATE ${qualified(shape.source.schema, shape.source.table)} SET (${cols.join(', ')}) = ${row(exprs)}
            WHERE ${pred.text} AND ${row(cols)} IS DISTINCT FROM ${row(exprs)}`,
    values: pred.values,
  };
}

function upsertTail(shape: BatchShape, alias: string): string {
  const conflict = shape.targetKey.map((c) => ident(c.name)).join(', ');
  if (shape.columns.length === 0) return `ON CONFLICT (${conflict}) DO NOTHING`;
  const cols = shape.columns.map((c) => ident(c.name));
  return `ON CONFLICT (${conflict}) DO UPDATE SET (${cols.join(', ')}) = ${row(cols.map((c) => `EXCLUDED.${c}`))}
          WHERE ${row(cols.map((c) => `${alias}.${c}`))} IS DISTINCT FROM ${row(cols.map((c) => `EXCLUDED.${c}`))}`;
}

/**
 * shadow-table: `INSERT INTO shadow SELECT mapping FROM src WHERE key in (lo, hi] FOR SHARE ON
 * CONFLICT (key) DO UPDATE ... WHERE IS DISTINCT FROM`. FOR SHARE makes the SELECT wait for, and then
 * read, any concurrent update of a source row, and blocks new ones until the batch commits; without
 * it the upsert could write values older than a dual-write that committed during the statement.
 */
export function shadowUpsertSql(shape: BatchShape, lo: KeyValue | null, hi: KeyValue): Sql {
  return shadowUpsert(shape, rangePredicate(shape.key, lo, hi));
}

function shadowUpsert(shape: BatchShape, pred: Sql): Sql {
  const all = [...shape.targetKey, ...shape.columns];
  const alias = 'parity_target';
  return {
    text: `INSERT INTO ${qualified(shape.target.schema, shape.target.table)} AS ${alias} (${all.map((c) => ident(c.name)).join(', ')})
           SELECT ${all.map(cast).join(', ')} FROM ${qualified(shape.source.schema, shape.source.table)}
            WHERE ${pred.text} ORDER BY ${orderBy(shape.key)} FOR SHARE
           ${upsertTail(shape, alias)}`,
    values: pred.values,
  };
}

/**
 * other-database, read side: the next `limit` rows after `lo`, with the key as text (checkpoint) and
 * every target column's value as text (exact through each type's output and input functions). FOR
 * SHARE holds concurrent updates of these rows until the target has committed the batch.
 */
export function crossReadSql(shape: BatchShape, lo: KeyValue | null, hi: KeyValue | null, limit: number): Sql {
  const pred = rangePredicate(shape.key, lo, hi);
  const all = [...shape.targetKey, ...shape.columns];
  return {
    text: `SELECT ${keyAsText(shape.key)}, ${all.map((c, i) => `((${c.expression}))::text AS v${i}`).join(', ')}
             FROM ${qualified(shape.source.schema, shape.source.table)}
            WHERE ${pred.text} ORDER BY ${orderBy(shape.key)} LIMIT $${pred.values.length + 1} FOR SHARE`,
    values: [...pred.values, limit],
  };
}

/** other-database, write side: one upsert of the batch from text arrays, cast to the target types. */
export function crossUpsertSql(shape: BatchShape, columnsOfValues: (string | null)[][]): Sql {
  const all = [...shape.targetKey, ...shape.columns];
  const alias = 'parity_target';
  return {
    text: `INSERT INTO ${qualified(shape.target.schema, shape.target.table)} AS ${alias} (${all.map((c) => ident(c.name)).join(', ')})
           SELECT ${all.map((c, i) => `u.v${i}::${c.type}`).join(', ')}
             FROM unnest(${all.map((_, i) => `$${i + 1}::text[]`).join(', ')}) AS u(${all.map((_, i) => `v${i}`).join(', ')})
           ${upsertTail(shape, alias)}`,
    values: columnsOfValues,
  };
}

/** Reads `k0..kN` of a result row back into a key value. */
export function keyFromRow(row: Record<string, unknown>, width: number): KeyValue {
  const out: string[] = [];
  for (let i = 0; i < width; i++) out.push(String(row[`k${i}`]));
  return out;
}
