/**
 * Verifies one segment inside a pair of snapshots: checksums per sub-range on both sides, bisect
 * the sub-ranges whose checksums differ (split points read from the key index of the side with more
 * rows there), and diff rows exactly once a differing range is small (at most
 * `reconcile.bisectionThreshold` rows) or cannot be split any further (a single key's rows).
 * When the differing parts hold a large share of the segment's rows (segment-strategy.ts), the
 * segment is compared directly by one streamed sorted merge instead of bisected.
 */
import type pg from 'pg';
import { subRange, type KeyRange, type KeyTuple } from './key-range.js';
import type { IdentitySums } from './dialect.js';
import type { Projection } from './projection.js';
import { BYTE_ORDER, diffSortedRows, keyOrder, type DiffCounters, type KeyDifference } from './row-diff.js';
import {
  addChecksums,
  bucketChecksums,
  EMPTY_CHECKSUM,
  sameChecksum,
  selectRows,
  splitPoints,
  streamRows,
  type Checksum,
  type FetchedRow,
} from './segment-hash.js';
import { differenceDensity, mergedDensity, strategyFor, type SegmentStrategy } from './segment-strategy.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface BisectOptions {
  /** Ranges with at most this many rows (on the larger side) are diffed row by row. */
  threshold: number;
  /** How many parts a differing range is split into. */
  factor: number;
  /** Receives each differing key as it is found (so memory never holds them all). */
  onDifference: (d: KeyDifference) => Promise<void>;
  /**
   * Skip the checksum pass: stream the whole segment and diff it row by row, computing its
   * checksums from the streamed row identities. Pays off when most parts differ anyway.
   */
  dense?: boolean;
  /** A recheck of the segment (with `dense`): its checksums are not needed, only the differences. */
  recheck?: boolean;
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
  /** Drift was dense: diffing the next segment row by row straight away costs less than checksumming it first. */
  denseHint: boolean;
  /** How the segment was compared, and the share of its rows found differing (measured). */
  strategy: SegmentStrategy;
  density: number;
}

/** Bisection never goes deeper than this; past it a range is diffed row by row whatever its size. */
const MAX_DEPTH = 48;

/** Leaves up to this many rows (per side) are read in one query; larger ones through a cursor. */
const IN_MEMORY_ROWS = 20_000;

async function* iterate<T>(items: T[]): AsyncGenerator<T[]> {
  yield items;
}

let cursorSeq = 0;

