/**
 * Flags in Redis: one hash of migration-wide values, one hash of overrides per cohort, an audit
 * stream with one entry per change (who, when, old, new, why), and a version counter plus a
 * pub/sub announcement so application clients drop their cached flags at once.
 */
import type { Redis } from 'ioredis';
import { ParityError } from '../core/errors.js';
import { coordinatorKeys, type CoordinatorKeys } from './keys.js';
import { coordinatorScripts } from './scripts.js';
import { effectiveFlags, type EffectiveFlags, type FlagName } from './flag-model.js';

export interface FlagChange {
  name: string;
  /** '' when the flag had no stored value (its default applied). */
  old: string;
  new: string;
}

export interface FlagAuditEntry {
  id: string;
  scope: string;
  flag: string;
  old: string;
  new: string;
  actor: string;
  reason: string;
  at: string;
}

export interface FlagStore {
  keys: CoordinatorKeys;
  /** Effective flags of the migration, or of one cohort (its overrides over the migration-wide values). */
  read(cohort?: string): Promise<EffectiveFlags>;
  /** Sets values in one scope atomically with their audit entries; returns what changed. */
  set(input: {
    cohort?: string;
    values: [FlagName, string][];
    actor: string;
    reason: string;
  }): Promise<{ changed: FlagChange[]; version: number }>;
  /** The newest audit entries first. */
  audit(limit?: number): Promise<FlagAuditEntry[]>;
}

function redisError(err: unknown, what: string): ParityError {
  return new ParityError('PARITY_REDIS', `${what}: ${(err as Error).message}`, {
    cause: err,
    hint: 'check that Redis (infra.redis.url) is reachable',
  });
}

export function createFlagStore(deps: { redis: Redis; migration: string; keyPrefix?: string; now?: () => Date }): FlagStore {
  const keys = coordinatorKeys(deps.migration, deps.keyPrefix);
  const now = deps.now ?? (() => new Date());
  return {
    keys,
    async read(cohort) {
      try {
        const [migrationHash, cohortHash] = await Promise.all([
          deps.redis.hgetall(keys.flags()),
          cohort ? deps.redis.hgetall(keys.flags(cohort)) : Promise.resolve({}),
        ]);
        return effectiveFlags(migrationHash, cohortHash);
      } catch (err) {
        throw redisError(err, 'reading flags');
      }
    },
    async set({ cohort, values, actor, reason }) {
      try {
        return await coordinatorScripts(deps.redis).setFlags(
          { flags: keys.flags(cohort), audit: keys.flagsAudit(), version: keys.flagsVersion() },
          { actor, reason, scope: cohort ?? '', channel: keys.flagsChannel(), at: now().toISOString(), values },
        );
      } catch (err) {
        throw redisError(err, 'setting flags');
      }
    },
    async audit(limit = 20) {
      try {
        const entries = await deps.redis.xrevrange(keys.flagsAudit(), '+', '-', 'COUNT', limit);
        return entries.map(([id, fields]) => {
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
          return {
            id,
            scope: f.scope ?? '',
            flag: f.flag ?? '',
            old: f.old ?? '',
            new: f.new ?? '',
            actor: f.actor ?? '',
            reason: f.reason ?? '',
            at: f.at ?? '',
          };
        });
      } catch (err) {
        throw redisError(err, 'reading the flag audit stream');
      }
    },
  };
}
