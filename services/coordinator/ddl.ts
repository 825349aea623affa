/**
 * Runs planned DDL actions (ddl-statement.ts) against the target database, safely:
 * - every statement runs with `lock_timeout` and `statement_timeout`, so an ALTER blocked by a
 *   long transaction gives up instead of queueing (a queued ACCESS EXCLUSIVE request blocks every
 *   later reader of the table); lock timeouts are retried with exponential backoff and jitter;
 * - transactional statements are protected writes: they run in a transaction that checks the
 *   lease and the fencing token (`Lease.fenced`) and records the action in the same transaction;
 * - CONCURRENTLY statements cannot run in a transaction: the lease and token are checked just
 *   before, and a failed CREATE INDEX CONCURRENTLY's invalid leftover is dropped (it would
 *   otherwise slow every write and make `IF NOT EXISTS` skip the rebuild forever).
 */
import type pg from 'pg';
import { ParityError, fromPgError } from '../core/errors.js';
import { currentToken } from '../core/fence.js';
import { retry, sleep as realSleep } from '../core/retry.js';
import { silentLogger, type Logger } from '../core/log.js';
import { counter, type Registry } from '../core/metrics.js';
import type { Lease } from './lock.js';
import type { DdlAction } from './ddl-statement.js';
import { ddlProgress, ensureDdlTable, recordDdl } from './ddl-record.js';

export interface DdlSettings {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
  /** Retries after a lock timeout (or deadlock); other errors are not retried. */
  retries: number;
}

export interface DdlRunnerDeps {
  /** The target database (where the DDL and the fence table are). */
  db: pg.Pool;
  /** Control schema in the target database. */
  schema: string;
  lease: Lease;
  migration: string;
  actor: string;
  settings: DdlSettings;
  /** Backoff between retries: full jitter over initialDelayMs * 2^attempt, capped at maxDelayMs. */
  retryDelay?: { initialDelayMs: number; maxDelayMs: number };
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  logger?: Logger;
  metrics?: Registry;
  /** Human-readable progress lines (the CLI prints them to stderr). */
  onProgress?: (line: string) => void;
  /**
   * Runs right before each statement not yet applied: inside its fenced transaction (`tx`) for a
   * transactional step, just before it (`null`) otherwise. Throwing refuses the step (the contract
   * step re-judges its gate here).
   */
  guard?: (tx: pg.ClientBase | null) => Promise<void>;
}

export interface DdlActionResult {
  name: string;
  sql: string;
  status: 'applied' | 'skipped';
  attempts: number;
  seconds: number;
  rewrittenFrom?: string;
}

interface Blocker {
  pid: number;
  state: string;
  application: string;
  xactSeconds: number | null;
  mode: string;
}

/** Sessions holding a lock on `table` now: who to look at after a lock timeout. */
async function blockers(db: Pick<pg.ClientBase, 'query'>, table: string | undefined): Promise<Blocker[]> {
  if (!table) return [];
  try {
    const { rows } = await db.query(
      `SELECT a.pid, coalesce(a.state, '') AS state, coalesce(a.application_name, '') AS application,
              extract(epoch FROM clock_timestamp() - a.xact_start)::int AS xact_seconds, l.mode
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.granted AND a.pid <> pg_backend_pid()
        ORDER BY a.xact_start NULLS LAST LIMIT 5`,
      [table],
    );
    return (rows as { pid: number; state: string; application: string; xact_seconds: number | null; mode: string }[]).map((r) => ({
      pid: r.pid,
      state: r.state,
      application: r.application,
      xactSeconds: r.xact_seconds,
      mode: r.mode,
    }));
  } catch {
    return [];
  }
}

/** Maps a PostgreSQL error of a DDL statement to a ParityError naming the step. */
function ddlError(err: unknown, action: DdlAction): ParityError {
  const e = fromPgError(err, `DDL step "${action.name}"`);
  if (e.code === 'PARITY_INTERNAL' || e.code === 'PARITY_BAD_INPUT') {
    return new ParityError('PARITY_DDL_FAILED', e.message, {
      cause: err,
      hint: 'fix the statement or the data it trips over, then run the command again (applied steps are skipped)',
      details: { step: action.name, sqlstate: (err as { code?: string }).code },
    });
  }
  return e;
}

/** Drops an invalid index named `index.name` on `index.table`, if there is one; returns its name. */
async function dropInvalidIndex(client: pg.ClientBase, index: { name: string; table: string }): Promise<string | null> {
  const { rows } = await client.query(
    `SELECT i.indexrelid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE c.relname = $1 AND i.indrelid = to_regclass($2) AND NOT i.indisvalid`,
    [index.name, index.table],
  );
  const name = (rows[0] as { name: string } | undefined)?.name;
  if (!name) return null;
  // The regclass text is already quoted (and schema-qualified when needed).
  await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
  return name;
}

