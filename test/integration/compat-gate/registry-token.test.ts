/**
 * A refused registry bearer token (issue 16: "an expired token"), against a real secured registry: the
 * secured stack's Apicurio (HTTPS only, authentication on its APIs), started by this test alone on its
 * own state dir and ports and stopped at the end (the shared stacks stay untouched). parity sends an
 * expired JWT from the variable `infra.registry.auth.tokenEnv` names; the registry answers 401. Each
 * path that reaches the registry says which registry refused and which setting to fix, without the
 * token: the CDC registration client (not retried), `parity compat gate` (exit 2) and `parity cdc run`
 * (exit 2), and nothing is registered, produced or acknowledged (a restart with the credentials fixed
 * delivers every row).
 *
 * The secured stack's registry authenticates with HTTP basic only (services/stack/secure.ts): it refuses
 * any bearer token, expired or not, with the same 401 an OIDC-configured registry gives an expired
 * one. A registry that validates tokens needs an OpenID Connect provider (Apicurio 3 checks bearer
 * tokens against one, e.g. Keycloak), which the local stack does not run; parity's side (the header
 * sent, the 401 read, the error) is the same either way.
 */
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { createRegistryClient } from '../../../connectors/kafka-sink/registry-client.js';
import { createChangeDecoder, type DecodedChange } from '../../../connectors/kafka-sink/serde.js';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { createSchemaRegistry } from '../../../services/core/clients.js';
import { registryFetch } from '../../../services/core/registry-http.js';
import { ParityError } from '../../../services/core/errors.js';
import { stackConfig, stackEnv, type StackConfig, type StackEnv } from '../../../services/stack/config.js';
import { stackDown, stackUp } from '../../../services/stack/stack.js';
import { uniqueName } from '../../support/stack.js';
import { kafka, startCdc, streamedTable, waitForSlotCatchUp, writeCdcSpec } from '../cdc/support.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const base = Number(process.env.PARITY_TEST_TOKEN_PORT_BASE ?? 25700);
const dir = mkdtempSync(join(tmpdir(), 'parity-registry-token-'));
const TOKEN_ENV = 'PARITY_TEST_REGISTRY_TOKEN';

