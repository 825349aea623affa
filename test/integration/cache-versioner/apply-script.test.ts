/**
 * lua/apply-n.lua and the version config scripts against the real Redis of the local stack.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { STACK, uniqueName } from '../../support/stack.js';
import { encodePosition } from '../../../services/core/lsn.js';
import { applyWrites } from '../../../services/cache-versioner/applier.js';
import { parseEntry } from '../../../services/cache-versioner/entry.js';
import { cacheKeys } from '../../../services/cache-versioner/keys.js';
import { estimateRemaining } from '../../../services/cache-versioner/remaining.js';
import { withScripts, type ScriptedRedis } from '../../../services/cache-versioner/scripts.js';
import { cacheSettingsFrom } from '../../../services/cache-versioner/settings.js';
import { cutover, ensureConfig, readAudit, readConfig } from '../../../services/cache-versioner/version-config.js';
import type { EntryWrite } from '../../../services/cache-versioner/writes.js';
import { isParityError } from '../../../services/core/errors.js';
import { holdRedis } from './redis-outage-lock.js';

let redis: ScriptedRedis;
const prefix = uniqueName('cvs');
const migration = prefix.replace('_', '-');

let releaseRedis: (() => void) | undefined;

beforeAll(async () => {
  releaseRedis = await holdRedis();
  redis = withScripts(new Redis(STACK.PARITY_REDIS_URL));
});
afterAll(async () => {
  // This test's own control keys; its entries and HyperLogLogs expire by TTL.
  const keys = cacheKeys(migration);
  await redis.del(keys.config, keys.audit);
  redis.disconnect();
  releaseRedis?.();
});

const pos = (lsn: bigint, ordinal = 0) => encodePosition({ commitLsn: lsn, ordinal });

/** One write's ARGV: its fields joined by NUL (see the script's header). */
const packed = (...fields: Array<string | number>) => fields.join('\0');

async function apply(
  key: string,
  mode: string,
  position: string,
  columns: Array<[string, string]> = [],
  ttl = 60_000,
  extra = '',
): Promise<number> {
  return Number(await redis.parityCacheApply(1, key, packed(mode, position, ttl, extra, '{"id":1}', ...columns.flat())));
}

async function entry(key: string) {
  return parseEntry(key, await redis.hgetall(key));
}

