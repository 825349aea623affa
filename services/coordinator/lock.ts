/**
 * The migration lock: a Redis lease plus a fencing token from the target database.
 *
 * The lease (SET NX PX with a random owner id) decides who should work; the token decides whose
 * writes the database accepts. A lease is only a hint: a holder paused by GC, a page fault or a
 * SIGSTOP can wake up after its lease ended and someone else took over. Its writes are then
 * rejected by `assertFence` in the write's own transaction, because a newer token exists.
 *
 * Liveness rules a holder follows, all judged by its own monotonic clock (never wall time):
 * - renew every `renewEveryMs` (at most a third of the TTL, enforced by the spec schema) with a Lua
 *   script that extends the lease only for its owner;
 * - a lease renewed by a request sent at `t` is certainly held until `t + ttl` (Redis set the new
 *   expiry after receiving it), so the holder counts from the send time;
 * - if renewals keep failing, it stops at `t + ttl - driftMarginMs`, before the lease could have
 *   expired on the server, and fires `signal` / `onLost`.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { ParityError } from '../core/errors.js';
import { assertFence, issueToken } from '../core/fence.js';
import { backoffDelay, sleep as realSleep } from '../core/retry.js';
import { silentLogger, type Logger } from '../core/log.js';
import { counter, gauge, type Registry } from '../core/metrics.js';
import { coordinatorScripts } from './scripts.js';
import { coordinatorKeys, lockScope } from './keys.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Milliseconds from a monotonic source; `performance.now()` unless a test injects its own. */
export type MonotonicClock = () => number;

export const monotonicClock: MonotonicClock = () => performance.now();

export interface LockSettings {
  ttlMs: number;
  /** At most ttlMs / 3. */
  renewEveryMs: number;
  /** The holder stops this long before its lease could have expired, for clock drift. */
  driftMarginMs: number;
}

export interface LockDeps {
  redis: Redis;
  /** The database holding the fence table: the target database, where protected writes go. */
  fenceDb: Queryable;
  /** Control schema in that database (spec.control.schema). */
  fenceSchema: string;
  migration: string;
  /** Scope the lock to one cohort of the migration. */
  cohort?: string;
  settings: LockSettings;
  /** Redis key prefix (default "parity"). */
  keyPrefix?: string;
  clock?: MonotonicClock;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
  metrics?: Registry;
  /** Owner id written into the lease; random by default. Two holders must never share one. */
  owner?: string;
}

export interface AcquireOptions {
  /** Give up after trying this long (default: twice the TTL, so a crashed holder's lease can run out). */
  waitMs?: number;
  /** Backoff between attempts: full jitter over initialDelayMs * 2^attempt, capped at maxDelayMs. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

interface LockMetrics {
  acquisitions: ReturnType<typeof counter>;
  renewals: ReturnType<typeof counter>;
  losses: ReturnType<typeof counter>;
  held: ReturnType<typeof gauge>;
}

function lockMetrics(registry: Registry | undefined): LockMetrics | undefined {
  if (!registry) return undefined;
  return {
    acquisitions: counter(registry, 'parity_lock_acquisitions_total', 'Lock acquisition attempts by result (acquired, busy, error)', [
      'result',
    ]),
    renewals: counter(registry, 'parity_lock_renewals_total', 'Lock renewals by result (ok, error)', ['result']),
    losses: counter(registry, 'parity_lock_losses_total', 'Leases lost by reason (renewal_failed, expired, taken)', ['reason']),
    held: gauge(registry, 'parity_lock_held', 'Leases this process holds now'),
  };
}

/** Rejects after `ms` so a renewal to an unreachable Redis cannot hang past the holder's deadline. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ParityError('PARITY_REDIS', `${what} got no answer within ${Math.round(ms)} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type LeaseState = 'held' | 'lost' | 'released';

/**
 * A held lock. Protected writes go through `fenced` (or call `assertHeld` and `assertFence`
 * themselves inside their transaction). Once lost, a lease never comes back: acquire a new one.
 */
export class Lease {
  readonly scope: string;
  readonly key: string;
  readonly owner: string;
  readonly token: bigint;
  private state: LeaseState = 'held';
  /** Send time of the last acknowledged SET/renewal: the lease surely lives until this + ttl. */
  private renewedAt: number;
  private lostReason: ParityError | undefined;
  private readonly controller = new AbortController();
  private renewTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private renewing = false;
  private readonly listeners: ((err: ParityError) => void)[] = [];

  constructor(
    private readonly deps: Required<Pick<LockDeps, 'redis' | 'fenceSchema' | 'settings' | 'clock' | 'logger'>> & {
      metrics: LockMetrics | undefined;
    },
    init: { scope: string; key: string; owner: string; token: bigint; acquiredAt: number },
  ) {
    this.scope = init.scope;
    this.key = init.key;
    this.owner = init.owner;
    this.token = init.token;
    this.renewedAt = init.acquiredAt;
    deps.metrics?.held.inc();
    this.scheduleRenewal(Math.max(0, this.renewedAt + deps.settings.renewEveryMs - deps.clock()));
    this.armWatchdog();
  }

