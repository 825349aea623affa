/**
 * A worker: claims a range, walks it batch by batch (asking the controller before each batch), and
 * claims the next until every range of the run is done. Retriable failures (lock timeouts, deadlocks,
 * lost connections) are retried with exponential backoff and full jitter; a lost connection is
 * replaced first. A worker with nothing to claim while other live workers still hold ranges waits and
 * tries again, so it takes over the ranges of a worker that dies.
 */
import type { Logger } from '../core/log.js';
import { isParityError, type ParityError } from '../core/errors.js';
import { retry, sleep } from '../core/retry.js';
import { runBatch, type BatchContext, type BatchOutcome, type TargetKind } from './batch.js';
import type { BatchSizer } from './batch-sizer.js';
import { completeRunIfDone, type CompletedRun } from './completion.js';
import type { Controller } from './controller.js';
import type { Databases, WorkerSessions } from './databases.js';
import type { BackfillMetrics } from './metrics.js';
import { claimRange, rangesLeft, reattachOwner, type ClaimedRange } from './range-claims.js';
import type { BatchShape } from './batch-sql.js';

export interface WorkerOptions {
  id: string;
  /** This worker's index in its process (0-based): workers at or above the controller's count in service wait before claiming. */
  index?: number;
  databases: Databases;
  controller: Controller;
  sizer: BatchSizer;
  schema: string;
  migration: string;
  runId: number;
  kind: TargetKind;
  shape: BatchShape;
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /** Measure each batch's WAL (paced runs size batches by it). */
  measureWal?: boolean;
  /** `pace.asynchronousCommit` (see batch.ts: only where the checkpoint commits in the batch's transaction). */
  asynchronousCommit?: boolean;
  /** The batches' `wal_compression` (wal-compression.ts); absent: the server's. */
  walCompression?: 'pglz' | 'lz4' | 'zstd';
  fence?: { scope: string; token: bigint };
  /** The control database is the one holding the fence table (the database the batches write). */
  controlIsFenceDatabase?: boolean;
  metrics: BackfillMetrics;
  logger: Logger;
  signal?: AbortSignal;
  /** How long an idle worker waits before trying to claim again. */
  idlePollMs?: number;
  retries?: { retries: number; initialDelayMs: number; maxDelayMs: number };
}

export interface WorkerResult {
  rows: number;
  changed: number;
  batches: number;
  ranges: number;
  /** Set when this worker's range completion completed the run. */
  completed?: CompletedRun;
}

const RETRY_DEFAULTS = { retries: 10, initialDelayMs: 100, maxDelayMs: 5_000 };

export class Worker {
  private sessions: WorkerSessions | undefined;
  private readonly result: WorkerResult = { rows: 0, changed: 0, batches: 0, ranges: 0 };

  constructor(private readonly o: WorkerOptions) {}

  private async connect(): Promise<WorkerSessions> {
    if (this.sessions) return this.sessions;
    this.sessions = await this.o.databases.workerSessions();
    return this.sessions;
  }

  private drop(): void {
    this.sessions?.release(true);
    this.sessions = undefined;
  }

  async run(): Promise<WorkerResult> {
    try {
      await this.loop();
      return this.result;
    } finally {
      this.sessions?.release();
      this.sessions = undefined;
    }
  }

