/**
 * The lock safety suite (real Redis, real PostgreSQL). Fault tests that stop Redis use a private
 * redis-server (own-redis.ts), never the shared stack's. Invariant: a write carrying a token that
 * is not the latest never commits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Redis } from 'ioredis';
import { acquireLock, type Lease, type LockDeps } from '../../../services/coordinator/lock.js';
import { coordinatorKeys } from '../../../services/coordinator/keys.js';
import { coordinatorScripts } from '../../../services/coordinator/scripts.js';
import { assertFence, currentToken } from '../../../services/core/fence.js';
import { isParityError, type ParityError } from '../../../services/core/errors.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { STACK, createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { startOwnRedis } from './own-redis.js';
import { prefixTracker } from './redis-keys.js';

const SCHEMA = 'parity';
const SETTINGS = { ttlMs: 1_500, renewEveryMs: 500, driftMarginMs: 300 };

let db: TestDatabase;
let pool: pg.Pool;
let redis: Redis;
const prefixes = prefixTracker('lk');

beforeAll(async () => {
  db = await createTestDatabase('target', 'lock');
  pool = new pg.Pool({ connectionString: db.url, max: 12 });
  pool.on('error', () => undefined);
  await pool.query('CREATE TABLE writes (id bigserial PRIMARY KEY, token bigint NOT NULL, label text NOT NULL)');
  redis = new Redis(STACK.PARITY_REDIS_URL);
  // A restart of the shared Redis by another suite shows as retries, not as unhandled events.
  redis.on('error', () => undefined);
});

afterAll(async () => {
  if (redis) await prefixes.cleanup(redis);
  redis?.disconnect();
  await pool?.end();
  await db?.drop();
});

function deps(overrides: Partial<LockDeps> = {}): LockDeps {
  return { redis, fenceDb: pool, fenceSchema: SCHEMA, migration: 'orders', keyPrefix: prefixes.next(), settings: SETTINGS, ...overrides };
}

/** A protected write through the lease: lease and token checked in the same transaction. */
async function write(lease: Lease, label: string): Promise<void> {
  await lease.fenced(pool, (c) => c.query('INSERT INTO writes (token, label) VALUES ($1, $2)', [lease.token.toString(), label]));
}

async function labels(): Promise<string[]> {
  const { rows } = await pool.query('SELECT label FROM writes ORDER BY id');
  return rows.map((r: { label: string }) => r.label);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as ParityError).code ?? String(err);
  }
}

interface Holder {
  child: ChildProcessWithoutNullStreams;
  next(event: string, timeoutMs?: number): Promise<Record<string, string>>;
  send(line: string): void;
}

const HOLDER = fileURLToPath(new URL('./lock-holder.ts', import.meta.url));

