/**
 * The statements that make the old representation match the reverse mapping of the new one, for a
 * batch of keys. They read the new row as it is *now* (not as the change event carried it) inside the
 * write itself, so whatever order changes arrive in and however often one is replayed, the old row
 * ends equal to reverse(new) at the moment of the write: a replay or an echo is a no-op, and a row
 * changed again meanwhile is brought to its newer state (its own change follows in the stream).
 * Writes are conditional (only rows that differ are touched), like repair. Pure: SQL text only.
 */
import { ident } from '../core/sql.js';

export interface ApplyShape {
  kind: 'same-table' | 'shadow-table' | 'other-database';
  /** The new representation (read). */
  from: { schema: string; table: string };
  /** The old representation (written). */
  to: { schema: string; table: string };
  /** Key columns with their SQL types (format_type), in key order; the same on both sides. */
  key: { name: string; type: string }[];
  /** Old column -> reverse expression over the new row, with the old column's SQL type. */
  columns: { name: string; type: string; expr: string }[];
  /** SQL predicate over the new row: rows the old shape can hold (absent: every row). */
  representable?: string;
  /** The control table where unrepresentable keys are recorded (schema-qualified, quoted). */
  unrepresentableTable: string;
}

export interface ApplyStatements {
  /** Writes the old rows of representable keys (same table: UPDATE; shadow: upsert). Params: one array per key column. */
  write: string;
  /** Shadow table only: deletes old rows whose new row is gone. Same params. */
  remove: string | null;
  /** Clears the batch's keys from the unrepresentable record (params: key arrays, migration), then records those still unrepresentable (params: key arrays, migration, commit LSN). */
  clearUnrepresentable: string | null;
  recordUnrepresentable: string | null;
}

/**
 * Cross-database: the new row lives in another database, so it cannot be read inside the write.
 * `fetch` runs on the new side (params: one typed array per key column) and returns each existing
 * row's key and reverse(new) as text, with `parity_rep` (representable); the old side's statements
 * then take those values as text arrays cast to the old types. Fetched after the batch's changes
 * committed (the stream delivered them), so it sees their state or a newer one: the same
 * "state as it is now" as the single-database statements.
 */
export interface CrossDatabaseStatements {
  /** On the new side. Params: key arrays. Columns: parity_k0.. (text), parity_c0.. (text), parity_rep (boolean). */
  fetch: string;
  /** On the old side: upsert of the fetched representable rows. Params: key text arrays, then one text array per rebuilt column. */
  write: string;
  /** On the old side: deletes the batch's old rows whose new row is gone. Params: batch key arrays, then the fetched key arrays. */
  remove: string;
  /** Params: batch key arrays, migration. */
  clearUnrepresentable: string | null;
  /** Params: unrepresentable key arrays, migration, commit LSN. */
  recordUnrepresentable: string | null;
}

const NEW = 'parity_row';
const OLD = 'parity_old';
const K = 'parity_k';

function table(t: { schema: string; table: string }): string {
  return `${ident(t.schema)}.${ident(t.table)}`;
}

/** `unnest($1::int[], $2::text[]) AS parity_k(parity_k0, parity_k1)`: the batch's keys, typed. */
function keyRows(shape: ApplyShape): string {
  const arrays = shape.key.map((k, i) => `$${i + 1}::${k.type}[]`).join(', ');
  const names = shape.key.map((_, i) => `${K}${i}`).join(', ');
  return `unnest(${arrays}) AS ${K}(${names})`;
}

function keyMatch(alias: string, shape: ApplyShape): string {
  return shape.key.map((k, i) => `${alias}.${ident(k.name)} = ${K}.${K}${i}`).join(' AND ');
}

function representable(shape: ApplyShape): string {
  return shape.representable === undefined ? 'true' : `coalesce((${shape.representable}), false)`;
}

