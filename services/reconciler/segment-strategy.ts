/**
 * How a segment is verified, chosen per segment from its measured difference density. Bisection
 * pays off for sparse drift: checksums prove most of the segment equal and only the few differing
 * parts are read. For dense drift it costs a checksum scan on top of reading nearly everything, so a
 * segment whose differing parts hold a large share of its rows is compared directly instead, by a
 * sorted merge of both sides streamed through cursors (bounded memory). The density measured in one
 * segment also predicts the next one (neighbouring key ranges tend to drift alike): after a dense
 * segment, the next is merged straight away without checksumming it first, and its own measured
 * density decides again for the one after.
 */
import type { Checksum } from './segment-hash.js';

export type SegmentStrategy = 'bisect' | 'merge';

/** Rows in differing parts (larger side) over all rows at or above which a segment is merged. */
export const DENSE_FRACTION = 0.5;

/** Share of a segment's rows (larger side) that lie in parts whose checksums differ: 0 when empty. */
export function differenceDensity(source: Checksum[], target: Checksum[]): number {
  let total = 0n;
  let differing = 0n;
  for (let i = 0; i < source.length; i++) {
    const s = source[i]!;
    const t = target[i]!;
    const larger = s.rows >= t.rows ? s.rows : t.rows;
    total += larger;
    if (s.rows !== t.rows || s.sum1 !== t.sum1 || s.sum2 !== t.sum2) differing += larger === 0n ? 1n : larger;
  }
  if (total === 0n) return differing > 0n ? 1 : 0;
  return Math.min(1, Number(differing) / Number(total));
}

/** The strategy for the rest of a segment once its part checksums are known. */
export function strategyFor(density: number): SegmentStrategy {
  return density >= DENSE_FRACTION ? 'merge' : 'bisect';
}

/** Density of a merged segment: differing rows over its rows (larger side). */
export function mergedDensity(driftRows: number, sourceRows: bigint, targetRows: bigint): number {
  const rows = Number(sourceRows >= targetRows ? sourceRows : targetRows);
  return rows === 0 ? (driftRows > 0 ? 1 : 0) : Math.min(1, driftRows / rows);
}

/** At least this many differing keys in a segment before they are rechecked by a second merge of it. */
export const INLINE_RECHECK_MIN_KEYS = 500;
/** ... and at least this share of its rows (below it, looking keys up one page at a time costs less). */
export const INLINE_RECHECK_MIN_FRACTION = 0.05;

/**
 * Whether a segment's differing keys are rechecked together by merging the whole segment again in
 * fresh snapshots (one more read of it), instead of one by one through the control tables.
 */
export function recheckBySegment(differingKeys: number, segmentRows: number): boolean {
  return differingKeys >= INLINE_RECHECK_MIN_KEYS && differingKeys >= INLINE_RECHECK_MIN_FRACTION * Math.max(1, segmentRows);
}
