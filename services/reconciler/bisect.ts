/**
 * Verifies one segment inside a pair of snapshots: checksums per sub-range on both sides, bisect
 * the sub-ranges whose checksums differ (split points read from the key index of the side with more
 * rows there), and diff rows exactly once a differing range is small (at most
 * `reconcile.bisectionThreshold` rows) or cannot be split any further (a single key's rows).
 */
import type pg from 'pg';
import { subRange, type KeyRange, type KeyTuple } from './key-range.js';
import type { Projection } from './projection.js';
import { diffSortedRows, type DiffCounters, type KeyDifference } from './row-diff.js';
import { addChecksums, bucketChecksums, EMPTY_CHECKSUM, sameChecksum, splitPoints, streamRows, type Checksum } from './segment-hash.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface BisectOptions {
  /** Ranges with at most this many rows (on the larger side) are diffed row by row. */
  threshold: number;
  /** How many parts a differing range is split into. */
  factor: number;
  /** Receives each differing key as it is found (so memory never holds them all). */
  onDifference: (d: KeyDifference) => Promise<void>;
}

export interface SegmentOutcome {
  source: Checksum;
  target: Checksum;
  /** Keys that differ in this snapshot pair. */
  differingKeys: number;
  driftRows: number;
  /** Ranges split further after their checksums differed. */
  bisections: number;
  /** Rows fetched for exact diffs, both sides together. */
  fetchedRows: number;
}

/** Bisection never goes deeper than this; past it a range is diffed row by row whatever its size. */
const MAX_DEPTH = 48;

let cursorSeq = 0;

export async function compareSegment(
  source: Queryable,
  target: Queryable,
  projection: Projection,
  range: KeyRange,
  bounds: KeyTuple[],
  options: BisectOptions,
): Promise<SegmentOutcome> {
  const outcome: SegmentOutcome = { source: EMPTY_CHECKSUM, target: EMPTY_CHECKSUM, differingKeys: 0, driftRows: 0, bisections: 0, fetchedRows: 0 };

  const leaf = async (r: KeyRange): Promise<void> => {
    const n = ++cursorSeq;
    const counters: DiffCounters = { matchedRows: 0, sourceRows: 0, targetRows: 0 };
    const rows = diffSortedRows(
      streamRows(source, projection, projection.source, r, `parity_leaf_s${n}`),
      streamRows(target, projection, projection.target, r, `parity_leaf_t${n}`),
      counters,
    );
    for await (const d of rows) {
      outcome.differingKeys++;
      outcome.driftRows += d.updated + d.exclusiveSource + d.exclusiveTarget;
      await options.onDifference(d);
    }
    outcome.fetchedRows += counters.sourceRows + counters.targetRows;
  };

  const visit = async (r: KeyRange, inner: KeyTuple[], depth: number): Promise<[Checksum[], Checksum[]]> => {
    const [sb, tb] = await Promise.all([
      bucketChecksums(source, projection, projection.source, r, inner),
      bucketChecksums(target, projection, projection.target, r, inner),
    ]);
    for (let i = 0; i < sb.length; i++) {
      const s = sb[i]!;
      const t = tb[i]!;
      if (sameChecksum(s, t)) continue;
      const part = subRange(r, inner, i);
      const larger = s.rows >= t.rows ? s.rows : t.rows;
      if (larger <= BigInt(options.threshold) || depth >= MAX_DEPTH) {
        await leaf(part);
        continue;
      }
      const fromSource = s.rows >= t.rows;
      const step = Math.max(1, Math.ceil(Number(larger) / options.factor));
      const split = await splitPoints(fromSource ? source : target, fromSource ? projection.source : projection.target, part, step);
      if (split.length === 0) {
        // One key's rows (duplicates): nothing left to split on; the cursor diff streams them.
        await leaf(part);
        continue;
      }
      outcome.bisections++;
      await visit(part, split, depth + 1);
    }
    return [sb, tb];
  };

  const [sb, tb] = await visit(range, bounds, 0);
  outcome.source = sb.reduce(addChecksums, EMPTY_CHECKSUM);
  outcome.target = tb.reduce(addChecksums, EMPTY_CHECKSUM);
  return outcome;
}
