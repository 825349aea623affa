/**
 * Segment checksums, computed inside each database so only a few numbers cross the network: per
 * key range, a row count and two sums of independent 64-bit hashes of each row's canonical
 * (normalized) key and values.
 *
 * Why two sums: one sum of 64-bit hashes can be fooled by rows whose hash differences cancel out;
 * two independent hashes make an accidental match need both to cancel at once (about 2^-128).
 * The sums are numeric (PostgreSQL's sum(bigint)), so they never overflow. The count catches
 * what sums cannot see on their own, like a duplicated row paired with a missing one.
 */
import type pg from 'pg';
import { ParityError, fromPgError } from '../core/errors.js';
import { Params, bucketExpr, keyOrderBy, keyIn, rangePredicate, rangesPredicate, type KeyRange, type KeyTuple } from './key-range.js';
import type { Projection, SideProjection } from './projection.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/**
 * Errors of verification queries. A data exception (SQLSTATE class 22) means a value cannot be
 * normalized as its counterpart's type, e.g. text that is not JSON compared with a jsonb column.
 */
export function queryError(err: unknown, context: string): ParityError {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  if (code.startsWith('22')) {
    return new ParityError('PARITY_BAD_INPUT', `${context}: ${(err as Error).message}`, {
      cause: err,
      hint: 'a value cannot be normalized for comparison; check that each mapping expression yields a type comparable with its target column',
    });
  }
  return fromPgError(err, context);
}

export interface Checksum {
  rows: bigint;
  sum1: string;
  sum2: string;
}

export const EMPTY_CHECKSUM: Checksum = { rows: 0n, sum1: '0', sum2: '0' };

export function sameChecksum(a: Checksum, b: Checksum): boolean {
  return a.rows === b.rows && a.sum1 === b.sum1 && a.sum2 === b.sum2;
}

/** Adds checksums exactly (the sums are arbitrary-precision integers as text). */
export function addChecksums(a: Checksum, b: Checksum): Checksum {
  return { rows: a.rows + b.rows, sum1: (BigInt(a.sum1) + BigInt(b.sum1)).toString(), sum2: (BigInt(a.sum2) + BigInt(b.sum2)).toString() };
}

/**
 * Checksums of the sub-ranges of `range` split at `bounds` (bounds.length + 1 of them), in one
 * scan of the range on one side.
 */
export async function bucketChecksums(
  db: Queryable,
  projection: Projection,
  side: SideProjection,
  range: KeyRange,
  bounds: KeyTuple[],
): Promise<Checksum[]> {
  const params = new Params();
  const bucket = bucketExpr(side, bounds, params);
  const where = rangePredicate(side, range, params);
  const [h1, h2] = projection.dialect.checksumHashes('t');
  // OFFSET 0 keeps the subquery from being flattened, which would evaluate the row text once per hash.
  const sql = `SELECT b, count(*)::text AS n, sum(${h1})::text AS s1, sum(${h2})::text AS s2
                 FROM (SELECT ${bucket} AS b, ${side.rowText} AS t FROM ${side.from} WHERE ${where} OFFSET 0) AS r
                GROUP BY b`;
  let rows: Array<{ b: number; n: string; s1: string; s2: string }>;
  try {
    ({ rows } = await db.query(sql, params.values));
  } catch (err) {
    throw queryError(err, `checksumming the ${side.side} ${side.schema}.${side.table}`);
  }
  const out: Checksum[] = Array.from({ length: bounds.length + 1 }, () => EMPTY_CHECKSUM);
  for (const r of rows) out[Number(r.b)] = { rows: BigInt(r.n), sum1: r.s1, sum2: r.s2 };
  return out;
}

/**
 * Whether a side's rows carry versions (Dialect.rowVersion): a plain, partitioned or materialized
 * table does; a view or a foreign table does not, and its segments are rechecked by diffing again.
 */
export async function hasRowVersions(db: Queryable, projection: Projection, side: SideProjection): Promise<boolean> {
  if (projection.dialect.rowVersion() === null) return false;
  const { rows } = await db.query(`SELECT relkind::text AS k FROM pg_class WHERE oid = $1::regclass`, [side.from]);
  return ['r', 'p', 'm'].includes(String(rows[0]?.k));
}

