/**
 * Up-front checks, before any control state is written: the tables exist, the key has a unique btree
 * index and no NULLs, every mapped column exists, and the batch statements compile (EXPLAIN against
 * the real tables; for another database also one trial row written and rolled back). A bad spec
 * fails here with PARITY_BAD_INPUT naming what is wrong, and nothing is half-applied.
 */
import type pg from 'pg';
import { ParityError } from '../core/errors.js';
import type { Spec } from '../core/spec.js';
import {
  crossReadSql,
  crossUpsertSql,
  sameTableUpdateSql,
  shadowUpsertSql,
  batchBoundsSql,
  batchWriteSql,
  type BatchShape,
  type TargetColumn,
} from './batch-sql.js';
import { describeTable, findKeyIndex, requireTable, tableName, type TableInfo } from './table-info.js';
import { batchError } from './batch-errors.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

function badInput(message: string, hint: string): ParityError {
  return new ParityError('PARITY_BAD_INPUT', message, { hint });
}

function columnList(info: TableInfo): string {
  return [...info.columns.keys()].join(', ');
}

/** Builds the batch shape from the catalogs, failing on any mismatch with the spec. */
export async function describeBatch(spec: Spec, source: Queryable, target: Queryable): Promise<BatchShape> {
  const src = requireTable(
    await describeTable(source, spec.source.schema, spec.source.table),
    spec.source.schema,
    spec.source.table,
    'source',
  );
  const srcName = tableName(src);
  const keyTypes: string[] = [];
  for (const k of spec.key) {
    const col = src.columns.get(k);
    if (!col)
      throw badInput(
        `key column "${k}" does not exist in ${srcName}`,
        `key lists the source table's primary-key columns; columns of ${srcName}: ${columnList(src)}`,
      );
    if (!col.notNull) {
      throw badInput(
        `key column "${k}" of ${srcName} is nullable: rows with a NULL key would never be backfilled`,
        `make it NOT NULL (ALTER TABLE ${srcName} ALTER COLUMN ${k} SET NOT NULL) or use the primary key`,
      );
    }
    keyTypes.push(col.type);
  }
  const keyList = spec.key.join(', ');
  const index = await findKeyIndex(source, spec.source.schema, spec.source.table, spec.key);
  if (!index.scan) {
    throw badInput(
      `no index on the key (${keyList}) of ${srcName}: key ranges are read from a btree index whose leading columns are the key`,
      `create one without blocking writes: CREATE UNIQUE INDEX CONCURRENTLY ON ${srcName} (${keyList})`,
    );
  }
  if (!index.unique) {
    throw badInput(
      `the key (${keyList}) of ${srcName} is not unique (no primary key or unique index on exactly these columns); keyset ranges could skip rows sharing a key`,
      `use the primary key as key, or CREATE UNIQUE INDEX CONCURRENTLY ON ${srcName} (${keyList})`,
    );
  }

  let tgt: TableInfo;
  if (spec.target.kind === 'same-table') tgt = src;
  else {
    const where = spec.target.kind === 'shadow-table' ? 'source' : 'target';
    tgt = requireTable(await describeTable(target, spec.target.schema, spec.target.table), spec.target.schema, spec.target.table, where);
  }
  const tgtName = tableName(tgt);
  const targetColumn = (name: string, expression: string): TargetColumn => {
    const col = tgt.columns.get(name);
    if (!col) {
      throw badInput(
        `mapping writes column "${name}", which does not exist in ${tgtName}`,
        `run the expand step that adds it first, or fix the mapping key; columns of ${tgtName}: ${columnList(tgt)}`,
      );
    }
    if (col.generated)
      throw badInput(
        `mapping writes column "${name}" of ${tgtName}, which is a generated column`,
        'remove it from the mapping; PostgreSQL computes it',
      );
    return { name, expression, type: col.type };
  };
  const targetKey: TargetColumn[] = [];
  if (spec.target.kind !== 'same-table') {
    for (const k of spec.key) targetKey.push(targetColumn(k, spec.mapping[k] ?? k));
    const tIndex = await findKeyIndex(target, tgt.schema, tgt.table, spec.key);
    if (!tIndex.unique) {
      throw badInput(
        `${tgtName} has no primary key or unique index on (${keyList}); the backfill upserts by key`,
        `CREATE UNIQUE INDEX CONCURRENTLY ON ${tgtName} (${keyList})`,
      );
    }
  }
  const columns = Object.entries(spec.mapping)
    .filter(([name]) => !spec.key.includes(name))
    .map(([name, expression]) => targetColumn(name, expression));
  return {
    source: { schema: spec.source.schema, table: spec.source.table },
    target: { schema: tgt.schema, table: tgt.table },
    key: { columns: [...spec.key], types: keyTypes },
    targetKey,
    columns,
  };
}

