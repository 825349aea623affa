/**
 * How many entries a version still has, estimated from the keys recently written, without touching
 * the keyspace (no KEYS, no SCAN). Every write adds its entry key to a HyperLogLog per version and
 * time bucket (applier.ts). An entry lives at most `maxEntryLifetimeMs` after its last write, so the
 * entries that can still exist are exactly the keys written within that window: their count is the
 * PFCOUNT of the union of the window's buckets.
 *
 * It is an upper bound (entries whose jittered TTL was shorter are gone already; deleted rows leave
 * tombstones that expire sooner) with HyperLogLog's ~0.81% standard error, and it counts only keys
 * written by parity since it started counting (reader fills included).
 */
import type { Redis } from 'ioredis';
import { writtenBucketMs } from './applier.js';
import type { CacheKeys } from './keys.js';

export interface RemainingEstimate {
  version: string;
  /** Distinct entry keys written within the last maxEntryLifetimeMs. */
  estimate: number;
  /** The window counted, ms. */
  windowMs: number;
}

/** The bucket keys covering [now - maxEntryLifetimeMs, now]. */
export function windowBuckets(keys: CacheKeys, version: string, now: number, maxEntryLifetimeMs: number): string[] {
  const bucketMs = writtenBucketMs(maxEntryLifetimeMs);
  const first = Math.floor((now - maxEntryLifetimeMs) / bucketMs);
  const last = Math.floor(now / bucketMs);
  const out: string[] = [];
  for (let b = first; b <= last; b++) out.push(keys.written(version, b));
  return out;
}

export async function estimateRemaining(
  redis: Redis,
  keys: CacheKeys,
  versions: string[],
  now: number,
  maxEntryLifetimeMs: number,
): Promise<RemainingEstimate[]> {
  const out: RemainingEstimate[] = [];
  for (const version of versions) {
    // All buckets share the {migration} hash tag, so one PFCOUNT may union them (also on a cluster).
    const estimate = await redis.pfcount(...windowBuckets(keys, version, now, maxEntryLifetimeMs));
    out.push({ version, estimate, windowMs: maxEntryLifetimeMs });
  }
  return out;
}
