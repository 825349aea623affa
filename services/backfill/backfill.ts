/**
 * `runBackfill`: the programmatic API behind `parity backfill run`, for the CLI, the demo and the
 * coordinator. Validates the spec against the catalogs, starts or joins the run, serves the control
 * endpoint, runs the throttle controller and N workers, and returns when the run is complete (or this
 * process must stop). Errors are ParityErrors: PARITY_BAD_INPUT before anything is written,
 * PARITY_STATEMENT_TIMEOUT (the batch rolled back), PARITY_ABORTED, PARITY_STALE_FENCE.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { ensureEvidenceTable } from '../core/control.js';
import { ParityError } from '../core/errors.js';
import { resolveStatusPort, specStatusPort } from '../core/http.js';
import { registerSecret } from '../core/secrets.js';
import { currentToken, ensureFenceTable } from '../core/fence.js';
import { FenceWatch } from '../core/fence-watch.js';
import { takeRunToken, type RunFence } from './fence-token.js';
import { silentLogger, type Logger } from '../core/log.js';
import { createMetricsRegistry } from '../core/metrics.js';
import { controlDatabase, targetDatabase, type Spec } from '../core/spec.js';
import { BatchSizer } from './batch-sizer.js';
import { recordCompletionEvidence } from './completion.js';
import { controlLimits } from './control-command.js';
import { startControlServer, type ControlServer } from './control-server.js';
import { controlTables, ensureBackfillTables, readRun, runProgress } from './control-store.js';
import { Controller } from './controller.js';
import { APPLICATION_NAME, Databases, type BackfillPools } from './databases.js';
import { backfillMetrics } from './metrics.js';
import { Pacer, type PaceStatus } from './pace.js';
import { ProbeRunner, userProbeTimeoutMs } from './probe.js';
import type { ProgressBar } from './progress.js';
import { openRun } from './run-plan.js';
import { SignalReader } from './throttle-signals.js';
import { checkStatements, describeBatch } from './validate.js';
import { writeCostFindings, writeCostWarnings } from './hot-check.js';
import { planWalCompression, type WalCompressionPlan } from './wal-compression.js';
import { isRunFatal, Worker, type WorkerResult } from './worker.js';

export type { BackfillPools } from './databases.js';

/** The control endpoint's bearer token: given, PARITY_CONTROL_TOKEN, or 32 random bytes; never logged. */
function controlToken(given: string | undefined): { token: string; source: 'option' | 'env' | 'generated' } {
  const picked: { token: string; source: 'option' | 'env' | 'generated' } =
    given !== undefined
      ? { token: given, source: 'option' }
      : process.env.PARITY_CONTROL_TOKEN
        ? { token: process.env.PARITY_CONTROL_TOKEN, source: 'env' }
        : { token: randomBytes(32).toString('base64url'), source: 'generated' };
  if (picked.token.length < 16) {
    throw new ParityError('PARITY_BAD_INPUT', 'the backfill control token is shorter than 16 characters', {
      hint: 'set PARITY_CONTROL_TOKEN to a long random value (e.g. openssl rand -base64 32), or unset it for a generated one',
    });
  }
  registerSecret(picked.token);
  return picked;
}

export interface RunBackfillOptions {
  spec: Spec;
  /** Existing pools by role; roles not given are opened from the spec URLs (and closed at the end). */
  pools?: BackfillPools;
  logger?: Logger;
  metrics?: Registry;
  /**
   * A fencing token from the coordinator for scope `spec.name`. Without it the run takes its own
   * (fence-token.ts: shared by the run's processes, newer than any other holder's). Either way every
   * batch checks it in its transaction.
   */
  fenceToken?: bigint;
  /** How often the fence watch reads the latest token (default FENCE_WATCH_INTERVAL_MS). */
  fenceWatchMs?: number;
  /** Called once the token this process writes under is known (the CLI prints it; it is not a secret). */
  onFence?: (fence: { scope: string; token: bigint; source: 'given' | RunFence['source']; runId: number }) => void;
  /** Stops after the batches in flight; progress is kept and the next run resumes. */
  signal?: AbortSignal;
  /** Workers in this process (default `backfill.workers`). */
  workers?: number;
  /** Start a new run from the first key even if one can be resumed or the last one completed. */
  rerun?: boolean;
  /** Serve the HTTP status and control endpoint (default true), see control-server.ts. */
  controlServer?: boolean;
  /** Its port (default: PARITY_STATUS_PORT, else the spec's, else 9404; 0 = any free port). */
  controlPort?: number;
  /** Bearer token `POST /control` requires (default: PARITY_CONTROL_TOKEN, else a random one per process). */
  controlToken?: string;
  /** Called once the endpoint listens, with its URL and token (the CLI shows them to the operator). */
  onControlListening?: (endpoint: { url: string; token: string; tokenSource: 'option' | 'env' | 'generated' }) => void;
  /** A progress bar to draw (the CLI passes one bound to a TTY). */
  progressBar?: ProgressBar;
  /** Rows per claimable range; default chosen from the table size and workers. */
  rangeRows?: number;
  /** Monotonic clock in ms (tests may inject one). */
  now?: () => number;
  /** Controller poll interval. */
  pollMs?: number;
  /** The coordinator's kill-backfill flag (the CLI passes a flags reader); on means pause. */
  killSwitch?: () => Promise<boolean>;
}