/**
 * The row versions of a range on one side (see Dialect.rowVersion): a row count and two sums of
 * hashes of each row's version, like a checksum but without normalizing or even reading the
 * values. Equal results in two snapshots mean every row of the range is the same stored version
 * in both (up to a 2^-128 accident, as for checksums). Null when the dialect has no row versions.
 */
export async function rangeVersions(
  db: Queryable,
  projection: Projection,
  side: SideProjection,
  range: KeyRange,
): Promise<Checksum | null> {
  const version = projection.dialect.rowVersion();
  if (version === null) return null;
  const params = new Params();
  const where = rangePredicate(side, range, params);
  const [h1, h2] = projection.dialect.checksumHashes('r.v');
  const sql = `SELECT count(*)::text AS n, coalesce(sum(${h1}), 0)::text AS s1, coalesce(sum(${h2}), 0)::text AS s2
                 FROM (SELECT ${version} AS v FROM ${side.from} WHERE ${where} OFFSET 0) AS r`;
  try {
    const { rows } = await db.query(sql, params.values);
    return { rows: BigInt(rows[0].n), sum1: rows[0].s1, sum2: rows[0].s2 };
  } catch (err) {
    throw queryError(err, `reading row versions of the ${side.side} ${side.schema}.${side.table}`);
  }
}

/**
 * Inner bounds splitting `range` into parts of about `step` rows, read from the side's key index
 * in key order (never computed from key values, so gaps and skew do not matter). Equal keys are
 * never split apart: a bound equal to the previous one, or to the range's lower bound, is dropped.
 */
export async function splitPoints(db: Queryable, side: SideProjection, range: KeyRange, step: number): Promise<KeyTuple[]> {
  const params = new Params();
  const where = rangePredicate(side, range, params);
  const stepParam = params.add(step);
  const keyTexts = side.keys.map((k, i) => `k${i}`);
  const sql = `SELECT ${keyTexts.join(', ')} FROM (
                 SELECT ${side.keys.map((k, i) => `${k.piece} AS k${i}`).join(', ')}, row_number() OVER (ORDER BY ${keyOrderBy(side)}) AS rn
                   FROM ${side.from} WHERE ${where}) AS s
                WHERE rn % ${stepParam}::bigint = 1 AND rn > 1 ORDER BY rn`;
  let rows: Array<Record<string, string>>;
  try {
    ({ rows } = await db.query(sql, params.values));
  } catch (err) {
    throw queryError(err, `reading split points from the ${side.side} ${side.schema}.${side.table}`);
  }
  const bounds: KeyTuple[] = [];
  let previous: KeyTuple | null = range.lo;
  for (const r of rows) {
    const t = keyTexts.map((k) => r[k]!);
    if (previous && previous.every((v, i) => v === t[i])) continue;
    bounds.push(t);
    previous = t;
  }
  return bounds;
}

/** One row as fetched for an exact diff. */
export interface FetchedRow {
  /** Canonical key text: rows are matched on it. */
  kt: string;
  /** The row identity: a 128-bit hash of canonical key and values (see Dialect.rowIdentity). */
  h: string;
  /** The key as the canonical text of each key column (see KeyColumn.piece). */
  key: KeyTuple;
  /** Canonical values, per compared column (empty when fetched without values). */
  values: Array<string | null>;
}

function rowSelect(side: SideProjection, withValues: boolean): string {
  // COLLATE "C" on the texts: ORDER BY 1, 2 then sorts them by bytes, whatever the database default.
  return [
    `${side.keyText} COLLATE "C" AS kt`,
    `${side.rowHash} COLLATE "C" AS h`,
    ...side.keys.map((k, i) => `${k.piece} AS k${i}`),
    ...(withValues ? side.values.map((v, i) => `${v.piece} AS v${i}`) : []),
  ].join(', ');
}

function toFetched(side: SideProjection, r: Record<string, string | null>, withValues: boolean): FetchedRow {
  return {
    kt: r.kt!,
    h: r.h!,
    key: side.keys.map((_, i) => r[`k${i}`]!),
    values: withValues ? side.values.map((_, i) => r[`v${i}`] ?? null) : [],
  };
}

