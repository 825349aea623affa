/**
 * The application side of parity's versioned cache: read the current version, fall back to the other
 * fresh versions, and on a miss fill from the database without a stampede.
 *
 * Stampede guard, two layers (after Facebook's memcache leases):
 * - in process, one flight per entry key: concurrent `get`s of one key share one promise;
 * - across processes, a short Redis lease (SET NX PX leaseMs): only its holder reads the database and
 *   writes the entry; the others wait, re-read, and take the lease over if its holder vanished.
 *
 * A fill is written with the lowest position (the truncate barrier), through the same "set if newer"
 * script as change events: it never overwrites an entry written from a change, and every later change
 * replaces it. Which version is read comes from Redis (set by `parity cache cutover`), re-read every
 * `configRefreshMs`.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Row } from '../core/change-event.js';
import { ParityError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import { sleep as defaultSleep } from '../core/retry.js';
import type { Spec } from '../core/spec.js';
import { targetTable } from '../core/spec.js';
import { ZERO_POSITION, entryRow, parseEntry, usable, type CacheEntry } from './entry.js';
import { cacheKeys, renderKey } from './keys.js';
import { readerMetrics, type ReaderMetrics } from './metrics.js';
import { keyJson, projectRow } from './payload.js';
import { applyCall } from './writes.js';
import { createRowReader, keyText } from './row-reader.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import { cacheSettingsFrom, jitteredTtlMs, type CacheSettings, type CacheSettingsInput } from './settings.js';
import { effectiveConfig, fallbackVersions, type VersionConfig } from './version-config.js';

/**
 * Reads the new representation of one row from the database, as change-event values (see
 * connectors/kafka-sink/serde.ts), or null when the row does not exist. `tableFill` builds one.
 */
export type FillFunction = (key: Record<string, unknown>) => Promise<Row | null>;

