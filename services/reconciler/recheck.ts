/**
 * Separates confirmed drift from changes still in flight. A key found differing in a segment's
 * snapshot is a suspect: it may only be a write the stream has not carried over yet. It is looked
 * at again once the CDC stream has passed the position of the snapshot it was seen in (the slot's
 * confirmed_flush_lsn reaching the source snapshot's WAL position; without a slot, after a short
 * wait), in fresh snapshots:
 * - equal now: it was in flight and has landed (resolved);
 * - still different and exactly as observed before: nothing moved although the stream passed it,
 *   so it is confirmed drift;
 * - different in another way: it changed since; observe again, up to `maxChecks` times, after
 *   which it is reported in flight (never as confirmed drift).
 * If the stream does not pass the position within `retryWindowMs`, the keys stay in flight.
 */
import type pg from 'pg';
import type { Logger } from '../core/log.js';
import { parseLsn, type Lsn } from '../core/lsn.js';
import { waitForStream } from './cdc-position.js';
import { mismatchesByStatus, updateMismatches, type MismatchRow, type MismatchUpdate } from './control-store.js';
import type { Projection } from './projection.js';
import { diffRowSets, type KeyDifference } from './row-diff.js';
import { rowsByKeys } from './segment-hash.js';
import { beginSnapshots, endSnapshots, abortSnapshots } from './snapshot.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export interface RecheckOptions {
  /** Minimum time between two observations of a key. */
  waitMs: number;
  maxChecks: number;
  /** How long to wait for the CDC slot to pass a position. */
  retryWindowMs: number;
  slot: string;
  batch: number;
}

export interface RecheckContext {
  control: Queryable;
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
  rounds: number;
}

/** Same unmatched rows on both sides as before: nothing moved between the two observations. */
export function sameObservation(m: Pick<MismatchRow, 'sourceHashes' | 'targetHashes' | 'updated' | 'exclusiveSource' | 'exclusiveTarget'>, d: KeyDifference): boolean {
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

export async function recheckSuspects(ctx: RecheckContext, options: RecheckOptions): Promise<RecheckSummary> {
  const summary: RecheckSummary = { confirmed: 0, resolved: 0, inFlight: 0, rounds: 0 };
  const { projection } = ctx;
  for (let round = 1; round <= options.maxChecks; round++) {
    let after = '';
    let any = false;
    for (;;) {
      const page = await mismatchesByStatus(ctx.control, ctx.schema, ctx.runId, 'suspect', options.batch, after);
      if (page.length === 0) break;
      any = true;
      after = page[page.length - 1]!.kt;

      const lastSeen = Math.max(...page.map((m) => m.observedAt.getTime()));
      const rest = lastSeen + options.waitMs - Date.now();
      if (rest > 0) await ctx.sleep(rest);
      const position = maxPosition(page);
      const stream = await waitForStream(ctx.source, options.slot, position, options.retryWindowMs, { sleep: ctx.sleep, now: ctx.now });
      if (stream.slotExists && !stream.passed) {
        const reason = `CDC slot ${options.slot} has not passed the snapshot position within ${options.retryWindowMs} ms`;
        ctx.logger.warn({ slot: options.slot, keys: page.length }, reason);
        await updateMismatches(ctx.control, ctx.schema, ctx.runId, projection.columns, page.map((m) => ({ kt: m.kt, status: 'in-flight', reason, observation: null, sourcePosition: null })));
        summary.inFlight += page.length;
        continue;
      }

      let diffs: Map<string, KeyDifference>;
      let observedAt: string;
      const keys = page.map((m) => m.key);
      const positions = await beginSnapshots(projection.dialect, ctx.source, ctx.target, projection.sameDatabase);
      try {
        const [s, t] = await Promise.all([rowsByKeys(ctx.source, projection.source, keys), rowsByKeys(ctx.target, projection.target, keys)]);
        diffs = diffRowSets(s, t);
        observedAt = positions.source;
        await endSnapshots(ctx.source, ctx.target);
      } catch (err) {
        await abortSnapshots(ctx.source, ctx.target);
        throw err;
      }

      const updates: MismatchUpdate[] = page.map((m) => {
        const d = diffs.get(m.kt);
        if (!d) {
          summary.resolved++;
          return { kt: m.kt, status: 'resolved', reason: 'equal on recheck (was in flight)', observation: null, sourcePosition: observedAt };
        }
        if (sameObservation(m, d)) {
          summary.confirmed++;
          return {
            kt: m.kt,
            status: 'confirmed',
            reason: stream.slotExists ? `unchanged after the CDC stream passed ${m.sourcePosition}` : `unchanged after ${options.waitMs} ms (no CDC slot ${options.slot})`,
            observation: d,
            sourcePosition: observedAt,
          };
        }
        if (round === options.maxChecks) {
          summary.inFlight++;
          return { kt: m.kt, status: 'in-flight', reason: `still changing after ${round} rechecks`, observation: d, sourcePosition: observedAt };
        }
        return { kt: m.kt, status: 'suspect', reason: 'changed since the last observation', observation: d, sourcePosition: observedAt };
      });
      await updateMismatches(ctx.control, ctx.schema, ctx.runId, projection.columns, updates);
    }
    summary.rounds = round;
    if (!any) break;
  }
  return summary;
}