async function explain(db: Queryable, sql: { text: string; values: unknown[] }, what: string, hint: string): Promise<void> {
  try {
    await db.query(
      `EXPLAIN (COSTS OFF) ${sql.text}`,
      sql.values.map(() => null),
    );
  } catch (err) {
    throw batchError(err, what, hint);
  }
}

/**
 * Compiles every statement a batch runs, against the real tables. For another database, also moves
 * one row for real inside a transaction that is rolled back, which catches values the target type
 * cannot read (EXPLAIN does not run casts).
 */
export async function checkStatements(spec: Spec, shape: BatchShape, source: pg.ClientBase, target: pg.ClientBase): Promise<void> {
  const src = `${spec.source.schema}.${spec.source.table}`;
  const mappingHint = `mapping values are SQL expressions over a row of ${src}; check column names and types`;
  const width = shape.key.columns.length;
  const placeholder = Array.from({ length: width }, () => '');
  await explain(source, batchBoundsSql(shape, placeholder, placeholder, 1), `reading key ranges of ${src} failed`, 'check key in the spec');
  if (spec.target.kind === 'same-table') {
    await explain(source, sameTableUpdateSql(shape, placeholder, placeholder), 'the mapping does not compile', mappingHint);
    // What a batch runs: the bounds and the write in one statement.
    await explain(source, batchWriteSql(shape, 'same-table', placeholder, placeholder, 1), 'the mapping does not compile', mappingHint);
    return;
  }
  if (spec.target.kind === 'shadow-table') {
    await explain(source, shadowUpsertSql(shape, placeholder, placeholder), 'the mapping does not compile', mappingHint);
    await explain(source, batchWriteSql(shape, 'shadow-table', placeholder, placeholder, 1), 'the mapping does not compile', mappingHint);
    return;
  }
  const read = crossReadSql(shape, placeholder, placeholder, 1);
  await explain(source, read, 'the mapping does not compile', mappingHint);
  await explain(
    target,
    crossUpsertSql(
      shape,
      [...shape.targetKey, ...shape.columns].map(() => []),
    ),
    `the upsert into ${shape.target.schema}.${shape.target.table} does not compile`,
    'check target.schema, target.table and the mapped column names',
  );
  // One real row, rolled back on both sides.
  await source.query('BEGIN');
  await target.query('BEGIN');
  try {
    const first = crossReadSql(shape, null, null, 1);
    const { rows } = await source.query(first.text, first.values).catch((err: unknown) => {
      throw batchError(err, 'the mapping failed on the first row', mappingHint);
    });
    if (rows[0]) {
      const all = [...shape.targetKey, ...shape.columns];
      const r = rows[0] as Record<string, string | null>;
      await target
        .query(
          crossUpsertSql(
            shape,
            all.map((_, i) => [r[`v${i}`] ?? null]),
          ).text,
          all.map((_, i) => [r[`v${i}`] ?? null]),
        )
        .catch((err: unknown) => {
          throw batchError(
            err,
            `the first row's mapped values do not fit ${shape.target.schema}.${shape.target.table}`,
            'make each mapping expression produce a value of the target column type',
          );
        });
    }
  } finally {
    await target.query('ROLLBACK').catch(() => undefined);
    await source.query('ROLLBACK').catch(() => undefined);
  }
}
