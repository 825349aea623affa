/**
 * Fencing tokens, kept in the database that protected writes go to. A token comes from a counter
 * row there (never from Redis), so a Redis restart or failover can never hand out an old token
 * again. Every protected write calls `assertFence` inside its own transaction: the row lock taken
 * there (FOR SHARE) makes a concurrent `issueToken` wait until the write commits, so once a newer
 * token exists, no write carrying an older one can commit.
 */
import type pg from 'pg';
import { ensureControlTables, tableExists } from './control.js';
import { ParityError } from './errors.js';
import { ident, literal } from './sql.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export function fenceTable(schema: string): string {
  return `${ident(schema)}.fences`;
}

export async function ensureFenceTable(db: Queryable, schema: string): Promise<void> {
  if (await tableExists(db, schema, 'fences')) return;
  await ensureControlTables(db, schema, [
    `CREATE TABLE IF NOT EXISTS ${fenceTable(schema)} (
       scope text PRIMARY KEY,
       token bigint NOT NULL,
       holder text,
       issued_at timestamptz NOT NULL DEFAULT clock_timestamp()
     )`,
  ]);
}

/** Grants the next token for `scope` (e.g. "orders-multicurrency" or "orders-multicurrency/eu"). */
export async function issueToken(db: Queryable, schema: string, scope: string, holder: string): Promise<bigint> {
  await ensureFenceTable(db, schema);
  const { rows } = await db.query(
    `INSERT INTO ${fenceTable(schema)} AS f (scope, token, holder) VALUES ($1, 1, $2)
     ON CONFLICT (scope) DO UPDATE SET token = f.token + 1, holder = EXCLUDED.holder, issued_at = clock_timestamp()
     RETURNING token`,
    [scope, holder],
  );
  return BigInt(rows[0].token);
}

/** The latest token issued for a scope, or 0n when none was. */
export async function currentToken(db: Queryable, schema: string, scope: string): Promise<bigint> {
  await ensureFenceTable(db, schema);
  const { rows } = await db.query(`SELECT token FROM ${fenceTable(schema)} WHERE scope = $1`, [scope]);
  return rows[0] ? BigInt(rows[0].token) : 0n;
}

/**
 * Must run inside the transaction of the protected write, before it commits. Throws
 * PARITY_STALE_FENCE when `token` is no longer the latest for `scope`; the caller rolls back.
 */
export async function assertFence(db: Queryable, schema: string, scope: string, token: bigint): Promise<void> {
  const { rows } = await db.query(fenceCheckSql(schema, scope));
  checkFence(rows, scope, token);
}

/**
 * The read of `assertFence` as one statement with the scope as a literal, for a caller that sends it
 * in one message with others (the backfill's batch, with its BEGIN): its rows go to `checkFence`.
 */
export function fenceCheckSql(schema: string, scope: string): string {
  return `SELECT token FROM ${fenceTable(schema)} WHERE scope = ${literal(scope)} FOR SHARE`;
}

/** Throws PARITY_STALE_FENCE unless the rows of `fenceCheckSql` hold `token`. */
export function checkFence(rows: { token: string | number | bigint }[], scope: string, token: bigint): void {
  const latest = rows[0] ? BigInt(rows[0].token) : 0n;
  if (latest !== token) {
    throw new ParityError(
      'PARITY_STALE_FENCE',
      `fencing token ${token} for "${scope}" is stale (latest is ${latest}); the write was rolled back`,
      {
        hint: 'another holder took the migration lock; this process must stop and re-acquire it',
        details: { scope, token: token.toString(), latest: latest.toString() },
      },
    );
  }
}