/** A JWT whose `exp` passed an hour ago (HS256 with a throw-away key). */
function expiredToken(): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'parity', iat: now - 7200, exp: now - 3600 })}`;
  return `${body}.${createHmac('sha256', randomBytes(32)).update(body).digest('base64url')}`;
}
const TOKEN = expiredToken();

let config: StackConfig;
let E: StackEnv;

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PARITY_STATE_DIR: join(dir, 'state'),
    PARITY_REGISTRY_PORT: String(base + 20),
    PARITY_REGISTRY_MANAGEMENT_PORT: String(base + 21),
  };
  config = stackConfig(env, { secure: true });
  await stackUp({ services: ['registry'], replica: false, connect: false }, config);
  E = stackEnv(config);
}, 300_000);

afterAll(async () => {
  if (config) await stackDown(['registry'], config);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const tokenRegistry = () => ({
  url: E.PARITY_REGISTRY_URL,
  tls: { ca: E.PARITY_CA_FILE!, verifyHostname: true },
  auth: { tokenEnv: TOKEN_ENV },
});
const basicRegistry = () => ({
  url: E.PARITY_REGISTRY_URL,
  tls: { ca: E.PARITY_CA_FILE!, verifyHostname: true },
  auth: { username: E.PARITY_REGISTRY_USER!, password: E.PARITY_REGISTRY_PASSWORD! },
});

/** Every change event of `topic`, decoded through the secured registry (basic auth). */
async function readSecured(topic: string): Promise<DecodedChange[]> {
  const decoder = createChangeDecoder(createSchemaRegistry(basicRegistry()), {
    registryUrl: E.PARITY_REGISTRY_URL,
    registryFetch: registryFetch(basicRegistry()),
  });
  const consumer = kafka.consumer({ groupId: uniqueName('token-read'), maxWaitMs: 200 });
  const { topicOffsets } = await import('../../../connectors/kafka-sink/admin.js');
  const total = (await topicOffsets(kafka, topic)).reduce((n, o) => n + Number(o.high - o.low), 0);
  const out: DecodedChange[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    let seen = 0;
    for await (const message of stream) {
      seen++;
      if (message.value && message.value.length > 0) out.push(await decoder.decode(topic, message));
      if (seen >= total) break;
    }
    await stream.close().catch(() => undefined);
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return out;
}

function expectRefusal(text: string): void {
  expect(text).toContain(
    `schema registry ${E.PARITY_REGISTRY_URL} refused the credentials (HTTP 401; bearer token (infra.registry.auth.tokenEnv ${TOKEN_ENV}))`,
  );
  expect(text).toContain('infra.registry.auth');
  expect(text).toContain('an expired token must be renewed');
  expect(text).not.toContain(TOKEN);
  expect(text).not.toContain(TOKEN.split('.')[2]!);
}

describe('an expired registry bearer token', () => {
  it('the CDC registration client: a non-retriable error naming the registry and the setting, nothing registered', async () => {
    process.env[TOKEN_ENV] = TOKEN;
    const subject = `${uniqueName('token')}-value`;
    const client = createRegistryClient(tokenRegistry());
    for (const call of [() => client.register(subject, { type: 'record', name: 'R', fields: [] }, 'avro'), () => client.latest!(subject)]) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ParityError);
      const p = err as ParityError;
      expect(p.code).toBe('PARITY_BAD_INPUT');
      expect(p.retriable).toBe(false);
      expectRefusal(`${p.message}\n${p.hint}`);
    }
    // The registry itself answers the authenticated client: the subject was never registered.
    expect(await createCcompatClient(basicRegistry()).versions(subject)).toEqual([]);
  });

  it('parity compat gate: exit 2, the registry and the setting named, the token never shown', () => {
    const doc = parseDocument(readFileSync(join(ROOT, 'schemas/examples/orders-multicurrency.yaml'), 'utf8'));
    doc.setIn(['infra', 'registry'], { url: '${PARITY_REGISTRY_URL}', tls: { ca: E.PARITY_CA_FILE }, auth: { tokenEnv: TOKEN_ENV } });
    for (const i of [0, 1]) {
      const reader = doc.getIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema']) as string;
      doc.setIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema'], join(ROOT, 'schemas/examples', reader));
    }
    const specFile = join(dir, 'spec-token.yaml');
    writeFileSync(specFile, doc.toString());
    const r = spawnSync(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), 'compat', 'gate', '--spec', specFile, '--skip-live'], {
      env: { ...process.env, PARITY_REGISTRY_URL: E.PARITY_REGISTRY_URL, [TOKEN_ENV]: TOKEN },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expectRefusal(r.stderr);
    expect(r.stdout).not.toContain(TOKEN);
  });

  describe('parity cdc run', () => {
    // The table in a database of its own, dropped with its slot, topic and subjects after the suite.
    const t = streamedTable('token', 'orders', '(id int PRIMARY KEY, amount int)');
    const { slot, topicPrefix: prefix, topic } = t;

    beforeAll(async () => {
      const c = new pg.Client({ connectionString: t.db.url });
      await c.connect();
      try {
        await c.query('INSERT INTO orders VALUES (1, 100), (2, 200)');
      } finally {
        await c.end();
      }
    });

    it('exits 2 naming the registry and the setting, the token never shown; nothing produced, registered or acknowledged', async () => {
      // The shared stack's PostgreSQL and Kafka; this test's secured registry with the expired token.
      const specFile = writeCdcSpec({
        database: t.db.url,
        table: 'orders',
        slot,
        topicPrefix: prefix,
        encoding: 'debezium',
        snapshot: 'initial',
      });
      const spec = JSON.parse(readFileSync(specFile, 'utf8')) as { infra: Record<string, unknown> };
      spec.infra.registry = tokenRegistry();
      writeFileSync(specFile, JSON.stringify(spec, null, 2));
      const cdc = startCdc(specFile, [], { [TOKEN_ENV]: TOKEN });
      const code = await Promise.race([cdc.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 120_000))]);
      if (code === 'running') await cdc.kill();
      expect(code, cdc.output()).toBe(2);
      expectRefusal(cdc.output());
      // Nothing registered, nothing on the topic, and the slot (if one was made) acknowledged nothing.
      expect(await createCcompatClient(basicRegistry()).versions(`${topic}-value`)).toEqual([]);
      const admin = kafka.admin();
      try {
        const topics = await admin.listTopics();
        if (topics.includes(topic)) {
          const { topicOffsets } = await import('../../../connectors/kafka-sink/admin.js');
          for (const o of await topicOffsets(kafka, topic)) expect(o.high).toBe(o.low);
        }
      } finally {
        await admin.close();
      }
      // Nothing was acknowledged past what reached Kafka: with the credentials fixed, a restart delivers the
      // snapshot and a row written while parity was stopped (kept by the slot), and nothing more.
      const c = new pg.Client({ connectionString: t.db.url });
      await c.connect();
      try {
        await c.query('INSERT INTO orders VALUES (3, 300)');
        spec.infra.registry = {
          ...basicRegistry(),
          auth: { username: E.PARITY_REGISTRY_USER, password: '${PARITY_TEST_REGISTRY_PASSWORD}' },
        };
        writeFileSync(specFile, JSON.stringify(spec, null, 2));
        const fixed = startCdc(specFile, [], { PARITY_TEST_REGISTRY_PASSWORD: E.PARITY_REGISTRY_PASSWORD! });
        try {
          await fixed.streaming(120_000);
          await waitForSlotCatchUp(c, slot, 120_000);
        } finally {
          await fixed.kill();
        }
        // Every row arrives (row 3 may come twice: streamed, and read by the snapshot's incremental
        // continuation, which reads the live table); the decoder reads them through the secured registry.
        const events = await readSecured(topic);
        expect([...new Set(events.map((e) => e.key!.id))].sort()).toEqual([1, 2, 3]);
        expect(events.every((e) => e.envelope.op === 'r' || e.envelope.op === 'c')).toBe(true);
        expect(events.find((e) => e.key!.id === 3 && e.envelope.op === 'c')?.envelope.after).toEqual({ id: 3, amount: 300 });
        expect(await createCcompatClient(basicRegistry()).versions(`${topic}-value`)).toEqual([1]);
      } finally {
        await c.end();
      }
    });
  });
});
