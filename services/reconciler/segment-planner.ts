/**
 * Splits the key space into segments of about `segmentRows` rows, with boundaries read from the
 * key index in one ordered walk (every `partRows`-th key), never computed from key
 * values: sparse keys, huge gaps and keys <= 0 give segments of the same size. The first segment is
 * unbounded below and the last above, so rows that exist only on the other side, beyond the planned
 * side's keys, are still covered. Each segment also keeps the finer boundaries inside it, so its
 * first checksum query already returns per-part sums and a differing segment needs no second scan
 * to find which part differs. Parts are small enough (a quarter of `reconcile.bisectionThreshold`
 * rows) that a differing part usually goes straight to an exact diff: the first level of bisection
 * is read from the index once, at planning, instead of once per differing segment.
 *
 * Boundaries are streamed through a cursor and handed over in batches: memory stays bounded
 * whatever the table size.
 */
import type pg from 'pg';
import { fromPgError } from '../core/errors.js';
import { keyOrderBy, type KeyTuple } from './key-range.js';
import type { SegmentPlan } from './control-store.js';
import type { SideProjection } from './projection.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Planner's row estimate for a table (pg_class.reltuples; -1 or 0 when never analyzed). */
export async function estimateRows(db: Queryable, side: SideProjection): Promise<number> {
  const { rows } = await db.query(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass`, [side.from]);
  return Number(rows[0]?.n ?? 0);
}

/** At most this many parts per segment: the part lookup is a binary search of log2(parts) comparisons. */
export const MAX_PARTS_PER_SEGMENT = 256;

/** Rows per part and parts per segment for a segment size and bisection threshold. */
export function partsFor(segmentRows: number, bisectionThreshold: number): { partRows: number; partsPerSegment: number } {
  let partRows = Math.max(1, Math.floor(bisectionThreshold / 4));
  let partsPerSegment = Math.ceil(segmentRows / partRows);
  if (partsPerSegment > MAX_PARTS_PER_SEGMENT) {
    partsPerSegment = MAX_PARTS_PER_SEGMENT;
    partRows = Math.ceil(segmentRows / MAX_PARTS_PER_SEGMENT);
  }
  return { partRows, partsPerSegment: Math.max(1, partsPerSegment) };
}

export interface PlanOptions {
  /** Rows per part: a bound is read every partRows rows. */
  partRows: number;
  /** Every partsPerSegment-th bound starts a new segment. */
  partsPerSegment: number;
  /** Receives planned segments in order, a batch at a time. */
  onSegments: (segments: SegmentPlan[]) => Promise<void>;
  batch?: number;
}

/** Plans the segments by walking `side`'s key index; returns how many segments there are. */
export async function planSegments(db: Queryable, side: SideProjection, options: PlanOptions): Promise<number> {
  const step = Math.max(1, options.partRows);
  const keyCols = side.keys.map((_, i) => `k${i}`);
  const sql = `DECLARE parity_plan NO SCROLL CURSOR FOR
               SELECT ${keyCols.join(', ')}, rn FROM (
                 SELECT ${side.keys.map((k, i) => `${k.piece} AS k${i}`).join(', ')}, row_number() OVER (ORDER BY ${keyOrderBy(side)}) AS rn
                   FROM ${side.from}) AS s
                WHERE rn % ${step} = 1 AND rn > 1 ORDER BY rn`;
  const batchSize = options.batch ?? 500;
  let pending: SegmentPlan[] = [];
  let count = 0;
  let lo: KeyTuple | null = null;
  let sub: KeyTuple[] = [];
  let previous: KeyTuple | null = null;
  const close = async (hi: KeyTuple | null): Promise<void> => {
    pending.push({ no: ++count, lo, hi, subBounds: sub });
    lo = hi;
    sub = [];
    if (pending.length >= batchSize) {
      await options.onSegments(pending);
      pending = [];
    }
  };
  try {
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await db.query(sql);
    for (;;) {
      const { rows } = await db.query(`FETCH 2000 FROM parity_plan`);
      for (const r of rows) {
        const key = keyCols.map((c) => String(r[c]));
        // Equal keys stay together: a bound equal to the previous one adds nothing.
        if (previous && previous.every((v, i) => v === key[i])) continue;
        previous = key;
        const j = (Number(r.rn) - 1) / step;
        // Every factor-th bound closes a segment; a run of duplicates can swallow one, so cap the parts.
        if (j % options.partsPerSegment === 0 || sub.length >= 2 * options.partsPerSegment) await close(key);
        else sub.push(key);
      }
      if (rows.length < 2000) break;
    }
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw fromPgError(err, `reading segment boundaries from the ${side.side} ${side.schema}.${side.table}`);
  }
  await close(null);
  if (pending.length > 0) await options.onSegments(pending);
  return count;
}