  private async withRetry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const settings = this.o.retries ?? RETRY_DEFAULTS;
    return retry(
      async (attempt) => {
        if (attempt > 0 && !this.sessions) {
          await this.connect();
          const owned = await reattachOwner((this.sessions as unknown as WorkerSessions).control, this.o.schema, this.o.runId, this.o.id);
          this.o.logger.info({ worker: this.o.id, owned }, 'worker reconnected');
        }
        return fn();
      },
      {
        ...settings,
        onRetry: (err, attempt, delayMs) => {
          const code = isParityError(err) ? err.code : 'PARITY_INTERNAL';
          const cause =
            code === 'PARITY_LOCK_TIMEOUT'
              ? 'lock_timeout'
              : code === 'PARITY_CONNECTION'
                ? 'connection'
                : code === 'PARITY_CONFLICT'
                  ? 'conflict'
                  : 'other';
          this.o.metrics.batchRetries.inc({ cause });
          if (code === 'PARITY_CONNECTION') this.drop();
          this.o.logger.warn(
            { worker: this.o.id, attempt, delayMs, code, err: (err as Error).message },
            `${what} failed; retrying with backoff`,
          );
        },
      },
    );
  }

  private async loop(): Promise<void> {
    const idle = this.o.idlePollMs ?? 1_000;
    for (;;) {
      // Out of service (health controller, `set workers`): wait here, holding no range.
      if ((await this.o.controller.gate(this.o.signal, this.o.index)) === 'stop') return;
      const range = await this.withRetry('claiming a range', async () =>
        claimRange((await this.connect()).control, this.o.schema, this.o.runId, this.o.id),
      );
      if (!range) {
        const left = await this.withRetry('counting ranges', async () =>
          rangesLeft((await this.connect()).control, this.o.schema, this.o.runId),
        );
        if (left === 0) {
          await this.tryComplete();
          return;
        }
        // Live workers elsewhere hold the rest; wait, and take over any whose owner dies.
        await sleepUnless(idle, this.o.signal);
        continue;
      }
      this.o.logger.debug({ worker: this.o.id, range: range.rangeNo, checkpoint: range.checkpoint, claims: range.claims }, 'claimed range');
      const finished = await this.walk(range);
      if (finished) {
        this.result.ranges++;
        await this.tryComplete();
      }
    }
  }

  private async tryComplete(): Promise<void> {
    const completed = await this.withRetry('completing the run', async () =>
      completeRunIfDone((await this.connect()).control, {
        schema: this.o.schema,
        migration: this.o.migration,
        runId: this.o.runId,
        // The fence table is in the database being written; the completion can check it only there.
        ...(this.o.fence && this.o.controlIsFenceDatabase ? { fence: this.o.fence } : {}),
      }),
    );
    if (completed) {
      this.result.completed = completed;
      this.o.logger.info({ ...completed }, 'backfill run completed; evidence recorded');
    }
  }

  /** Walks a claimed range to its end; false when it stopped early (stop request, range lost). */
  private async walk(range: ClaimedRange): Promise<boolean> {
    const ctx: BatchContext = {
      schema: this.o.schema,
      runId: this.o.runId,
      rangeNo: range.rangeNo,
      worker: this.o.id,
      kind: this.o.kind,
      shape: this.o.shape,
      lockTimeoutMs: this.o.lockTimeoutMs,
      statementTimeoutMs: this.o.statementTimeoutMs,
      ...(this.o.fence ? { fence: this.o.fence } : {}),
      ...(this.o.measureWal ? { measureWal: true } : {}),
      ...(this.o.asynchronousCommit ? { asynchronousCommit: true } : {}),
      ...(this.o.walCompression ? { walCompression: this.o.walCompression } : {}),
    };
    for (;;) {
      if ((await this.o.controller.gate(this.o.signal)) === 'stop') return false;
      const size = this.o.sizer.current;
      const outcome: BatchOutcome = await this.withRetry(`batch of range ${range.rangeNo}`, async () =>
        runBatch(ctx, await this.connect(), size),
      );
      if (outcome.lost) {
        this.o.logger.warn(
          { worker: this.o.id, range: range.rangeNo },
          'range was taken over by another worker after this one lost its session; moving on',
        );
        return false;
      }
      const m = this.o.metrics;
      if (outcome.rows > 0) {
        m.rows.inc(outcome.rows);
        m.rowsChanged.inc(outcome.changed);
        m.batches.inc();
        m.batchDuration.observe(outcome.seconds);
        m.checkpointTime.set(Date.now() / 1000);
        this.result.rows += outcome.rows;
        this.result.changed += outcome.changed;
        this.result.batches++;
      }
      this.o.sizer.observe(outcome.rows, outcome.seconds, size, outcome.walBytes);
      if (outcome.done) return true;
      await this.o.controller.pace(outcome.seconds, outcome.walBytes, this.o.signal, outcome.changed);
    }
  }
}

function sleepUnless(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return sleep(ms);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Errors that stop every process of the run: retrying elsewhere would fail the same way. */
export function isRunFatal(err: unknown): err is ParityError {
  return isParityError(err) && (err.code === 'PARITY_BAD_INPUT' || err.code === 'PARITY_STATEMENT_TIMEOUT');
}
