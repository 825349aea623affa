/**
 * Key ranges: the unit of verification. A range is [lo, hi) over the (possibly composite) key in a
 * collation-independent order; a missing bound is unbounded, so keys <= 0, huge gaps and rows that
 * exist on one side only always fall into exactly one segment. Bounds are key values read from the
 * data (never computed), carried as canonical text and cast back to the key's common type (see
 * key-type.ts), so a bound read from one side is valid on the other whatever their declared types.
 */
import type { SideProjection } from './projection.js';

/** A key value as the text of each key column. */
export type KeyTuple = string[];

export interface KeyRange {
  lo: KeyTuple | null;
  hi: KeyTuple | null;
}

/** Collects positional parameters ($1, $2, ...) while a statement is built. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** The key as compared: the column itself, or ROW(...) for composite keys. */
export function keyExpr(side: SideProjection): string {
  const cols = side.keys.map((k) => k.ordered);
  return cols.length === 1 ? cols[0]! : `ROW(${cols.join(', ')})`;
}

/** A key value as a SQL value of the key's common type(s). */
export function tupleSql(side: SideProjection, tuple: KeyTuple, params: Params): string {
  const parts = side.keys.map((k, i) => `${params.add(tuple[i])}::${k.common.castName}`);
  return parts.length === 1 ? parts[0]! : `ROW(${parts.join(', ')})`;
}

/** WHERE clause selecting the range on one side ("TRUE" when unbounded both ways). */
export function rangePredicate(side: SideProjection, range: KeyRange, params: Params): string {
  const k = keyExpr(side);
  const parts: string[] = [];
  if (range.lo) parts.push(`${k} >= ${tupleSql(side, range.lo, params)}`);
  if (range.hi) parts.push(`${k} < ${tupleSql(side, range.hi, params)}`);
  return parts.length ? parts.join(' AND ') : 'TRUE';
}

/** WHERE clause selecting any of several disjoint ranges on one side. */
export function rangesPredicate(side: SideProjection, ranges: KeyRange[], params: Params): string {
  if (ranges.length === 1) return rangePredicate(side, ranges[0]!, params);
  return ranges.map((r) => `(${rangePredicate(side, r, params)})`).join(' OR ');
}

/**
 * SQL numbering the sub-range a row falls in, given ascending inner bounds b1 < b2 < ...:
 * 0 below b1, i for [b_i, b_i+1), n at or above b_n. Nested CASEs form a binary search, so a row
 * costs log2(n) key comparisons, and they work for any key type and composite keys alike (where
 * width_bucket would need one array type).
 */
export function bucketExpr(side: SideProjection, bounds: KeyTuple[], params: Params): string {
  if (bounds.length === 0) return '0';
  const k = keyExpr(side);
  // Buckets lo..hi; bucket i starts at bounds[i - 1].
  const build = (lo: number, hi: number): string => {
    if (lo === hi) return String(lo);
    const mid = Math.floor((lo + hi + 1) / 2);
    return `CASE WHEN ${k} < ${tupleSql(side, bounds[mid - 1]!, params)} THEN ${build(lo, mid - 1)} ELSE ${build(mid, hi)} END`;
  };
  return build(0, bounds.length);
}

/** ORDER BY list walking the key in range order. */
export function keyOrderBy(side: SideProjection): string {
  return side.keys.map((k) => k.ordered).join(', ');
}

/**
 * WHERE clause matching any of the given keys exactly, in the key's common type. Equality uses no
 * COLLATE: deterministic collations compare equal only for equal bytes, and the index stays usable
 * where the side compares its column as it is.
 */
export function keyIn(side: SideProjection, keys: KeyTuple[], params: Params): string {
  if (side.keys.length === 1) {
    const k = side.keys[0]!;
    return `${k.compared} = ANY(${params.add(keys.map((t) => t[0]))}::text[]::${k.common.castName}[])`;
  }
  const arrays = side.keys.map((_, i) => `${params.add(keys.map((t) => t[i]))}::text[]`);
  const cols = side.keys.map((_, i) => `u.c${i}::${side.keys[i]!.common.castName}`);
  return `ROW(${side.keys.map((k) => k.compared).join(', ')}) IN (SELECT ${cols.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${side.keys.map((_, i) => `c${i}`).join(', ')}))`;
}

/** The sub-range i of a range split at ascending inner bounds. */
export function subRange(range: KeyRange, bounds: KeyTuple[], i: number): KeyRange {
  return { lo: i === 0 ? range.lo : bounds[i - 1]!, hi: i === bounds.length ? range.hi : bounds[i]! };
}
