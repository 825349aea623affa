/**
 * What the conformance tests drive: their own Kafka Connect worker (services/stack/connect.ts) on a
 * free port against the shared Kafka, Debezium's PostgreSQL connector and JDBC sink configured over
 * its REST API, `parity cdc run` (the built CLI) on the same table, and the fixture workload of
 * test/conformance/debezium-3.6.0/ (a snapshot part, then streamed writes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { parseSpec } from '../../services/core/spec.js';
import { stackConfig } from '../../services/stack/config.js';
import {
  type ConnectSettings,
  ConnectRest,
  connectLogFile,
  connectUrl,
  ensureConnectJars,
  startConnect,
  stopConnect,
} from '../../services/stack/connect.js';
import { KAFKA_BROKERS, STACK } from '../support/stack.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURES = join(REPO_ROOT, 'test/conformance/debezium-3.6.0');

/** Apicurio's registry v2 API next to its ccompat one (the 2.6 converter Maven Central serves speaks v2). */
export const REGISTRY_V2 = STACK.PARITY_REGISTRY_URL.replace(/\/apis\/ccompat\/v7\/?$/, '/apis/registry/v2');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface Worker {
  settings: ConnectSettings;
  rest: ConnectRest;
  stop(): Promise<void>;
}

/** A Connect worker of the test's own (own folder and port); jars from the stack's cache (Maven on first use). */
export async function startWorker(): Promise<Worker> {
  const config = stackConfig();
  const settings: ConnectSettings = {
    ...ensureConnectJars(config),
    root: mkdtempSync(join(tmpdir(), 'parity-connect-')),
    port: await freePort(),
    brokers: KAFKA_BROKERS,
  };
  await startConnect(settings);
  return {
    settings,
    rest: new ConnectRest(connectUrl(settings)),
    async stop() {
      await stopConnect(settings);
      rmSync(settings.root, { recursive: true, force: true });
    },
  };
}

/** The log of a worker, for a failure message. */
export const workerLog = (w: Worker) => readFileSync(connectLogFile(w.settings), 'utf8').split('\n').slice(-60).join('\n');

function database(url: string) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    dbname: u.pathname.slice(1),
  };
}

/** Apicurio's Avro converter for keys and values: the Confluent wire format, content ids (the ids ccompat serves). */
export function avroConverter(): Record<string, string> {
  const settings = {
    'apicurio.registry.url': REGISTRY_V2,
    'apicurio.registry.auto-register': 'true',
    'apicurio.registry.find-latest': 'true',
    'apicurio.registry.as-confluent': 'true',
    'apicurio.registry.use-id': 'contentId',
    'apicurio.registry.headers.enabled': 'false',
  };
  const out: Record<string, string> = {
    'key.converter': 'io.apicurio.registry.utils.converter.AvroConverter',
    'value.converter': 'io.apicurio.registry.utils.converter.AvroConverter',
  };
  for (const [k, v] of Object.entries(settings)) {
    out[`key.converter.${k}`] = v;
    out[`value.converter.${k}`] = v;
  }
  return out;
}

/** Debezium's PostgreSQL connector with its defaults (pgoutput; its own slot and publication). */
export function debeziumSource(
  url: string,
  options: { prefix: string; slot: string; tables: string[]; avro: boolean },
): Record<string, string> {
  const db = database(url);
  return {
    'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
    'database.hostname': db.host,
    'database.port': db.port,
    'database.user': db.user,
    'database.password': db.password,
    'database.dbname': db.dbname,
    'topic.prefix': options.prefix,
    'plugin.name': 'pgoutput',
    'slot.name': options.slot,
    'publication.name': `${options.slot}_pub`,
    'publication.autocreate.mode': 'filtered',
    'table.include.list': options.tables.join(','),
    // parity's own logical messages (heartbeats of the parity connectors on the same database) are
    // parity's business: parity never writes them, Debezium leaves them out here.
    'message.prefix.exclude.list': 'parity\\..*',
    ...(options.avro ? avroConverter() : {}),
  };
}

