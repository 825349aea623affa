/**
 * The cache section of a migration spec, checked for what the zod schema cannot see (template
 * columns must be key columns, templates must differ) and turned into the values the versioner,
 * the reader and the inspector use.
 */
import { ParityError } from '../core/errors.js';
import { changeTopic } from '../core/change-event.js';
import { targetTable, type Spec } from '../core/spec.js';
import { parseTemplate, type KeyTemplate } from './keys.js';

export type CacheSpec = NonNullable<Spec['cache']>;

export interface CacheSettings {
  /** spec.name: scopes the control keys. */
  migration: string;
  /** Key template per version, e.g. v1 -> order:v1:{id}. */
  templates: Map<string, KeyTemplate>;
  /** The spec's key columns, in order. */
  keyColumns: string[];
  /** Columns stored in the payload; undefined = every column of the new row. */
  projection: string[] | undefined;
  /** Versions and read version as the spec states them (Redis holds the live values after a cutover). */
  populate: string[];
  read: string;
  ttlMs: number;
  ttlJitterPct: number;
  tombstoneTtlMs: number;
  leaseMs: number;
  /** The longest any entry can live: every entry written before a moment is gone this long after it. */
  maxEntryLifetimeMs: number;
  /** Topic carrying the new representation's changes. */
  topic: string;
  /** The table holding the new representation. */
  table: { schema: string; table: string };
}

/** Spec-shaped input for library callers that do not load a whole spec (the cache reader). */
export interface CacheSettingsInput {
  name: string;
  key: string[];
  cache: CacheSpec;
}

/**
 * Cache settings from the spec's `name`, `key` and `cache` fields. Throws PARITY_SPEC_INVALID naming
 * the field when the section is missing or inconsistent.
 */
export function cacheSettingsFrom(input: CacheSettingsInput, topic = '', table = { schema: '', table: '' }): CacheSettings {
  const cache = input.cache;
  const templates = new Map<string, KeyTemplate>();
  const seen = new Map<string, string>();
  for (const [version, template] of Object.entries(cache.keys)) {
    const parsed = parseTemplate(version, template);
    for (const column of parsed.columns) {
      if (!input.key.includes(column)) {
        throw new ParityError(
          'PARITY_SPEC_INVALID',
          `cache.keys.${version}: "{${column}}" is not a key column (key: ${input.key.join(', ')})`,
          {
            hint: "key templates may only use the spec's key columns; delete events carry nothing else",
          },
        );
      }
    }
    const other = seen.get(template);
    if (other) {
      throw new ParityError('PARITY_SPEC_INVALID', `cache.keys.${version}: same template as ${other} ("${template}")`, {
        hint: 'give each version its own key name, e.g. order:v1:{id} and order:v2:{id}',
      });
    }
    seen.set(template, version);
    templates.set(version, parsed);
  }
  for (const v of [...cache.populate, cache.read]) {
    if (!templates.has(v)) {
      throw new ParityError('PARITY_SPEC_INVALID', `cache: version "${v}" has no key template in cache.keys`, {
        hint: `add cache.keys.${v}, e.g. ${v}: "order:${v}:{id}"`,
      });
    }
  }
  const ttlMs = cache.ttlSeconds * 1000;
  const tombstoneTtlMs = cache.tombstoneTtlSeconds * 1000;
  return {
    migration: input.name,
    templates,
    keyColumns: [...input.key],
    projection: cache.projection ? [...cache.projection] : undefined,
    populate: [...new Set(cache.populate)],
    read: cache.read,
    ttlMs,
    ttlJitterPct: cache.ttlJitterPct,
    tombstoneTtlMs,
    leaseMs: cache.leaseMs,
    maxEntryLifetimeMs: Math.max(Math.ceil(ttlMs * (1 + cache.ttlJitterPct / 100)), tombstoneTtlMs),
    topic,
    table,
  };
}

/**
 * Cache settings for a whole spec. The topic is the new representation's: the source table's for a
 * same-table migration; the shadow table's (which must then be captured, i.e. listed in cdc.tables)
 * for a shadow-table one; for another database, the topic a `parity cdc run` on that database
 * publishes under the same prefix. `topicOverride` replaces that choice.
 */
export function cacheSettings(spec: Spec, topicOverride?: string): CacheSettings {
  if (!spec.cache) {
    throw new ParityError('PARITY_SPEC_INVALID', 'the spec has no cache section', {
      hint: 'add cache: { keys: { v1: "order:v1:{id}", v2: "order:v2:{id}" }, populate: [v1, v2], read: v2 }',
    });
  }
  const table = targetTable(spec);
  if (!topicOverride && spec.target.kind === 'shadow-table') {
    const captured = spec.cdc.tables.includes(`${table.schema}.${table.table}`);
    if (!captured) {
      throw new ParityError(
        'PARITY_SPEC_INVALID',
        `cdc.tables does not list the shadow table ${table.schema}.${table.table}, whose changes the cache follows`,
        {
          hint: `add "${table.schema}.${table.table}" to cdc.tables, or pass --topic`,
        },
      );
    }
  }
  const topic = topicOverride ?? changeTopic(spec.cdc.topicPrefix, table.schema, table.table);
  return cacheSettingsFrom({ name: spec.name, key: spec.key, cache: spec.cache }, topic, table);
}

/**
 * A TTL with jitter: uniform in [ttl * (1 - pct), ttl * (1 + pct)], so entries written together do not
 * expire together and send a burst of misses to the database.
 */
export function jitteredTtlMs(ttlMs: number, jitterPct: number, random: () => number = Math.random): number {
  const spread = (jitterPct / 100) * (2 * random() - 1);
  return Math.max(1, Math.round(ttlMs * (1 + spread)));
}