/** The cross-database statements (shape.kind 'other-database'). */
export function crossDatabaseStatements(shape: ApplyShape): CrossDatabaseStatements {
  const cols = shape.columns;
  const n = shape.key.length;
  const keyCols = shape.key.map((k) => ident(k.name));
  const fetch = `SELECT ${[
    ...shape.key.map((k, i) => `${NEW}.${ident(k.name)}::text AS ${K}${i}`),
    ...cols.map((c, i) => `((${c.expr})::${c.type})::text AS parity_c${i}`),
    `${representable(shape)} AS parity_rep`,
  ].join(', ')}
  FROM ${table(shape.from)} AS ${NEW} JOIN ${keyRows(shape)} ON ${keyMatch(NEW, shape)}`;
  const values = [...shape.key.map((_, i) => `$${i + 1}::text[]`), ...cols.map((_, i) => `$${n + i + 1}::text[]`)].join(', ');
  const names = [...shape.key.map((_, i) => `v${i}`), ...cols.map((_, i) => `c${i}`)].join(', ');
  const write = `INSERT INTO ${table(shape.to)} AS ${OLD} (${[...keyCols, ...cols.map((c) => ident(c.name))].join(', ')})
SELECT ${[...shape.key.map((k, i) => `parity_v.v${i}::${k.type}`), ...cols.map((c, i) => `parity_v.c${i}::${c.type}`)].join(', ')}
  FROM unnest(${values}) AS parity_v(${names})
ON CONFLICT (${keyCols.join(', ')}) DO UPDATE SET ${cols.map((c) => `${ident(c.name)} = EXCLUDED.${ident(c.name)}`).join(', ')}
 WHERE (${cols.map((c) => `${OLD}.${ident(c.name)}`).join(', ')}${cols.length === 1 ? ', NULL' : ''}) IS DISTINCT FROM (${cols.map((c) => `EXCLUDED.${ident(c.name)}`).join(', ')}${cols.length === 1 ? ', NULL' : ''})`;
  const present = shape.key.map((k, i) => `$${n + i + 1}::${k.type}[]`).join(', ');
  const remove = `DELETE FROM ${table(shape.to)} AS ${OLD} USING ${keyRows(shape)}
 WHERE ${keyMatch(OLD, shape)}
   AND NOT EXISTS (SELECT 1 FROM unnest(${present}) AS parity_p(${shape.key.map((_, i) => `p${i}`).join(', ')}) WHERE ${shape.key.map((_, i) => `parity_p.p${i} = ${K}.${K}${i}`).join(' AND ')})`;
  if (shape.representable === undefined) return { fetch, write, remove, clearUnrepresentable: null, recordUnrepresentable: null };
  const unrep = shape.unrepresentableTable;
  const clear = `DELETE FROM ${unrep} AS u USING ${keyRows(shape)}
 WHERE u.migration = $${n + 1} AND u.key = jsonb_build_array(${shape.key.map((_, i) => `${K}.${K}${i}`).join(', ')})`;
  const record = `INSERT INTO ${unrep} (migration, key, commit_lsn)
SELECT $${n + 1}, jsonb_build_array(${shape.key.map((_, i) => `${K}.${K}${i}`).join(', ')}), $${n + 2}::pg_lsn
  FROM ${keyRows(shape)}
ON CONFLICT (migration, key) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, recorded_at = clock_timestamp()`;
  return { fetch, write, remove, clearUnrepresentable: clear, recordUnrepresentable: record };
}

export function applyStatements(shape: ApplyShape): ApplyStatements {
  const cols = shape.columns;
  // Expressions name the new row's columns unqualified; the key rows' columns are prefixed so they never capture a name.
  const rebuilt = cols.map((c) => `((${c.expr})::${c.type})`);
  const keyArrays = shape.key.length;
  let write: string;
  let remove: string | null = null;
  if (shape.kind === 'same-table') {
    write = `UPDATE ${table(shape.to)} AS ${NEW} SET ${cols.map((c, i) => `${ident(c.name)} = ${rebuilt[i]}`).join(', ')}
  FROM ${keyRows(shape)}
 WHERE ${keyMatch(NEW, shape)} AND ${representable(shape)}
   AND (${cols.map((c) => `${NEW}.${ident(c.name)}`).join(', ')}${cols.length === 1 ? ', NULL' : ''}) IS DISTINCT FROM (${rebuilt.join(', ')}${cols.length === 1 ? ', NULL' : ''})`;
  } else {
    const keyCols = shape.key.map((k) => ident(k.name));
    write = `INSERT INTO ${table(shape.to)} AS ${OLD} (${[...keyCols, ...cols.map((c) => ident(c.name))].join(', ')})
SELECT ${[...keyCols.map((k) => `${NEW}.${k}`), ...rebuilt].join(', ')}
  FROM ${table(shape.from)} AS ${NEW} JOIN ${keyRows(shape)} ON ${keyMatch(NEW, shape)}
 WHERE ${representable(shape)}
ON CONFLICT (${keyCols.join(', ')}) DO UPDATE SET ${cols.map((c) => `${ident(c.name)} = EXCLUDED.${ident(c.name)}`).join(', ')}
 WHERE (${cols.map((c) => `${OLD}.${ident(c.name)}`).join(', ')}${cols.length === 1 ? ', NULL' : ''}) IS DISTINCT FROM (${cols.map((c) => `EXCLUDED.${ident(c.name)}`).join(', ')}${cols.length === 1 ? ', NULL' : ''})`;
    remove = `DELETE FROM ${table(shape.to)} AS ${OLD} USING ${keyRows(shape)}
 WHERE ${keyMatch(OLD, shape)}
   AND NOT EXISTS (SELECT 1 FROM ${table(shape.from)} AS ${NEW} WHERE ${shape.key.map((k) => `${NEW}.${ident(k.name)} = ${OLD}.${ident(k.name)}`).join(' AND ')})`;
  }
  if (shape.representable === undefined) return { write, remove, clearUnrepresentable: null, recordUnrepresentable: null };
  const m = `$${keyArrays + 1}`;
  const lsn = `$${keyArrays + 2}::pg_lsn`;
  const unrep = shape.unrepresentableTable;
  const clear = `DELETE FROM ${unrep} AS u USING ${keyRows(shape)}
 WHERE u.migration = ${m} AND u.key = jsonb_build_array(${shape.key.map((_, i) => `${K}.${K}${i}`).join(', ')})`;
  const record = `INSERT INTO ${unrep} (migration, key, commit_lsn)
SELECT ${m}, jsonb_build_array(${shape.key.map((k) => `${NEW}.${ident(k.name)}`).join(', ')}), ${lsn}
  FROM ${table(shape.from)} AS ${NEW} JOIN ${keyRows(shape)} ON ${keyMatch(NEW, shape)}
 WHERE NOT ${representable(shape)}
ON CONFLICT (migration, key) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, recorded_at = clock_timestamp()`;
  return { write, remove, clearUnrepresentable: clear, recordUnrepresentable: record };
}
