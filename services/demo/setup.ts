/**
 * The demo's starting point: a fresh `orders` table in its own database, seeded with history
 * (integer cents only, as before the migration), and the worked example spec pointed at it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parseDocument } from 'yaml';
import { withDatabase } from '../core/clients.js';
import { ident } from '../core/sql.js';
import { projectPath } from '../core/project-root.js';

export const EXAMPLE_SPEC = projectPath('schemas', 'examples', 'orders-multicurrency.yaml');

/** Drops (slots first) and recreates the demo database. */
export async function recreateDatabase(adminUrl: string, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL', [
      database,
    ]);
    await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [database]);
    await admin.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${ident(database)}`);
  } finally {
    await admin.end();
  }
  return withDatabase(adminUrl, database);
}

/** The pre-migration table and `rows` orders of history. */
export async function seedOrders(url: string, rows: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE orders (
      id bigserial PRIMARY KEY,
      customer_id int NOT NULL,
      status text NOT NULL,
      total_amount int NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    await client.query(
      `INSERT INTO orders (customer_id, status, total_amount, created_at, updated_at)
       SELECT (1 + (g * 7919) % 5000)::int, CASE WHEN g % 10 = 0 THEN 'refunded' ELSE 'paid' END, (100 + (g * 104729) % 99900)::int,
              now() - make_interval(secs => g), now() - make_interval(secs => g)
         FROM generate_series(1, $1::bigint) AS g`,
      [rows],
    );
    await client.query('ANALYZE orders');
  } finally {
    await client.end();
  }
}

/** The variable the demo spec reads its database URL from (a spec holds secrets only as `${VAR}`). */
export const DEMO_DATABASE_ENV = 'PARITY_DEMO_DATABASE_URL';

export interface DemoSpecOptions {
  dir: string;
  runId: string;
  quick: boolean;
}

/**
 * The worked example, pointed at the demo database with this run's own topics, slot and cache
 * keys (so a rerun never reads a previous run's events), written next to the demo's logs.
 */
export function writeDemoSpec(options: DemoSpecOptions): string {
  const doc = parseDocument(readFileSync(EXAMPLE_SPEC, 'utf8'));
  const prefix = `demo${options.runId}`;
  // The URL carries the stack's password: the file names the variable, the demo's commands get its value.
  doc.setIn(['source', 'database'], `\${${DEMO_DATABASE_ENV}}`);
  doc.setIn(['cdc', 'slot'], `parity_demo_${options.runId}`);
  doc.setIn(['cdc', 'publication'], `parity_demo_${options.runId}`);
  doc.setIn(['cdc', 'topicPrefix'], prefix);
  doc.setIn(['cdc', 'heartbeatIntervalSeconds'], 2);
  doc.setIn(['cache', 'keys', 'v1'], `${prefix}:order:v1:{id}`);
  doc.setIn(['cache', 'keys', 'v2'], `${prefix}:order:v2:{id}`);
  doc.setIn(['events', 'subjects', 0, 'subject'], `${prefix}.public.orders-value`);
  const consumers = doc.getIn(['events', 'subjects', 0, 'consumers']);
  if (consumers) {
    for (let i = 0; i < 2; i++) {
      const rel = String(doc.getIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema']));
      doc.setIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema'], projectPath('schemas', 'examples', rel));
    }
  }
  doc.setIn(['reconcile', 'segmentRows'], options.quick ? 5_000 : 50_000);
  doc.setIn(['reconcile', 'bisectionThreshold'], options.quick ? 500 : 2_000);
  doc.setIn(['gates', 'contract', 'driftWindowMinutes'], 0);
  // The cutover window (issue 23): after cutover, checkout writes only the new columns, so the old
  // column must accept rows without it until reverse sync fills it in (the cutover refuses otherwise).
  doc.addIn(['ddl', 'enforce'], {
    name: 'total_amount nullable for the cutover window',
    sql: 'ALTER TABLE public.orders ALTER COLUMN total_amount DROP NOT NULL',
  });
  // The demo's window is seconds long, not the hour a production contract waits for.
  doc.setIn(['gates', 'contract', 'reverseWindowCleanMinutes'], 0.1);
  mkdirSync(options.dir, { recursive: true });
  const path = join(options.dir, 'orders-multicurrency.yaml');
  writeFileSync(path, doc.toString());
  return path;
}
