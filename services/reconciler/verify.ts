/**
 * Batch verification (`parity verify`): plans a run's segments once, verifies them with `jobs`
 * workers (any number of processes may join the same run), re-checks the differing keys once the
 * stream has passed them, and records the result as 'verify' evidence for the gates.
 *
 * Every worker holds its segment claim in an open control-database transaction that commits with
 * the segment's result and its differing keys, so a run killed at any instant resumes with at most
 * the in-progress segments (one per worker) done again.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import { recordEvidence } from '../core/control.js';
import { ParityError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Registry } from '../core/metrics.js';
import { sleep as realSleep } from '../core/retry.js';
import { controlDatabase, targetDatabase, type LoadedSpec } from '../core/spec.js';
import { compareSegment } from './bisect.js';
import {
  abandonRun,
  activeRun,
  claimSegment,
  completeSegment,
  copyMismatches,
  createRun,
  ensureReconcilerTables,
  finishRun,
  getRun,
  insertSegments,
  recordAttempt,
  runTotals,
  segmentProgress,
  setRunSegments,
  tables,
  type DecidedMismatch,
  type RunTotals,
} from './control-store.js';
import { postgresDialect, type Dialect } from './dialect.js';
import { reconcilerMetrics } from './metrics.js';
import type { ProgressReporter } from './progress.js';
import { assertKeysNotNull, buildProjection, type Projection } from './projection.js';
import { readSlot } from './cdc-position.js';
import {
  recheckSegmentByMerge,
  recheckSuspects,
  rowVersionsSuffice,
  segmentVersions,
  type RecheckContext,
  type RecheckOptions,
  type SegmentVersions,
} from './recheck.js';
import { recheckBySegment } from './segment-strategy.js';
import type { KeyDifference } from './row-diff.js';
import { hasRowVersions } from './segment-hash.js';
import { estimateRows, partsFor, planSegments } from './segment-planner.js';
import { abortSnapshots, beginSnapshots, connectPg, endSnapshots, openReadSession, openWriteSession, type Connect } from './snapshot.js';
import { serialize } from './serial-client.js';
import { TOOL_VERSION } from './version.js';

export interface VerifyOptions {
  jobs: number;
  /** Abandon an unfinished run of this migration and start afresh. */
  newRun: boolean;
  /** Minimum time between two observations of a differing key; null: see recheck.ts (0 with a CDC slot, 1 s without). */
  recheckWaitMs: number | null;
  maxRechecks: number;
  /** Pause after each segment, to spread the load on busy databases. */
  segmentPauseMs: number;
  /** Parts a differing range is split into. */
  bisectionFactor: number;
  /** Identifies this process in the control tables. */
  worker: string;
}

export const DEFAULT_VERIFY_OPTIONS: Omit<VerifyOptions, 'jobs'> = {
  newRun: false,
  recheckWaitMs: null,
  maxRechecks: 3,
  segmentPauseMs: 0,
  bisectionFactor: 16,
  worker: `${hostname()}:${process.pid}`,
};

/** How long a worker waits for the CDC slot to pass a dense segment's snapshot before leaving its keys to the ordinary recheck. */
const SEGMENT_RECHECK_WAIT_MS = 2_000;