describe('apply-n.lua: set if newer', () => {
  it('applies a newer position and skips an equal or older one', async () => {
    const key = `${prefix}:a`;
    expect(await apply(key, 'v', pos(10n), [['x', '"new"']])).toBe(1);
    expect(await apply(key, 'v', pos(10n), [['x', '"dup"']])).toBe(0);
    expect(await apply(key, 'v', pos(9n, 99), [['x', '"old"']])).toBe(0);
    expect((await entry(key))?.columns.get('x')).toBe('"new"');
    expect(await apply(key, 'v', pos(10n, 1), [['x', '"newer"']])).toBe(1);
    expect((await entry(key))?.columns.get('x')).toBe('"newer"');
  });

  it('compares positions numerically: high LSN halves, and ordinals past 9', async () => {
    const key = `${prefix}:n`;
    expect(await apply(key, 'v', pos(0x1_0000_0000n), [['x', '1']])).toBe(1);
    expect(await apply(key, 'v', pos(0xffff_ffffn, 5), [['x', '2']])).toBe(0);
    expect(await apply(key, 'v', pos(0x1_0000_0000n, 10), [['x', '3']])).toBe(1);
    expect(await apply(key, 'v', pos(0x1_0000_0000n, 9), [['x', '4']])).toBe(0);
    expect((await entry(key))?.position).toBe(pos(0x1_0000_0000n, 10));
  });

  it('a tombstone blocks a late older update from resurrecting the row, and expires by its own TTL', async () => {
    const key = `${prefix}:t`;
    await apply(key, 'v', pos(5n), [['x', '1']]);
    expect(await apply(key, 't', pos(7n), [], 30_000)).toBe(1);
    expect(await apply(key, 'v', pos(6n), [['x', 'stale']])).toBe(0);
    const e = await entry(key);
    expect(e?.kind).toBe('tombstone');
    expect(e?.columns.size).toBe(0);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    expect(await apply(key, 'v', pos(8n), [['x', 'reinserted']])).toBe(1);
    expect((await entry(key))?.kind).toBe('value');
  });

  it('merges a partial write into a value, and leaves an invalid marker when there is nothing to merge', async () => {
    const key = `${prefix}:p`;
    await apply(key, 'v', pos(1n), [
      ['a', '1'],
      ['big', '"toast"'],
    ]);
    expect(await apply(key, 'p', pos(2n), [['a', '2']])).toBe(1);
    const merged = await entry(key);
    expect(Object.fromEntries(merged?.columns ?? [])).toEqual({ a: '2', big: '"toast"' });
    const lone = `${prefix}:p2`;
    expect(await apply(lone, 'p', pos(2n), [['a', '2']])).toBe(2);
    expect((await entry(lone))?.kind).toBe('invalid');
    expect(await apply(lone, 'v', pos(1n), [['a', '1']])).toBe(0);
  });

  it('a fill never overwrites a change, loses to any change, and replaces only the invalid marker it saw', async () => {
    const zero = pos(0n);
    const key = `${prefix}:f`;
    expect(await apply(key, 'f', zero, [['a', '"db"']])).toBe(1);
    expect(await apply(key, 'f', zero, [['a', '"db2"']])).toBe(0);
    expect(await apply(key, 'v', pos(1n), [['a', '"cdc"']])).toBe(1);
    expect(await apply(key, 'f', zero, [['a', '"db3"']])).toBe(0);
    expect((await entry(key))?.columns.get('a')).toBe('"cdc"');
    const inv = `${prefix}:fi`;
    await apply(inv, 'p', pos(4n), [['a', '1']]);
    expect(await apply(inv, 'f', zero, [['a', '"db"']], 60_000, pos(3n))).toBe(0);
    expect(await apply(inv, 'f', zero, [['a', '"db"']], 60_000, pos(4n))).toBe(1);
    const filled = await entry(inv);
    expect(filled?.kind).toBe('value');
    expect(filled?.position).toBe(pos(4n));
    expect(filled?.commitTimeUs).toBeNull();
  });

  it('applies several entries in one call, one result digit per entry in order', async () => {
    await apply(`${prefix}:b2`, 'v', pos(9n), [['x', '1']]);
    expect(
      await redis.parityCacheApply(
        3,
        `${prefix}:b1`,
        `${prefix}:b2`,
        `${prefix}:b3`,
        packed('v', pos(5n), 60_000, '', '{"id":1}', 'x', '"b1"'),
        packed('v', pos(8n), 60_000, '', '{"id":2}', 'x', '"old"', 'y', '"old"'),
        packed('p', pos(5n), 60_000, '', '{"id":3}'),
      ),
    ).toBe('102');
    expect((await entry(`${prefix}:b1`))?.columns.get('x')).toBe('"b1"');
    expect((await entry(`${prefix}:b2`))?.columns.get('x')).toBe('1');
    expect((await entry(`${prefix}:b3`))?.kind).toBe('invalid');
  });

  it('records the commit time, key, and a TTL for every write', async () => {
    const key = `${prefix}:m`;
    await apply(key, 'v', pos(1n), [['a', '1']], 45_000, '1700000000000001');
    const e = await entry(key);
    expect(e?.commitTimeUs).toBe(1700000000000001);
    expect(e?.keyValues).toEqual({ id: 1 });
    expect(Math.abs((e?.writtenAtMs ?? 0) - Date.now())).toBeLessThan(5_000);
    expect(await redis.pttl(key)).toBeGreaterThan(40_000);
  });

  it('stores column names and values byte for byte, whatever they contain besides NUL', async () => {
    const key = `${prefix}:bytes`;
    const columns: Array<[string, string]> = [
      ['Weird "name" with spaces', JSON.stringify('tab\there, newline\n, unit sep \u001f, NUL escaped \u0000')],
      ['ünïcødé', JSON.stringify('€ 𝄞 日本')],
      ['empty', '""'],
      ['nested', JSON.stringify({ a: [1, null, 'x'] })],
    ];
    await apply(key, 'v', pos(1n), columns);
    const e = await entry(key);
    expect(e?.columns).toEqual(new Map(columns));
  });
});