function spawnHolder(keyPrefix: string, migration: string): Holder {
  const config = {
    redisUrl: STACK.PARITY_REDIS_URL,
    dbUrl: db.url,
    schema: SCHEMA,
    migration,
    keyPrefix,
    table: 'writes',
    settings: SETTINGS,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', HOLDER], {
    env: { ...process.env, PARITY_HOLDER: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const queue: Record<string, string>[] = [];
  const waiters: (() => void)[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => {
    queue.push(JSON.parse(line) as Record<string, string>);
    waiters.splice(0).forEach((w) => w());
  });
  return {
    child,
    send: (line) => void child.stdin.write(`${line}\n`),
    async next(event, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = queue.findIndex((e) => e.event === event);
        if (i >= 0) return queue.splice(i, 1)[0] as Record<string, string>;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`holder: no "${event}" event (got ${JSON.stringify(queue)}; stderr: ${stderr.slice(-2000)})`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

describe('lock with fencing tokens', () => {
  it('rejects in the database the late write of a holder paused (SIGSTOP) past its TTL between its clock check and its write', async () => {
    const prefix = prefixes.next();
    const holder = spawnHolder(prefix, 'paused-a');
    try {
      const first = await holder.next('acquired');
      holder.send('stage-before-fence paused-write');
      await holder.next('staged');
      holder.child.kill('SIGSTOP');
      holder.send('go');
      // The frozen holder cannot renew: its lease runs out in Redis and a new holder takes over.
      const lease = await acquireLock(deps({ keyPrefix: prefix, migration: 'paused-a' }), { waitMs: 15_000 });
      expect(lease.token).toBeGreaterThan(BigInt(first.token as string));
      await write(lease, 'new-holder-write');
      holder.child.kill('SIGCONT');
      const result = await holder.next('rejected');
      expect(result.code).toBe('PARITY_STALE_FENCE');
      expect((await holder.next('lost')).code).toBe('PARITY_LOCK_EXPIRED');
      await write(lease, 'new-holder-second-write');
      await lease.release();
    } finally {
      holder.child.kill('SIGKILL');
    }
    expect(await labels()).toEqual(expect.arrayContaining(['new-holder-write', 'new-holder-second-write']));
    expect(await labels()).not.toContain('paused-write');
  });

  it('rolls back a holder frozen inside its fenced transaction, and the next holder is not blocked forever', async () => {
    const prefix = prefixes.next();
    const holder = spawnHolder(prefix, 'paused-b');
    try {
      const first = await holder.next('acquired');
      holder.send('stage-inside-fence frozen-write');
      await holder.next('staged');
      holder.child.kill('SIGSTOP');
      holder.send('go');
      // issueToken waits on the fence row the frozen transaction locked, until PostgreSQL ends that
      // session (idle_in_transaction_session_timeout = TTL).
      const lease = await acquireLock(deps({ keyPrefix: prefix, migration: 'paused-b' }), { waitMs: 15_000 });
      expect(lease.token).toBe(BigInt(first.token as string) + 1n);
      await write(lease, 'after-frozen');
      holder.child.kill('SIGCONT');
      expect((await holder.next('rejected')).code).not.toBe('ok');
      await lease.release();
    } finally {
      holder.child.kill('SIGKILL');
    }
    expect(await labels()).toContain('after-frozen');
    expect(await labels()).not.toContain('frozen-write');
  });

  it('gives the next holder a larger token after a holder crashed (SIGKILL) while holding', async () => {
    const prefix = prefixes.next();
    const holder = spawnHolder(prefix, 'crash');
    const first = await holder.next('acquired');
    holder.child.kill('SIGKILL');
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const lease = await acquireLock(deps({ keyPrefix: prefix, migration: 'crash', metrics }), { waitMs: 15_000 });
    // It found the dead holder's lease still there and waited for it to run out.
    expect(await metrics.getSingleMetricAsString('parity_lock_acquisitions_total')).toMatch(/result="busy"} [1-9]/);
    expect(lease.token).toBeGreaterThan(BigInt(first.token as string));
    // A write with the dead holder's token is refused by the database.
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      expect(await codeOf(assertFence(client, SCHEMA, 'crash', BigInt(first.token as string)))).toBe('PARITY_STALE_FENCE');
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await lease.release();
  });

  it('stops a holder before its lease can expire when Redis goes away, by its own monotonic clock', async () => {
    const own = await startOwnRedis();
    const ownClient = new Redis(own.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => 50 });
    ownClient.on('error', () => undefined);
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    try {
      const settings = { ttlMs: 3_000, renewEveryMs: 1_000, driftMarginMs: 1_000 };
      const lease = await acquireLock(deps({ redis: ownClient, settings, metrics, migration: 'outage' }));
      await new Promise((r) => setTimeout(r, 1_200));
      expect(lease.held).toBe(true);
      const lost = new Promise<{ at: number; err: ParityError }>((resolve) =>
        lease.onLost((err) => resolve({ at: performance.now(), err })),
      );
      await own.kill();
      const { at, err } = await lost;
      expect(err.code).toBe('PARITY_LOCK_LOST');
      expect(lease.signal.aborted).toBe(true);
      // Stopped at its own deadline (last acknowledged renewal's send time + TTL - margin), which
      // is before the server could have expired the lease (send time + TTL).
      expect(at).toBeGreaterThanOrEqual(lease.validUntil);
      expect(at).toBeLessThan(lease.validUntil + settings.driftMarginMs);
      expect(await codeOf(write(lease, 'after-loss'))).toBe('PARITY_LOCK_LOST');
      expect(await metrics.getSingleMetricAsString('parity_lock_renewals_total')).toMatch(/result="error"} [1-9]/);
      expect(await metrics.getSingleMetricAsString('parity_lock_losses_total')).toMatch(/reason="renewal_failed"} 1/);
    } finally {
      ownClient.disconnect();
      await own.kill();
    }
    expect(await labels()).not.toContain('after-loss');
  });

  it('keeps tokens increasing across a Redis restart (tokens live in the database)', async () => {
    const own = await startOwnRedis();
    const ownClient = new Redis(own.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    ownClient.on('error', () => undefined);
    try {
      const tokens: bigint[] = [];
      for (let i = 0; i < 2; i++) {
        const lease = await acquireLock(deps({ redis: ownClient, migration: 'restart' }));
        tokens.push(lease.token);
        await lease.release();
      }
      await own.kill();
      await own.restart();
      // The restarted Redis is empty: no lease, no memory of earlier tokens.
      expect(await ownClient.dbsize()).toBe(0);
      const lease = await acquireLock(deps({ redis: ownClient, migration: 'restart' }));
      tokens.push(lease.token);
      await write(lease, 'after-restart');
      await lease.release();
      expect(tokens[1]).toBeGreaterThan(tokens[0] as bigint);
      expect(tokens[2]).toBeGreaterThan(tokens[1] as bigint);
      expect(await currentToken(pool, SCHEMA, 'restart')).toBe(tokens[2]);
    } finally {
      ownClient.disconnect();
      await own.kill();
    }
  });

  it('ignores a release by a non-owner, and names the holder to a contender that gives up', async () => {
    const d = deps({ migration: 'owner' });
    const lease = await acquireLock(d);
    const key = coordinatorKeys('owner', d.keyPrefix).lock();
    try {
      expect(await coordinatorScripts(redis).release(key, 'someone-else')).toBe(0);
      expect(await redis.get(key)).toBe(lease.owner);
      await lease.renew();
      const err = await acquireLock(d, { waitMs: 300 }).catch((e: unknown) => e);
      expect(isParityError(err, 'PARITY_LOCK_NOT_ACQUIRED')).toBe(true);
      expect((err as Error).message).toContain(lease.owner);
    } finally {
      expect(await lease.release()).toBe(true);
    }
    expect(await redis.get(key)).toBeNull();
    // Releasing twice does nothing and says so.
    expect(await lease.release()).toBe(false);
  });

  it('distinguishes renew after expiry (PARITY_LOCK_EXPIRED) from a lease taken by another (PARITY_LOCK_LOST)', async () => {
    let now = 0;
    const clock = () => now;
    const a = await acquireLock(deps({ clock, migration: 'expiry' }));
    // The injected clock jumps past the TTL (the process was paused): no write, no renewal.
    now = SETTINGS.ttlMs + 1;
    expect(a.held).toBe(false);
    expect(await codeOf(a.renew())).toBe('PARITY_LOCK_EXPIRED');
    expect(await codeOf(write(a, 'expired-write'))).toBe('PARITY_LOCK_EXPIRED');
    await a.release();

    const d = deps({ migration: 'taken' });
    const b = await acquireLock(d);
    const key = coordinatorKeys('taken', d.keyPrefix).lock();
    await redis.set(key, 'intruder');
    expect(await codeOf(b.renew())).toBe('PARITY_LOCK_LOST');
    await redis.del(key);

    const c = await acquireLock(d);
    // The server dropped the lease early (e.g. a failover lost it): the next renewal says expired.
    await redis.del(key);
    expect(await codeOf(c.renew())).toBe('PARITY_LOCK_EXPIRED');
    expect(await labels()).not.toContain('expired-write');
  });

  it('hands out strictly increasing tokens to many contenders, and only the current holder writes', async () => {
    const migration = 'contenders';
    const keyPrefix = prefixes.next();
    const metrics = createMetricsRegistry({ defaultMetrics: false });
    const clients = Array.from({ length: 6 }, () => new Redis(STACK.PARITY_REDIS_URL));
    const acquired: bigint[] = [];
    try {
      await Promise.all(
        clients.map(async (client, n) => {
          for (let round = 0; round < 3; round++) {
            const lease = await acquireLock(
              { ...deps({ redis: client, migration, keyPrefix, metrics }) },
              { waitMs: 60_000, initialDelayMs: 20, maxDelayMs: 400 },
            );
            acquired.push(lease.token);
            for (let i = 0; i < 3; i++) {
              await lease.fenced(pool, (c) =>
                c.query('INSERT INTO writes (token, label) VALUES ($1, $2)', [lease.token.toString(), `c${n}-r${round}-w${i}`]),
              );
              await new Promise((r) => setTimeout(r, 5));
            }
            await lease.release();
          }
        }),
      );
    } finally {
      clients.forEach((c) => c.disconnect());
    }
    // Tokens strictly increase in the order the lease was granted.
    expect(acquired).toHaveLength(18);
    for (let i = 1; i < acquired.length; i++) expect(acquired[i]).toBeGreaterThan(acquired[i - 1] as bigint);
    // In commit order, writes never interleave: once a newer token wrote, no older one did.
    const { rows } = await pool.query(`SELECT token::text AS token, label FROM writes WHERE label ~ '^c[0-9]+-r' ORDER BY id`);
    const sequence = rows.map((r: { token: string }) => BigInt(r.token));
    expect(sequence).toHaveLength(54);
    for (let i = 1; i < sequence.length; i++) expect(sequence[i]).toBeGreaterThanOrEqual(sequence[i - 1] as bigint);
    const holders = new Map<string, Set<string>>();
    for (const r of rows as { token: string; label: string }[])
      holders.set(r.token, new Set([...(holders.get(r.token) ?? []), r.label.split('-')[0] as string]));
    for (const owners of holders.values()) expect(owners.size).toBe(1);
    // Every holder's token, replayed as a zombie write now: only the latest one may still write.
    const replay: string[] = [];
    for (const token of acquired) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        replay.push(await codeOf(assertFence(c, SCHEMA, migration, token)));
      } finally {
        await c.query('ROLLBACK');
        c.release();
      }
    }
    expect(replay).toEqual([...Array(17).fill('PARITY_STALE_FENCE'), 'ok']);
    // Contention was real: many acquisition attempts found the lock busy and backed off.
    expect(await metrics.getSingleMetricAsString('parity_lock_acquisitions_total')).toMatch(/result="busy"} [1-9]/);
  });
});
