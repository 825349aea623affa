/**
 * `parity cache inspect`: samples cache entries and compares each with the database, reporting the
 * stale ones and how long they have been stale; its result is evidence for the contract gate.
 *
 * An entry differing from the database is not yet stale: the change may be on its way (CDC, Kafka,
 * the versioner). So a difference is checked again after a grace period, against a new read:
 * - the entry now equals the database, or it moved past the first read's WAL position: in flight;
 * - the entry expired meanwhile: gone (nothing stale is served any more);
 * - otherwise stale: graceMs after the database held a newer state, the cache still serves an older one.
 * Each read is a REPEATABLE READ snapshot whose WAL position is at least the entry's commit LSN (a
 * standby that has not replayed that far is re-read after waiting, then reported as unverifiable), so
 * the database is never older than the entry it is compared with.
 */
import type pg from 'pg';
import type { Row } from '../core/change-event.js';
import { recordEvidence } from '../core/control.js';
import { fromPgError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import { decodePosition, formatLsn, parseLsn, type Lsn } from '../core/lsn.js';
import type { Registry } from '../core/metrics.js';
import { sleep as defaultSleep } from '../core/retry.js';
import { parseEntry, usable, type CacheEntry } from './entry.js';
import { cacheKeys, templatePattern } from './keys.js';
import { inspectorMetrics } from './metrics.js';
import { canonicalPayload, projectRow } from './payload.js';
import { estimateRemaining, type RemainingEstimate } from './remaining.js';
import { createRowReader, keyText, type RowSnapshot } from './row-reader.js';
import { withScripts, type ScriptedRedis } from './scripts.js';
import type { CacheSettings } from './settings.js';
import { effectiveConfig, type VersionConfig } from './version-config.js';
import type { Redis } from 'ioredis';

export interface InspectOptions {
  redis: Redis;
  /** The database holding the new representation. */
  pool: pg.Pool;
  /** Where the CDC slot lives (the source database); default `pool`. */
  slotPool?: pg.Pool;
  /** The control database, where evidence is recorded; null to record nothing. */
  controlPool: pg.Pool | null;
  controlSchema: string;
  settings: CacheSettings;
  /** CDC slot name, to tell whether the change a stale entry misses has left PostgreSQL. */
  slot?: string;
  /** Entries sampled per version; default 100. */
  sample?: number;
  /** Versions to inspect; default the populated ones. */
  versions?: string[];
  /** How long a difference may last before it counts as stale; default 5000 ms. */
  graceMs?: number;
  /**
   * Upper bound of SCAN calls per version (COUNT 500 each). Default: one whole pass over the keyspace
   * (DBSIZE / 500 + 1, at most 20,000 calls, i.e. 10M keys), so a migration's few keys in a big shared
   * Redis are still found; the scan stops as soon as the sample is full.
   */
  maxScanCalls?: number;
  registry: Registry;
  logger?: Logger;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type StaleReason = 'value differs' | 'row deleted' | 'row exists';

export interface StaleEntry {
  version: string;
  key: string;
  keyValues: Record<string, unknown>;
  entryPosition: string;
  reason: StaleReason;
  /** Columns whose cached value differs from the database. */
  columns: string[];
  /** Lower bound of the staleness: how long this inspection saw the difference. */
  observedForMs: number;
  /** Upper bound: time since the entry was last written (the database changed after that). */
  entryAgeMs: number;
  /** Whether the CDC slot had confirmed past the first read: the missing change had left PostgreSQL. Null without a slot. */
  cdcPassed: boolean | null;
}

export interface VersionReport {
  version: string;
  sampled: number;
  stale: number;
  inFlight: number;
  gone: number;
  ignored: number;
  unverifiable: number;
}

export interface InspectReport {
  migration: string;
  passed: boolean;
  sampled: number;
  stale: number;
  inFlight: number;
  /** Entries that expired between the two checks. */
  gone: number;
  /** Invalid markers and entries older than the truncate barrier: readers ignore them. */
  ignored: number;
  /** Entries the database could not be read at or after (a lagging standby). */
  unverifiable: number;
  versions: VersionReport[];
  /** Over the stale entries: the longest observed staleness and the largest possible one. Null when none. */
  stalenessWindowMs: { lower: number; upper: number } | null;
  /** The longest an in-flight difference was seen before it converged (at most graceMs). */
  inFlightWindowMs: number;
  graceMs: number;
  slot: { name: string; confirmedFlushLsn: string | null } | null;
  remaining: RemainingEstimate[];
  /** Up to 20 stale entries, for the report. */
  staleEntries: StaleEntry[];
  config: { read: string; populate: string[]; generation: number };
}

interface Sampled {
  version: string;
  entry: CacheEntry;
}

interface Verdict {
  ok: boolean;
  reason?: StaleReason;
  columns: string[];
}

/** Compares one entry with the database row (null = no row). */
export function compareEntry(entry: CacheEntry, row: Row | null, projection: string[] | undefined): Verdict {
  if (entry.kind === 'tombstone') return row === null ? { ok: true, columns: [] } : { ok: false, reason: 'row exists', columns: [] };
  if (row === null) return { ok: false, reason: 'row deleted', columns: [] };
  const expected = new Map(projectRow(row, projection).columns);
  const differing: string[] = [];
  for (const [column, value] of expected) if (entry.columns.get(column) !== value) differing.push(column);
  for (const column of entry.columns.keys()) if (!expected.has(column)) differing.push(column);
  if (differing.length === 0 && canonicalPayload(expected) === canonicalPayload(entry.columns)) return { ok: true, columns: [] };
  return { ok: false, reason: 'value differs', columns: differing };
}

/** Up to `count` entry keys of a template, by SCAN MATCH (bounded; never KEYS). */
async function sampleKeys(redis: Redis, pattern: string, count: number, maxCalls: number): Promise<string[]> {
  const found = new Set<string>();
  let cursor = '0';
  for (let calls = 0; calls < maxCalls && found.size < count; calls++) {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    for (const key of batch) {
      if (found.size < count) found.add(key);
    }
    cursor = next;
    if (cursor === '0') break;
  }
  return [...found];
}

async function readEntries(redis: ScriptedRedis, names: string[]): Promise<Map<string, CacheEntry>> {
  const out = new Map<string, CacheEntry>();
  if (names.length === 0) return out;
  const pipeline = redis.pipeline();
  for (const name of names) pipeline.hgetall(name);
  const replies = (await pipeline.exec()) ?? [];
  names.forEach((name, i) => {
    const [err, hash] = replies[i] ?? [null, null];
    // A key of another type matching the pattern (WRONGTYPE) is not an entry.
    if (err) return;
    const entry = parseEntry(name, (hash ?? {}) as Record<string, string>);
    if (entry) out.set(name, entry);
  });
  return out;
}

async function slotFlushLsn(pool: pg.Pool, slot: string): Promise<Lsn | null | undefined> {
  try {
    const { rows } = await pool.query<{ lsn: string | null }>(
      `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    if (rows.length === 0) return undefined;
    return rows[0]?.lsn ? parseLsn(rows[0].lsn) : null;
  } catch (err) {
    throw fromPgError(err, `cannot read replication slot ${slot}`);
  }
}

export async function inspectCache(options: InspectOptions): Promise<InspectReport> {
  const { settings } = options;
  const redis = withScripts(options.redis);
  const keys = cacheKeys(settings.migration);
  const logger = options.logger ?? silentLogger();
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const graceMs = options.graceMs ?? 5000;
  const sample = options.sample ?? 100;
  const metrics = inspectorMetrics(options.registry);
  const reader = createRowReader({
    schema: settings.table.schema,
    table: settings.table.table,
    keyColumns: settings.keyColumns,
    projection: settings.projection,
  });
  const config: VersionConfig = await effectiveConfig(redis, keys, settings);
  const versions = options.versions ?? config.populate;
  const perVersion = new Map<string, VersionReport>(
    versions.map((v) => [v, { version: v, sampled: 0, stale: 0, inFlight: 0, gone: 0, ignored: 0, unverifiable: 0 }]),
  );

  // 1. Sample entries of each version.
  const maxScanCalls = options.maxScanCalls ?? Math.min(20_000, Math.ceil((await redis.dbsize()) / 500) + 1);
  let sampled: Sampled[] = [];
  for (const version of versions) {
    const template = settings.templates.get(version);
    if (!template) continue;
    const names = await sampleKeys(redis, templatePattern(template), sample, maxScanCalls);
    const entries = await readEntries(redis, names);
    for (const entry of entries.values()) {
      const report = perVersion.get(version) as VersionReport;
      if (!usable(entry, config.barrier)) {
        report.ignored++;
        continue;
      }
      report.sampled++;
      sampled.push({ version, entry });
    }
  }
  logger.info({ sampled: sampled.length, versions }, 'cache inspector sampled entries');

  // 2. Compare with a database read at least as new as every entry.
  const readAtLeast = async (items: Sampled[]): Promise<{ snapshot: RowSnapshot; behind: Sampled[] }> => {
    let snapshot = await reader.read(
      options.pool,
      items.map((s) => s.entry.keyValues),
    );
    for (let attempt = 0; attempt < 5; attempt++) {
      const behind = items.filter((s) => decodePosition(s.entry.position).commitLsn > snapshot.lsn);
      if (behind.length === 0) break;
      await sleep(Math.min(1000, graceMs / 5 + 1));
      snapshot = await reader.read(
        options.pool,
        items.map((s) => s.entry.keyValues),
      );
    }
    return { snapshot, behind: items.filter((s) => decodePosition(s.entry.position).commitLsn > snapshot.lsn) };
  };
  const first = await readAtLeast(sampled);
  for (const s of first.behind) (perVersion.get(s.version) as VersionReport).unverifiable++;
  sampled = sampled.filter((s) => !first.behind.includes(s));
  const firstSeen = now();
  const differing = sampled.filter(
    (s) => !compareEntry(s.entry, first.snapshot.rows.get(keyText(settings.keyColumns, s.entry.keyValues)) ?? null, settings.projection).ok,
  );

  // 3. Re-check the differences after the grace period.
  const stale: StaleEntry[] = [];
  let inFlightWindowMs = 0;
  let slotInfo: InspectReport['slot'] = null;
  if (differing.length > 0) {
    await sleep(graceMs);
    const again = await readEntries(
      redis,
      differing.map((d) => d.entry.key),
    );
    const second = await readAtLeast(differing.map((d) => ({ version: d.version, entry: again.get(d.entry.key) ?? d.entry })));
    const checkedAt = now();
    let flush: Lsn | null | undefined;
    if (options.slot) {
      flush = await slotFlushLsn(options.slotPool ?? options.pool, options.slot);
      slotInfo = { name: options.slot, confirmedFlushLsn: flush ? formatLsn(flush) : null };
    }
    for (const d of differing) {
      const report = perVersion.get(d.version) as VersionReport;
      const entry = again.get(d.entry.key);
      if (!entry || !usable(entry, config.barrier)) {
        report.gone++;
        continue;
      }
      const row = second.snapshot.rows.get(keyText(settings.keyColumns, entry.keyValues)) ?? null;
      const verdict = compareEntry(entry, row, settings.projection);
      const movedPast = decodePosition(entry.position).commitLsn > first.snapshot.lsn;
      if (verdict.ok || movedPast) {
        // It now matches, or it took a change newer than the first read: a change in flight, not a lost one.
        report.inFlight++;
        inFlightWindowMs = Math.max(inFlightWindowMs, checkedAt - firstSeen);
        continue;
      }
      report.stale++;
      stale.push({
        version: d.version,
        key: entry.key,
        keyValues: entry.keyValues,
        entryPosition: entry.position,
        reason: verdict.reason ?? 'value differs',
        columns: verdict.columns,
        observedForMs: checkedAt - firstSeen,
        entryAgeMs: Math.max(checkedAt - firstSeen, checkedAt - entry.writtenAtMs),
        cdcPassed: flush === undefined || flush === null ? null : flush >= first.snapshot.lsn,
      });
    }
  } else if (options.slot) {
    const flush = await slotFlushLsn(options.slotPool ?? options.pool, options.slot);
    slotInfo = { name: options.slot, confirmedFlushLsn: flush ? formatLsn(flush) : null };
  }

  for (const report of perVersion.values()) {
    metrics.sampled.inc({ version: report.version }, report.sampled);
    if (report.stale > 0) metrics.mismatches.inc({ version: report.version }, report.stale);
  }
  const totals = [...perVersion.values()].reduce(
    (acc, r) => ({
      sampled: acc.sampled + r.sampled,
      stale: acc.stale + r.stale,
      inFlight: acc.inFlight + r.inFlight,
      gone: acc.gone + r.gone,
      ignored: acc.ignored + r.ignored,
      unverifiable: acc.unverifiable + r.unverifiable,
    }),
    { sampled: 0, stale: 0, inFlight: 0, gone: 0, ignored: 0, unverifiable: 0 },
  );
  const remaining = await estimateRemaining(redis, keys, [...settings.templates.keys()], now(), settings.maxEntryLifetimeMs);
  const report: InspectReport = {
    migration: settings.migration,
    passed: totals.stale === 0,
    ...totals,
    versions: [...perVersion.values()],
    stalenessWindowMs:
      stale.length > 0
        ? { lower: Math.max(...stale.map((s) => s.observedForMs)), upper: Math.max(...stale.map((s) => s.entryAgeMs)) }
        : null,
    inFlightWindowMs,
    graceMs,
    slot: slotInfo,
    remaining,
    staleEntries: stale.slice(0, 20),
    config: { read: config.read, populate: config.populate, generation: config.generation },
  };
  if (options.controlPool) {
    const window = report.stalenessWindowMs ? `, stale for ${report.stalenessWindowMs.lower}-${report.stalenessWindowMs.upper} ms` : '';
    const summary = `${report.stale} stale of ${report.sampled} sampled cache entries (${report.inFlight} in flight, ${report.unverifiable} unverifiable, grace ${graceMs} ms${window})`;
    await recordEvidence(options.controlPool, options.controlSchema, {
      migration: settings.migration,
      kind: 'cache-inspect',
      passed: report.passed,
      summary,
      value: {
        sampled: report.sampled,
        stale: report.stale,
        inFlight: report.inFlight,
        gone: report.gone,
        ignored: report.ignored,
        unverifiable: report.unverifiable,
        stalenessWindowMs: report.stalenessWindowMs,
        graceMs,
        versions: report.versions,
        staleKeys: stale.slice(0, 20).map((s) => ({ version: s.version, key: s.key, reason: s.reason })),
      },
    });
  }
  return report;
}
