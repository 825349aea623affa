/**
 * Every Redis key and channel name the coordinator and the application client use, built in one
 * place. All keys of one migration share the `{migration}` hash tag, so on Redis Cluster they land
 * in one slot and a Lua script may touch several of them at once.
 */

/** The default first segment of every key; tests and multi-tenant deployments pass their own. */
export const DEFAULT_KEY_PREFIX = 'parity';

export interface CoordinatorKeys {
  /** The lock lease for a scope (the migration, or one cohort of it). */
  lock(cohort?: string): string;
  /** Hash of flag values: migration-wide (no cohort) or one cohort's overrides. */
  flags(cohort?: string): string;
  /** Stream with one entry per flag change: who, when, old, new, why. */
  flagsAudit(): string;
  /** Counter bumped on every flag change; clients poll it cheaply to invalidate their cache. */
  flagsVersion(): string;
  /** Pub/sub channel announcing a flag change (message: the new version). */
  flagsChannel(): string;
}

/** Key names for one migration. `migration` and cohorts are spec slugs: no ':', '{' or '}'. */
export function coordinatorKeys(migration: string, prefix: string = DEFAULT_KEY_PREFIX): CoordinatorKeys {
  const base = `${prefix}:{${migration}}`;
  return {
    lock: (cohort) => (cohort ? `${base}:lock:${cohort}` : `${base}:lock`),
    flags: (cohort) => (cohort ? `${base}:flags:cohort:${cohort}` : `${base}:flags`),
    flagsAudit: () => `${base}:flags:audit`,
    flagsVersion: () => `${base}:flags:version`,
    flagsChannel: () => `${base}:flags:changed`,
  };
}

/** The fencing scope of a lock: "migration" or "migration/cohort" (the row in the fences table). */
export function lockScope(migration: string, cohort?: string): string {
  return cohort ? `${migration}/${cohort}` : migration;
}