export interface VerifyDeps {
  logger: Logger;
  registry: Registry;
  connect?: Connect;
  dialect?: Dialect;
  progress?: ProgressReporter;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** What a run found; stored as the run's result and as the 'verify' evidence value. */
export interface VerifyResult extends RunTotals {
  runId: number;
  migration: string;
  configHash: string;
  toolVersion: string;
  startedAt: string;
  finishedAt: string;
  /** Rows equal on both sides (source rows not involved in any remaining difference). */
  unchanged: number;
  passed: boolean;
  verdict: string;
}

export interface VerifyOutcome {
  result: VerifyResult;
  /** This process joined a run another process had started (or an earlier process left unfinished). */
  joined: boolean;
  segmentsVerifiedHere: number;
}

function settingsOf(loaded: LoadedSpec, options: VerifyOptions): Record<string, unknown> {
  const r = loaded.spec.reconcile;
  return {
    segmentRows: r.segmentRows,
    bisectionThreshold: r.bisectionThreshold,
    bisectionFactor: options.bisectionFactor,
    ...partsFor(r.segmentRows, r.bisectionThreshold),
    normalize: loaded.spec.normalize,
    recheckWaitMs: options.recheckWaitMs,
    maxRechecks: options.maxRechecks,
    settleMs: r.settleMs,
    recheckBoundMs: r.recheckBoundMs,
    keyCasts: r.keyCasts,
    slot: loaded.spec.cdc.slot,
  };
}

/** Finds the active run to join or plans a new one, serialized per migration by an advisory lock. */
async function startOrJoinRun(
  control: pg.Client,
  loaded: LoadedSpec,
  options: VerifyOptions,
  projection: Projection,
  plannerDbs: { source: pg.Client; target: pg.Client },
  logger: Logger,
): Promise<{ runId: number; joined: boolean }> {
  const { spec } = loaded;
  const schema = spec.control.schema;
  await control.query('SELECT pg_advisory_lock(hashtext($1))', [`parity.verify:${spec.name}`]);
  try {
    const run = await activeRun(control, schema, spec.name);
    if (run && !options.newRun && run.configHash === loaded.configHash) {
      logger.info({ runId: run.id }, 'joining the unfinished verification run');
      return { runId: run.id, joined: true };
    }
    if (run) {
      logger.warn(
        { runId: run.id, reason: options.newRun ? '--new-run' : 'the spec changed' },
        'abandoning the unfinished verification run',
      );
      await abandonRun(control, schema, run.id);
    }
    // Boundaries come from the side with more rows, so segments are even where most rows are.
    const [sourceRows, targetRows] = await Promise.all([
      estimateRows(plannerDbs.source, projection.source),
      estimateRows(plannerDbs.target, projection.target),
    ]);
    const fromTarget = targetRows > sourceRows;
    await control.query('BEGIN');
    try {
      const runId = await createRun(control, schema, spec.name, loaded.configHash, settingsOf(loaded, options));
      const count = await planSegments(
        fromTarget ? plannerDbs.target : plannerDbs.source,
        fromTarget ? projection.target : projection.source,
        {
          ...partsFor(spec.reconcile.segmentRows, spec.reconcile.bisectionThreshold),
          onSegments: (segments) => insertSegments(control, schema, runId, segments),
        },
      );
      await setRunSegments(control, schema, runId, count);
      await control.query('COMMIT');
      logger.info({ runId, segments: count, plannedFrom: fromTarget ? 'target' : 'source' }, 'planned a new verification run');
      return { runId, joined: false };
    } catch (err) {
      await control.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    await control.query('SELECT pg_advisory_unlock(hashtext($1))', [`parity.verify:${spec.name}`]).catch(() => undefined);
  }
}

/** Differing keys seen once, to be stored as suspects. */
function asSuspects(diffs: KeyDifference[]): DecidedMismatch[] {
  return diffs.map((d) => ({ d, status: 'suspect', reason: null, checks: 0 }));
}

/** Rows of a compared segment (the larger side). */
function rowsOf(outcome: { source: { rows: bigint }; target: { rows: bigint } }): number {
  return Number(outcome.source.rows > outcome.target.rows ? outcome.source.rows : outcome.target.rows);
}

/** Runs (or joins) a verification run to its end. */
export async function runVerify(loaded: LoadedSpec, options: VerifyOptions, deps: VerifyDeps): Promise<VerifyOutcome> {
  const { spec } = loaded;
  const schema = spec.control.schema;
  const dialect = deps.dialect ?? postgresDialect;
  const connect = deps.connect ?? connectPg;
  const sleep = deps.sleep ?? realSleep;
  const now = deps.now ?? (() => performance.now());
  const metrics = reconcilerMetrics(deps.registry);
  const logger = deps.logger;
  const appName = `parity-verify ${spec.name}`;

  const opened: pg.Client[] = [];
  /** Opens sessions at once (connection set-up is most of a small run's fixed cost); every one opened is closed at the end. */
  const openAll = async (...opening: Array<Promise<pg.Client>>): Promise<pg.Client[]> => {
    const settled = await Promise.allSettled(opening);
    for (const s of settled) if (s.status === 'fulfilled') opened.push(s.value);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<pg.Client>).value);
  };
  try {
    const [control, sharedSession, source, target] = (await openAll(
      openWriteSession(connect, controlDatabase(spec), dialect, appName),
      openWriteSession(connect, controlDatabase(spec), dialect, appName),
      openReadSession(connect, spec.source.database, dialect, appName),
      openReadSession(connect, targetDatabase(spec), dialect, appName),
    )) as [pg.Client, pg.Client, pg.Client, pg.Client];
    await ensureReconcilerTables(control, schema);
    // Progress polling and attempt logging share one autocommit session, one query at a time.
    const shared = serialize(sharedSession);
    const projection = await buildProjection(spec, source, target, dialect);
    await Promise.all([assertKeysNotNull(source, projection.source), assertKeysNotNull(target, projection.target)]);
    const { runId, joined } = await startOrJoinRun(control, loaded, options, projection, { source, target }, logger);
    // A dense segment rechecked as a whole can be confirmed from its row versions alone when the
    // mapping is a function of the row (recheck.ts).
    const byVersions =
      rowVersionsSuffice(projection.columns.map((c) => spec.mapping[c]!)) &&
      (await hasRowVersions(source, projection, projection.source)) &&
      (await hasRowVersions(target, projection, projection.target));

    // Progress: the control database knows every process's segments, not just ours.
    let suspects = 0;
    let stopProgress = false;
    const progressLoop = (async () => {
      while (!stopProgress) {
        const p = await segmentProgress(shared, schema, runId).catch(() => null);
        if (p) {
          metrics.segments.set({ state: 'total' }, p.total);
          metrics.segments.set({ state: 'done' }, p.done);
          deps.progress?.update({ runId, total: p.total, done: p.done, rows: p.rows, driftSuspects: suspects });
        }
        // Every 500 ms, but a finished run must not wait out the pause.
        for (let i = 0; i < 10 && !stopProgress; i++) await sleep(50);
      }
    })();

    let verifiedHere = 0;
    let failure: unknown = null;
    const worker = async (n: number): Promise<void> => {
      const name = `${options.worker}/${n}`;
      // The first worker takes over the planning sessions, idle until the run is finalized: three
      // connections (and their authentication) fewer per process.
      const [ctl, src, tgt] =
        n === 1
          ? [control, source, target]
          : ((await openAll(
              openWriteSession(connect, controlDatabase(spec), dialect, appName),
              openReadSession(connect, spec.source.database, dialect, appName),
              openReadSession(connect, targetDatabase(spec), dialect, appName),
            )) as [pg.Client, pg.Client, pg.Client]);
      // Dense drift in this worker's last segment: diff the next one row by row without checksumming first.
      let dense = false;
      // With the spec's slot, a dense segment's keys are rechecked by merging the segment again (recheck.ts).
      const slotExists = (await readSlot(src, spec.cdc.slot)).exists;
      // A segment's differences are held until it is done (bounded by its rows), up to this many.
      const holdMax = 4 * spec.reconcile.segmentRows;
      while (failure === null) {
        await ctl.query('BEGIN');
        const seg = await claimSegment(ctl, schema, runId);
        if (!seg) {
          await ctl.query('COMMIT');
          const p = await segmentProgress(ctl, schema, runId);
          if (p.done >= p.total) return;
          // Others hold the remaining segments; if one of them dies its segment becomes claimable.
          // Polled often: the run's end waits for this worker to notice the last segment is done.
          await sleep(50);
          continue;
        }
        await recordAttempt(shared, schema, runId, seg.no, name);
        const started = now();
        try {
          const positions = await beginSnapshots(dialect, src, tgt, projection.sameDatabase);
          const buffered: KeyDifference[] = [];
          // Held back while the whole segment's differences may still be rechecked together.
          let holding = slotExists && options.recheckWaitMs === null;
          let outcome;
          let versions: SegmentVersions | null = null;
          try {
            outcome = await compareSegment(src, tgt, projection, { lo: seg.lo, hi: seg.hi }, seg.subBounds, {
              threshold: spec.reconcile.bisectionThreshold,
              factor: options.bisectionFactor,
              dense,
              onDifference: async (d) => {
                suspects++;
                buffered.push(d);
                if (holding && buffered.length > holdMax) holding = false;
                if (!holding && buffered.length >= 5000)
                  await copyMismatches(ctl, schema, runId, seg.no, projection.columns, asSuspects(buffered.splice(0)), positions.source);
              },
            });
            // Read in this snapshot pair: the whole-segment recheck compares them with fresh ones.
            if (byVersions && holding && recheckBySegment(buffered.length, rowsOf(outcome)))
              versions = await segmentVersions({ source: src, target: tgt }, projection, { lo: seg.lo, hi: seg.hi });
            await endSnapshots(src, tgt);
          } catch (err) {
            await abortSnapshots(src, tgt);
            throw err;
          }
          const compareMs = now() - started;
          const together =
            holding && recheckBySegment(buffered.length, rowsOf(outcome))
              ? await recheckSegmentByMerge(
                  { source: src, target: tgt },
                  projection,
                  { range: { lo: seg.lo, hi: seg.hi }, bounds: seg.subBounds, sourcePosition: positions.source, versions },
                  buffered,
                  {
                    slot: spec.cdc.slot,
                    waitMs: SEGMENT_RECHECK_WAIT_MS,
                    threshold: spec.reconcile.bisectionThreshold,
                    factor: options.bisectionFactor,
                    sampleKeys: spec.reconcile.sampleKeys,
                    sleep,
                    now,
                  },
                )
              : null;
          const recheckMs = now() - started - compareMs;
          // Through COPY: dense drift stores a row for every key of the segment.
          if (together) await copyMismatches(ctl, schema, runId, seg.no, projection.columns, together.decided, together.position);
          else await copyMismatches(ctl, schema, runId, seg.no, projection.columns, asSuspects(buffered), positions.source);
          const storeMs = now() - started - compareMs - recheckMs;
          const durationMs = Math.round(now() - started);
          await completeSegment(ctl, schema, runId, seg.no, {
            ...outcome,
            sourcePosition: positions.source,
            targetPosition: positions.target,
            worker: name,
            durationMs,
          });
          await ctl.query('COMMIT');
          dense = outcome.denseHint;
          logger.debug(
            {
              segment: seg.no,
              ms: durationMs,
              differing: outcome.differingKeys,
              bisections: outcome.bisections,
              fetched: outcome.fetchedRows,
              strategy: outcome.strategy,
              density: Number(outcome.density.toFixed(3)),
              recheckedBySegment: together !== null,
              recheckedBy: together?.by ?? null,
              compareMs: Math.round(compareMs),
              recheckMs: Math.round(recheckMs),
              storeMs: Math.round(storeMs),
              commitMs: Math.round(now() - started - durationMs),
            },
            'segment verified',
          );
          verifiedHere++;
          metrics.segmentsVerified.inc();
          metrics.segmentSeconds.observe(durationMs / 1000);
          metrics.rowsChecked.inc({ side: 'source' }, Number(outcome.source.rows));
          metrics.rowsChecked.inc({ side: 'target' }, Number(outcome.target.rows));
          metrics.rowsFetched.inc(outcome.fetchedRows);
          metrics.bisections.inc(outcome.bisections);
        } catch (err) {
          await ctl.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        if (options.segmentPauseMs > 0) await sleep(options.segmentPauseMs);
      }
    };
    // Suspects are rechecked while segments are still being verified, once they are old enough.
    let workersDone = false;
    const [recheckControl, recheckSource, recheckTarget] = (await openAll(
      openWriteSession(connect, controlDatabase(spec), dialect, appName),
      openReadSession(connect, spec.source.database, dialect, appName),
      openReadSession(connect, targetDatabase(spec), dialect, appName),
    )) as [pg.Client, pg.Client, pg.Client];
    const recheckSessions = { control: recheckControl, source: recheckSource, target: recheckTarget };
    const recheckOptions: RecheckOptions = {
      waitMs: options.recheckWaitMs,
      maxChecks: options.maxRechecks,
      retryWindowMs: spec.reconcile.retryWindowMs,
      slot: spec.cdc.slot,
      batch: 5000,
      settleMs: spec.reconcile.settleMs,
      boundMs: spec.reconcile.recheckBoundMs,
    };
    const recheckContext = { ...recheckSessions, schema, runId, projection, logger, sleep, now };
    const background = recheckSuspects(recheckContext, recheckOptions, 'background', () => workersDone || failure !== null).catch(
      (err: unknown) => {
        failure ??= err;
      },
    );
    const results = await Promise.allSettled(
      Array.from({ length: Math.max(1, options.jobs) }, (_, i) =>
        worker(i + 1).catch((err: unknown) => {
          failure ??= err;
          throw err;
        }),
      ),
    );
    // Both loops notice the stop within one 50 ms pause: waited for together, not one after the other.
    workersDone = true;
    stopProgress = true;
    await Promise.all([background, progressLoop]);
    logger.debug({ runId, verifiedHere }, 'segments done');
    const last = await segmentProgress(shared, schema, runId);
    deps.progress?.update({ runId, total: last.total, done: last.done, rows: last.rows, driftSuspects: suspects });
    deps.progress?.finish();
    if (failure !== null) throw failure;
    for (const r of results) if (r.status === 'rejected') throw r.reason;

    const result = await finalizeRun(control, loaded, runId, recheckContext, recheckOptions);
    metrics.drift.set({ state: 'confirmed' }, result.confirmedDrift);
    metrics.drift.set({ state: 'in_flight' }, result.inFlight);
    return { result, joined, segmentsVerifiedHere: verifiedHere };
  } finally {
    await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
  }
}

/**
 * Re-checks the suspects and closes the run. One process does it, holding the run row's lock;
 * others wait for the result. A finalizer that dies releases the lock and another takes over.
 */
async function finalizeRun(
  control: pg.Client,
  loaded: LoadedSpec,
  runId: number,
  recheck: RecheckContext,
  recheckOptions: RecheckOptions,
): Promise<VerifyResult> {
  const { spec } = loaded;
  const schema = spec.control.schema;
  const deps = recheck;
  for (;;) {
    await control.query('BEGIN');
    let committed = false;
    try {
      const { rows } = await control.query(`SELECT status FROM ${tables(schema).runs} WHERE id = $1 FOR UPDATE SKIP LOCKED`, [runId]);
      if (rows.length === 0) {
        // Another process is finalizing; wait for its result.
        await control.query('COMMIT');
        committed = true;
        await deps.sleep(250);
        continue;
      }
      if (rows[0].status !== 'running') {
        await control.query('COMMIT');
        committed = true;
        const run = await getRun(control, schema, runId);
        if (run?.status === 'done' && run.result) return run.result as unknown as VerifyResult;
        throw new ParityError('PARITY_ABORTED', `verification run ${runId} was ${run?.status ?? 'removed'} by another process`, {
          hint: 'another `parity verify --new-run` or a changed spec replaced it; run parity verify again',
        });
      }
      const summary = await recheckSuspects(recheck, recheckOptions, 'drain');
      const totals = await runTotals(control, schema, runId);
      const run = await getRun(control, schema, runId);
      const passed = totals.confirmedDrift === 0 && totals.inFlight === 0;
      const verdict = passed
        ? 'pass: no confirmed drift, nothing in flight'
        : totals.confirmedDrift > 0
          ? `fail: ${totals.confirmedDrift} rows of confirmed drift`
          : `fail: ${totals.inFlight} rows still in flight`;
      const result: VerifyResult = {
        ...totals,
        runId,
        migration: spec.name,
        configHash: loaded.configHash,
        toolVersion: TOOL_VERSION,
        startedAt: (run?.startedAt ?? new Date()).toISOString(),
        finishedAt: new Date().toISOString(),
        unchanged: Math.max(0, totals.sourceRows - totals.sourceDiffRows),
        passed,
        verdict,
      };
      await finishRun(control, schema, runId, result as unknown as Record<string, unknown>);
      await recordEvidence(control, schema, {
        migration: spec.name,
        kind: 'verify',
        passed,
        summary: `verify run ${runId}: ${totals.sourceRows} source rows, ${totals.targetRows} target rows, confirmed drift ${totals.confirmedDrift}, in flight ${totals.inFlight}`,
        value: result as unknown as Record<string, unknown>,
      });
      await control.query('COMMIT');
      committed = true;
      deps.logger.info({ runId, ...summary }, 'verification run finished');
      return result;
    } finally {
      if (!committed) await control.query('ROLLBACK').catch(() => undefined);
    }
  }
}
