/**
 * Separates confirmed drift from changes still in flight. A key found differing in a segment's
 * snapshot is a suspect: it may only be a write the stream has not carried over yet.
 *
 * With the spec's CDC slot, it is looked at again once the stream has passed the position of the
 * snapshot it was seen in (the slot's confirmed_flush_lsn reaching the source snapshot's WAL
 * position), in fresh snapshots:
 * - equal now: it was in flight and has landed (resolved);
 * - still different and exactly as observed before: nothing moved although the stream passed it,
 *   so it is confirmed drift;
 * - different in another way: it changed since; observe again, up to `maxChecks` times, after
 *   which it is reported in flight (never as confirmed drift).
 * If the stream does not pass the position within `retryWindowMs`, the keys stay in flight.
 *
 * Without a slot nothing says how far behind the target is, so one unchanged look proves nothing
 * (a target applying 1.5 s late looks unchanged after 1 s). The key is rechecked with backoff (the
 * wait doubles from `waitMs`) until it has stayed unchanged on both sides for `settleMs`, and only
 * then confirmed; equal on a recheck: resolved; a change restarts the stable time. A key not
 * confirmed or resolved within `boundMs` of its first sighting is reported in flight, marked
 * unsettled: never confirmed drift, so neither the contract gate nor repair treats it as drift.
 *
 * Rechecks run while segments are still being verified (background mode, suspects old enough
 * only), so on a long run the wait costs nothing; the run's finalizer then drains what is left.
 * Pages of suspects are claimed with FOR UPDATE SKIP LOCKED, so several processes never recheck
 * the same key at once.
 */
import type pg from 'pg';
import type { Logger } from '../core/log.js';
import { parseLsn, type Lsn } from '../core/lsn.js';
import { readSlot, waitForStream } from './cdc-position.js';
import { compareSegment } from './bisect.js';
import { tables, toMismatchRow, updateMismatches, type DecidedMismatch, type MismatchRow, type MismatchUpdate } from './control-store.js';
import type { KeyRange, KeyTuple } from './key-range.js';
import type { Projection } from './projection.js';
import { compareBytes, diffRowSets, type KeyDifference } from './row-diff.js';
import { parseStatements, walk } from '../core/sql-parse.js';
import { rangeVersions, rowsByKeys, sameChecksum, type Checksum } from './segment-hash.js';
import { abortSnapshots, beginSnapshots, endSnapshots } from './snapshot.js';

/** Minimum time between two observations of a key when the source has no CDC slot. */
export const NO_SLOT_WAIT_MS = 1000;

export interface RecheckOptions {
  /**
   * Minimum time between two observations of a key; null: none with a CDC slot (its position
   * decides), NO_SLOT_WAIT_MS without one. Raise it when the target applies changes well after
   * they reach Kafka.
   */
  waitMs: number | null;
  maxChecks: number;
  /** How long to wait for the CDC slot to pass a position (drain mode). */
  retryWindowMs: number;
  slot: string;
  batch: number;
  /** Without a slot: how long a key must stay unchanged on both sides to be confirmed. */
  settleMs: number;
  /** Without a slot: how long after its first sighting a key still not settled is reported in flight (unsettled). */
  boundMs: number;
}

