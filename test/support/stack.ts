/**
 * Test access to the local stack started by `parity stack up` (CI starts it in .ci/run). Each test
 * makes its own databases, topics, subjects and key prefixes with `uniqueName`, so tests never depend
 * on each other's leftovers.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { withDatabase } from '../../services/core/clients.js';
import { stackEnv, type StackEnv } from '../../services/stack/config.js';

/** The stack's settings; variables exported in the environment win over the defaults. */
export const STACK: StackEnv = Object.fromEntries(
  Object.entries(stackEnv()).map(([key, value]) => [key, process.env[key] || value]),
) as unknown as StackEnv;

export const KAFKA_BROKERS = STACK.PARITY_KAFKA_BROKERS.split(',');

/** A short unique name for test-owned objects: `prefix_<8 hex>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates a fresh database on the source or target cluster. `drop` removes it along with any
 * logical slot a test left in it (a database with an active slot cannot be dropped).
 */
export async function createTestDatabase(cluster: 'source' | 'target' = 'source', prefix = 't'): Promise<TestDatabase> {
  const admin = cluster === 'source' ? STACK.PARITY_SOURCE_URL : STACK.PARITY_TARGET_URL;
  const name = uniqueName(prefix);
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  return {
    name,
    url: withDatabase(admin, name),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [
          name,
        ]);
        await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [name]);
        // A pool's end() resolves before its clients' sockets have closed: give sessions that are closing up
        // to a second to go on their own. FORCE would end them under their clients, whose pool then emits an
        // error nobody listens to any more (an uncaught exception that fails the run after every test passed).
        for (let i = 0; i < 20; i++) {
          const { rows } = await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [
            name,
          ]);
          if ((rows[0] as { n: number }).n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