async function indexIsValid(client: pg.ClientBase, index: { name: string; table: string }): Promise<boolean | null> {
  const { rows } = await client.query(
    `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = $1 AND i.indrelid = to_regclass($2)`,
    [index.name, index.table],
  );
  const row = rows[0] as { indisvalid: boolean } | undefined;
  return row ? row.indisvalid : null;
}

/**
 * Runs the actions of one phase in order, skipping those already applied with the same SQL.
 * Stops at the first failure (throwing it); what ran before stays applied and recorded.
 */
export async function runDdl(deps: DdlRunnerDeps, actions: readonly DdlAction[]): Promise<DdlActionResult[]> {
  const logger = deps.logger ?? silentLogger();
  const progress = deps.onProgress ?? (() => undefined);
  const sleep = deps.sleep ?? realSleep;
  const delay = deps.retryDelay ?? { initialDelayMs: 200, maxDelayMs: 5_000 };
  const { lockTimeoutMs, statementTimeoutMs, retries } = deps.settings;
  const metrics = deps.metrics
    ? {
        actions: counter(deps.metrics, 'parity_ddl_actions_total', 'DDL actions by result (applied, skipped, failed)', ['result']),
        lockTimeouts: counter(
          deps.metrics,
          'parity_ddl_lock_timeouts_total',
          'DDL statements that gave up waiting for a lock (lock_timeout)',
        ),
        invalidDropped: counter(
          deps.metrics,
          'parity_ddl_invalid_indexes_dropped_total',
          'Invalid indexes left by failed concurrent builds and dropped',
        ),
      }
    : undefined;
  const results: DdlActionResult[] = [];
  if (actions.length === 0) return results;
  await ensureDdlTable(deps.db, deps.schema);
  const phase = actions[0]?.phase ?? 'expand';
  const { applied } = await ddlProgress(deps.db, deps.schema, deps.migration, phase, actions);
  const done = new Set(applied);

  for (const action of actions) {
    if (done.has(action.name)) {
      results.push({ name: action.name, sql: action.sql, status: 'skipped', attempts: 0, seconds: 0 });
      metrics?.actions.inc({ result: 'skipped' });
      progress(`  skip  ${action.name} (already applied)`);
      continue;
    }
    const started = performance.now();
    let attempts = 0;
    const retryOptions = {
      retries,
      initialDelayMs: delay.initialDelayMs,
      maxDelayMs: delay.maxDelayMs,
      sleep,
      ...(deps.random ? { random: deps.random } : {}),
      onRetry: (err: unknown, attempt: number, waitMs: number) => {
        if ((err as ParityError).code === 'PARITY_LOCK_TIMEOUT') metrics?.lockTimeouts.inc();
        logger.warn({ step: action.name, attempt, waitMs, code: (err as ParityError).code }, 'DDL step will be retried');
        progress(`  wait  ${action.name}: ${(err as ParityError).code} (attempt ${attempt}/${retries + 1}); retrying in ${waitMs} ms`);
      },
    };
    progress(`  run   ${action.name}: ${action.sql}`);
    try {
      if (action.transactional) {
        await retry(async () => {
          attempts++;
          await deps.lease.fenced(deps.db, async (client) => {
            await client.query(`SET LOCAL lock_timeout = ${Math.round(lockTimeoutMs)}`);
            await client.query(`SET LOCAL statement_timeout = ${Math.round(statementTimeoutMs)}`);
            await deps.guard?.(client);
            try {
              await client.query(action.sql);
            } catch (err) {
              throw ddlError(err, action);
            }
            await recordDdl(client, deps.schema, {
              migration: deps.migration,
              action,
              status: 'applied',
              token: deps.lease.token,
              actor: deps.actor,
              attempts,
            });
          });
        }, retryOptions);
      } else {
        await runOutsideTransaction(deps, action, retryOptions, () => attempts++, metrics?.invalidDropped, progress);
        await deps.lease.fenced(deps.db, (c) =>
          recordDdl(c, deps.schema, {
            migration: deps.migration,
            action,
            status: 'applied',
            token: deps.lease.token,
            actor: deps.actor,
            attempts,
          }),
        );
      }
    } catch (err) {
      metrics?.actions.inc({ result: 'failed' });
      const error = err instanceof ParityError ? err : ddlError(err, action);
      let final = error;
      if (error.code === 'PARITY_LOCK_TIMEOUT') {
        if (metrics) metrics.lockTimeouts.inc();
        const held = await blockers(deps.db, action.table);
        const who = held
          .map(
            (b) =>
              `pid ${b.pid} (${b.state || 'unknown'}, ${b.mode}, transaction open ${b.xactSeconds ?? '?'} s${b.application ? `, ${b.application}` : ''})`,
          )
          .join('; ');
        final = new ParityError(
          'PARITY_LOCK_TIMEOUT',
          `DDL step "${action.name}" gave up after ${attempts} attempt(s): it could not get its lock within lock_timeout ${lockTimeoutMs} ms${who ? `; holding locks on ${action.table}: ${who}` : ''}`,
          {
            hint: 'a long transaction holds a lock on the table; let it finish (or end it), then run the command again; nothing was left half-applied',
            cause: err,
            details: { step: action.name, attempts, blockers: held },
          },
        );
      }
      await recordDdl(deps.db, deps.schema, {
        migration: deps.migration,
        action,
        status: 'failed',
        token: deps.lease.token,
        actor: deps.actor,
        attempts,
        error: final.message,
      }).catch(() => undefined);
      throw final;
    }
    const seconds = (performance.now() - started) / 1000;
    metrics?.actions.inc({ result: 'applied' });
    progress(`  done  ${action.name} (${seconds.toFixed(2)} s, ${attempts} attempt${attempts === 1 ? '' : 's'})`);
    results.push({
      name: action.name,
      sql: action.sql,
      status: 'applied',
      attempts,
      seconds,
      ...(action.rewrittenFrom ? { rewrittenFrom: action.rewrittenFrom } : {}),
    });
  }
  return results;
}

