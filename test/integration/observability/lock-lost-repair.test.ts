/**
 * Lock-lost readiness of stream repair (`parity reconcile --repair`; real PostgreSQL, Kafka and the
 * registry): the reconciler takes a fencing token when it starts repairing and watches it on a
 * session of its own. A newer token issued for the migration makes `readiness()` (its /readyz)
 * 503 "lock lost: fencing token N superseded by M" and `parity_lock_lost` 1, with nothing to repair
 * and no write attempted: the signal comes before any write of it could fail.
 */
import { ensureTopics } from '../../../connectors/kafka-sink/admin.js';
import { createChangeDecoder } from '../../../connectors/kafka-sink/serde.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchemaRegistry, type KafkaClients } from '../../../services/core/clients.js';
import { currentToken, issueToken } from '../../../services/core/fence.js';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { controlDatabase, targetDatabase } from '../../../services/core/spec.js';
import { changeTopic, deadLetterTopic, mismatchTopic } from '../../../services/core/topics.js';
import { ensureReconcilerTables } from '../../../services/reconciler/control-store.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { reconcilerMetrics } from '../../../services/reconciler/metrics.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import { connectPg, openReadSession, openWriteSession } from '../../../services/reconciler/snapshot.js';
import { createStreamReconciler } from '../../../services/reconciler/stream-reconcile.js';
import { REGISTRY, stackKafka } from '../../support/security.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { waitFor } from '../backfill/fixtures.js';
import { buildSpec, exec } from '../reconciler/fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;
let kafka: KafkaClients;
const topics: string[] = [];

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'll_rep_s'), createTestDatabase('target', 'll_rep_t')]);
  kafka = stackKafka('lock-lost-repair-test');
});

afterAll(async () => {
  const admin = kafka.admin();
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.close();
  await Promise.all([src?.drop(), tgt?.drop()]);
});

describe('lock-lost readiness of stream repair', () => {
  it('answers not ready with the lock-lost reason once a newer fencing token is issued', async () => {
    const prefix = uniqueName('llrep');
    const table = 'orders';
    await exec(src.url, `CREATE TABLE ${table} (id int4 PRIMARY KEY, note text)`, `INSERT INTO ${table} VALUES (1, 'a'), (2, 'b')`);
    await exec(tgt.url, `CREATE TABLE ${table} (id int4 PRIMARY KEY, note text)`, `INSERT INTO ${table} VALUES (1, 'a'), (2, 'b')`);
    const name = `ll-${prefix}`.replace(/_/g, '-');
    const loaded = buildSpec({
      name,
      source: { database: src.url, table },
      target: { kind: 'other-database', database: tgt.url, table },
      key: ['id'],
      mapping: { note: 'note' },
      cdc: { topicPrefix: prefix },
    });
    const { spec } = loaded;
    const topic = changeTopic(prefix, 'public', table);
    topics.push(topic, mismatchTopic(prefix), deadLetterTopic(prefix, 'reconciler', name));
    await ensureTopics(kafka, [topic], 1);

    const source = await openReadSession(connectPg, spec.source.database, postgresDialect, 'test');
    const target = await openReadSession(connectPg, targetDatabase(spec), postgresDialect, 'test');
    const control = await openWriteSession(connectPg, controlDatabase(spec), postgresDialect, 'test');
    const repairTarget = await openWriteSession(connectPg, targetDatabase(spec), postgresDialect, 'test');
    const fenceReader = new pg.Pool({ connectionString: tgt.url, max: 1 });
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const lockLost = async () => (await registry.getSingleMetric('parity_lock_lost')!.get()).values[0]?.value;
    try {
      await ensureReconcilerTables(control, spec.control.schema);
      const projection = await buildProjection(spec, source, target, postgresDialect);
      const r = createStreamReconciler(
        {
          loaded,
          kafka,
          decoder: createChangeDecoder(createSchemaRegistry(REGISTRY)),
          projection,
          source,
          target,
          control,
          repairTarget,
          fenceReader,
          fenceWatchMs: 200,
          logger: silentLogger(),
          metrics: reconcilerMetrics(registry),
        },
        { groupId: uniqueName('ll-group'), fromBeginning: true, repair: { apply: true, token: null }, pollMs: 100 },
      );
      await r.start();
      try {
        // No --fence-token: it took the latest token of the migration's scope.
        const token = await currentToken(fenceReader, spec.control.schema, spec.name);
        expect(token).toBeGreaterThan(0n);
        await new Promise((resolve) => setTimeout(resolve, 600));
        expect(r.readiness(10_000).status).not.toBe('lock-lost');
        expect(await lockLost()).toBe(0);

        const newer = await issueToken(fenceReader, spec.control.schema, spec.name, 'a newer holder');
        const lost = await waitFor('lock-lost readiness', async () => {
          const ready = r.readiness(10_000);
          return ready.status === 'lock-lost' ? ready : undefined;
        });
        expect(lost).toEqual({ ok: false, status: 'lock-lost', reason: `lock lost: fencing token ${token} superseded by ${newer}` });
        expect(await lockLost()).toBe(1);
      } finally {
        await r.stop();
      }
    } finally {
      await Promise.all([source.end(), target.end(), control.end(), repairTarget.end(), fenceReader.end()]);
    }
  });
});