export interface CacheReaderOptions {
  redis: Redis;
  /** The spec's `name`, `key` and `cache` (a loaded Spec fits). */
  spec: CacheSettingsInput;
  fill: FillFunction;
  /** Metrics registry (hit counts per version, misses, fills, lease waits). */
  registry: Registry;
  logger?: Logger;
  /** How often the read/populate versions are re-read from Redis; default 1000 ms. */
  configRefreshMs?: number;
  /** Pause between re-reads while another caller holds the lease; default 20 ms (with jitter). */
  pollMs?: number;
  /** Longest wait for a lease holder before reading the database anyway; default 3 x leaseMs. */
  maxWaitMs?: number;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface CacheRead {
  /** The row (payload columns), or null when the row does not exist. */
  value: Row | null;
  /** The version whose entry answered, or null when the database did. */
  version: string | null;
  /** cache: an entry answered; fill: this caller read the database and filled the entry; database: read without caching (lease wait timed out, or Redis failed). */
  source: 'cache' | 'fill' | 'database';
}

export interface CacheReader {
  /** Reads one row by its key column values, e.g. `get({ id: 42 })`. */
  get(key: Record<string, unknown>): Promise<CacheRead>;
  /** The versions currently read: the read version first, then the fresh fallbacks. */
  versions(): Promise<string[]>;
}

interface Lookup {
  read: CacheRead | null;
  /** The position of an invalid marker on the read version, which a fill may replace. */
  invalidAt: string;
}

export function createCacheReader(options: CacheReaderOptions): CacheReader {
  const settings: CacheSettings = cacheSettingsFrom(options.spec);
  const redis: ScriptedRedis = withScripts(options.redis);
  const keys = cacheKeys(settings.migration);
  const metrics: ReaderMetrics = readerMetrics(options.registry);
  const logger = options.logger ?? silentLogger();
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? defaultSleep;
  const refreshMs = options.configRefreshMs ?? 1000;
  const pollMs = options.pollMs ?? 20;
  const maxWaitMs = options.maxWaitMs ?? 3 * settings.leaseMs;
  const flights = new Map<string, Promise<CacheRead>>();
  let config: VersionConfig | null = null;
  let configReadAt = -Infinity;

  async function currentConfig(): Promise<VersionConfig> {
    if (config && now() - configReadAt < refreshMs) return config;
    config = await effectiveConfig(redis, keys, settings);
    configReadAt = now();
    return config;
  }

  function readable(cfg: VersionConfig): string[] {
    return [cfg.read, ...fallbackVersions(cfg, now(), settings.maxEntryLifetimeMs)];
  }

  function entryKey(version: string, key: Record<string, unknown>): string {
    const template = settings.templates.get(version);
    if (!template)
      throw new ParityError('PARITY_BAD_INPUT', `cache version ${version} has no key template in the spec`, {
        hint: 'the spec the application loaded is older than the cutover; reload it',
      });
    return renderKey(template, key);
  }

  /** Reads the read version and its fallbacks in one round trip. */
  async function lookup(cfg: VersionConfig, key: Record<string, unknown>): Promise<Lookup> {
    const versions = readable(cfg);
    const names = versions.map((v) => entryKey(v, key));
    const pipeline = redis.pipeline();
    for (const name of names) pipeline.hgetall(name);
    const replies = await pipeline.exec();
    if (!replies) throw new ParityError('PARITY_REDIS', 'the Redis pipeline was discarded', { retriable: true });
    let invalidAt = '';
    for (let i = 0; i < versions.length; i++) {
      const [err, hash] = replies[i] ?? [null, null];
      if (err) throw err;
      const entry: CacheEntry | null = parseEntry(names[i] as string, (hash ?? {}) as Record<string, string>);
      if (!entry) continue;
      if (i === 0 && entry.kind === 'invalid') invalidAt = entry.position;
      if (!usable(entry, cfg.barrier)) continue;
      const version = versions[i] as string;
      metrics.hits.inc({ version });
      return { read: { value: entry.kind === 'tombstone' ? null : entryRow(entry), version, source: 'cache' }, invalidAt };
    }
    return { read: null, invalidAt };
  }

  /** Reads the database and writes the entry of the read version; returns what was read. */
  async function fillEntry(cfg: VersionConfig, key: Record<string, unknown>, invalidAt: string): Promise<Row | null> {
    metrics.fills.inc();
    const row = await options.fill(key);
    const name = entryKey(cfg.read, key);
    const kj = keyJson(settings.keyColumns, key);
    const position = cfg.barrier ?? ZERO_POSITION;
    if (row === null) {
      // A short negative entry: the next insert of this key (a newer position) replaces it.
      await redis.parityCacheApply(
        ...applyCall([
          {
            version: cfg.read,
            entryKey: name,
            mode: 't',
            position,
            ttlMs: settings.tombstoneTtlMs,
            commitTimeUs: '',
            keyJson: kj,
            columns: [],
          },
        ]),
      );
      return null;
    }
    const projected = projectRow(row, settings.projection);
    const ttlMs = jitteredTtlMs(settings.ttlMs, settings.ttlJitterPct, random);
    // For a fill, the commit-time slot carries the invalid marker position it may replace.
    await redis.parityCacheApply(
      ...applyCall([
        { version: cfg.read, entryKey: name, mode: 'f', position, ttlMs, commitTimeUs: invalidAt, keyJson: kj, columns: projected.columns },
      ]),
    );
    return projectedRow(row, settings.projection);
  }

  async function load(key: Record<string, unknown>): Promise<CacheRead> {
    let cfg: VersionConfig;
    let first: Lookup;
    try {
      cfg = await currentConfig();
      first = await lookup(cfg, key);
    } catch (err) {
      if (err instanceof ParityError && !err.retriable) throw err;
      metrics.errors.inc();
      logger.warn({ err: (err as Error).message }, 'cache unavailable; reading the database');
      return { value: projectedRow(await options.fill(key), settings.projection), version: null, source: 'database' };
    }
    if (first.read) return first.read;
    metrics.misses.inc();
    const lease = keys.lease(entryKey(cfg.read, key));
    const token = randomBytes(12).toString('hex');
    const deadline = now() + maxWaitMs;
    let invalidAt = first.invalidAt;
    try {
      for (;;) {
        const acquired = await redis.set(lease, token, 'PX', settings.leaseMs, 'NX');
        if (acquired === 'OK') {
          try {
            // Someone may have filled it between our miss and our lease.
            const again = await lookup(cfg, key);
            if (again.read) return again.read;
            const value = await fillEntry(cfg, key, again.invalidAt);
            return { value, version: null, source: 'fill' };
          } finally {
            await redis.parityCacheRelease(lease, token).catch(() => undefined);
          }
        }
        metrics.leaseWaits.inc();
        if (now() >= deadline) {
          metrics.leaseTimeouts.inc();
          return { value: projectedRow(await options.fill(key), settings.projection), version: null, source: 'database' };
        }
        await sleep(pollMs * (0.5 + random()));
        const again = await lookup(cfg, key);
        if (again.read) return again.read;
        invalidAt = again.invalidAt || invalidAt;
      }
    } catch (err) {
      if (err instanceof ParityError && !err.retriable) throw err;
      metrics.errors.inc();
      logger.warn({ err: (err as Error).message, invalidAt }, 'cache unavailable during fill; reading the database');
      return { value: projectedRow(await options.fill(key), settings.projection), version: null, source: 'database' };
    }
  }

  return {
    get(key) {
      for (const column of settings.keyColumns) {
        if (key[column] === undefined || key[column] === null) {
          return Promise.reject(
            new ParityError('PARITY_BAD_INPUT', `cache read without key column "${column}"`, {
              hint: `pass every key column: ${settings.keyColumns.join(', ')}`,
            }),
          );
        }
      }
      const flightKey = keyText(settings.keyColumns, key);
      const inFlight = flights.get(flightKey);
      if (inFlight) return inFlight;
      const flight = load(key).finally(() => flights.delete(flightKey));
      flights.set(flightKey, flight);
      return flight;
    },
    async versions() {
      return readable(await currentConfig());
    },
  };
}

function projectedRow(row: Row | null, projection: string[] | undefined): Row | null {
  if (row === null || !projection) return row;
  return Object.fromEntries(projection.map((c) => [c, row[c] ?? null]));
}

/**
 * A FillFunction reading the spec's new representation (target table, projection) from PostgreSQL,
 * with the same value conversions as the change events, so filled and streamed entries are identical.
 */
export function tableFill(pool: pg.Pool, spec: Pick<Spec, 'key' | 'cache' | 'target' | 'source'>): FillFunction {
  const table = targetTable(spec as Spec);
  const reader = createRowReader({ schema: table.schema, table: table.table, keyColumns: spec.key, projection: spec.cache?.projection });
  return async (key) => {
    const snapshot = await reader.read(pool, [key]);
    return snapshot.rows.get(keyText(spec.key, key)) ?? null;
  };
}