export async function compareSegment(
  source: Queryable,
  target: Queryable,
  projection: Projection,
  range: KeyRange,
  bounds: KeyTuple[],
  options: BisectOptions,
): Promise<SegmentOutcome> {
  const outcome: SegmentOutcome = {
    source: EMPTY_CHECKSUM,
    target: EMPTY_CHECKSUM,
    differingKeys: 0,
    driftRows: 0,
    bisections: 0,
    fetchedRows: 0,
    denseHint: false,
    strategy: 'bisect',
    density: 0,
  };
  const parts = bounds.length + 1;

  // Differences go out in batches. Their values are not read here: every difference is a suspect
  // that the recheck reads again (with values) anyway.
  let pending: KeyDifference[] = [];
  const flush = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    for (const d of batch) {
      d.sourceValues = null;
      d.targetValues = null;
      await options.onDifference(d);
    }
  };

  const order = projection.keyComparisons ? keyOrder(projection.keyComparisons) : BYTE_ORDER;
  const diff = async (rows: AsyncGenerator<KeyDifference>, counters: DiffCounters): Promise<void> => {
    for await (const d of rows) {
      outcome.differingKeys++;
      outcome.driftRows += d.updated + d.exclusiveSource + d.exclusiveTarget;
      pending.push(d);
      if (pending.length >= 500) await flush();
    }
    outcome.fetchedRows += counters.sourceRows + counters.targetRows;
  };
  // Ranges to diff row by row, in key order; small ones are read together, one query per side.
  const leaves: Array<{ range: KeyRange; rows: bigint }> = [];
  const diffLeaves = async (): Promise<void> => {
    let group: KeyRange[] = [];
    let groupRows = 0n;
    const readGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      const ranges = group;
      group = [];
      groupRows = 0n;
      const counters: DiffCounters = { matchedRows: 0, sourceRows: 0, targetRows: 0 };
      const [s, t] = await Promise.all([
        selectRows(source, projection, projection.source, ranges),
        selectRows(target, projection, projection.target, ranges),
      ]);
      await diff(diffSortedRows(iterate(s), iterate(t), counters, 1000, order), counters);
    };
    for (const l of leaves) {
      if (l.rows > BigInt(IN_MEMORY_ROWS)) {
        await readGroup();
        const n = ++cursorSeq;
        const counters: DiffCounters = { matchedRows: 0, sourceRows: 0, targetRows: 0 };
        await diff(
          diffSortedRows(
            streamRows(source, projection, projection.source, l.range, `parity_leaf_s${n}`),
            streamRows(target, projection, projection.target, l.range, `parity_leaf_t${n}`),
            counters,
            1000,
            order,
          ),
          counters,
        );
        continue;
      }
      if (groupRows + l.rows > BigInt(IN_MEMORY_ROWS)) await readGroup();
      group.push(l.range);
      groupRows += l.rows;
    }
    await readGroup();
  };
  const leaf = async (r: KeyRange, expectedRows: bigint): Promise<void> => {
    leaves.push({ range: r, rows: expectedRows });
  };

  const checksums = (r: KeyRange, inner: KeyTuple[]): Promise<[Checksum[], Checksum[]]> =>
    Promise.all([
      bucketChecksums(source, projection, projection.source, r, inner),
      bucketChecksums(target, projection, projection.target, r, inner),
    ]);
  const visit = async (
    r: KeyRange,
    inner: KeyTuple[],
    depth: number,
    known?: [Checksum[], Checksum[]],
  ): Promise<[Checksum[], Checksum[]]> => {
    const [sb, tb] = known ?? (await checksums(r, inner));
    // Adjacent small differing parts are diffed as one range: one cursor instead of many when
    // drift is dense, the same work when it is sparse.
    let run: { first: number; last: number; rows: bigint } | null = null;
    const flushRun = async (): Promise<void> => {
      if (!run) return;
      const { first, last, rows } = run;
      run = null;
      await leaf({ lo: subRange(r, inner, first).lo, hi: subRange(r, inner, last).hi }, rows);
    };
    for (let i = 0; i < sb.length; i++) {
      const s = sb[i]!;
      const t = tb[i]!;
      if (sameChecksum(s, t)) {
        await flushRun();
        continue;
      }
      const larger = s.rows >= t.rows ? s.rows : t.rows;
      if (larger <= BigInt(options.threshold) || depth >= MAX_DEPTH) {
        if (run && run.last === i - 1) {
          run.last = i;
          run.rows += larger;
        } else {
          await flushRun();
          run = { first: i, last: i, rows: larger };
        }
        continue;
      }
      await flushRun();
      const part = subRange(r, inner, i);
      const fromSource = s.rows >= t.rows;
      const step = Math.max(1, Math.ceil(Number(larger) / options.factor));
      const split = await splitPoints(fromSource ? source : target, fromSource ? projection.source : projection.target, part, step);
      if (split.length === 0) {
        // One key's rows (duplicates): nothing left to split on; the cursor diff streams them.
        await leaf(part, larger);
        continue;
      }
      outcome.bisections++;
      await visit(part, split, depth + 1);
    }
    await flushRun();
    return [sb, tb];
  };

  // Merges the whole segment: one cursor per side, every row diffed. Returns the streamed checksums.
  // `withSums`: the segment's checksums are not known yet (no checksum pass, and not a recheck).
  const merge = async (withSums: boolean): Promise<[Checksum, Checksum]> => {
    // The row identities are the two checksum hashes, so the sums come out of the same stream.
    const sums = {
      source: { rows: 0n, hashes: projection.dialect.identitySums() },
      target: { rows: 0n, hashes: projection.dialect.identitySums() },
    };
    const counted = async function* (
      batches: AsyncGenerator<FetchedRow[]>,
      acc: { rows: bigint; hashes: IdentitySums },
    ): AsyncGenerator<FetchedRow[]> {
      for await (const batch of batches) {
        for (const r of batch) acc.hashes.add(r.h);
        acc.rows += BigInt(batch.length);
        yield batch;
      }
    };
    const n = ++cursorSeq;
    const counters: DiffCounters = { matchedRows: 0, sourceRows: 0, targetRows: 0 };
    await diff(
      diffSortedRows(
        // Summing parses two 64-bit numbers per row: only when the sums are needed.
        withSums
          ? counted(streamRows(source, projection, projection.source, range, `parity_leaf_s${n}`), sums.source)
          : streamRows(source, projection, projection.source, range, `parity_leaf_s${n}`),
        withSums
          ? counted(streamRows(target, projection, projection.target, range, `parity_leaf_t${n}`), sums.target)
          : streamRows(target, projection, projection.target, range, `parity_leaf_t${n}`),
        counters,
        1000,
        order,
      ),
      counters,
    );
    await flush();
    const [s1, s2] = sums.source.hashes.sums();
    const [t1, t2] = sums.target.hashes.sums();
    return [
      { rows: sums.source.rows, sum1: s1.toString(), sum2: s2.toString() },
      { rows: sums.target.rows, sum1: t1.toString(), sum2: t2.toString() },
    ];
  };

  if (options.dense) {
    // Predicted dense (the previous segment was): no checksum pass at all.
    [outcome.source, outcome.target] = await merge(!options.recheck);
    outcome.strategy = 'merge';
    outcome.density = mergedDensity(outcome.driftRows, outcome.source.rows, outcome.target.rows);
    outcome.denseHint = strategyFor(outcome.density) === 'merge';
    return outcome;
  }

  // One scan per side gives every part's checksum; the measured density picks the strategy.
  const top = await checksums(range, bounds);
  outcome.density = differenceDensity(top[0], top[1]);
  outcome.strategy = parts > 1 ? strategyFor(outcome.density) : 'bisect';
  outcome.source = top[0].reduce(addChecksums, EMPTY_CHECKSUM);
  outcome.target = top[1].reduce(addChecksums, EMPTY_CHECKSUM);
  if (outcome.strategy === 'merge') {
    await merge(false);
  } else {
    await visit(range, bounds, 0, top);
    await diffLeaves();
    await flush();
  }
  // The next segment is probably as dense as this one.
  outcome.denseHint = outcome.strategy === 'merge';
  return outcome;
}
