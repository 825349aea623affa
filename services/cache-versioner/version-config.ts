/**
 * Which cache version applications read and which versions `cache run` populates. The live values
 * live in Redis (a hash under keys.config, every change appended to the keys.audit stream); the spec
 * only seeds them the first time. A cutover changes them atomically (lua/cutover-2.lua).
 */
import { hostname, userInfo } from 'node:os';
import { ParityError } from '../core/errors.js';
import type { CacheKeys } from './keys.js';
import { ZERO_POSITION } from './entry.js';
import type { CacheSettings } from './settings.js';
import type { ScriptedRedis } from './scripts.js';

export interface VersionConfig {
  read: string;
  populate: string[];
  generation: number;
  /** Entries older than this position are ignored (set by a TRUNCATE of the source table). */
  barrier: string;
  /** When each populated version started being populated, ms. */
  since: Record<string, number>;
  /** When each version was last dropped from the populated set, ms. */
  dropped: Record<string, number>;
  updatedAt: number;
  updatedBy: string;
}

/** Audit entries kept in the stream (approximate cap, MAXLEN ~). */
export const AUDIT_MAXLEN = 1000;

/** user@host of this process, for the audit trail. */
export function whoAmI(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still identifies the caller.
  }
  return `${user}@${hostname()}`;
}

/** Parses the config hash; null when there is none (never created, or Redis lost it). */
export function parseConfig(hash: Record<string, string>): VersionConfig | null {
  if (!hash.read || !hash.populate) return null;
  const since: Record<string, number> = {};
  const dropped: Record<string, number> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith('since:')) since[field.slice(6)] = Number(value);
    if (field.startsWith('dropped:')) dropped[field.slice(8)] = Number(value);
  }
  return {
    read: hash.read,
    populate: hash.populate.split(',').filter(Boolean),
    generation: Number(hash.generation ?? 0),
    barrier: hash.barrier ?? ZERO_POSITION,
    since,
    dropped,
    updatedAt: Number(hash.updatedAt ?? 0),
    updatedBy: hash.updatedBy ?? '',
  };
}

export async function readConfig(redis: ScriptedRedis, keys: CacheKeys): Promise<VersionConfig | null> {
  return parseConfig(await redis.hgetall(keys.config));
}

/**
 * The config readers go by: Redis's, or the spec's when Redis has none yet (keeping a truncate barrier
 * Redis may hold without a config).
 */
export async function effectiveConfig(redis: ScriptedRedis, keys: CacheKeys, settings: CacheSettings): Promise<VersionConfig> {
  const hash = await redis.hgetall(keys.config);
  return parseConfig(hash) ?? { ...specConfig(settings), barrier: hash.barrier ?? ZERO_POSITION };
}

/** The config as the spec states it, for when Redis has none yet. */
export function specConfig(settings: CacheSettings): VersionConfig {
  return {
    read: settings.read,
    populate: [...settings.populate],
    generation: 0,
    barrier: ZERO_POSITION,
    since: {},
    dropped: {},
    updatedAt: 0,
    updatedBy: 'spec',
  };
}

/**
 * Returns the live config, creating it from the spec when Redis has none. Redis wins over the spec:
 * after a cutover the spec may be behind (update it, so that a Redis that loses its data cannot
 * bring the old versions back).
 */
export async function ensureConfig(
  redis: ScriptedRedis,
  keys: CacheKeys,
  settings: CacheSettings,
  now: number,
  by = whoAmI(),
): Promise<{ config: VersionConfig; created: boolean }> {
  const created =
    (await redis.parityCacheInit(keys.config, keys.audit, settings.read, settings.populate.join(','), now, by, AUDIT_MAXLEN)) === 1;
  const config = await readConfig(redis, keys);
  if (!config)
    throw new ParityError('PARITY_REDIS', `the cache version config ${keys.config} vanished right after it was created`, {
      retriable: true,
    });
  return { config, created };
}

/**
 * Whether entries of `version` reflect every change: it is populated, and if it was ever dropped,
 * everything written before the drop has expired since.
 */
export function isFresh(config: VersionConfig, version: string, now: number, maxEntryLifetimeMs: number): boolean {
  if (!config.populate.includes(version)) return false;
  const dropped = config.dropped[version];
  return dropped === undefined || dropped + maxEntryLifetimeMs <= now;
}

/** The versions a reader may fall back to after a miss on the read version: fresh ones only. */
export function fallbackVersions(config: VersionConfig, now: number, maxEntryLifetimeMs: number): string[] {
  return config.populate.filter((v) => v !== config.read && isFresh(config, v, now, maxEntryLifetimeMs));
}

export interface CutoverRequest {
  to: string;
  populate: string[];
  force: boolean;
  now: number;
  by?: string;
  expectedGeneration?: number;
}

export interface CutoverResult {
  generation: number;
  previous: { read: string; populate: string[] };
}

/**
 * Switches the read version and the populated versions in one atomic step, audited. Refuses (exit 2)
 * a version that is unknown, or a read version whose entries may be stale, unless forced.
 */
export async function cutover(
  redis: ScriptedRedis,
  keys: CacheKeys,
  settings: CacheSettings,
  request: CutoverRequest,
): Promise<CutoverResult> {
  for (const v of [request.to, ...request.populate]) {
    if (!settings.templates.has(v)) {
      throw new ParityError(
        'PARITY_BAD_INPUT',
        `version "${v}" has no key template in the spec (known: ${[...settings.templates.keys()].join(', ')})`,
        {
          hint: 'add it to cache.keys in the spec first',
        },
      );
    }
  }
  if (!request.populate.includes(request.to)) {
    throw new ParityError('PARITY_BAD_INPUT', `--populate ${request.populate.join(',')} does not include the read version ${request.to}`, {
      hint: 'the version applications read must be populated, or it goes stale',
    });
  }
  const reply = (await redis.parityCacheCutover(
    keys.config,
    keys.audit,
    request.to,
    request.populate.join(','),
    request.now,
    settings.maxEntryLifetimeMs,
    request.by ?? whoAmI(),
    request.force ? '1' : '0',
    AUDIT_MAXLEN,
    request.expectedGeneration === undefined ? '' : String(request.expectedGeneration),
  )) as [string, ...unknown[]];
  if (reply[0] !== 'ok') {
    throw new ParityError('PARITY_BAD_INPUT', `cutover to ${request.to} refused: ${String(reply[1])}`, {
      hint: 'nothing was changed; --force switches anyway (readers may then see stale entries until they expire)',
    });
  }
  return {
    generation: Number(reply[1]),
    previous: { read: String(reply[2]), populate: String(reply[3]).split(',').filter(Boolean) },
  };
}

export interface AuditRecord {
  id: string;
  fields: Record<string, string>;
}

/** The latest audit records, newest first. */
export async function readAudit(redis: ScriptedRedis, keys: CacheKeys, count = 20): Promise<AuditRecord[]> {
  const rows = (await redis.xrevrange(keys.audit, '+', '-', 'COUNT', count)) as Array<[string, string[]]>;
  return rows.map(([id, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
    return { id, fields };
  });
}
