/**
 * Sends a batch of cache writes to Redis in one pipeline: apply-n.lua calls of up to
 * `writesPerCall` writes each (so Redis is never blocked long by one call), the truncate
 * barriers, and one PFADD per version recording the written keys (for the cutover's estimate of how
 * many keys a version still has). Any failure fails the whole batch; every part of it is idempotent,
 * so the caller simply retries it.
 */
import { ParityError } from '../core/errors.js';
import type { CacheKeys } from './keys.js';
import { scriptedPipeline, type ScriptedRedis } from './scripts.js';
import { applyCall, type EntryWrite } from './writes.js';

/** Result codes of lua/apply-n.lua. */
export const APPLIED = 1;
export const SKIPPED = 0;
export const INVALIDATED = 2;

export interface ApplyOutcome {
  /** One result code per write, in order. */
  results: number[];
  /** Barriers that moved. */
  barriersMoved: number;
}

/**
 * The time buckets of the written-keys HyperLogLogs: at most ~25 cover an entry's lifetime, and never
 * shorter than a minute.
 */
export function writtenBucketMs(maxEntryLifetimeMs: number): number {
  return Math.max(60_000, Math.ceil(maxEntryLifetimeMs / 24));
}

/** Writes per script call: ~100 entries keep one call around a millisecond of Redis time. */
export const WRITES_PER_CALL = 100;

export interface ApplyOptions {
  barriers?: string[];
  writesPerCall?: number;
  now: number;
  maxEntryLifetimeMs: number;
}

export async function applyWrites(
  redis: ScriptedRedis,
  keys: CacheKeys,
  writes: EntryWrite[],
  options: ApplyOptions,
): Promise<ApplyOutcome> {
  const pipeline = scriptedPipeline(redis);
  const perCall = Math.max(1, options.writesPerCall ?? WRITES_PER_CALL);
  const calls = Math.ceil(writes.length / perCall);
  for (let i = 0; i < writes.length; i += perCall) {
    pipeline.parityCacheApply(...applyCall(writes.slice(i, i + perCall)));
  }
  const barriers = options.barriers ?? [];
  for (const position of barriers) pipeline.parityCacheBarrier(keys.config, position);
  const bucketMs = writtenBucketMs(options.maxEntryLifetimeMs);
  const bucket = Math.floor(options.now / bucketMs);
  const byVersion = new Map<string, string[]>();
  for (const write of writes) {
    const list = byVersion.get(write.version) ?? [];
    list.push(write.entryKey);
    byVersion.set(write.version, list);
  }
  for (const [version, entryKeys] of byVersion) {
    const hll = keys.written(version, bucket);
    pipeline.pfadd(hll, ...entryKeys);
    // The bucket must outlive every entry it counts.
    pipeline.pexpire(hll, options.maxEntryLifetimeMs + 2 * bucketMs);
  }
  let replies: Array<[Error | null, unknown]> | null;
  try {
    replies = await pipeline.exec();
  } catch (err) {
    throw redisError(err);
  }
  if (!replies) throw new ParityError('PARITY_REDIS', 'the Redis pipeline was discarded', { retriable: true });
  const failed = replies.find(([err]) => err);
  if (failed) throw redisError(failed[0]);
  const results: number[] = [];
  for (const [, value] of replies.slice(0, calls)) for (const digit of String(value)) results.push(Number(digit));
  if (results.length !== writes.length)
    throw new ParityError('PARITY_INTERNAL', `apply-n returned ${results.length} results for ${writes.length} writes`);
  const barriersMoved = replies.slice(calls, calls + barriers.length).filter(([, value]) => Number(value) === 1).length;
  return { results, barriersMoved };
}

/**
 * Connection loss, timeouts, LOADING, BUSY, READONLY (failover) and OOM are retriable: Redis will
 * come back. A plain ERR reply from a script is a bug or a malformed write: retrying cannot help.
 */
function redisError(err: unknown): ParityError {
  const message = err instanceof Error ? err.message : String(err);
  const isReply = (err as { name?: string } | null)?.name === 'ReplyError';
  const retriable = !isReply || !/^ERR /.test(message);
  return new ParityError('PARITY_REDIS', `Redis write failed: ${message}`, {
    retriable,
    cause: err,
    hint: retriable
      ? 'consumption pauses and retries; offsets are committed only after Redis confirms'
      : 'a script rejected the write; this is a bug, report it with the event',
  });
}
