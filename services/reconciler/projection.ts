/**
 * The two representations being compared, as SQL. The old one is `spec.source` rows projected
 * through `spec.mapping` (the expected new values); the new one is the target columns of the same
 * name (in the same row for same-table migrations, else in `targetTable(spec)` of
 * `targetDatabase(spec)`). Both sides share the key columns `spec.key`.
 *
 * Types are read from the databases themselves (a LIMIT 0 query reports each expression's type
 * and typmod), so normalization knows a timestamp(3) from a timestamp(6) and a float from a numeric.
 */
import type pg from 'pg';
import { ParityError, fromPgError } from '../core/errors.js';
import { ident, qualified } from '../core/sql.js';
import { targetDatabase, targetTable, type Spec } from '../core/spec.js';
import { chooseKeyOrder, type Dialect, type KeyOrder } from './dialect.js';
import { chooseKeyType, keySideSql, type KeyCastType, type KeyComparison, type KeySideForm } from './key-type.js';
import { comparisonRule, isPlainRule, type ColumnType, type Rule } from './normalize.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type SideName = 'source' | 'target';

export interface KeyColumn {
  name: string;
  /** The side's own type of the column (what repairs insert). */
  type: ColumnType;
  /** The type both sides compare this key column in (see key-type.ts). */
  common: ColumnType;
  form: KeySideForm;
  order: KeyOrder;
  /** The key in the common type, for equality (no COLLATE, so the index stays usable). */
  compared: string;
  /** The key as compared and ordered (with COLLATE "C" when needed). */
  ordered: string;
  /** Canonical text of the key value: matched on, stored, reported, and cast back to `common` in queries. */
  piece: string;
}

export interface ValueColumn {
  column: string;
  /** SQL over the side's row: the mapping expression (source) or the column (target). */
  expr: string;
  type: ColumnType;
  piece: string;
}

export interface SideProjection {
  side: SideName;
  url: string;
  schema: string;
  table: string;
  /** Quoted schema.table. */
  from: string;
  keys: KeyColumn[];
  values: ValueColumn[];
  /** SQL: unambiguous text of the canonical key (the identity rows are matched on). */
  keyText: string;
  /** SQL: unambiguous text of the canonical key plus values (what checksums hash). */
  rowText: string;
  /** SQL: a 128-bit hash of `rowText` as text, the row identity in exact diffs and repairs. */
  rowHash: string;
}

export interface Projection {
  dialect: Dialect;
  source: SideProjection;
  target: SideProjection;
  keyColumns: string[];
  /** Compared (non-key) columns, in spec order. */
  columns: string[];
  rules: Rule[];
  /** Both sides live in one database: they can share one snapshot. */
  sameDatabase: boolean;
  /**
   * Per key column, how JS compares its text in the order the database walks the key, when it can
   * (integers; text and uuid by bytes). Null when some key column cannot be compared that way:
   * exact diffs then sort rows by their canonical key text instead.
   */
  keyComparisons: KeyComparison[] | null;
}

/** Mapping entries for key columns are allowed only as the identity (`id: id`). */
function valueColumns(spec: Spec): string[] {
  const columns: string[] = [];
  for (const [column, expr] of Object.entries(spec.mapping)) {
    if (spec.key.includes(column)) {
      const trimmed = expr.trim();
      if (trimmed === column || trimmed === ident(column)) continue;
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `mapping.${column} remaps key column "${column}"; verification matches rows on the key as it is`,
        {
          hint: `remove mapping.${column} (or write ${column}: ${column}); keys must be equal on both sides`,
        },
      );
    }
    columns.push(column);
  }
  if (columns.length === 0) {
    throw new ParityError('PARITY_BAD_INPUT', 'the mapping has no column besides the key, so there is nothing to compare', {
      hint: 'map at least one new column to a SQL expression over the old row',
    });
  }
  return columns;
}

async function describe(db: Queryable, dialect: Dialect, from: string, exprs: string[], what: string): Promise<ColumnType[]> {
  let fields: pg.FieldDef[];
  try {
    const result = await db.query(`SELECT ${exprs.join(', ')} FROM ${from} LIMIT 0`);
    fields = result.fields;
  } catch (err) {
    throw fromPgError(err, `cannot read ${what}`);
  }
  const types: ColumnType[] = [];
  for (const f of fields) types.push(await dialect.describeType(db, f.dataTypeID, f.dataTypeModifier));
  return types;
}

/**
 * Refuses key columns holding NULL: a NULL key falls in no key range, so its row would be skipped
 * silently. Columns declared NOT NULL (every primary key) are trusted without a scan.
 */
export async function assertKeysNotNull(db: Queryable, side: SideProjection): Promise<void> {
  const { rows } = await db.query(
    `SELECT a.attname FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attname = ANY($2) AND NOT a.attnotnull`,
    [side.from, side.keys.map((k) => k.name)],
  );
  const nullable = rows.map((r) => String(r.attname));
  if (nullable.length === 0) return;
  const { rows: found } = await db.query(
    `SELECT 1 FROM ${side.from} WHERE ${nullable.map((c) => `${ident(c)} IS NULL`).join(' OR ')} LIMIT 1`,
  );
  if (found.length > 0) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `the ${side.side} ${side.schema}.${side.table} has rows with a NULL key (${nullable.join(', ')}); such rows cannot be matched by key`,
      {
        hint: 'fix those rows or choose key columns that are never NULL (spec field key)',
      },
    );
  }
}

