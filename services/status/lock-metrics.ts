/**
 * serve's view of the migration lock, read-only: the lease in Redis (its owner and time left) and
 * the latest fencing token with its holder in the target database's fence table. The lock is held
 * only by short commands (migrate advance/rollback, cutover, contract) and fenced writers take
 * tokens of their own, so no single holder runs long enough to report its losses; serve, which is
 * always scraped, watches the lock from outside and counts on `parity_lock_losses_total`:
 *
 * - `taken`: the fencing token advanced while the same lease was still held (its holder's writes
 *   are refused from then on: someone took a token without the lease);
 * - `expired`: a lease vanished no earlier than it could have expired, i.e. its holder stopped
 *   renewing (crashed or partitioned) instead of releasing it.
 *
 * A lease released before its expiry, or a new holder after that, is not a loss. Polls come at most
 * a third of the lease's TTL apart, so a lease cannot be acquired and expire unseen between two.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { fenceTable } from '../core/fence.js';
import { counter, gauge } from '../core/metrics.js';
import { coordinatorKeys, DEFAULT_KEY_PREFIX, lockScope } from '../coordinator/keys.js';

/** One reading of the lock. */
export interface LockReading {
  /** The lease's owner id, or null when no lease is held. */
  owner: string | null;
  /** Milliseconds the lease has left (0 without a lease). */
  ttlMs: number;
  /** The latest fencing token of the migration's scope (0 when none was issued). */
  token: bigint;
  /** Who the latest token was issued to, or null. */
  holder: string | null;
}

/**
 * What changed between two readings `elapsedMs` apart: a loss with its reason, or null. Pure, so the
 * rules above are unit-tested.
 */
export function classifyLockChange(prev: LockReading, next: LockReading, elapsedMs: number): 'taken' | 'expired' | null {
  if (prev.owner === null) return null;
  if (next.owner === prev.owner) return next.token > prev.token ? 'taken' : null;
  // The lease is gone or has a new owner: a loss only if it may have run out rather than been released.
  return elapsedMs >= prev.ttlMs ? 'expired' : null;
}

export interface LockWatchOptions {
  redis: Redis;
  /** The database holding the fence table (the target database). */
  fenceDb: Pick<pg.ClientBase, 'query'>;
  fenceSchema: string;
  migration: string;
  keyPrefix?: string;
  now?: () => number;
}

/** Reads the lock once: owner and PTTL from Redis, latest token and holder from the fence table (never created here). */
export async function readLock(o: LockWatchOptions): Promise<LockReading> {
  const key = coordinatorKeys(o.migration, o.keyPrefix ?? DEFAULT_KEY_PREFIX).lock();
  const replies = (await o.redis.multi().get(key).pttl(key).exec()) ?? [];
  const owner = (replies[0]?.[1] as string | null | undefined) ?? null;
  const pttl = Number(replies[1]?.[1] ?? -2);
  let token = 0n;
  let holder: string | null = null;
  try {
    const { rows } = await o.fenceDb.query(`SELECT token, holder FROM ${fenceTable(o.fenceSchema)} WHERE scope = $1`, [
      lockScope(o.migration),
    ]);
    if (rows[0]) {
      token = BigInt(rows[0].token);
      holder = rows[0].holder ?? null;
    }
  } catch (err) {
    // No fence table yet: no token was ever issued (serve only reads; it creates nothing).
    if ((err as { code?: string }).code !== '42P01') throw err;
  }
  return { owner, ttlMs: owner && pttl > 0 ? pttl : 0, token, holder };
}

/** serve's lock families, registered at their zero values (see `LockWatch`). */
export function lockWatchMetrics(registry: Registry) {
  const m = {
    lease: gauge(registry, 'parity_lock_lease_seconds', "Seconds the migration lock's current lease has left (0 when nobody holds it)"),
    token: gauge(registry, 'parity_lock_fencing_token', "The migration's latest fencing token, labelled with its holder", ['holder']),
    losses: counter(registry, 'parity_lock_losses_total', 'Leases lost by reason (renewal_failed, expired, taken)', ['reason']),
  };
  m.lease.set(0);
  for (const reason of ['renewal_failed', 'expired', 'taken']) m.losses.inc({ reason }, 0);
  return m;
}

/**
 * Polls the lock and exports it: `parity_lock_lease_seconds` (time the current lease has left, 0
 * without one), `parity_lock_fencing_token{holder}` (the latest token and who holds it; one series
 * at a time) and `parity_lock_losses_total{reason}` (see the module comment).
 */
export class LockWatch {
  private prev: { reading: LockReading; at: number } | undefined;
  private readonly now: () => number;
  private readonly m: ReturnType<typeof lockWatchMetrics>;

  constructor(
    private readonly o: LockWatchOptions,
    registry: Registry,
  ) {
    this.now = o.now ?? (() => performance.now());
    this.m = lockWatchMetrics(registry);
  }

  /** Reads the lock once and updates the metrics; a read error leaves them as they were and is thrown. */
  async poll(): Promise<LockReading> {
    const reading = await readLock(this.o);
    const at = this.now();
    if (this.prev) {
      const loss = classifyLockChange(this.prev.reading, reading, at - this.prev.at);
      if (loss) this.m.losses.inc({ reason: loss });
    }
    this.prev = { reading, at };
    this.m.lease.set(reading.ttlMs / 1000);
    this.m.token.reset();
    this.m.token.set({ holder: reading.holder ?? '' }, Number(reading.token));
    return reading;
  }
}