export interface RecheckContext {
  /** A control-database session of its own: pages are claimed in its transactions. */
  control: pg.Client;
  schema: string;
  runId: number;
  projection: Projection;
  source: pg.Client;
  target: pg.Client;
  logger: Logger;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

export interface RecheckSummary {
  confirmed: number;
  resolved: number;
  inFlight: number;
  unsettled: number;
  observations: number;
}

/**
 * The verdict on a key rechecked without a CDC slot, from what the recheck saw: `equal` (nothing
 * differs now), `same` (differs exactly as last observed), how long it has differed (`ageMs`) and
 * how long its observation has been unchanged (`stableMs`, counted from the previous observation when
 * `same`), and the wait before this look (`lastWaitMs`). Pure, so the settling rule is unit-tested.
 */
export function settleVerdict(
  look: { equal: boolean; same: boolean; ageMs: number; stableMs: number; lastWaitMs: number },
  options: { waitMs: number; settleMs: number; boundMs: number },
): { status: 'resolved' | 'confirmed' | 'suspect' | 'unsettled'; nextCheckInMs?: number } {
  if (look.equal) return { status: 'resolved' };
  const stable = look.same ? look.stableMs : 0;
  if (look.same && stable >= options.settleMs) return { status: 'confirmed' };
  if (look.ageMs >= options.boundMs) return { status: 'unsettled' };
  // Back off (double the last wait), but never past the moment the key would have settled or the bound.
  const backoff = Math.max(options.waitMs, 2 * look.lastWaitMs);
  const untilSettled = options.settleMs - stable;
  const untilBound = options.boundMs - look.ageMs;
  return { status: 'suspect', nextCheckInMs: Math.round(Math.max(50, Math.min(backoff, untilSettled, untilBound))) };
}

/** Same unmatched rows on both sides as before: nothing moved between the two observations. */
export function sameObservation(
  m: Pick<MismatchRow, 'sourceHashes' | 'targetHashes' | 'updated' | 'exclusiveSource' | 'exclusiveTarget'>,
  d: KeyDifference,
): boolean {
  return (
    m.updated === d.updated &&
    m.exclusiveSource === d.exclusiveSource &&
    m.exclusiveTarget === d.exclusiveTarget &&
    m.sourceHashes.length === d.sourceHashes.length &&
    m.targetHashes.length === d.targetHashes.length &&
    m.sourceHashes.every((h, i) => h === d.sourceHashes[i]) &&
    m.targetHashes.every((h, i) => h === d.targetHashes[i])
  );
}

function maxPosition(rows: MismatchRow[]): Lsn {
  let max = 0n;
  for (const r of rows) {
    if (!r.sourcePosition) continue;
    const p = parseLsn(r.sourcePosition);
    if (p > max) max = p;
  }
  return max;
}

/** Claims a page of suspects observed at least `waitMs` ago (the caller is inside a transaction). */
async function claimEligible(
  ctx: RecheckContext,
  options: RecheckOptions,
  waitMs: number,
): Promise<Array<MismatchRow & { waitedMs: number }>> {
  const { rows } = await ctx.control.query(
    `SELECT *, extract(epoch FROM clock_timestamp() - first_seen) * 1000 AS age_ms, extract(epoch FROM clock_timestamp() - stable_since) * 1000 AS stable_ms,
            extract(epoch FROM clock_timestamp() - observed_at) * 1000 AS waited_ms
       FROM ${tables(ctx.schema).mismatches}
      WHERE run_id = $1 AND status = 'suspect' AND coalesce(next_check_at, observed_at + $2 * interval '1 millisecond') <= clock_timestamp()
      ORDER BY observed_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
    [ctx.runId, waitMs, options.batch],
  );
  return rows.map((r) => ({ ...toMismatchRow(r), waitedMs: Number(r.waited_ms ?? 0) }));
}

/** Milliseconds until the oldest suspect becomes eligible, or null when there is no suspect left. */
async function untilNextEligible(ctx: RecheckContext, waitMs: number): Promise<number | null> {
  const { rows } = await ctx.control.query(
    `SELECT extract(epoch FROM (min(coalesce(next_check_at, observed_at + $2 * interval '1 millisecond')) - clock_timestamp())) * 1000 AS ms, count(*)::int AS n
       FROM ${tables(ctx.schema).mismatches} WHERE run_id = $1 AND status = 'suspect'`,
    [ctx.runId, waitMs],
  );
  if (rows[0].n === 0) return null;
  return Math.max(0, Number(rows[0].ms ?? 0));
}

/**
 * Rechecks suspects. In 'background' mode only what is eligible now, returning when `stop()` says
 * so and nothing is eligible; in 'drain' mode until no suspect is left.
 */
export async function recheckSuspects(
  ctx: RecheckContext,
  options: RecheckOptions,
  mode: 'background' | 'drain',
  stop: () => boolean = () => true,
): Promise<RecheckSummary> {
  const summary: RecheckSummary = { confirmed: 0, resolved: 0, inFlight: 0, unsettled: 0, observations: 0 };
  const { projection } = ctx;
  // With a slot, the stream's position decides when to look again; without one, a short wait does.
  const slotExists = (await readSlot(ctx.source, options.slot)).exists;
  const waitMs = options.waitMs ?? (slotExists ? 0 : NO_SLOT_WAIT_MS);
  for (;;) {
    await ctx.control.query('BEGIN');
    let open = true;
    try {
      const claimStarted = ctx.now();
      const page = await claimEligible(ctx, options, waitMs);
      const claimMs = ctx.now() - claimStarted;
      if (page.length === 0) {
        await ctx.control.query('COMMIT');
        open = false;
        if (mode === 'background') {
          // Look again in 200 ms, but notice a stop request within 50 ms.
          for (let i = 0; i < 4 && !stop(); i++) await ctx.sleep(50);
          if (stop()) return summary;
          continue;
        }
        const ms = await untilNextEligible(ctx, waitMs);
        if (ms === null) return summary;
        // Suspects claimed by another process count too: wait for them as well.
        await ctx.sleep(Math.min(Math.max(ms, 50), 1000));
        continue;
      }

      const position = maxPosition(page);
      const stream = await waitForStream(ctx.source, options.slot, position, mode === 'drain' ? options.retryWindowMs : 0, {
        sleep: ctx.sleep,
        now: ctx.now,
      });
      if (stream.slotExists && !stream.passed) {
        if (mode === 'background') {
          // Not yet: leave them for a later pass (or the final drain, which waits retryWindowMs).
          await ctx.control.query('COMMIT');
          open = false;
          if (stop()) return summary;
          await ctx.sleep(200);
          continue;
        }
        const reason = `CDC slot ${options.slot} has not passed the snapshot position within ${options.retryWindowMs} ms`;
        ctx.logger.warn({ slot: options.slot, keys: page.length }, reason);
        await updateMismatches(
          ctx.control,
          ctx.schema,
          ctx.runId,
          projection.columns,
          page.map((m) => ({ kt: m.kt, status: 'in-flight', reason, observation: null, sourcePosition: null })),
        );
        summary.inFlight += page.length;
        await ctx.control.query('COMMIT');
        open = false;
        continue;
      }

      let diffs: Map<string, KeyDifference>;
      const keys = page.map((m) => m.key);
      const readStarted = ctx.now();
      const positions = await beginSnapshots(projection.dialect, ctx.source, ctx.target, projection.sameDatabase);
      try {
        const [s, t] = await Promise.all([
          rowsByKeys(ctx.source, projection.source, keys),
          rowsByKeys(ctx.target, projection.target, keys),
        ]);
        diffs = diffRowSets(s, t);
        await endSnapshots(ctx.source, ctx.target);
      } catch (err) {
        await abortSnapshots(ctx.source, ctx.target);
        throw err;
      }
      summary.observations += page.length;
      const readMs = ctx.now() - readStarted;

      const updates: MismatchUpdate[] = page.map((m) => {
        const d = diffs.get(m.kt);
        if (!stream.slotExists)
          return settleUpdate(m, d ?? null, positions.source, { waitMs, settleMs: options.settleMs, boundMs: options.boundMs }, summary);
        if (!d) {
          summary.resolved++;
          return {
            kt: m.kt,
            status: 'resolved',
            reason: 'equal on recheck (was in flight)',
            observation: null,
            sourcePosition: positions.source,
          };
        }
        if (sameObservation(m, d)) {
          summary.confirmed++;
          return {
            kt: m.kt,
            status: 'confirmed',
            reason: `unchanged after the CDC stream passed ${m.sourcePosition}`,
            observation: d,
            sourcePosition: positions.source,
          };
        }
        if (m.checks + 1 >= options.maxChecks) {
          summary.inFlight++;
          return {
            kt: m.kt,
            status: 'in-flight',
            reason: `still changing after ${m.checks + 1} rechecks`,
            observation: d,
            sourcePosition: positions.source,
          };
        }
        return {
          kt: m.kt,
          status: 'suspect',
          reason: 'changed since the last observation',
          observation: d,
          sourcePosition: positions.source,
        };
      });
      const updateStarted = ctx.now();
      await updateMismatches(ctx.control, ctx.schema, ctx.runId, projection.columns, updates);
      ctx.logger.debug(
        {
          mode,
          keys: page.length,
          claimMs: Math.round(claimMs),
          readMs: Math.round(readMs),
          updateMs: Math.round(ctx.now() - updateStarted),
        },
        'suspects rechecked',
      );
      await ctx.control.query('COMMIT');
      open = false;
    } finally {
      if (open) await ctx.control.query('ROLLBACK').catch(() => undefined);
    }
  }
}

/** The update for a key rechecked without a CDC slot (see `settleVerdict`). */
function settleUpdate(
  m: MismatchRow & { waitedMs: number },
  d: KeyDifference | null,
  position: string,
  options: { waitMs: number; settleMs: number; boundMs: number },
  summary: RecheckSummary,
): MismatchUpdate {
  const same = d !== null && sameObservation(m, d);
  const verdict = settleVerdict({ equal: d === null, same, ageMs: m.ageMs, stableMs: m.stableMs, lastWaitMs: m.waitedMs }, options);
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  switch (verdict.status) {
    case 'resolved':
      summary.resolved++;
      return { kt: m.kt, status: 'resolved', reason: 'equal on recheck (was in flight)', observation: null, sourcePosition: position };
    case 'confirmed':
      summary.confirmed++;
      return {
        kt: m.kt,
        status: 'confirmed',
        // No timings of this run in the text: two runs over the same data must report alike.
        reason: `unchanged on both sides for at least ${seconds(options.settleMs)} (no CDC slot: settle time reconcile.settleMs)`,
        observation: d,
        sourcePosition: position,
      };
    case 'unsettled':
      summary.inFlight++;
      summary.unsettled++;
      return {
        kt: m.kt,
        status: 'in-flight',
        reason: `unsettled: still ${same ? 'not unchanged long enough' : 'changing'} ${seconds(options.boundMs)} after it was first seen (no CDC slot: recheck bound reconcile.recheckBoundMs)`,
        observation: d,
        sourcePosition: position,
        changed: !same,
        unsettled: true,
      };
    case 'suspect':
      return {
        kt: m.kt,
        status: 'suspect',
        reason: same ? 'unchanged, not yet settled' : 'changed since the last observation',
        observation: d,
        sourcePosition: position,
        changed: !same,
        nextCheckInMs: verdict.nextCheckInMs,
      };
  }
}

/**
 * Whether equal row versions prove equal compared rows: every mapping expression is a function of
 * its row alone. Function calls (now(), random(), or an allowed function reading other tables) and
 * SQL value functions (current_timestamp, current_user) may yield another value for the same stored
 * row in a later transaction, so a mapping with any of them is rechecked by diffing again.
 * (Subqueries are refused by the spec check already.)
 */
export function rowVersionsSuffice(mappingExpressions: string[]): boolean {
  for (const expr of mappingExpressions) {
    let pure = true;
    try {
      walk(
        parseStatements(`SELECT ${expr}`).map((s) => s.node),
        (type) => {
          if (type === 'FuncCall' || type === 'SQLValueFunction') pure = false;
        },
      );
    } catch {
      return false;
    }
    if (!pure) return false;
  }
  return true;
}

/** The row versions of a segment on both sides, read in one snapshot pair (see `rangeVersions`). */
export interface SegmentVersions {
  source: Checksum;
  target: Checksum;
}

/** Reads a range's row versions on both sides, inside the caller's snapshots; null when the dialect has none. */
export async function segmentVersions(
  sessions: { source: Pick<pg.ClientBase, 'query'>; target: Pick<pg.ClientBase, 'query'> },
  projection: Projection,
  range: KeyRange,
): Promise<SegmentVersions | null> {
  const [source, target] = await Promise.all([
    rangeVersions(sessions.source, projection, projection.source, range),
    rangeVersions(sessions.target, projection, projection.target, range),
  ]);
  return source && target ? { source, target } : null;
}

/**
 * Rechecks a dense segment's differing keys together, in the worker that found them, once the CDC
 * slot has passed the segment's source snapshot, in fresh snapshots, and each key's second
 * observation decides as in `recheckSuspects`: gone, resolved; exactly as before, confirmed;
 * changed or new, left a suspect for the ordinary recheck.
 *
 * When the first look also read the segment's row versions (`segment.versions`, see
 * `rowVersionsSuffice`) and they are the same now on both sides, no row of the segment was written
 * since: merging it again would find exactly the first look's differences, so every one is
 * confirmed without reading the rows again. Otherwise the whole segment is merged again (one more
 * streamed read of it). Either way one read of the segment instead of a control-table round trip
 * per key. Returns null (nothing decided) when the slot does not pass within `waitMs`; the caller
 * then stores the keys as suspects.
 */
export async function recheckSegmentByMerge(
  sessions: { source: pg.Client; target: pg.Client },
  projection: Projection,
  segment: { range: KeyRange; bounds: KeyTuple[]; sourcePosition: string; versions?: SegmentVersions | null },
  first: KeyDifference[],
  options: {
    slot: string;
    waitMs: number;
    threshold: number;
    factor: number;
    sampleKeys: number;
    sleep: (ms: number) => Promise<void>;
    now: () => number;
  },
): Promise<{ decided: DecidedMismatch[]; position: string; by: 'versions' | 'merge' } | null> {
  const stream = await waitForStream(sessions.source, options.slot, parseLsn(segment.sourcePosition), options.waitMs, {
    sleep: options.sleep,
    now: options.now,
    pollMs: 50,
  });
  if (!stream.passed) return null;
  // First observations by key, for the merge path only (the versions path decides them all at once).
  const byKey = new Map<string, KeyDifference>();
  const decided: DecidedMismatch[] = [];
  const reason = `unchanged after the CDC stream passed ${segment.sourcePosition}`;
  const positions = await beginSnapshots(projection.dialect, sessions.source, sessions.target, projection.sameDatabase);
  let by: 'versions' | 'merge' = 'merge';
  try {
    const earlier = segment.versions;
    const current = earlier ? await segmentVersions(sessions, projection, segment.range) : null;
    if (earlier && current && sameChecksum(earlier.source, current.source) && sameChecksum(earlier.target, current.target)) {
      by = 'versions';
      for (const d of first) decided.push({ d, status: 'confirmed', reason, checks: 1 });
    } else {
      for (const d of first) byKey.set(d.kt, d);
      await compareSegment(sessions.source, sessions.target, projection, segment.range, segment.bounds, {
        threshold: options.threshold,
        factor: options.factor,
        dense: true,
        recheck: true,
        onDifference: async (d) => {
          const m = byKey.get(d.kt);
          byKey.delete(d.kt);
          if (m && sameObservation(m, d)) decided.push({ d, status: 'confirmed', reason, checks: 1 });
          else decided.push({ d, status: 'suspect', reason: m ? 'changed since the last observation' : null, checks: m ? 1 : 0 });
        },
      });
    }
    // Values for the report's sample keys: the first confirmed keys in the order the report lists them.
    const samples = firstInOrder(
      decided.filter((x) => x.status === 'confirmed'),
      options.sampleKeys,
      (a, b) => compareBytes(a.d.kt, b.d.kt),
    );
    if (samples.length > 0) {
      const keys = samples.map((x) => x.d.key);
      const [s, t] = await Promise.all([
        rowsByKeys(sessions.source, projection.source, keys),
        rowsByKeys(sessions.target, projection.target, keys),
      ]);
      const fresh = diffRowSets(s, t);
      for (const x of samples) {
        const v = fresh.get(x.d.kt);
        x.d.sourceValues = v?.sourceValues ?? null;
        x.d.targetValues = v?.targetValues ?? null;
      }
    }
    await endSnapshots(sessions.source, sessions.target);
  } catch (err) {
    await abortSnapshots(sessions.source, sessions.target);
    throw err;
  }
  for (const d of byKey.values()) decided.push({ d, status: 'resolved', reason: 'equal on recheck (was in flight)', checks: 1 });
  return { decided, position: positions.source, by };
}

/** The `n` smallest items in `order`, sorted: one pass, without sorting them all (a dense segment decides every row). */
export function firstInOrder<T>(items: T[], n: number, order: (a: T, b: T) => number): T[] {
  const best: T[] = [];
  if (n <= 0) return best;
  for (const x of items) {
    if (best.length === n && order(x, best[n - 1]!) >= 0) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order(best[mid]!, x) <= 0) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, x);
    if (best.length > n) best.pop();
  }
  return best;
}
