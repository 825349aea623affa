/**
 * Kafka security against a real broker of its own: SASL_SSL only (services/stack/secure-kafka.ts),
 * on its own ports and state dir, stopped at the end. The shared local stack stays plaintext.
 *
 * - the CDC's hand-written produce path over SASL_SSL (SCRAM-SHA-512 with zstd batches through the
 *   real connector; PLAIN with gzip batches through the sink) produces, and a consumer reads back;
 * - @platformatic/kafka's admin, producer and consumer over SASL_SSL (SCRAM-SHA-256);
 * - a wrong password, an untrusted certificate and a plaintext client each fail with an error that
 *   names the broker and the setting, never retriable; the CDC then acknowledges nothing (the slot's
 *   confirmed_flush_lsn does not move) and never prints the password.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient } from '../../../connectors/kafka-sink/registry-client.js';
import { ensureTopics, topicOffsets } from '../../../connectors/kafka-sink/admin.js';
import { ProduceClient } from '../../../connectors/kafka-sink/produce-client.js';
import { KafkaSink } from '../../../connectors/kafka-sink/sink.js';
import { CdcConnector } from '../../../services/cdc/connector.js';
import { createKafka, createKafkaForSpec, type KafkaClients } from '../../../services/core/clients.js';
import { ParityError } from '../../../services/core/errors.js';
import { resolveKafkaSecurity, type KafkaSecurity, type KafkaSecuritySpec } from '../../../services/core/kafka-security.js';
import { createLogger, silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { redact } from '../../../services/core/secrets.js';
import { loadSpec } from '../../../services/core/spec.js';
import { startSecureKafka, unsecuredToken, type SecureKafka } from '../../../services/stack/secure-kafka.js';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';
import { writeCdcSpec } from '../cdc/support.js';

const PORT = Number(process.env.PARITY_TEST_SECURE_KAFKA_PORT ?? 19494);
const USER = 'parity';
const PASSWORD = `pw-${Math.random().toString(36).slice(2, 10)}-secret`;
const WRONG = 'not-the-password-9f3';

/**
 * The topic, through the product's own admin path (created, then waited for until every partition
 * has a leader), and then until the leader answers for every partition: the broker's metadata can
 * name it a moment before it serves. A produce in that moment meets NOT_LEADER_OR_FOLLOWER, which the
 * wire sink reports as a failure rather than retrying (the CDC replays from its slot).
 */
