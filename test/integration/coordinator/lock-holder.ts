/**
 * A lock holder in its own process, for the pause (SIGSTOP) and crash (SIGKILL) tests. Reads its
 * settings from PARITY_HOLDER (JSON), acquires the lock, prints one JSON line per event on stdout,
 * and takes commands on stdin:
 *   stage-before-fence LABEL  clock check done, then waits for "go"; then assertFence + insert + COMMIT
 *                             without looking at the clock again (a pause between check and write)
 *   stage-inside-fence LABEL  assertFence + insert done (fence row locked), then waits for "go" to COMMIT
 *   go                        continue the staged write
 */
import { createInterface } from 'node:readline';
import pg from 'pg';
import { Redis } from 'ioredis';
import { acquireLock } from '../../../services/coordinator/lock.js';
import { assertFence } from '../../../services/core/fence.js';

interface HolderConfig {
  redisUrl: string;
  dbUrl: string;
  schema: string;
  migration: string;
  keyPrefix: string;
  table: string;
  settings: { ttlMs: number; renewEveryMs: number; driftMarginMs: number };
}

const config = JSON.parse(process.env.PARITY_HOLDER ?? '{}') as HolderConfig;
const emit = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(event)}\n`);

const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
redis.on('error', () => undefined);
const pool = new pg.Pool({ connectionString: config.dbUrl, max: 2 });
pool.on('error', () => undefined);

const lease = await acquireLock({
  redis,
  fenceDb: pool,
  fenceSchema: config.schema,
  migration: config.migration,
  keyPrefix: config.keyPrefix,
  settings: config.settings,
});
lease.onLost((err) => emit({ event: 'lost', code: err.code }));
emit({ event: 'acquired', token: lease.token.toString(), owner: lease.owner });

let resume: (() => void) | undefined;
const go = (): Promise<void> => new Promise((resolve) => (resume = resolve));

async function staged(mode: string, label: string): Promise<void> {
  const client = await pool.connect();
  // A checked-out client whose session the server ends emits 'error'; the query reports it too.
  client.on('error', () => undefined);
  try {
    if (mode === 'stage-before-fence') {
      // The holder looked at its clock and was paused before it opened the write's transaction.
      lease.assertHeld();
      emit({ event: 'staged', mode });
      await go();
      await client.query('BEGIN');
      await assertFence(client, config.schema, lease.scope, lease.token);
      await client.query(`INSERT INTO ${config.table} (token, label) VALUES ($1, $2)`, [lease.token.toString(), label]);
    } else {
      await client.query('BEGIN');
      await client.query(`SET LOCAL idle_in_transaction_session_timeout = ${config.settings.ttlMs}`);
      lease.assertHeld();
      await assertFence(client, config.schema, lease.scope, lease.token);
      await client.query(`INSERT INTO ${config.table} (token, label) VALUES ($1, $2)`, [lease.token.toString(), label]);
      emit({ event: 'staged', mode });
      await go();
    }
    await client.query('COMMIT');
    emit({ event: 'wrote', label });
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    emit({ event: 'rejected', code: (err as { code?: string }).code ?? 'unknown', message: (err as Error).message });
  } finally {
    client.release(true);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, label = ''] = line.trim().split(/\s+/);
  if (command === 'go') resume?.();
  else if (command === 'stage-before-fence' || command === 'stage-inside-fence') void staged(command, label);
});
