/**
 * Flags for applications: read from Redis, cached locally, invalidated fast. A cached value is
 * served for at most `ttlMs`; after that one cheap GET of the version counter says whether to
 * reload. With a `subscriber` connection, the coordinator's change announcement (pub/sub) drops
 * the cache at once. A flag read never throws: on a Redis error the last known values stay (and
 * the safe defaults before the first successful read), and the error is counted.
 */
import type { Redis } from 'ioredis';
import { silentLogger, type Logger } from '../core/log.js';
import { counter, type Registry } from '../core/metrics.js';
import { coordinatorKeys } from './keys.js';
import { DEFAULT_FLAGS, effectiveFlags, type Flags, type ReadPath } from './flag-model.js';
import { routeRead, type RoutingKey } from './routing.js';

export interface FlagsReaderOptions {
  redis: Redis;
  /** A dedicated connection for pub/sub (a subscribed connection can run nothing else). */
  subscriber?: Redis;
  migration: string;
  cohort?: string;
  keyPrefix?: string;
  /** Longest time a cached value is served without checking the version (default 1000 ms). */
  ttlMs?: number;
  clock?: () => number;
  logger?: Logger;
  metrics?: Registry;
}

export interface FlagsReader {
  /** Flags, from the cache while fresh. Never throws. */
  get(): Promise<Flags>;
  /** The last known flags, synchronously (defaults before the first read). */
  current(): Flags;
  /** The read path for a key under the current flags (consistent hash of the key). */
  route(key: RoutingKey): ReadPath;
  /** Reloads now, whatever the cache says. */
  refresh(): Promise<Flags>;
  /** Loads once, subscribes to changes, and keeps `current()` fresh in the background. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createFlagsReader(options: FlagsReaderOptions): FlagsReader {
  const keys = coordinatorKeys(options.migration, options.keyPrefix);
  const clock = options.clock ?? (() => performance.now());
  const ttlMs = options.ttlMs ?? 1_000;
  const logger = options.logger ?? silentLogger();
  const metrics = options.metrics
    ? {
        reloads: counter(options.metrics, 'parity_client_flag_reloads_total', 'Flag reloads from Redis after a version change'),
        errors: counter(options.metrics, 'parity_client_flag_errors_total', 'Flag reads that failed (last known values kept)'),
      }
    : undefined;
  let flags: Flags = { ...DEFAULT_FLAGS };
  let version: string | null | undefined;
  let checkedAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<Flags> | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** Change announcements received: one that lands while a load runs makes it load again after. */
  let announced = 0;

  async function load(force: boolean): Promise<Flags> {
    try {
      if (!force && version !== undefined) {
        const now = await options.redis.get(keys.flagsVersion());
        if (now === version) {
          checkedAt = clock();
          return flags;
        }
      }
      // Version and both hashes in one MULTI, so the values match the version they are cached under.
      const multi = options.redis.multi().get(keys.flagsVersion()).hgetall(keys.flags());
      if (options.cohort) multi.hgetall(keys.flags(options.cohort));
      const replies = await multi.exec();
      if (!replies) throw new Error('flag read transaction was aborted');
      for (const [err] of replies) if (err) throw err;
      const [v, migrationHash, cohortHash] = replies.map(([, value]) => value) as [
        string | null,
        Record<string, string>,
        Record<string, string> | undefined,
      ];
      const effective = effectiveFlags(migrationHash, cohortHash ?? {});
      for (const bad of effective.invalid) logger.warn({ value: bad }, 'ignored an invalid stored flag value');
      flags = effective.flags;
      version = v;
      checkedAt = clock();
      metrics?.reloads.inc();
      return flags;
    } catch (err) {
      metrics?.errors.inc();
      logger.warn({ err: (err as Error).message }, 'flag read failed; keeping the last known values');
      return flags;
    }
  }

  function once(force: boolean): Promise<Flags> {
    if (!inFlight) {
      const seen = announced;
      inFlight = load(force).finally(() => {
        inFlight = undefined;
        // A change announced while this load ran may be missing from what it read: read again.
        if (announced !== seen) {
          checkedAt = Number.NEGATIVE_INFINITY;
          void once(true);
        }
      });
    }
    return inFlight;
  }

  const onMessage = (channel: string): void => {
    if (channel !== keys.flagsChannel()) return;
    announced++;
    checkedAt = Number.NEGATIVE_INFINITY;
    void once(true);
  };

  return {
    async get() {
      if (clock() - checkedAt < ttlMs) return flags;
      return once(false);
    },
    current: () => flags,
    route: (key) => routeRead(flags, key, options.migration),
    refresh: () => once(true),
    async start() {
      if (options.subscriber) {
        options.subscriber.on('message', onMessage);
        await options.subscriber.subscribe(keys.flagsChannel());
      }
      await once(true);
      timer = setInterval(() => void once(false), ttlMs);
      timer.unref();
    },
    async close() {
      clearInterval(timer);
      if (options.subscriber) {
        options.subscriber.off('message', onMessage);
        await options.subscriber.unsubscribe(keys.flagsChannel()).catch(() => undefined);
      }
    },
  };
}