export type BackfillOutcome = 'completed' | 'already-complete' | 'stopped';

export interface BackfillResult {
  runId: number;
  outcome: BackfillOutcome;
  /** How this process got its run: planned it, resumed it, or found it already complete. */
  how: 'created' | 'resumed' | 'complete';
  /** Run totals (all processes). */
  rowsPlanned: number;
  rowsDone: number;
  rowsChanged: number;
  batches: number;
  /** This process's share. */
  processRows: number;
  processBatches: number;
  seconds: number;
  controlUrl: string | null;
  /** This process's pace when it finished (duty cycle, time slept, latency guard); null when pacing is off. */
  pace: PaceStatus | null;
  /** The fencing token this process's batches carried (absent when it wrote nothing). */
  fenceToken?: string;
}

export async function runBackfill(options: RunBackfillOptions): Promise<BackfillResult> {
  const { spec } = options;
  const b = spec.backfill;
  const logger = options.logger ?? silentLogger();
  const registry = options.metrics ?? createMetricsRegistry({ defaultMetrics: false });
  const metrics = backfillMetrics(registry);
  const workers = options.workers ?? b.workers;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new ParityError('PARITY_BAD_INPUT', `workers must be an integer from 1 to 64, got ${workers}`, { hint: 'pass --workers N' });
  }
  const now = options.now ?? (() => performance.now());
  const schema = spec.control.schema;
  const started = now();
  const processId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  let fence: { scope: string; token: bigint } | undefined =
    options.fenceToken !== undefined ? { scope: spec.name, token: options.fenceToken } : undefined;
  let fenceSource: 'given' | RunFence['source'] = 'given';
  // Per database: one session per worker, the controller's two, the two probes', one per HTTP command and the fence watch's.
  const databases = new Databases(spec, options.pools ?? {}, b.statementTimeoutMs, workers + 7);
  const paced = b.throttle.pace.enabled;
  metrics.dutyCycle.set(1);
  let controller: Controller | undefined;
  let server: ControlServer | undefined;
  let probe: ProbeRunner | undefined;
  let guardProbe: ProbeRunner | undefined;
  let pacer: Pacer | undefined;
  let fenceWatch: FenceWatch | undefined;
  try {
    // Everything up to openRun only reads (and creates empty control tables): a bad spec stops here.
    const setup = await databases.workerSessions();
    let shape;
    let opened;
    let walCompression: WalCompressionPlan;
    try {
      shape = await describeBatch(spec, setup.source, setup.target);
      await checkStatements(spec, shape, setup.source, setup.target);
      walCompression = await planWalCompression(
        spec.target.kind === 'other-database' ? setup.target : setup.source,
        b.throttle.pace.walCompression,
      );
      if (walCompression.why) logger.warn({ walCompression: walCompression.server }, `backfill write cost: ${walCompression.why}`);
      if (spec.target.kind === 'same-table') {
        const table = `${shape.source.schema}.${shape.source.table}`;
        const findings = await writeCostFindings(
          setup.source,
          shape.source.schema,
          shape.source.table,
          shape.columns.map((c) => c.name),
        );
        const pace = spec.backfill.throttle.pace;
        const budget = pace.enabled && pace.mode === 'wal-rate' ? pace.walBytesPerSecond : undefined;
        // The batches compress their own full-page images: the server's setting matters no more to them.
        if (walCompression.method) findings.walCompression = walCompression.method;
        for (const w of writeCostWarnings(findings, table, budget)) logger.warn({ ...findings }, `backfill write cost: ${w}`);
      }
      await ensureBackfillTables(setup.control, schema);
      await ensureEvidenceTable(setup.control, schema);
      if (fence) {
        const fenceDb = spec.target.kind === 'other-database' ? setup.target : setup.source;
        await ensureFenceTable(fenceDb, schema);
        const latest = await currentToken(fenceDb, schema, fence.scope);
        if (latest !== fence.token) {
          throw new ParityError(
            'PARITY_STALE_FENCE',
            `fencing token ${fence.token} for "${fence.scope}" is stale (latest is ${latest}); nothing was written`,
            {
              hint: 'another holder took the migration lock; re-acquire it and pass its token',
            },
          );
        }
      }
      const userProbe = spec.backfill.throttle.probe;
      if (userProbe) {
        probe = new ProbeRunner(
          () => databases.session('source', `${APPLICATION_NAME}-probe`),
          {
            sql: userProbe.sql,
            intervalMs: userProbe.intervalMs,
            window: userProbe.window,
            timeoutMs: userProbeTimeoutMs(userProbe.maxP99Ms),
            field: 'backfill.throttle.probe.sql',
          },
          logger,
        );
        await probe.start();
      }
      opened = await openRun({
        control: setup.control,
        source: setup.source,
        schema,
        spec,
        shape,
        workers,
        rerun: options.rerun ?? false,
        logger,
        ...(options.rangeRows ? { rangeRows: options.rangeRows } : {}),
      });
      if (!fence && opened.run.state !== 'completed') {
        // No token given: the run takes its own, in the database the batches write (fence-token.ts).
        const taken = await takeRunToken(
          spec.target.kind === 'other-database' ? setup.target : setup.source,
          schema,
          spec.name,
          opened.run.runId,
        );
        fence = { scope: taken.scope, token: taken.token };
        fenceSource = taken.source;
      }
      if (opened.how === 'created' && opened.run.state === 'completed') {
        // An empty table: nothing to walk, and the gate still needs its evidence.
        await recordCompletionEvidence(setup.control, schema, spec.name, {
          runId: opened.run.runId,
          rows: 0,
          rowsChanged: 0,
          batches: 0,
          ranges: 0,
          rowsPlanned: 0,
          upperKey: null,
          seconds: 0,
        });
      }
    } finally {
      setup.release();
    }
    const run = opened.run;
    if (run.state === 'completed') {
      logger.info(
        { runId: run.runId, how: opened.how },
        opened.how === 'complete'
          ? 'backfill already complete; pass --rerun to walk the table again'
          : 'backfill complete: the table is empty',
      );
      const { rowsPlanned, rowsDone, rowsChanged, batches } = await summary(databases, schema, run.runId);
      return {
        runId: run.runId,
        outcome: opened.how === 'complete' ? 'already-complete' : 'completed',
        how: opened.how,
        rowsPlanned,
        rowsDone,
        rowsChanged,
        batches,
        processRows: 0,
        processBatches: 0,
        seconds: (now() - started) / 1000,
        controlUrl: null,
        pace: null,
      };
    }
    logger.info(
      {
        runId: run.runId,
        how: opened.how,
        rowsPlanned: run.rowsPlanned,
        ranges: run.rangesPlanned,
        workers,
        processId,
        fenceToken: fence?.token.toString(),
        fenceTokenSource: fenceSource,
        // Effective: only where the checkpoint commits in the batch's own transaction (batch.ts).
        asynchronousCommit: b.throttle.pace.asynchronousCommit && controlDatabase(spec) === targetDatabase(spec),
        walCompression: walCompression.method ?? `server (${walCompression.server})`,
        pace: paced ? b.throttle.pace.mode : 'off',
      },
      opened.how === 'created' ? 'backfill run started' : 'joining backfill run',
    );
    if (fence) options.onFence?.({ scope: fence.scope, token: fence.token, source: fenceSource, runId: run.runId });
    const fenceToken = fence ? { fenceToken: fence.token.toString() } : {};

    // Paced batches are small (each one's WAL is one small burst); unpaced ones aim at targetBatchSeconds.
    const sizing = paced
      ? { targetSeconds: b.throttle.pace.batchSeconds, targetWalBytes: b.throttle.pace.batchWalBytes }
      : { targetSeconds: b.targetBatchSeconds };
    const sizers: BatchSizer[] = Array.from(
      { length: workers },
      () => new BatchSizer({ initial: b.batchSize, min: b.minBatchSize, max: b.maxBatchSize, ...sizing }),
    );
    // Created only now, so the guard's baseline clock starts with its probe, not with the validation.
    pacer = paced ? new Pacer(b.throttle.pace, metrics, logger, now, workers) : undefined;
    const guardSql = pacer?.probeSql;
    if (pacer && guardSql) {
      const p = pacer;
      // The guard's probe starts with the controller's first poll: that poll opens the baseline, which holds the workers.
      guardProbe = new ProbeRunner(
        () => databases.session('source', `${APPLICATION_NAME}-guard`),
        {
          sql: guardSql,
          intervalMs: b.throttle.pace.latencyGuard.intervalMs,
          window: b.throttle.pace.latencyGuard.window,
          timeoutMs: 1_000,
          field: b.throttle.pace.latencyGuard.sql ? 'backfill.throttle.pace.latencyGuard.sql' : 'the latency guard probe',
          onSample: (ms) => p.addSample(ms),
        },
        logger,
      );
      await guardProbe.start();
    }
    controller = new Controller({
      schema,
      runId: run.runId,
      processId,
      workers,
      limits: {
        maxLagSeconds: b.throttle.maxLagSeconds,
        ...(b.throttle.maxActive !== undefined ? { maxActive: b.throttle.maxActive } : {}),
        ...(b.throttle.abortActive !== undefined ? { abortActive: b.throttle.abortActive } : {}),
        ...(b.throttle.probe ? { probeMaxP99Ms: b.throttle.probe.maxP99Ms } : {}),
      },
      controlSession: () => databases.session('control'),
      monitorSession: () => databases.session('source'),
      signals: new SignalReader({
        slot: spec.cdc.slot,
        ...(b.throttle.httpProbe ? { httpProbe: b.throttle.httpProbe } : {}),
        ...(b.throttle.flagFile ? { flagFile: b.throttle.flagFile } : {}),
        now,
      }),
      ...(probe ? { probe } : {}),
      ...(pacer ? { pacer } : {}),
      // Off with pace.healthSignals: false (only the latency guard moves the pace then).
      ...(b.throttle.pace.healthSignals
        ? {
            health: {
              cpus: b.throttle.pace.databaseCpus ?? availableParallelism(),
              scaleWorkers: b.throttle.pace.scaleWorkers,
              ...(b.throttle.pace.maxServerWalBytesPerSecond !== undefined
                ? { maxServerWalBytesPerSecond: b.throttle.pace.maxServerWalBytesPerSecond }
                : {}),
            },
          }
        : {}),
      ...(options.killSwitch ? { killSwitch: options.killSwitch } : {}),
      metrics,
      logger,
      ...(options.progressBar ? { progressBar: options.progressBar } : {}),
      now,
      ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      onBatchSize: (size) => sizers.forEach((s) => s.pin(size ?? undefined)),
      batchSize: () => sizers[0]?.current ?? b.batchSize,
    });
    if (fence) {
      // Readiness says "lock lost" as soon as a newer holder takes the scope, even while paused.
      const role = spec.target.kind === 'other-database' ? 'target' : 'source';
      const scope = fence.scope;
      fenceWatch = new FenceWatch({
        scope,
        token: fence.token,
        latest: async () => {
          const s = await databases.session(role, `${APPLICATION_NAME}-fence`);
          try {
            return await currentToken(s.client, schema, scope);
          } finally {
            s.release();
          }
        },
        ...(options.fenceWatchMs ? { intervalMs: options.fenceWatchMs } : {}),
        logger,
        gauge: metrics.lockLost,
      }).start();
    }
    if (options.controlServer ?? true) {
      const token = controlToken(options.controlToken);
      server = await startControlServer({
        port: options.controlPort ?? resolveStatusPort('backfill', { specPort: specStatusPort(spec, 'backfill') }).port,
        token: token.token,
        limits: controlLimits(b),
        controller,
        controlSession: () => databases.session('control'),
        registry,
        schema,
        migration: spec.name,
        logger,
        ...(fenceWatch ? { fenceWatch } : {}),
      });
      controller.controlUrl = server.url;
      options.onControlListening?.({ url: server.url, token: token.token, tokenSource: token.source });
    }
    await controller.start();

    const pool = Array.from(
      { length: workers },
      (_, i) =>
        new Worker({
          id: `${processId}/w${i + 1}`,
          index: i,
          databases,
          controller: controller as Controller,
          sizer: sizers[i] as BatchSizer,
          schema,
          migration: spec.name,
          runId: run.runId,
          kind: spec.target.kind,
          shape,
          lockTimeoutMs: b.lockTimeoutMs,
          statementTimeoutMs: b.statementTimeoutMs,
          measureWal: paced,
          asynchronousCommit: b.throttle.pace.asynchronousCommit,
          ...(walCompression.method ? { walCompression: walCompression.method } : {}),
          ...(fence ? { fence, controlIsFenceDatabase: controlDatabase(spec) === targetDatabase(spec) } : {}),
          metrics,
          logger,
          ...(options.signal ? { signal: options.signal } : {}),
        }),
    );
    const settled = await Promise.all(
      pool.map((w) =>
        w.run().then(
          (r): { ok: true; r: WorkerResult } => ({ ok: true, r }),
          (err: unknown): { ok: false; err: unknown } => {
            fenceWatch?.noteWriteError(err);
            // One worker's fatal error stops this process's other workers after their batch.
            controller?.requestStop({ kind: 'error', error: err as ParityError });
            return { ok: false, err };
          },
        ),
      ),
    );
    const failure = settled.find((s): s is { ok: false; err: unknown } => !s.ok);
    if (failure) {
      if (isRunFatal(failure.err)) await markFailed(databases, schema, run.runId, failure.err.message, logger);
      throw failure.err;
    }
    const mine = settled.map((s) => (s as { ok: true; r: WorkerResult }).r);
    const processRows = mine.reduce((n, r) => n + r.rows, 0);
    const processBatches = mine.reduce((n, r) => n + r.batches, 0);
    const final = await summary(databases, schema, run.runId);
    const stop = controller.stopReason;
    const totals = { rowsPlanned: final.rowsPlanned, rowsDone: final.rowsDone, rowsChanged: final.rowsChanged, batches: final.batches };
    const pace = pacer?.status() ?? null;
    if (final.state === 'completed') {
      return {
        runId: run.runId,
        outcome: 'completed',
        how: opened.how,
        ...totals,
        processRows,
        processBatches,
        seconds: (now() - started) / 1000,
        controlUrl: server?.url ?? null,
        pace,
        ...fenceToken,
      };
    }
    if (stop?.kind === 'error') throw stop.error;
    if (final.state === 'aborted') {
      throw new ParityError('PARITY_ABORTED', `backfill run ${run.runId} of "${spec.name}" was ${final.error ?? 'aborted'}`, {
        hint: 'progress is kept: `parity backfill run` resumes from the checkpoints, `--rerun` starts over',
        details: { runId: run.runId, rowsDone: final.rowsDone, rowsPlanned: final.rowsPlanned },
      });
    }
    if (final.state === 'superseded') {
      throw new ParityError(
        'PARITY_ABORTED',
        `backfill run ${run.runId} of "${spec.name}" was superseded by a newer run (--rerun) and stopped`,
        { hint: '`parity backfill status --spec FILE` shows the run that replaced it' },
      );
    }
    if (final.state === 'failed') {
      throw new ParityError(
        'PARITY_ABORTED',
        `backfill run ${run.runId} of "${spec.name}" failed in another process: ${final.error ?? 'unknown error'}`,
        { hint: 'fix the cause, then `parity backfill run` resumes from the checkpoints' },
      );
    }
    return {
      runId: run.runId,
      outcome: 'stopped',
      how: opened.how,
      ...totals,
      processRows,
      processBatches,
      seconds: (now() - started) / 1000,
      controlUrl: server?.url ?? null,
      pace,
      ...fenceToken,
    };
  } finally {
    fenceWatch?.stop();
    probe?.stop();
    guardProbe?.stop();
    await controller?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await databases.close();
  }
}

async function summary(databases: Databases, schema: string, runId: number) {
  const s = await databases.session('control');
  try {
    const run = await readRun(s.client, schema, runId);
    const p = await runProgress(s.client, schema, runId);
    return {
      state: run.state,
      error: run.error,
      rowsPlanned: run.rowsPlanned,
      rowsDone: p.rowsDone,
      rowsChanged: p.rowsChanged,
      batches: p.batches,
    };
  } finally {
    s.release();
  }
}

async function markFailed(databases: Databases, schema: string, runId: number, error: string, logger: Logger): Promise<void> {
  try {
    const s = await databases.session('control');
    try {
      await s.client.query(
        `UPDATE ${controlTables(schema).runs} SET state = 'failed', error = $2, finished_at = clock_timestamp() WHERE run_id = $1 AND state = 'running'`,
        [runId, error],
      );
    } finally {
      s.release();
    }
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'could not record the run failure in the control schema');
  }
}
