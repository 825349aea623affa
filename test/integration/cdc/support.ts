/**
 * Helpers for the CDC integration tests: a spec file per test, `parity cdc run` as a child process,
 * and reading a topic back through the real decoder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { createKafkaForSpec } from '../../../services/core/clients.js';
import { createChangeDecoder, type DecodedChange } from '../../../connectors/kafka-sink/serde.js';
import { createSchemaRegistry } from '../../../services/core/clients.js';
import { encodePosition } from '../../../services/core/lsn.js';
import { REGISTRY, stackInfra, stackKafka } from '../../support/security.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, type TestDatabase, uniqueName } from '../../support/stack.js';
import { NODE_FLAGS } from '../../../services/cli/node-flags.js';

export const REPO_ROOT = new URL('../../../', import.meta.url).pathname;

export interface CdcSpecOptions {
  database: string;
  table: string;
  schema?: string;
  slot: string;
  topicPrefix: string;
  format?: 'avro' | 'json' | 'protobuf' | 'connect-json';
  /** cdc.encoding; these tests check parity's exact-text values unless they ask for Debezium's. */
  encoding?: 'debezium' | 'exact-text';
  snapshot?: 'initial' | 'never';
  heartbeatIntervalSeconds?: number;
  snapshotChunkRows?: number;
  partitions?: number;
  tables?: string[];
  controlDatabase?: string;
  /** Kafka of the test's own (fault tests start their own cluster); the shared stack's by default. */
  brokers?: string[];
  /** spec.cdc.debezium (Debezium's options by name). */
  debezium?: Record<string, unknown>;
}

/** Writes a minimal spec capturing `table` and returns its path. */
export function writeCdcSpec(options: CdcSpecOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'parity-cdc-'));
  const file = join(dir, 'spec.yaml');
  const cdc: Record<string, unknown> = {
    slot: options.slot,
    publication: `${options.slot}_pub`,
    topicPrefix: options.topicPrefix,
    format: options.format ?? 'avro',
    // PARITY_TEST_CDC_ENCODING=debezium runs the CDC tests that do not ask for one on Debezium's encoding.
    encoding: options.encoding ?? process.env.PARITY_TEST_CDC_ENCODING ?? 'exact-text',
    snapshot: options.snapshot ?? 'initial',
    heartbeatIntervalSeconds: options.heartbeatIntervalSeconds ?? 2,
    snapshotChunkRows: options.snapshotChunkRows ?? 1000,
    partitions: options.partitions ?? 3,
    tables: options.tables ?? [],
    statusPort: 0,
    ...(options.debezium ? { debezium: options.debezium } : {}),
  };
  const spec = {
    apiVersion: 'parity/v1',
    name: options.slot.replace(/_/g, '-'),
    source: { database: options.database, schema: options.schema ?? 'public', table: options.table },
    target: { kind: 'same-table' },
    ...(options.controlDatabase ? { control: { database: options.controlDatabase } } : {}),
    key: ['id'],
    mapping: { parity_unused: 'id' },
    // The stack's security settings (test/support/security.ts): plain, or TLS/SASL on the secured stack.
    infra: stackInfra(options.brokers ?? KAFKA_BROKERS),
    cdc,
  };
  writeFileSync(file, JSON.stringify(spec, null, 2));
  return file;
}

