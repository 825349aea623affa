/**
 * End to end with the real CDC: `parity cdc run` streams a same-table migration's table into Kafka
 * while the test writes to it. Stream verification must flag exactly the rows whose new columns
 * were left inconsistent with the old ones; batch verification, running next to the live slot, must
 * confirm the same rows only after the slot passed them; and the gate's lag measurement must see
 * the live stream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topicOffsets } from '../../../connectors/kafka-sink/admin.js';
import pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChangeDecoder } from '../../../connectors/kafka-sink/serde.js';
import { createKafka, createSchemaRegistry, type KafkaClients } from '../../../services/core/clients.js';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { sleep } from '../../../services/core/retry.js';
import { loadSpec } from '../../../services/core/spec.js';
import { measureLag } from '../../../services/reconciler/cdc-position.js';
import { ensureReconcilerTables } from '../../../services/reconciler/control-store.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { reconcilerMetrics } from '../../../services/reconciler/metrics.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import { connectPg, openReadSession, openWriteSession } from '../../../services/reconciler/snapshot.js';
import { createStreamReconciler, type CheckResult } from '../../../services/reconciler/stream-reconcile.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, uniqueName, type TestDatabase } from '../../support/stack.js';
import { exec, keys, keysWithStatus, verify } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let db: TestDatabase;
let dir: string;
let kafka: KafkaClients;
let cdc: ChildProcess | null = null;
let cdcLog = '';
const prefix = uniqueName('rce2e');

beforeAll(async () => {
  db = await createTestDatabase('source', 'rc_e2e');
  dir = mkdtempSync(join(tmpdir(), 'parity-rc-e2e-'));
  kafka = createKafka(KAFKA_BROKERS, { clientId: 'rc-e2e' });
});

afterAll(async () => {
  if (cdc && cdc.exitCode === null) {
    cdc.kill('SIGTERM');
    await new Promise((r) => cdc!.once('exit', r));
  }
  const admin = kafka.admin();
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('with the real CDC (parity cdc run)', () => {
  it('stream and batch verification agree on what is inconsistent, and the gate sees the live slot', async () => {
    await exec(
      db.url,
      `CREATE TABLE orders (id int PRIMARY KEY, total_amount int NOT NULL, total_amount_minor bigint, currency text, price numeric(10,2), updated_at timestamptz)`,
      `INSERT INTO orders SELECT g, g * 10, g * 10, 'USD', g * 1.5, timestamptz '2024-05-01 12:00:00.123456+00' + g * interval '1 minute' FROM generate_series(1, 300) g`,
    );
    const slot = prefix.replace(/-/g, '_');
    const specFile = join(dir, 'orders.yaml');
    writeFileSync(
      specFile,
      stringify({
        apiVersion: 'parity/v1',
        name: 'e2e-orders',
        source: { database: db.url, table: 'orders' },
        target: { kind: 'same-table' },
        key: ['id'],
        mapping: { total_amount_minor: 'total_amount::bigint', currency: `'USD'::text` },
        infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
        cdc: { slot, publication: `${slot}_pub`, topicPrefix: prefix, format: 'avro', heartbeatIntervalSeconds: 1, partitions: 2 },
        reconcile: { segmentRows: 100, bisectionThreshold: 20, retryWindowMs: 1500 },
        gates: { contract: { maxCdcLagSeconds: 5 } },
      }),
    );
    cdc = spawn(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), 'cdc', 'run', '--spec', specFile], {
      cwd: ROOT,
      env: { ...process.env, PARITY_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    cdc.stderr!.on('data', (d: Buffer) => (cdcLog += d.toString()));

    // The initial snapshot reaches Kafka, then live changes: consistent ones, and ones that leave
    // the new columns behind (the drift to find).
    const topic = `${prefix}.public.orders`;
    const admin = kafka.admin();
    for (let i = 0; i < 300 && !(await admin.listTopics()).includes(topic); i++) await sleep(200);
    await admin.close();
    // Live changes only once the 300 snapshot rows are in Kafka: they must arrive as change events.
    const messages = async (): Promise<number> => (await topicOffsets(kafka, topic)).reduce((a, p) => a + Number(p.high), 0);
    for (let i = 0; i < 300 && (await messages()) < 300; i++) await sleep(200);
    expect(cdcLog).not.toMatch(/"level":(50|60)/);
    await exec(
      db.url,
      `UPDATE orders SET total_amount = total_amount + 1, total_amount_minor = total_amount_minor + 1, updated_at = now() WHERE id BETWEEN 1 AND 40`,
      `UPDATE orders SET total_amount = 7 WHERE id IN (5, 150)`,
      `UPDATE orders SET currency = 'EUR' WHERE id = 299`,
      `INSERT INTO orders VALUES (1000, 3, 3, 'USD', 0.5, now()), (1001, 4, NULL, 'USD', 0.5, now())`,
      `DELETE FROM orders WHERE id = 2`,
    );

    const loaded = loadSpec(specFile);
    const { spec } = loaded;
    const source = await openReadSession(connectPg, spec.source.database, postgresDialect, 'test');
    const target = await openReadSession(connectPg, spec.source.database, postgresDialect, 'test');
    const control = await openWriteSession(connectPg, spec.source.database, postgresDialect, 'test');
    const seen: CheckResult[] = [];
    try {
      await ensureReconcilerTables(control, 'parity');
      const projection = await buildProjection(spec, source, target, postgresDialect);
      const reconciler = createStreamReconciler(
        {
          loaded,
          kafka,
          decoder: createChangeDecoder(createSchemaRegistry(STACK.PARITY_REGISTRY_URL)),
          projection,
          source,
          target,
          control,
          logger: silentLogger(),
          metrics: reconcilerMetrics(createMetricsRegistry({ defaultMetrics: false })),
        },
        { groupId: uniqueName('rc-e2e'), fromBeginning: true, repair: null, onChecked: (r) => seen.push(...r) },
      );
      await reconciler.start();
      const mismatched = (): string[] => [...new Set(seen.filter((r) => r.verdict === 'mismatch').map((r) => r.key[0]!))].sort();
      for (let i = 0; i < 600 && (!seen.some((r) => r.op === 'd') || mismatched().length < 4); i++) await sleep(100);
      await sleep(1000);
      await reconciler.stop();
      expect(reconciler.status().deadLetters).toBe(0);
      expect(mismatched()).toEqual(['1001', '150', '299', '5']);
      expect(seen.filter((r) => r.key[0] === '2' && r.op === 'd').map((r) => r.verdict)).toEqual(['skipped']);
    } finally {
      await Promise.all([source.end(), target.end(), control.end()]);
    }

    // Batch verification next to the live slot: the same four keys, confirmed after the slot passed them.
    const run = await verify(loaded, { recheckWaitMs: null });
    expect(await keysWithStatus(db.url, run.result.runId, 'confirmed')).toEqual(keys(5, 150, 299, 1001));
    expect(run.result.inFlight).toBe(0);

    const lagClient = new pg.Client({ connectionString: db.url });
    await lagClient.connect();
    try {
      const lag = await measureLag(lagClient, slot, 5);
      expect(lag).toMatchObject({ slotExists: true, active: true });
      expect(lag.lagSeconds).not.toBeNull();
      expect(lag.lagSeconds!).toBeLessThanOrEqual(5);
    } finally {
      await lagClient.end();
    }
  });
});