async function runOutsideTransaction(
  deps: DdlRunnerDeps,
  action: DdlAction,
  retryOptions: Parameters<typeof retry>[1],
  countAttempt: () => void,
  invalidDropped: { inc(): void } | undefined,
  progress: (line: string) => void,
): Promise<void> {
  const client = await deps.db.connect();
  let broken: Error | undefined;
  const onError = (e: Error): void => {
    broken = e;
  };
  client.on('error', onError);
  try {
    await client.query(`SET lock_timeout = ${Math.round(deps.settings.lockTimeoutMs)}`);
    await client.query(`SET statement_timeout = ${Math.round(deps.settings.statementTimeoutMs)}`);
    await retry(async () => {
      countAttempt();
      // No transaction can hold the fence row across a concurrent build: check lease and token now.
      deps.lease.assertHeld();
      const latest = await currentToken(client, deps.schema, deps.lease.scope);
      if (latest !== deps.lease.token) {
        throw new ParityError(
          'PARITY_STALE_FENCE',
          `fencing token ${deps.lease.token} for "${deps.lease.scope}" is stale (latest is ${latest}); DDL step "${action.name}" was not run`,
          { hint: 'another holder took the migration lock' },
        );
      }
      await deps.guard?.(null);
      if (action.index) {
        const leftover = await dropInvalidIndex(client, action.index);
        if (leftover) {
          invalidDropped?.inc();
          progress(`  drop  invalid index ${leftover} left by an earlier failed build`);
        }
      }
      try {
        await client.query(action.sql);
      } catch (err) {
        const error = ddlError(err, action);
        if (action.index) {
          const dropped = await dropInvalidIndex(client, action.index).catch(() => null);
          if (dropped) {
            invalidDropped?.inc();
            progress(`  drop  invalid index ${dropped} left by the failed build`);
            throw new ParityError(error.code, `${error.message}; the invalid index ${dropped} it left was dropped`, {
              cause: err,
              retriable: error.retriable,
              ...(error.hint ? { hint: error.hint } : {}),
              details: error.details,
            });
          }
        }
        throw error;
      }
      if (action.index && (await indexIsValid(client, action.index)) === false) {
        await dropInvalidIndex(client, action.index);
        throw new ParityError(
          'PARITY_DDL_FAILED',
          `DDL step "${action.name}": the index ${action.index.name} exists but is invalid; it was dropped`,
          { hint: 'run the command again to rebuild it' },
        );
      }
    }, retryOptions);
  } catch (err) {
    broken = (err as { code?: string }).code === 'PARITY_CONNECTION' ? (err as Error) : undefined;
    throw err;
  } finally {
    await client.query('RESET lock_timeout').catch((e: Error) => (broken = e));
    await client.query('RESET statement_timeout').catch((e: Error) => (broken = e));
    client.off('error', onError);
    client.release(broken);
  }
}
