/**
 * A setting's p99 ratio against its own idle windows, with how sure the run is of it
 * (bench:backfill). Each running window is paired with the idle window that follows it, so a slow
 * stretch of the host falls on both sides; the ratio is the p99 of every running window's latencies
 * over the p99 of every paired idle window's. Its 90% interval comes from a bootstrap over the pairs
 * (pairs drawn with replacement, the ratio recomputed each time): the spread of what the same run
 * would have said had other minutes of it been measured. The pairs, not the transactions, are the
 * units, since the host's slow stretches make the transactions of one window move together.
 *
 * The verdict against a limit is three-valued: `within` when the interval's upper end is at most
 * the limit, `over` when its lower end is above it, `undecided` otherwise (or with fewer than
 * MIN_PAIRS pairs, too few to draw from).
 */
import { percentile } from '../../services/backfill/probe-window.js';

export const MIN_PAIRS = 5;
const RESAMPLES = 1_000;

export interface PairedRatio {
  ratio: number | null;
  /** The bootstrap's 5th and 95th percentiles; null with fewer than MIN_PAIRS pairs. */
  ci90: [number, number] | null;
  pairs: number;
  verdict: 'within' | 'over' | 'undecided';
}

/** A small seeded generator (mulberry32): the same run gives the same interval. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const p99Ratio = (running: readonly number[], idle: readonly number[]): number | null => {
  const r = percentile(running, 0.99);
  const i = percentile(idle, 0.99);
  return r === undefined || i === undefined || i <= 0 ? null : r / i;
};

/**
 * `pairs[k]` holds the latencies of running window k and of the idle window after it; a pair with
 * either side empty is left out.
 */
export function pairedRatio(
  pairs: readonly { running: readonly number[]; idle: readonly number[] }[],
  limit: number,
  seed = 1,
): PairedRatio {
  const usable = pairs.filter((p) => p.running.length > 0 && p.idle.length > 0);
  const ratio = p99Ratio(
    usable.flatMap((p) => p.running),
    usable.flatMap((p) => p.idle),
  );
  if (usable.length < MIN_PAIRS || ratio === null) return { ratio, ci90: null, pairs: usable.length, verdict: 'undecided' };
  const random = seeded(seed);
  const draws: number[] = [];
  for (let b = 0; b < RESAMPLES; b++) {
    const running: number[] = [];
    const idle: number[] = [];
    for (let k = 0; k < usable.length; k++) {
      const p = usable[Math.floor(random() * usable.length)] as (typeof usable)[number];
      running.push(...p.running);
      idle.push(...p.idle);
    }
    const r = p99Ratio(running, idle);
    if (r !== null) draws.push(r);
  }
  const ci90: [number, number] = [percentile(draws, 0.05) as number, percentile(draws, 0.95) as number];
  const verdict = ci90[1] <= limit ? 'within' : ci90[0] > limit ? 'over' : 'undecided';
  return { ratio, ci90, pairs: usable.length, verdict };
}
