/**
 * Database sessions for verification and the consistent snapshots they read in. Each side reads
 * in a REPEATABLE READ READ ONLY transaction; when both sides live in one database the target
 * session adopts the source's exported snapshot, so the two see exactly the same instant and a
 * live write can never show up as a difference there.
 */
import pg from 'pg';
import { fromPgError } from '../core/errors.js';
import type { Dialect } from './dialect.js';

export type Connect = (url: string, applicationName: string) => Promise<pg.Client>;

/** Opens a plain pg client (the default `Connect`). Errors keep the URL out of the message. */
export const connectPg: Connect = async (url, applicationName) => {
  // Keepalives let the server notice a vanished process, so the segment it held is released.
  const client = new pg.Client({ connectionString: url, application_name: applicationName, keepAlive: true });
  // A dropped connection surfaces on the next query; an unhandled 'error' event would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw fromPgError(err, `cannot connect to ${new URL(url).host}${new URL(url).pathname}`);
  }
  return client;
};

/** A read-only verification session: stable text output, read-only by default. */
export async function openReadSession(connect: Connect, url: string, dialect: Dialect, name: string): Promise<pg.Client> {
  const client = await connect(url, name);
  // One round trip for all settings (simple query protocol: several statements, no parameters).
  await client.query(dialect.sessionSetup().join('; '));
  return client;
}

/** A session that may write (repairs): the same text settings, without the read-only default. */
export async function openWriteSession(connect: Connect, url: string, dialect: Dialect, name: string): Promise<pg.Client> {
  const client = await connect(url, name);
  await client.query(
    dialect
      .sessionSetup()
      .filter((sql) => !/read_only/i.test(sql))
      .join('; '),
  );
  return client;
}

export interface SnapshotPositions {
  source: string;
  target: string;
}

/** Starts the snapshot pair; the caller ends it with `endSnapshots`. */
export async function beginSnapshots(
  dialect: Dialect,
  source: pg.Client,
  target: pg.Client,
  sameDatabase: boolean,
): Promise<SnapshotPositions> {
  if (sameDatabase) {
    const { snapshot, position } = await dialect.beginExportedSnapshot(source);
    await dialect.beginImportedSnapshot(target, snapshot);
    return { source: position, target: position };
  }
  const [s, t] = await Promise.all([dialect.beginSnapshot(source), dialect.beginSnapshot(target)]);
  return { source: s, target: t };
}

/** Ends both read-only transactions (COMMIT and ROLLBACK are the same for them). */
export async function endSnapshots(source: pg.Client, target: pg.Client): Promise<void> {
  await Promise.all([source.query('COMMIT'), target.query('COMMIT')]);
}

export async function abortSnapshots(source: pg.Client, target: pg.Client): Promise<void> {
  await Promise.all([source.query('ROLLBACK').catch(() => undefined), target.query('ROLLBACK').catch(() => undefined)]);
}