export interface CdcProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Resolves once the log says streaming started (or rejects if the process exits first). */
  streaming(timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `parity cdc run` as a child process (the real CLI, via tsx). */
export function startCdc(specFile: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): CdcProcess {
  const producer =
    process.env.PARITY_TEST_CDC_PRODUCER && !extraArgs.includes('--producer') ? ['--producer', process.env.PARITY_TEST_CDC_PRODUCER] : [];
  const child = spawn(
    process.execPath,
    // With the V8 flags parity ships with (the bin's shebang, the image, the manifests): bench:cdc measures this process.
    [...NODE_FLAGS, join(REPO_ROOT, 'services/cli/bin/parity.js'), 'cdc', 'run', '--spec', specFile, ...producer, ...extraArgs],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, PARITY_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async streaming(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let sessions = (out.match(/replication session started/g) ?? []).length;
      // Waits for a session started after this call when one had not yet started.
      const wanted = Math.max(1, sessions);
      while (Date.now() < deadline) {
        sessions = (out.match(/replication session started/g) ?? []).length;
        if (sessions >= wanted) return;
        if (child.exitCode !== null) throw new Error(`parity cdc run exited with ${child.exitCode}:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`parity cdc run did not start streaming within ${timeoutMs} ms:\n${out}`);
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

export const decoder = () => createChangeDecoder(createSchemaRegistry(REGISTRY), { registryUrl: STACK.PARITY_REGISTRY_URL });

export const kafka = stackKafka('parity-cdc-test');

/**
 * Reads every message of `topic` (all partitions, from the beginning) until `until` says enough or
 * `timeoutMs` passes, decoding each with the real decoder. Order within a partition is preserved.
 */
export async function readTopic(
  topic: string,
  until: (changes: DecodedChange[]) => boolean,
  timeoutMs = 60_000,
  idleMs = Infinity,
  brokers?: string[],
): Promise<DecodedChange[]> {
  const dec = decoder();
  const client = brokers ? stackKafka('parity-cdc-test', brokers) : kafka;
  const consumer = client.consumer({ groupId: `test-${topic}-${Math.random().toString(16).slice(2)}`, maxWaitMs: 200 });
  const changes: DecodedChange[] = [];
  let failure: unknown = null;
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    stream.on('error', (err) => (failure ??= err));
    const reading = (async () => {
      for await (const message of stream) {
        // A tombstone (cdc.encoding: debezium, after a delete) is no change event.
        if (!message.value || message.value.length === 0) continue;
        try {
          changes.push(await dec.decode(topic, message));
        } catch (err) {
          failure ??= err;
        }
      }
    })().catch((err: unknown) => (failure ??= err));
    const deadline = Date.now() + timeoutMs;
    let count = -1;
    let lastGrowth = Date.now();
    while (Date.now() < deadline && !until(changes) && !failure) {
      if (changes.length !== count) {
        count = changes.length;
        lastGrowth = Date.now();
      } else if (count > 0 && Date.now() - lastGrowth > idleMs) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await stream.close().catch(() => undefined);
    await reading;
    if (failure) throw failure;
    return changes;
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

export async function deleteTopics(topics: string[]): Promise<void> {
  const admin = kafka.admin();
  try {
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } catch {
    // best effort cleanup
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** A subject's compatibility level, set as its owner would (the registry's REST API); fails the test if refused. */
export async function setCompatibility(subject: string, level: string): Promise<void> {
  const res = await fetch(`${STACK.PARITY_REGISTRY_URL}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: level }),
  });
  if (!res.ok) throw new Error(`the registry refused compatibility ${level} for ${subject}: ${res.status} ${await res.text()}`);
}

/** One table streamed from a database of its own to a topic of its own: a suite's fixture ({@link streamedTable}). */
export interface StreamedTable {
  table: string;
  slot: string;
  topicPrefix: string;
  topic: string;
  /** The table's database, set by the suite's beforeAll. */
  db: TestDatabase;
}

/**
 * Registers, in the calling suite, a beforeAll that creates a database on the source cluster with
 * `CREATE TABLE <table> <columns>` in it, and an afterAll that drops the database, the topic and the
 * topic's key and value subjects. Names (database, slot, topic prefix) are unique from `name`.
 */
export function streamedTable(name: string, table: string, columns: string): StreamedTable {
  const topicPrefix = uniqueName(name);
  const fixture = { table, slot: uniqueName(name), topicPrefix, topic: `${topicPrefix}.public.${table}` } as StreamedTable;
  beforeAll(async () => {
    fixture.db = await createTestDatabase('source', name);
    const c = new pg.Client({ connectionString: fixture.db.url });
    await c.connect();
    try {
      await c.query(`CREATE TABLE ${table} ${columns}`);
    } finally {
      await c.end();
    }
  });
  afterAll(async () => {
    await fixture.db?.drop();
    await deleteTopics([fixture.topic]);
    for (const subject of [`${fixture.topic}-value`, `${fixture.topic}-key`]) {
      await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${encodeURIComponent(subject)}`, { method: 'DELETE' }).catch(() => undefined);
    }
  });
  return fixture;
}

/**
 * The connector (in this process) streaming `t` from now on (no snapshot, a heartbeat a second unless
 * `options` say otherwise), and a client of its database; the caller ends both.
 */
export async function streamFrom(
  t: StreamedTable,
  options: Partial<CdcSpecOptions> = {},
): Promise<{ running: InProcessConnector; c: pg.Client }> {
  const running = await runConnector(
    writeCdcSpec({
      database: t.db.url,
      table: t.table,
      slot: t.slot,
      topicPrefix: t.topicPrefix,
      snapshot: 'never',
      heartbeatIntervalSeconds: 1,
      ...options,
    }),
  );
  const c = new pg.Client({ connectionString: t.db.url });
  await c.connect();
  return { running, c };
}

/** Dedupe key of a decoded change. */
export function dedupeKey(c: DecodedChange): string {
  return encodePosition(c.position);
}

export interface InProcessConnector {
  connector: import('../../../services/cdc/connector.js').CdcConnector;
  metrics: import('prom-client').Registry;
  done: Promise<void>;
  stop(): Promise<void>;
}

/** Runs the connector in this process (faster than the CLI; fault tests use `startCdc`). */
export async function runConnector(specFile: string, options: { setReplicaIdentityFull?: boolean } = {}): Promise<InProcessConnector> {
  const { CdcConnector } = await import('../../../services/cdc/connector.js');
  const { loadSpec } = await import('../../../services/core/spec.js');
  const { createMetricsRegistry } = await import('../../../services/core/metrics.js');
  const { createLogger, silentLogger } = await import('../../../services/core/log.js');
  const { createRegistryClient } = await import('../../../connectors/kafka-sink/registry-client.js');
  const { spec } = loadSpec(specFile);
  const logger = process.env.PARITY_TEST_LOG ? createLogger({ name: 'cdc-test', level: 'debug' }) : silentLogger();
  const metrics = createMetricsRegistry({ defaultMetrics: false });
  const connector = new CdcConnector({
    spec,
    logger,
    metrics,
    kafka: createKafkaForSpec(spec.infra.kafka, { logger }),
    // PARITY_TEST_CDC_PRODUCER=maintained|wire runs the CDC tests on one sink or the other.
    ...(process.env.PARITY_TEST_CDC_PRODUCER ? { producer: process.env.PARITY_TEST_CDC_PRODUCER as 'maintained' | 'wire' } : {}),
    registry: createRegistryClient(spec.infra.registry),
    setReplicaIdentityFull: options.setReplicaIdentityFull ?? false,
    statusEveryMs: 1_000,
  });
  const done = connector.run();
  done.catch(() => undefined);
  const deadline = Date.now() + 60_000;
  while (connector.health().status !== 'streaming') {
    if (Date.now() > deadline) throw new Error(`connector did not start streaming: ${JSON.stringify(connector.health())}`);
    const settled = await Promise.race([
      done.then(
        () => 'done',
        (e: unknown) => e,
      ),
      new Promise((r) => setTimeout(() => r(null), 100)),
    ]);
    if (settled !== null) throw settled === 'done' ? new Error('connector stopped before streaming') : settled;
  }
  return {
    connector,
    metrics,
    done,
    async stop() {
      connector.stop();
      await done;
    },
  };
}

/** Waits until the slot's confirmed position has passed the source's current WAL position. */
export async function waitForSlotCatchUp(db: import('pg').ClientBase | import('pg').Pool, slot: string, timeoutMs = 60_000): Promise<void> {
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const target = rows[0]!.lsn;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await db.query<{ ok: boolean }>(
      'SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1',
      [slot, target],
    );
    if (r.rows[0]?.ok) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`slot ${slot} did not reach ${target} within ${timeoutMs} ms`);
}

/**
 * Replays decoded changes (in partition order; keys never span partitions) into the final state per
 * key: r/c/u set the row, d removes it, t clears the keys of its partition.
 */
export function replayState(changes: DecodedChange[], keyColumn = 'id'): Map<string, Record<string, unknown>> {
  const state = new Map<string, Record<string, unknown>>();
  const partitionOf = new Map<string, number>();
  const byPartition = new Map<number, DecodedChange[]>();
  for (const c of changes) {
    let list = byPartition.get(c.partition);
    if (!list) byPartition.set(c.partition, (list = []));
    list.push(c);
  }
  for (const [partition, list] of byPartition) {
    for (const c of list) {
      if (c.envelope.op === 't') {
        for (const [k, p] of partitionOf) if (p === partition) state.delete(k);
        continue;
      }
      const key = String(c.key?.[keyColumn]);
      partitionOf.set(key, partition);
      if (c.envelope.op === 'd') state.delete(key);
      else state.set(key, c.envelope.after as Record<string, unknown>);
    }
  }
  return state;
}