/** The rows of ranges (key and row hash only), ordered by key then hash (see `Projection.keyComparisons`). */
function rangeRowsSql(projection: Projection, side: SideProjection, ranges: KeyRange[], params: Params): string {
  const where = rangesPredicate(side, ranges, params);
  // In key order when JS can follow it (the index gives the order, no sort); else by canonical key text.
  // The row text is built once per row in a subquery kept apart by OFFSET 0, not once per hash of
  // the identity (normalization is most of the cost of reading a row); the subquery walks the key
  // index, so the outer sort only orders rows of equal keys by hash.
  const hash = projection.dialect.rowIdentity('r.t');
  const keys = side.keys.map((k, i) => `${k.piece} AS k${i}`);
  const ordered = side.keys.map((k, i) => `${k.ordered} AS o${i}`);
  const inner = `SELECT ${side.keyText} AS kt, ${side.rowText} AS t, ${[...keys, ...ordered].join(', ')} FROM ${side.from} WHERE ${where}`;
  const outer = `SELECT r.kt COLLATE "C" AS kt, ${hash} COLLATE "C" AS h, ${side.keys.map((_, i) => `r.k${i}`).join(', ')}`;
  if (!projection.keyComparisons) return `${outer} FROM (${inner} OFFSET 0) AS r ORDER BY 1, 2`;
  const byKey = side.keys.map((_, i) => `o${i}`).join(', ');
  return `${outer} FROM (${inner} ORDER BY ${byKey} OFFSET 0) AS r ORDER BY ${side.keys.map((_, i) => `r.o${i}`).join(', ')}, 2`;
}

/**
 * The rows of small ranges in one query (the caller knows from the checksums how many there are):
 * ranges disjoint and ascending, so the result is in key order across all of them.
 */
export async function selectRows(db: Queryable, projection: Projection, side: SideProjection, ranges: KeyRange[]): Promise<FetchedRow[]> {
  const params = new Params();
  try {
    const { rows } = await db.query(rangeRowsSql(projection, side, ranges, params), params.values);
    return rows.map((r) => toFetched(side, r, false));
  } catch (err) {
    throw queryError(err, `reading rows of the ${side.side} ${side.schema}.${side.table}`);
  }
}

/** The values of a row streamed without them: one shared (frozen) empty list instead of one per row. */
const NO_VALUES = Object.freeze([]) as unknown as Array<string | null>;

/**
 * Streams a large range's rows through a cursor, `batch` at a time (one array per FETCH), so even a
 * huge group of duplicate keys is diffed in bounded memory. Must run inside the snapshot transaction.
 */
export async function* streamRows(
  db: Queryable,
  projection: Projection,
  side: SideProjection,
  range: KeyRange,
  cursor: string,
  batch = 5000,
): AsyncGenerator<FetchedRow[]> {
  const params = new Params();
  const sql = `DECLARE ${cursor} NO SCROLL CURSOR FOR ${rangeRowsSql(projection, side, [range], params)}`;
  try {
    await db.query(sql, params.values);
    // The next batch is already on its way while this one is diffed (and the other side fetches).
    // Rows as arrays (kt, h, k0, k1, ...): no object per row from the driver.
    const fetch = (): Promise<pg.QueryResult<string[]>> => db.query({ text: `FETCH ${batch} FROM ${cursor}`, rowMode: 'array' });
    const width = side.keys.length;
    let next: Promise<pg.QueryResult<string[]>> | null = fetch();
    while (next) {
      const rows: string[][] = (await next).rows;
      next = rows.length === batch ? fetch() : null;
      yield rows.map((r) => ({ kt: r[0]!, h: r[1]!, key: width === 1 ? [r[2]!] : r.slice(2, 2 + width), values: NO_VALUES }));
    }
  } catch (err) {
    throw queryError(err, `reading rows of the ${side.side} ${side.schema}.${side.table}`);
  } finally {
    await db.query(`CLOSE ${cursor}`).catch(() => undefined);
  }
}

/** Every row of the given keys on one side, with canonical values (differences, rechecks, repairs). */
export async function rowsByKeys(db: Queryable, side: SideProjection, keys: KeyTuple[]): Promise<FetchedRow[]> {
  if (keys.length === 0) return [];
  const params = new Params();
  const where = keyIn(side, keys, params);
  try {
    const { rows } = await db.query(`SELECT ${rowSelect(side, true)} FROM ${side.from} WHERE ${where}`, params.values);
    return rows.map((r) => toFetched(side, r, true));
  } catch (err) {
    throw queryError(err, `reading rows by key from the ${side.side} ${side.schema}.${side.table}`);
  }
}