/**
 * Reads both sides' types and collations and builds the SQL of each side's projection.
 * `sourceDb` and `targetDb` are connections to `spec.source.database` and `targetDatabase(spec)`.
 */
export async function buildProjection(spec: Spec, sourceDb: Queryable, targetDb: Queryable, dialect: Dialect): Promise<Projection> {
  const columns = valueColumns(spec);
  const tgt = targetTable(spec);
  const sourceFrom = qualified(spec.source.schema, spec.source.table);
  const targetFrom = qualified(tgt.schema, tgt.table);
  const keyIdents = spec.key.map(ident);
  const sourceExprs = columns.map((c) => `(${spec.mapping[c]!})`);
  const targetExprs = columns.map(ident);

  const sourceTypes = await describe(
    sourceDb,
    dialect,
    sourceFrom,
    [...keyIdents, ...sourceExprs],
    `the source ${spec.source.schema}.${spec.source.table} through the mapping`,
  );
  const targetTypes = await describe(
    targetDb,
    dialect,
    targetFrom,
    [...keyIdents, ...targetExprs],
    `the target ${tgt.schema}.${tgt.table} (its key and mapped columns)`,
  );

  const rules = columns.map((_, i) => comparisonRule(sourceTypes[spec.key.length + i]!, targetTypes[spec.key.length + i]!, spec.normalize));
  for (const column of Object.keys(spec.reconcile.keyCasts)) {
    if (!spec.key.includes(column)) {
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `reconcile.keyCasts.${column}: "${column}" is not a key column (key: ${spec.key.join(', ')})`,
        {
          hint: 'name key columns only in reconcile.keyCasts',
        },
      );
    }
  }
  // Keys compare in one common type chosen from both sides' key types (int vs bigint, uuid vs text, ...).
  const keyPlans = spec.key.map((k, i) =>
    chooseKeyType(k, sourceTypes[i]!, targetTypes[i]!, spec.reconcile.keyCasts[k] as KeyCastType | undefined),
  );
  // Key texts are cast back to the common type in queries, so a float key keeps its exact text.
  const keyRules = keyPlans.map((p): Rule => {
    const rule = comparisonRule(p.common, p.common, { ...spec.normalize, nullEqualsEmpty: false });
    return rule.kind === 'float' ? { kind: 'plain' } : rule;
  });
  const orders: KeyOrder[] = [];
  for (const [i, k] of spec.key.entries()) {
    if (keyPlans[i]!.forceByteOrder) {
      // A cast or lower-cased side carries the database's default collation, not the column's: bytes.
      orders.push({ byteOrder: true, nativeIsBytes: false });
      continue;
    }
    const a = await dialect.columnCollation(sourceDb, spec.source.schema, spec.source.table, k);
    const b = await dialect.columnCollation(targetDb, tgt.schema, tgt.table, k);
    orders.push(chooseKeyOrder(a, b));
  }

  const side = (
    name: SideName,
    url: string,
    schema: string,
    table: string,
    from: string,
    types: ColumnType[],
    exprs: string[],
  ): SideProjection => {
    const keys: KeyColumn[] = spec.key.map((k, i) => {
      const plan = keyPlans[i]!;
      const form = name === 'source' ? plan.source : plan.target;
      const compared = keySideSql(ident(k), form, plan.common);
      return {
        name: k,
        type: types[i]!,
        common: plan.common,
        form,
        order: orders[i]!,
        compared,
        ordered: dialect.orderedKey(compared, orders[i]!),
        piece: dialect.normalize(compared, plan.common, keyRules[i]!),
      };
    });
    const values: ValueColumn[] = columns.map((c, i) => {
      const type = types[spec.key.length + i]!;
      return { column: c, expr: exprs[i]!, type, piece: dialect.normalize(exprs[i]!, type, rules[i]!) };
    });
    const keyPieces = keys.map((k, i) => ({ sql: k.piece, plain: isPlainRule(keyRules[i]!) }));
    const keyText = dialect.tupleText(keyPieces);
    const rowText = dialect.tupleText([...keyPieces, ...values.map((v, i) => ({ sql: v.piece, plain: isPlainRule(rules[i]!) }))]);
    return { side: name, url, schema, table, from, keys, values, keyText, rowText, rowHash: dialect.rowIdentity(rowText) };
  };

  // The database walks the key in its order; JS must reproduce it exactly to merge the two streams.
  const comparisons: Array<KeyComparison | null> = keyPlans.map((plan, i) => {
    const f = plan.common.family;
    if (f === 'integer') return 'integer';
    if (f === 'numeric') return 'decimal';
    if (f === 'uuid') return 'bytes';
    if ((f === 'text' || f === 'char') && (orders[i]!.byteOrder || orders[i]!.nativeIsBytes)) return 'bytes';
    return null;
  });

  return {
    dialect,
    keyComparisons: comparisons.every((c) => c !== null) ? (comparisons as KeyComparison[]) : null,
    source: side('source', spec.source.database, spec.source.schema, spec.source.table, sourceFrom, sourceTypes, sourceExprs),
    target: side('target', targetDatabase(spec), tgt.schema, tgt.table, targetFrom, targetTypes, targetExprs),
    keyColumns: [...spec.key],
    columns,
    rules,
    sameDatabase: targetDatabase(spec) === spec.source.database,
  };
}