/** Debezium's JDBC sink: upserts by the record key, deletes on tombstones, adds columns as the schema grows. */
export function debeziumJdbcSink(
  url: string,
  options: { topic: string; table: string; avro: boolean; extractNewRecordState: boolean },
): Record<string, string> {
  const db = database(url);
  return {
    'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
    topics: options.topic,
    'connection.url': `jdbc:postgresql://${db.host}:${db.port}/${db.dbname}`,
    'connection.username': db.user,
    'connection.password': db.password,
    'insert.mode': 'upsert',
    'delete.enabled': 'true',
    'primary.key.mode': 'record_key',
    'schema.evolution': 'basic',
    'collection.name.format': options.table,
    'consumer.override.auto.offset.reset': 'earliest',
    ...(options.extractNewRecordState
      ? {
          transforms: 'unwrap',
          'transforms.unwrap.type': 'io.debezium.transforms.ExtractNewRecordState',
          // The sink deletes on a tombstone: keep them (the delete event itself is dropped by the transform).
          'transforms.unwrap.drop.tombstones': 'false',
        }
      : {}),
    ...(options.avro ? avroConverter() : {}),
  };
}

/** True when this build's spec takes `cdc.format: <format>` (connect-json arrives with Debezium's encodings). */
export function parityOffersFormat(format: string, encoding?: string): boolean {
  try {
    parseSpec(
      JSON.stringify(paritySpec(STACK.PARITY_SOURCE_URL, { slot: 'probe', prefix: 'probe', format, encoding, table: 't', tables: [] })),
      'probe.json',
      {
        ...process.env,
      },
    );
    return true;
  } catch {
    return false;
  }
}

/** What `parity cdc run` streams: `encoding` unset is the spec's default (Debezium's encodings). */
export interface ParityRun {
  slot: string;
  prefix: string;
  format: string;
  encoding?: string | undefined;
  table: string;
  tables: string[];
}

function paritySpec(url: string, o: ParityRun) {
  return {
    apiVersion: 'parity/v1',
    name: o.slot.replace(/_/g, '-'),
    source: { database: url, schema: 'public', table: o.table },
    target: { kind: 'same-table' },
    key: ['id'],
    mapping: { parity_unused: 'id' },
    infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
    cdc: {
      slot: o.slot,
      publication: `${o.slot}_pub`,
      topicPrefix: o.prefix,
      format: o.format,
      ...(o.encoding ? { encoding: o.encoding } : {}),
      tables: o.tables,
      heartbeatIntervalSeconds: 2,
      partitions: 1,
      statusPort: 0,
    },
  };
}

export interface ParityProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** `parity cdc run` (the CLI from dist/: `npm run build` first) streaming `table` and `tables` with its defaults. */
export function startParity(url: string, o: ParityRun): ParityProcess {
  const dir = mkdtempSync(join(tmpdir(), 'parity-conformance-'));
  const file = join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(paritySpec(url, o), null, 2));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'services/cli/bin/parity.js'), 'cdc', 'run', '--spec', file], {
    cwd: REPO_ROOT,
    env: { ...process.env, PARITY_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      // The spec holds the stack's database URL (with its local password): gone with the run.
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The fixture workload: `snapshot` runs before the connectors start, `stream` while they stream. */
export interface Workload {
  snapshot: string;
  stream: string;
}

/**
 * The fixtures' SQL (all-types.sql, edge-types.sql), split at their snapshot/stream markers;
 * `edit` rewrites the SQL (the sink's variant).
 */
export function fixtureWorkload(fixtures: ('all-types' | 'edge-types')[], edit: (sql: string) => string = (s) => s): Workload {
  const marker = { 'all-types': '-- Part 2', 'edge-types': '-- streamed' };
  const parts = fixtures.map((f) => edit(readFileSync(join(FIXTURES, `${f}.sql`), 'utf8')).split(marker[f]));
  return { snapshot: parts.map((p) => p[0]).join('\n'), stream: parts.map((p) => p[1]).join('\n') };
}

export async function runSql(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}
