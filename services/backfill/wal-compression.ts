/**
 * `pace.walCompression`: the backfill compresses the full-page images of its own writes.
 *
 * The first change to a page after a checkpoint logs the whole page (8 KiB); a backfill touches every
 * page of the table once per checkpoint cycle, so with the server's `wal_compression` off those images
 * are much of its WAL, and WAL is what foreground commits wait on. `wal_compression` is a superuser
 * setting (PostgreSQL 15 lets it be granted: `GRANT SET ON PARAMETER wal_compression TO role`), and
 * `SET LOCAL` scopes it to one transaction: the backfill's batches can compress their images without
 * changing the server's setting for anyone else.
 *
 * - `server`: leave the server's setting (nothing is set).
 * - `auto` (default): when the server's setting is `off` and the role may set it, the batches use
 *   `lz4` (or `pglz` when the server was built without lz4); otherwise the server's setting.
 * - `pglz`, `lz4`, `zstd`: that method, or a configuration error at the start (the role may not set
 *   it, or the server does not have the method) naming what to do.
 */
import type pg from 'pg';
import { ParityError } from '../core/errors.js';

export type WalCompressionChoice = 'server' | 'auto' | 'pglz' | 'lz4' | 'zstd';

export interface WalCompressionPlan {
  /** What the batches `SET LOCAL wal_compression` to; null: nothing (the server's setting applies). */
  method: 'pglz' | 'lz4' | 'zstd' | null;
  /** The server's own setting. */
  server: string;
  /** Why nothing is set although the server's setting is off (for the start-up log); absent otherwise. */
  why?: string;
}

/** Whether the server accepts `wal_compression = method` for this role (tried in a rolled-back transaction). */
async function accepts(db: Pick<pg.ClientBase, 'query'>, method: string): Promise<string | null> {
  await db.query('BEGIN');
  try {
    await db.query(`SET LOCAL wal_compression = ${method}`);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await db.query('ROLLBACK');
  }
}

/** Decides what the batches set, on the connection that writes the data (`db`: not inside a transaction). */
export async function planWalCompression(db: Pick<pg.ClientBase, 'query'>, choice: WalCompressionChoice): Promise<WalCompressionPlan> {
  const { rows } = await db.query<{ server: string }>(`SELECT current_setting('wal_compression') AS server`);
  const server = rows[0]!.server;
  if (choice === 'server') return { method: null, server };
  if (choice === 'auto') {
    if (server !== 'off') return { method: null, server };
    const refusals: string[] = [];
    for (const method of ['lz4', 'pglz'] as const) {
      const refused = await accepts(db, method);
      if (refused === null) return { method, server };
      refusals.push(`${method}: ${refused}`);
    }
    return {
      method: null,
      server,
      why: `the role may not set wal_compression (${refusals[0]}); GRANT SET ON PARAMETER wal_compression TO the backfill's role (PostgreSQL 15+) lets its batches compress their own full-page images`,
    };
  }
  const refused = await accepts(db, choice);
  if (refused !== null) {
    throw new ParityError('PARITY_BAD_INPUT', `backfill.throttle.pace.walCompression is ${choice} but the server refused it: ${refused}`, {
      hint: /permission/i.test(refused)
        ? "GRANT SET ON PARAMETER wal_compression TO the backfill's role (PostgreSQL 15+, or run it as a superuser), or set pace.walCompression: auto or server"
        : 'pick a method this server was built with (pglz always is), or pace.walCompression: auto',
    });
  }
  return { method: choice, server };
}