async function createTopic(kafka: KafkaClients, topic: string, partitions = 3, timeoutMs = 30_000): Promise<void> {
  await ensureTopics(kafka, [topic], partitions);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await topicOffsets(kafka, topic)).length === partitions) return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`${topic}: its leader did not answer for ${partitions} partitions within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every message of `topic` from the beginning, until `count` are read (raw bytes). */
async function readRaw(kafka: KafkaClients, topic: string, count: number, timeoutMs = 60_000): Promise<{ key: string; value: Buffer }[]> {
  const consumer = kafka.consumer({ groupId: `secure-test-${topic}`, maxWaitMs: 200 });
  const out: { key: string; value: Buffer }[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const deadline = Date.now() + timeoutMs;
    for await (const m of stream) {
      out.push({ key: m.key?.toString() ?? '', value: m.value! });
      if (out.length >= count || Date.now() > deadline) break;
    }
    await stream.close().catch(() => undefined);
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return out;
}

async function confirmedFlush(db: TestDatabase, slot: string): Promise<string> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ lsn: string }>(
      'SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    return rows[0]!.lsn;
  } finally {
    await c.end();
  }
}

async function currentLsn(db: TestDatabase): Promise<string> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  } finally {
    await c.end();
  }
}

async function lsnBelow(db: TestDatabase, a: string, b: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<{ below: boolean }>('SELECT $1::pg_lsn < $2::pg_lsn AS below', [a, b])).rows[0]!.below;
  } finally {
    await c.end();
  }
}

describe('Kafka over SASL_SSL (a broker of its own)', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'parity-secure-kafka-'));
  let broker: SecureKafka;
  let db: TestDatabase;
  const sasl = (mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512', password = PASSWORD): KafkaSecurity =>
    resolveKafkaSecurity({
      protocol: 'SASL_SSL',
      tls: { ca: broker.certificates.ca, verifyHostname: true },
      sasl: { mechanism, username: USER, password },
    });

  beforeAll(async () => {
    process.env.PARITY_TEST_KAFKA_PASSWORD = PASSWORD;
    process.env.PARITY_TEST_KAFKA_WRONG = WRONG;
    // Expired ten minutes ago: the broker's validator refuses it (the CDC case of "an expired token").
    process.env.PARITY_TEST_KAFKA_EXPIRED_TOKEN = unsecuredToken(USER, -600);
    broker = await startSecureKafka({
      stateDir,
      port: PORT,
      controllerPort: PORT + 1,
      users: [{ name: USER, password: PASSWORD }],
      unsecuredOauthBearer: true,
    });
    db = await createTestDatabase('source', 'secure');
  }, 300_000);

  afterAll(async () => {
    await db?.drop();
    await broker?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }, 120_000);

  it('@platformatic/kafka admin, producer and consumer work over SASL_SSL with SCRAM-SHA-256', async () => {
    const kafka = createKafka(broker.brokers, { clientId: 'secure-test', security: sasl('SCRAM-SHA-256') });
    const topic = uniqueName('secure_maintained');
    await createTopic(kafka, topic, 1);
    const producer = kafka.producer();
    try {
      await producer.send({ messages: [1, 2, 3].map((i) => ({ topic, partition: 0, key: `k${i}`, value: `v${i}` })) });
    } finally {
      await producer.close();
    }
    const read = await readRaw(kafka, topic, 3);
    expect(read.map((m) => `${m.key}=${m.value.toString()}`)).toEqual(['k1=v1', 'k2=v2', 'k3=v3']);
  });

  it('the wire sink produces over SASL_SSL with PLAIN and gzip batches; a consumer reads them back', async () => {
    const kafka = createKafka(broker.brokers, { clientId: 'secure-test', security: sasl('PLAIN') });
    const topic = uniqueName('secure_wire');
    await createTopic(kafka, topic, 3);
    const sink = new KafkaSink({ kafka, logger: silentLogger(), compression: 'gzip' });
    await sink.connect([topic]);
    let acked = 0;
    const failures: unknown[] = [];
    for (let i = 0; i < 300; i++) {
      sink.send(
        {
          topic,
          partition: i % 3,
          key: Buffer.from(`k${i}`),
          value: Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(100) })),
          headers: { 'parity.ordinal': String(i) },
        },
        { onAck: () => acked++, onFail: (e) => failures.push(e) },
      );
    }
    await sink.drained();
    await sink.close();
    expect(failures).toEqual([]);
    expect(acked).toBe(300);
    const read = await readRaw(kafka, topic, 300);
    expect(new Set(read.map((m) => m.key)).size).toBe(300);
    expect(JSON.parse(read.find((m) => m.key === 'k299')!.value.toString())).toMatchObject({ i: 299 });
  });

  it('the wire path names the broker and the setting when refused: wrong password, untrusted CA, plaintext; never retriable', async () => {
    const [host, port] = broker.brokers[0]!.split(':') as [string, string];
    const address = { nodeId: 1, host, port: Number(port) };
    const attempt = async (security: KafkaSecurity) => {
      const client = new ProduceClient({ clientId: 'secure-test', security, requestTimeoutMs: 5_000 });
      try {
        await client.connect([address]);
        throw new Error('connected');
      } catch (err) {
        return err as Error & { fatal?: { hint: string } | null; code?: number | null };
      } finally {
        client.close();
      }
    };
    const wrong = await attempt(sasl('SCRAM-SHA-512', WRONG));
    expect(wrong.message).toContain(`Kafka ${broker.brokers[0]} refused SASL SCRAM-SHA-512 authentication for user '${USER}'`);
    expect(wrong.message).toContain('check kafka.security.sasl.username/password');
    expect(wrong.code).toBe(58);
    expect(wrong.fatal).toBeTruthy();
    expect(redact(wrong.message)).not.toContain(WRONG);

    const untrusted = await attempt(
      resolveKafkaSecurity({
        protocol: 'SASL_SSL',
        tls: { ca: broker.certificates.otherCa, verifyHostname: true },
        sasl: { mechanism: 'PLAIN', username: USER, password: PASSWORD },
      }),
    );
    expect(untrusted.message).toMatch(
      new RegExp(`Kafka broker ${broker.brokers[0]} failed TLS verification .*check kafka\\.security\\.tls\\.ca`),
    );
    expect(untrusted.fatal?.hint).toMatch(/kafka\.security\.tls\.ca/);

    const plaintext = await attempt({ protocol: 'PLAINTEXT' });
    expect(plaintext.message).toContain(`Kafka broker ${broker.brokers[0]}`);
    expect(plaintext.message).toMatch(/kafka\.security\.protocol PLAINTEXT.*set kafka\.security/);
  });

  it('OAUTHBEARER: the wire path authenticates with the token of tokenEnv; an expired token is refused naming tokenEnv', async () => {
    const [host, port] = broker.brokers[0]!.split(':') as [string, string];
    const connect = async (token: string) => {
      const security = resolveKafkaSecurity(
        {
          protocol: 'SASL_SSL',
          tls: { ca: broker.certificates.ca, verifyHostname: true },
          sasl: { mechanism: 'OAUTHBEARER', tokenEnv: 'PARITY_TEST_KAFKA_TOKEN' },
        },
        { PARITY_TEST_KAFKA_TOKEN: token },
      );
      const client = new ProduceClient({ clientId: 'secure-test', security, requestTimeoutMs: 5_000 });
      try {
        await client.connect([{ nodeId: 1, host, port: Number(port) }]);
        return null;
      } catch (err) {
        return err as Error & { fatal?: { hint: string } | null };
      } finally {
        client.close();
      }
    };
    // A fresh broker answers InitProducerId with COORDINATOR_LOAD_IN_PROGRESS (14) for a moment.
    let ok = await connect(unsecuredToken(USER));
    for (let i = 0; i < 30 && (ok as { code?: number } | null)?.code === 14; i++) {
      await new Promise((r) => setTimeout(r, 500));
      ok = await connect(unsecuredToken(USER));
    }
    expect(ok).toBeNull();
    const expired = await connect(unsecuredToken(USER, -600));
    expect(expired?.message).toContain(`Kafka ${broker.brokers[0]} refused SASL OAUTHBEARER authentication`);
    expect(expired?.message).toContain('kafka.security.sasl.tokenEnv');
    expect(expired?.fatal).toBeTruthy();
  });

  describe('the CDC connector', () => {
    const slot = uniqueName('secure_cdc');
    const prefix = uniqueName('secure');
    const topic = `${prefix}.public.items`;

    function specFile(security: KafkaSecuritySpec | Record<string, unknown>, compression: 'none' | 'gzip' | 'zstd' = 'zstd'): string {
      const file = writeCdcSpec({
        database: db.url,
        table: 'items',
        slot,
        topicPrefix: prefix,
        partitions: 2,
        brokers: broker.brokers,
        format: 'json',
      });
      const spec = JSON.parse(readFileSync(file, 'utf8')) as { infra: { kafka: Record<string, unknown> }; cdc: Record<string, unknown> };
      spec.infra.kafka.security = security;
      spec.cdc.compression = compression;
      writeFileSync(file, JSON.stringify(spec, null, 2));
      return file;
    }

    function connector(file: string): { run: Promise<void>; stop(): void; connector: CdcConnector } {
      const { spec } = loadSpec(file);
      const c = new CdcConnector({
        spec,
        logger: process.env.PARITY_TEST_LOG ? createLogger({ name: 'secure-cdc-test', level: 'debug' }) : silentLogger(),
        metrics: createMetricsRegistry({ defaultMetrics: false }),
        kafka: createKafkaForSpec(spec.infra.kafka, { clientId: 'secure-cdc-test' }),
        producer: 'wire',
        registry: createRegistryClient({ url: spec.infra.registry.url }),
        setReplicaIdentityFull: false,
        statusEveryMs: 1_000,
      });
      const run = c.run();
      run.catch(() => undefined);
      return { run, stop: () => c.stop(), connector: c };
    }

    /** Waits for the connector to stream: a stop() while the session is still starting is not seen. */
    async function streaming(c: CdcConnector): Promise<void> {
      const deadline = Date.now() + 60_000;
      while (c.health().status !== 'streaming' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    }

    async function insert(from: number, to: number): Promise<void> {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        await c.query('INSERT INTO items (id, name) SELECT g, $1 || g FROM generate_series($2::int, $3::int) g', ['item-', from, to]);
      } finally {
        await c.end();
      }
    }

    const good = (mechanism: 'SCRAM-SHA-512' | 'PLAIN') => ({
      protocol: 'SASL_SSL',
      tls: { ca: broker.certificates.ca },
      sasl: { mechanism, username: USER, password: '${PARITY_TEST_KAFKA_PASSWORD}' },
    });

    it('streams over SASL_SSL with SCRAM-SHA-512 and zstd batches; a SASL_SSL consumer reads the events back', async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      await c.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)');
      await c.end();
      await insert(1, 50);
      const cdc = connector(specFile(good('SCRAM-SHA-512'), 'zstd'));
      try {
        const kafka = createKafka(broker.brokers, { clientId: 'secure-test', security: sasl('SCRAM-SHA-512') });
        // A consumer subscribed before the connector created the topic would wait for it forever.
        const admin = kafka.admin();
        try {
          const deadline = Date.now() + 90_000;
          while (!(await admin.listTopics()).includes(topic)) {
            if (Date.now() > deadline) throw new Error(`the connector did not create ${topic}`);
            await new Promise((r) => setTimeout(r, 500));
          }
        } finally {
          await admin.close();
        }
        const read = await readRaw(kafka, topic, 50, 120_000);
        expect(read).toHaveLength(50);
        expect(new Set(read.map((m) => m.key)).size).toBe(50);
        for (const n of [1, 25, 50]) expect(read.some((m) => m.value.toString().includes(`"item-${n}"`))).toBe(true);
        await streaming(cdc.connector);
      } finally {
        cdc.stop();
        await cdc.run;
      }
    }, 180_000);

    it.each([
      [
        'a wrong password',
        () => ({ ...good('SCRAM-SHA-512'), sasl: { mechanism: 'SCRAM-SHA-512', username: USER, password: '${PARITY_TEST_KAFKA_WRONG}' } }),
        /SCRAM-SHA-512|authentication|SASL/i,
        /kafka\.security\.sasl/,
      ],
      [
        'an untrusted certificate',
        () => ({ ...good('PLAIN'), tls: { ca: broker.certificates.otherCa } }),
        /certificate|TLS|self.signed/i,
        /kafka\.security/,
      ],
      [
        'an expired token',
        () => ({
          protocol: 'SASL_SSL',
          tls: { ca: broker.certificates.ca },
          sasl: { mechanism: 'OAUTHBEARER', tokenEnv: 'PARITY_TEST_KAFKA_EXPIRED_TOKEN' },
        }),
        /OAUTHBEARER|authentication|SASL/i,
        /kafka\.security\.sasl\.tokenEnv/,
      ],
      ['a plaintext client', () => ({ protocol: 'PLAINTEXT' }), /./, /./],
    ])(
      '%s: stops with a non-retriable error naming the broker and the setting; nothing acknowledged',
      async (_name, security, messagePattern, hintPattern) => {
        // A change waiting in the slot: the failed connector must not acknowledge it (confirmed_flush_lsn
        // stays below its commit; other databases' WAL may be confirmed, ours may not).
        const id = 1_000 + Math.floor(Math.random() * 1e6);
        await insert(id, id);
        const committed = await currentLsn(db);
        const cdc = connector(specFile(security() as Record<string, unknown>));
        const outcome = await Promise.race([
          cdc.run.then(
            () => null,
            (e: unknown) => e,
          ),
          new Promise((r) => setTimeout(() => r('still running'), 60_000)),
        ]);
        if (outcome === 'still running') {
          cdc.stop();
          await cdc.run.catch(() => undefined);
        }
        expect(outcome).toBeInstanceOf(ParityError);
        const error = outcome as ParityError;
        expect(error.retriable).toBe(false);
        expect(error.exitCode === 2 || error.exitCode === 3 || error.code === 'PARITY_KAFKA').toBe(true);
        expect(error.message).toContain(broker.brokers[0]);
        expect(error.message).toMatch(messagePattern);
        expect(`${error.message} ${error.hint ?? ''}`).toMatch(hintPattern);
        expect(redact(`${error.message} ${error.hint ?? ''}`)).not.toContain(PASSWORD);
        expect(`${error.message} ${error.hint ?? ''}`).not.toContain(WRONG);
        expect(await lsnBelow(db, await confirmedFlush(db, slot), committed)).toBe(true);
      },
      120_000,
    );
  });
});
