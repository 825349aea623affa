/**
 * notYetVisible / waitUntilVisible against a real cluster: a transaction that holds an xid and has not
 * committed is reported as not visible; once it commits, new snapshots see it and the wait returns.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { notYetVisible, waitUntilVisible } from '../../../connectors/postgres-source/visibility.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';

let db: TestDatabase;
let writer: pg.Client;
let reader: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('source', 'vis');
  writer = new pg.Client({ connectionString: db.url });
  reader = new pg.Client({ connectionString: db.url });
  await writer.connect();
  await reader.connect();
  await writer.query('CREATE TABLE t (id int PRIMARY KEY)');
});

afterAll(async () => {
  await writer?.end().catch(() => undefined);
  await reader?.end().catch(() => undefined);
  await db?.drop();
});

test('a running transaction is not visible; after its commit the wait returns at once', async () => {
  await writer.query('BEGIN');
  await writer.query('INSERT INTO t VALUES (1)');
  const { rows } = await writer.query('SELECT (pg_current_xact_id()::text::bigint % 4294967296)::int AS xid');
  const xid = rows[0].xid as number;
  expect(await notYetVisible(reader, [xid])).toEqual([xid]);
  // Still running: the wait gives up after its timeout, naming the transaction.
  await expect(waitUntilVisible(reader, [xid], 50)).rejects.toThrow(String(xid));
  const waiting = waitUntilVisible(reader, [xid], 10_000);
  await writer.query('COMMIT');
  await waiting;
  expect(await notYetVisible(reader, [xid])).toEqual([]);
  expect((await reader.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(1);
});

test('a transaction committed long ago, and an empty list, are visible', async () => {
  const { rows } = await writer.query('SELECT (pg_current_xact_id()::text::bigint % 4294967296)::int AS xid');
  expect(await notYetVisible(reader, [rows[0].xid as number])).toEqual([]);
  expect(await notYetVisible(reader, [])).toEqual([]);
});