  /** Aborted when the lease is lost; `signal.reason` is the ParityError saying why. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** True while this holder may still write. */
  get held(): boolean {
    return this.state === 'held' && this.deps.clock() < this.validUntil;
  }

  /** The holder's own deadline: the last acknowledged renewal's send time + TTL - drift margin. */
  get validUntil(): number {
    return this.renewedAt + this.deps.settings.ttlMs - this.deps.settings.driftMarginMs;
  }

  /** Registers a callback fired once when the lease is lost (at once if it already is). */
  onLost(listener: (err: ParityError) => void): void {
    if (this.state === 'lost' && this.lostReason) listener(this.lostReason);
    else this.listeners.push(listener);
  }

  /**
   * Throws unless the lease is held by the clock: PARITY_LOCK_EXPIRED when the whole TTL has
   * passed since the last renewal (e.g. the process was paused), PARITY_LOCK_LOST otherwise.
   */
  assertHeld(): void {
    if (this.state === 'held') this.checkClock();
    if (this.state === 'released') {
      throw new ParityError('PARITY_LOCK_LOST', `the lock on "${this.scope}" was released by this holder`, {
        hint: 'acquire the lock again before writing',
      });
    }
    if (this.state === 'lost') throw this.lostReason as ParityError;
  }

  /**
   * Runs `fn` in a transaction that first checks this lease (by the clock) and this token (in the
   * database, `assertFence`), and checks the lease again before COMMIT. A stale holder's
   * transaction rolls back with PARITY_STALE_FENCE. `idle_in_transaction_session_timeout` is set
   * to the TTL so a holder frozen inside the transaction, while it keeps the fence row locked,
   * cannot stop the next holder from getting its token for longer than that.
   */
  async fenced<T>(db: pg.Pool | pg.ClientBase, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const pooled = db instanceof pg.Pool ? await db.connect() : undefined;
    const client: pg.ClientBase = pooled ?? (db as pg.ClientBase);
    let broken: Error | undefined;
    // A session ended by the server (e.g. idle_in_transaction_session_timeout while this process
    // was frozen) also emits 'error' on the client; the failing query reports it, so note it only.
    const onError = (e: Error): void => {
      broken = e;
    };
    if (pooled) pooled.on('error', onError);
    try {
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.round(this.deps.settings.ttlMs))}`);
        this.assertHeld();
        await assertFence(client, this.deps.fenceSchema, this.scope, this.token);
        const result = await fn(client);
        this.assertHeld();
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw err;
      }
    } finally {
      if (pooled) {
        pooled.off('error', onError);
        pooled.release(broken);
      }
    }
  }

  /** Extends the lease now (the renewal loop calls this; exposed for holders that want to). */
  async renew(): Promise<void> {
    this.assertHeld();
    const sentAt = this.deps.clock();
    const scripts = coordinatorScripts(this.deps.redis);
    const timeoutMs = Math.max(50, this.deps.settings.renewEveryMs / 2);
    let reply: number;
    try {
      reply = await withTimeout(scripts.renew(this.key, this.owner, this.deps.settings.ttlMs), timeoutMs, 'lock renewal');
    } catch (err) {
      this.deps.metrics?.renewals.inc({ result: 'error' });
      throw err instanceof ParityError
        ? err
        : new ParityError('PARITY_REDIS', `lock renewal failed: ${(err as Error).message}`, { cause: err });
    }
    if (this.state !== 'held') this.assertHeld();
    if (reply === 1) {
      this.deps.metrics?.renewals.inc({ result: 'ok' });
      // A reply arriving after the deadline proves nothing about the gap in between.
      if (sentAt > this.renewedAt && this.deps.clock() < this.validUntil) {
        this.renewedAt = sentAt;
        this.armWatchdog();
      }
      this.assertHeld();
      return;
    }
    if (reply === 0) {
      this.lose(
        'expired',
        new ParityError('PARITY_LOCK_EXPIRED', `the lease on "${this.scope}" expired in Redis before it was renewed`, {
          hint: 'this holder must stop; acquire the lock again',
        }),
      );
    } else {
      this.lose(
        'taken',
        new ParityError('PARITY_LOCK_LOST', `another holder owns the lock on "${this.scope}" now`, {
          hint: 'this holder must stop; its writes are rejected by the fencing token',
        }),
      );
    }
    this.assertHeld();
  }

  /** Stops renewing and deletes the lease if this holder still owns it. Never throws. */
  async release(): Promise<boolean> {
    const wasHeld = this.state === 'held';
    this.stopTimers();
    if (this.state === 'held') {
      this.state = 'released';
      this.deps.metrics?.held.dec();
    }
    if (!wasHeld) return false;
    try {
      const released =
        (await withTimeout(
          coordinatorScripts(this.deps.redis).release(this.key, this.owner),
          Math.max(100, this.deps.settings.ttlMs / 3),
          'lock release',
        )) === 1;
      this.deps.logger.info({ scope: this.scope, token: this.token.toString(), released }, 'lock released');
      return released;
    } catch (err) {
      // The lease runs out on its own; nothing is unsafe, the next holder just waits for the TTL.
      this.deps.logger.warn({ scope: this.scope, err: (err as Error).message }, 'could not delete the lease; it will expire after its TTL');
      return false;
    }
  }

  private checkClock(): void {
    const now = this.deps.clock();
    if (now >= this.renewedAt + this.deps.settings.ttlMs) {
      this.lose(
        'expired',
        new ParityError(
          'PARITY_LOCK_EXPIRED',
          `the lease on "${this.scope}" expired: ${Math.round(now - this.renewedAt)} ms since its last renewal, TTL ${this.deps.settings.ttlMs} ms (was the process paused?)`,
          {
            hint: 'this holder must stop; acquire the lock again',
          },
        ),
      );
    } else if (now >= this.validUntil) {
      this.lose(
        'renewal_failed',
        new ParityError(
          'PARITY_LOCK_LOST',
          `could not renew the lease on "${this.scope}" for ${Math.round(now - this.renewedAt)} ms; stopped ${this.deps.settings.driftMarginMs} ms before it could expire`,
          {
            hint: 'check Redis; the work resumes when a holder acquires the lock again',
          },
        ),
      );
    }
  }

  private lose(reason: 'renewal_failed' | 'expired' | 'taken', err: ParityError): void {
    if (this.state !== 'held') return;
    this.state = 'lost';
    this.lostReason = err;
    this.stopTimers();
    this.deps.metrics?.held.dec();
    this.deps.metrics?.losses.inc({ reason });
    this.deps.logger.error({ scope: this.scope, token: this.token.toString(), code: err.code }, err.message);
    this.controller.abort(err);
    for (const listener of this.listeners.splice(0)) {
      try {
        listener(err);
      } catch (listenerErr) {
        this.deps.logger.error({ err: (listenerErr as Error).message }, 'onLost listener threw');
      }
    }
  }

  private stopTimers(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.watchdog);
    this.renewTimer = undefined;
    this.watchdog = undefined;
  }

  private scheduleRenewal(delayMs: number): void {
    clearTimeout(this.renewTimer);
    if (this.state !== 'held') return;
    this.renewTimer = setTimeout(() => void this.renewTick(), delayMs);
    this.renewTimer.unref();
  }

  private async renewTick(): Promise<void> {
    if (this.state !== 'held' || this.renewing) return;
    this.renewing = true;
    try {
      await this.renew();
      this.scheduleRenewal(this.deps.settings.renewEveryMs);
    } catch (err) {
      if (this.state !== 'held') return;
      // Redis unreachable: try again soon; the watchdog stops the holder if it never comes back.
      this.deps.logger.warn({ scope: this.scope, err: (err as Error).message }, 'lock renewal failed; retrying');
      this.scheduleRenewal(Math.max(10, this.deps.settings.renewEveryMs / 2));
    } finally {
      this.renewing = false;
    }
  }

  private armWatchdog(): void {
    clearTimeout(this.watchdog);
    if (this.state !== 'held') return;
    const delay = Math.max(0, this.validUntil - this.deps.clock());
    this.watchdog = setTimeout(() => {
      if (this.state !== 'held') return;
      this.checkClock();
      // An injected clock may lag the timer; look again until the deadline really passed.
      if (this.state === 'held') this.armWatchdog();
    }, Math.ceil(delay));
    this.watchdog.unref();
  }
}

/**
 * Acquires the lock for a migration (or one cohort of it): SET NX PX with a random owner id, then
 * a new fencing token from the target database. Retries with exponential backoff and full jitter,
 * so contenders released by a crashed holder's expiry do not stampede. Throws
 * PARITY_LOCK_NOT_ACQUIRED (naming the current owner) when `waitMs` runs out.
 */
/**
 * Throws PARITY_BAD_INPUT unless renewals come at most every TTL/3 and the drift margin leaves
 * room for at least one renewal before the holder's own deadline.
 */
export function validateLockSettings(s: LockSettings): void {
  if (!(s.ttlMs > 0 && s.renewEveryMs > 0 && s.driftMarginMs >= 0)) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `lock settings must be positive (ttlMs ${s.ttlMs}, renewEveryMs ${s.renewEveryMs}, driftMarginMs ${s.driftMarginMs})`,
    );
  }
  if (s.renewEveryMs * 3 > s.ttlMs) {
    throw new ParityError('PARITY_BAD_INPUT', `lock.renewEveryMs (${s.renewEveryMs}) must be at most a third of lock.ttlMs (${s.ttlMs})`, {
      hint: `set lock.renewEveryMs to ${Math.floor(s.ttlMs / 3)} or less`,
    });
  }
  if (s.driftMarginMs >= s.ttlMs - s.renewEveryMs) {
    throw new ParityError(
      'PARITY_BAD_INPUT',
      `lock.driftMarginMs (${s.driftMarginMs}) must be below lock.ttlMs - lock.renewEveryMs (${s.ttlMs - s.renewEveryMs}), or the holder would give up before its first renewal`,
      {
        hint: `set lock.driftMarginMs to at most ${Math.max(0, s.ttlMs - s.renewEveryMs - 1)}, or raise lock.ttlMs`,
      },
    );
  }
}

export async function acquireLock(deps: LockDeps, options: AcquireOptions = {}): Promise<Lease> {
  validateLockSettings(deps.settings);
  const clock = deps.clock ?? monotonicClock;
  const sleep = deps.sleep ?? realSleep;
  const random = deps.random ?? Math.random;
  const logger = deps.logger ?? silentLogger();
  const metrics = lockMetrics(deps.metrics);
  const { ttlMs } = deps.settings;
  const waitMs = options.waitMs ?? 2 * ttlMs;
  const initialDelayMs = options.initialDelayMs ?? Math.max(10, Math.min(100, deps.settings.renewEveryMs / 4));
  const maxDelayMs = options.maxDelayMs ?? Math.max(initialDelayMs, Math.min(2_000, ttlMs / 2));
  const key = coordinatorKeys(deps.migration, deps.keyPrefix).lock(deps.cohort);
  const scope = lockScope(deps.migration, deps.cohort);
  const owner = deps.owner ?? `${hostname()}:${process.pid}:${randomUUID()}`;
  const started = clock();
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    const sentAt = clock();
    let acquired = false;
    try {
      acquired = (await deps.redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK';
      metrics?.acquisitions.inc({ result: acquired ? 'acquired' : 'busy' });
    } catch (err) {
      metrics?.acquisitions.inc({ result: 'error' });
      lastError = err;
      logger.warn({ scope, err: (err as Error).message }, 'lock acquisition: Redis error');
    }
    if (acquired) {
      let token: bigint;
      try {
        token = await issueToken(deps.fenceDb, deps.fenceSchema, scope, owner);
      } catch (err) {
        await coordinatorScripts(deps.redis)
          .release(key, owner)
          .catch(() => undefined);
        throw new ParityError('PARITY_CONNECTION', `lock on "${scope}": could not issue a fencing token: ${(err as Error).message}`, {
          cause: err,
          hint: 'check the target database; the lease was given back',
        });
      }
      const lease = new Lease(
        { redis: deps.redis, fenceSchema: deps.fenceSchema, settings: deps.settings, clock, logger, metrics },
        { scope, key, owner, token, acquiredAt: sentAt },
      );
      if (lease.held) {
        logger.info({ scope, token: token.toString(), attempts: attempt + 1 }, 'lock acquired');
        return lease;
      }
      // Issuing the token took so long that the lease is already unsafe to use: start over.
      await lease.release();
    }
    const elapsed = clock() - started;
    if (elapsed >= waitMs) {
      const holder = await deps.redis.get(key).catch(() => null);
      const pttl = await deps.redis.pttl(key).catch(() => -2);
      throw new ParityError(
        'PARITY_LOCK_NOT_ACQUIRED',
        `could not acquire the lock on "${scope}" within ${waitMs} ms (${attempt + 1} attempts)${holder ? `; held by ${holder} for another ${pttl} ms` : ''}`,
        {
          hint: holder ? 'another parity process holds it; wait for it to finish, or stop it' : 'check that Redis is reachable',
          cause: lastError,
          details: { scope, holder, attempts: attempt + 1 },
        },
      );
    }
    const delay = Math.min(backoffDelay(attempt, initialDelayMs, maxDelayMs, random), Math.max(0, waitMs - elapsed));
    await sleep(delay);
  }
}

/**
 * Registers the lock's metric families with every label value at zero, so a process scraped by
 * Prometheus (`parity serve`) exposes them before any lease is taken and rate()/increase() work.
 */
export function registerLockMetrics(registry: Registry): void {
  const m = lockMetrics(registry)!;
  for (const result of ['acquired', 'busy', 'error']) m.acquisitions.inc({ result }, 0);
  for (const result of ['ok', 'error']) m.renewals.inc({ result }, 0);
  for (const reason of ['renewal_failed', 'expired', 'taken']) m.losses.inc({ reason }, 0);
}