describe('version config and cutover', () => {
  const settings = cacheSettingsFrom({
    name: migration,
    key: ['id'],
    cache: {
      keys: { v1: `${prefix}:o:v1:{id}`, v2: `${prefix}:o:v2:{id}`, v3: `${prefix}:o:v3:{id}` },
      populate: ['v1', 'v2'],
      read: 'v1',
      ttlSeconds: 60,
      ttlJitterPct: 0,
      tombstoneTtlSeconds: 10,
      leaseMs: 500,
    },
  });
  const keys = cacheKeys(settings.migration);

  it('creates the config from the spec once; Redis wins afterwards', async () => {
    const first = await ensureConfig(redis, keys, settings, 1000, 'test');
    expect(first.created).toBe(true);
    expect(first.config).toMatchObject({ read: 'v1', populate: ['v1', 'v2'], generation: 1 });
    const again = await ensureConfig(redis, keys, { ...settings, read: 'v2' }, 2000, 'test');
    expect(again.created).toBe(false);
    expect(again.config.read).toBe('v1');
  });

  it('switches read and populate atomically, audited, and refuses a version that is not populated', async () => {
    let refused: unknown;
    try {
      await cutover(redis, keys, settings, { to: 'v3', populate: ['v3'], force: false, now: 3000, by: 'test' });
    } catch (err) {
      refused = err;
    }
    expect(isParityError(refused, 'PARITY_BAD_INPUT')).toBe(true);
    expect((refused as Error).message).toMatch(/v3 is not populated now/);
    expect((await readConfig(redis, keys))?.read).toBe('v1');

    const result = await cutover(redis, keys, settings, { to: 'v2', populate: ['v2'], force: false, now: 4000, by: 'alice@test' });
    expect(result).toEqual({ generation: 2, previous: { read: 'v1', populate: ['v1', 'v2'] } });
    const config = await readConfig(redis, keys);
    expect(config).toMatchObject({ read: 'v2', populate: ['v2'], generation: 2, dropped: { v1: 4000 } });
    const audit = await readAudit(redis, keys);
    expect(audit[0]?.fields).toMatchObject({
      action: 'cutover',
      by: 'alice@test',
      fromRead: 'v1',
      read: 'v2',
      populate: 'v2',
      forced: '0',
    });
    expect(audit[1]?.fields).toMatchObject({ action: 'init' });
  });

  it('refuses to read a re-populated version until its pre-drop entries expired, unless forced', async () => {
    // Populate v1 again, reading v2.
    await cutover(redis, keys, settings, { to: 'v2', populate: ['v2', 'v1'], force: false, now: 5000, by: 'test' });
    await expect(cutover(redis, keys, settings, { to: 'v1', populate: ['v1'], force: false, now: 6000, by: 'test' })).rejects.toThrow(
      /not populated until recently/,
    );
    const later = 4000 + settings.maxEntryLifetimeMs;
    await expect(
      cutover(redis, keys, settings, { to: 'v1', populate: ['v1', 'v2'], force: false, now: later, by: 'test' }),
    ).resolves.toMatchObject({ generation: 4 });
    await cutover(redis, keys, settings, { to: 'v3', populate: ['v3'], force: true, now: later + 1, by: 'test' });
    expect((await readAudit(redis, keys, 1))[0]?.fields).toMatchObject({ read: 'v3', forced: '1' });
  });

  it('estimates the remaining keys of a version from the keys written within one entry lifetime', async () => {
    const writes: EntryWrite[] = [];
    for (let i = 0; i < 500; i++) {
      for (const version of ['v1', 'v2'])
        writes.push({
          version,
          entryKey: `${prefix}:o:${version}:${i}`,
          mode: 'v',
          position: pos(1n),
          ttlMs: 60_000,
          commitTimeUs: '',
          keyJson: `{"id":${i}}`,
          columns: [['id', String(i)]],
        });
    }
    // Rewriting the same keys does not count them twice.
    const now = Date.now();
    await applyWrites(redis, keys, writes, { now, maxEntryLifetimeMs: settings.maxEntryLifetimeMs });
    await applyWrites(redis, keys, writes.slice(0, 200), { now, maxEntryLifetimeMs: settings.maxEntryLifetimeMs });
    const [v1, v2, v3] = await estimateRemaining(redis, keys, ['v1', 'v2', 'v3'], now, settings.maxEntryLifetimeMs);
    expect(v1?.estimate).toBeGreaterThan(480);
    expect(v1?.estimate).toBeLessThan(520);
    expect(v2?.estimate).toBeGreaterThan(480);
    expect(v3?.estimate).toBe(0);
    // Two lifetimes later nothing written now can exist any more, and the estimate says so.
    const [gone] = await estimateRemaining(
      redis,
      keys,
      ['v1'],
      now + 2 * settings.maxEntryLifetimeMs + 120_000,
      settings.maxEntryLifetimeMs,
    );
    expect(gone?.estimate).toBe(0);
  });
});
