import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../../services/core/spec.js';
import { cacheSettings, cacheSettingsFrom, jitteredTtlMs } from '../../../services/cache-versioner/settings.js';
import { fallbackVersions, isFresh, parseConfig } from '../../../services/cache-versioner/version-config.js';

const base = {
  keys: { v1: 'order:v1:{id}', v2: 'order:v2:{id}' },
  populate: ['v1', 'v2'],
  read: 'v2',
  ttlSeconds: 100,
  ttlJitterPct: 10,
  tombstoneTtlSeconds: 300,
  leaseMs: 2000,
};

describe('cache settings', () => {
  it('refuses a template on a non-key column, naming the field', () => {
    expect(() =>
      cacheSettingsFrom({ name: 'm', key: ['id'], cache: { ...base, keys: { v1: 'order:{customer}', v2: 'order:v2:{id}' } } }),
    ).toThrow(/cache\.keys\.v1: "\{customer\}" is not a key column/);
  });

  it('refuses two versions with the same template', () => {
    expect(() => cacheSettingsFrom({ name: 'm', key: ['id'], cache: { ...base, keys: { v1: 'order:{id}', v2: 'order:{id}' } } })).toThrow(
      /same template as v1/,
    );
  });

  it('computes the longest entry lifetime from TTL, jitter and tombstone TTL', () => {
    expect(cacheSettingsFrom({ name: 'm', key: ['id'], cache: base }).maxEntryLifetimeMs).toBe(300_000);
    expect(cacheSettingsFrom({ name: 'm', key: ['id'], cache: { ...base, ttlSeconds: 1000 } }).maxEntryLifetimeMs).toBe(1_100_000);
  });

  it('follows the source topic for same-table and requires the shadow table to be captured', () => {
    const yaml = (target: string, tables = '[]') => `apiVersion: parity/v1
name: m
source: { database: "postgres://x@h/db", table: orders }
target: ${target}
key: [id]
mapping: { total_minor: "total::bigint" }
infra: { kafka: { brokers: ["127.0.0.1:1"] }, registry: { url: "http://127.0.0.1:1" }, redis: { url: "redis://127.0.0.1:1" } }
cdc: { slot: s, publication: p, topicPrefix: shop, tables: ${tables} }
cache: { keys: { v1: "o:v1:{id}" }, populate: [v1], read: v1 }
`;
    expect(cacheSettings(parseSpec(yaml('{ kind: same-table }')).spec).topic).toBe('shop.public.orders');
    expect(() => cacheSettings(parseSpec(yaml('{ kind: shadow-table, table: orders_v2 }')).spec)).toThrow(
      /does not list the shadow table public\.orders_v2/,
    );
    expect(cacheSettings(parseSpec(yaml('{ kind: shadow-table, table: orders_v2 }', '["public.orders_v2"]')).spec).topic).toBe(
      'shop.public.orders_v2',
    );
    expect(cacheSettings(parseSpec(yaml('{ kind: same-table }')).spec, 'other.topic').topic).toBe('other.topic');
  });

  it('jitters TTLs uniformly within the percentage', () => {
    expect(jitteredTtlMs(1000, 0, () => 0.9)).toBe(1000);
    expect(jitteredTtlMs(1000, 50, () => 0)).toBe(500);
    expect(jitteredTtlMs(1000, 50, () => 0.5)).toBe(1000);
  });
});

describe('version freshness', () => {
  const config = parseConfig({ read: 'v2', populate: 'v1,v2', generation: '3', 'dropped:v1': '1000', 'since:v1': '5000' });
  it('parses the config hash and defaults the barrier to the zero position', () => {
    expect(config?.populate).toEqual(['v1', 'v2']);
    expect(config?.barrier).toBe('0000000000000000:0000000000');
    expect(parseConfig({})).toBeNull();
  });

  it('treats a re-populated version as stale until entries from before its drop have expired', () => {
    if (!config) throw new Error('no config');
    expect(isFresh(config, 'v1', 5000, 10_000)).toBe(false);
    expect(isFresh(config, 'v1', 11_000, 10_000)).toBe(true);
    expect(isFresh(config, 'v3', 11_000, 10_000)).toBe(false);
    expect(fallbackVersions(config, 5000, 10_000)).toEqual([]);
    expect(fallbackVersions(config, 11_000, 10_000)).toEqual(['v1']);
  });
});
