/**
 * The secured local stack (`parity stack up --secure`, issue 16), started by this test on its own
 * state dir and ports and stopped at the end (the shared stack stays plaintext and untouched):
 * every service refuses a plaintext or unauthenticated client, a wrong password and a server
 * certificate the client's CA does not trust (the registry: HTTPS only, and basic auth on its APIs);
 * parity's own clients connect with the spec's settings.
 * Kafka's refusals (plaintext, wrong password, untrusted CA, expired token) are covered by
 * test/integration/kafka-security/sasl-ssl.test.ts; here only that the stack's broker has no
 * plaintext door.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Admin } from '@platformatic/kafka';
import { Redis, type RedisOptions } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { createCcompatClient } from '../../../services/compat-gate/registry-client.js';
import { createRegistryClient } from '../../../connectors/kafka-sink/registry-client.js';
import { createPgPool, createRedis, createSchemaRegistry } from '../../../services/core/clients.js';
import { ParityError } from '../../../services/core/errors.js';
import { SERVICES, stackConfig, stackEnv, type StackConfig, type StackEnv } from '../../../services/stack/config.js';
import { stackDown, stackUp } from '../../../services/stack/stack.js';
import { ownStackEnv } from '../../support/own-stack.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const base = Number(process.env.PARITY_TEST_SECURE_PORT_BASE ?? 25600);
const dir = mkdtempSync(join(tmpdir(), 'parity-secure-stack-'));
const env = ownStackEnv(join(dir, 'state'), base);

let config: StackConfig;
let E: StackEnv;
/** A CA that signed nothing the stack presents. */
let otherCa: string;

beforeAll(async () => {
  config = stackConfig(env, { secure: true });
  await stackUp({ services: SERVICES, replica: false }, config);
  E = stackEnv(stackConfig(env, { secure: true }));
  otherCa = join(config.stateDir, 'certs', 'other-ca.pem');
}, 300_000);

afterAll(async () => {
  if (config) {
    await stackDown(SERVICES, config);
    if (config.pgRoot.startsWith(tmpdir())) rmSync(config.pgRoot, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

async function pgError(config: pg.ClientConfig): Promise<Error & { code?: string }> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error('the connection was accepted');
}

/** Every error a Redis client met trying to PING (connection, TLS and command errors), as "code message" text. */
async function redisError(options: RedisOptions): Promise<string> {
  const client = new Redis({
    host: '127.0.0.1',
    port: config.ports.redis,
    lazyConnect: true,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3_000,
    ...options,
  });
  const seen: string[] = [];
  const note = (err: unknown) => seen.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim());
  client.on('error', note);
  try {
    await client.connect();
    const answer = await client.ping();
    if (answer === 'PONG') throw new Error('the connection was accepted');
  } catch (err) {
    if ((err as Error).message === 'the connection was accepted') throw err;
    note(err);
  } finally {
    client.disconnect();
  }
  return seen.join('; ');
}

describe('stack up --secure', () => {
  it('prints secured settings; the generated passwords are in mode-600 files', () => {
    expect(E.PARITY_SOURCE_URL).toMatch(/\?sslmode=verify-full&sslrootcert=/);
    expect(E.PARITY_REDIS_URL).toMatch(/^rediss:\/\/parity:[0-9a-f]{36}@127\.0\.0\.1:/);
    expect(E.PARITY_REGISTRY_URL).toMatch(/^https:\/\//);
    expect(E.PARITY_KAFKA_SECURITY_PROTOCOL).toBe('SASL_SSL');
    for (const name of ['pg-password', 'redis-password', 'kafka-password']) {
      expect(statSync(join(config.stateDir, 'secrets', name)).mode & 0o777).toBe(0o600);
    }
    // The Redis password lives in a mode-600 config file, never on the command line (the process title).
    expect(statSync(join(config.stateDir, 'redis', 'redis-secure.conf')).mode & 0o777).toBe(0o600);
  });
});

describe('PostgreSQL over TLS', () => {
  it('parity connects with verify-full against the CA, on TLS (pg_stat_ssl), also as a replication connection', async () => {
    const pool = createPgPool(E.PARITY_SOURCE_URL);
    try {
      const { rows } = await pool.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0]?.ssl).toBe(true);
    } finally {
      await pool.end();
    }
    // The CDC's replication connection (slot.ts, pg-logical-replication) reads the same URL settings.
    const repl = new pg.Client({ connectionString: E.PARITY_SOURCE_URL, replication: 'database' } as pg.ClientConfig);
    await repl.connect();
    try {
      const r = await repl.query('IDENTIFY_SYSTEM');
      expect(r.rows[0]).toHaveProperty('systemid');
    } finally {
      await repl.end();
    }
  });

  it('refuses a client without TLS, normal and replication', async () => {
    const plain = withParams(E.PARITY_SOURCE_URL, { sslmode: 'disable' });
    expect((await pgError({ connectionString: plain })).message).toMatch(/pg_hba\.conf rejects connection for host .* no encryption/);
    expect((await pgError({ connectionString: plain, replication: 'database' } as pg.ClientConfig)).message).toMatch(
      /pg_hba\.conf rejects (replication )?connection for host .* no encryption/,
    );
  });

  it('refuses a wrong password over TLS', async () => {
    const u = new URL(E.PARITY_SOURCE_URL);
    u.password = 'not-the-password';
    const err = await pgError({ connectionString: u.toString() });
    expect(err.code).toBe('28P01');
    expect(err.message).toMatch(/password authentication failed for user "parity"/);
  });

  it('refuses a server certificate its sslrootcert does not trust', async () => {
    const err = await pgError({ connectionString: withParams(E.PARITY_SOURCE_URL, { sslrootcert: otherCa }) });
    expect(err.code).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });
});

describe('Redis over TLS with an ACL user', () => {
  const spec = () => ({
    url: `rediss://127.0.0.1:${config.ports.redis}`,
    username: 'parity',
    password: E.PARITY_REDIS_PASSWORD!,
    tls: { ca: E.PARITY_CA_FILE!, verifyHostname: true },
  });

  it('parity connects with infra.redis (rediss://, CA, ACL user and password)', async () => {
    const redis = createRedis(spec(), { lazyConnect: true });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe('PONG');
      expect(await redis.acl('WHOAMI')).toBe('parity');
    } finally {
      redis.disconnect();
    }
  });

  it('refuses a plaintext client (the only port speaks TLS)', async () => {
    // redisError throws if PING answers; the plaintext client sees only a closed connection.
    expect(await redisError({ username: 'parity', password: E.PARITY_REDIS_PASSWORD! })).toMatch(/closed|ECONNRESET/i);
  });

  it('refuses a TLS client without the ACL password (the default user is off) and a wrong password', async () => {
    const tls = { ca: readFileSync(E.PARITY_CA_FILE!) };
    expect(await redisError({ tls })).toMatch(/NOAUTH/);
    expect(await redisError({ tls, username: 'parity', password: 'not-the-password' })).toMatch(/WRONGPASS/);
  });

  it('refuses a server certificate the CA does not trust', async () => {
    expect(await redisError({ tls: { ca: readFileSync(otherCa) }, username: 'parity', password: E.PARITY_REDIS_PASSWORD! })).toMatch(
      /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|self-signed certificate|unable to verify/,
    );
  });
});

describe('the registry over HTTPS with basic auth', () => {
  const registry = (password = E.PARITY_REGISTRY_PASSWORD!) => ({
    url: E.PARITY_REGISTRY_URL,
    tls: { ca: E.PARITY_CA_FILE!, verifyHostname: true },
    auth: { username: E.PARITY_REGISTRY_USER!, password },
  });

  it('parity connects with infra.registry (https://, CA, basic auth)', async () => {
    const client = createCcompatClient(registry());
    expect(await client.versions(`parity-secure-${Date.now()}`)).toEqual([]);
  });

  it("the CDC registration client and the decoders' registry client work over HTTPS with infra.registry.tls.ca and auth", async () => {
    const subject = `parity-secure-${Date.now()}-value`;
    const schema = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] };
    const id = await createRegistryClient(registry()).register(subject, schema, 'avro');
    expect(id).toBeGreaterThan(0);
    const read = await createSchemaRegistry(registry()).getSchema(id);
    expect(JSON.stringify(read)).toContain('"a"');
  });

  it('refuses a client without credentials and a wrong password: exit 2 naming the registry and infra.registry.auth, nothing registered', async () => {
    const subject = `parity-secure-refused-${Date.now()}-value`;
    const schema = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'int' }] };
    const anonymous = { url: E.PARITY_REGISTRY_URL, tls: { ca: E.PARITY_CA_FILE!, verifyHostname: true } };
    for (const spec of [anonymous, registry('wrong-password-123')]) {
      const err = await createRegistryClient(spec)
        .register(subject, schema, 'avro')
        .then(
          () => undefined,
          (e: unknown) => e as ParityError,
        );
      expect(err).toBeInstanceOf(ParityError);
      expect(err?.exitCode).toBe(2);
      expect(err?.retriable).toBe(false);
      expect(err?.message).toContain(`schema registry ${E.PARITY_REGISTRY_URL}`);
      expect(err?.message).toContain('refused the credentials (HTTP 401');
      expect(err?.hint).toContain('infra.registry.auth');
      expect(`${err?.message} ${err?.hint}`).not.toContain('wrong-password-123');
    }
    // Nothing was registered: the subject is unknown to the authenticated client.
    expect(await createCcompatClient(registry()).versions(subject)).toEqual([]);
  });

  it('serves no plain HTTP: http:// to its port is refused', async () => {
    const http = E.PARITY_REGISTRY_URL.replace(/^https:/, 'http:');
    const answer = await fetch(`${http}/subjects`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(answer === 'refused' || (typeof answer === 'number' && answer >= 400)).toBe(true);
  });

  it('an untrusted certificate is a clear error naming infra.registry.tls.ca, exit 2, not retried', async () => {
    const client = createCcompatClient({ url: E.PARITY_REGISTRY_URL, tls: { ca: otherCa, verifyHostname: true } });
    const err = await client.versions('any').then(
      () => undefined,
      (e: unknown) => e as ParityError,
    );
    expect(err).toBeInstanceOf(ParityError);
    expect(err?.exitCode).toBe(2);
    expect(err?.retriable).toBe(false);
    expect(err?.message).toContain(`schema registry ${E.PARITY_REGISTRY_URL}: TLS certificate not accepted`);
    expect(err?.hint).toContain('infra.registry.tls.ca');
  });

  it('through the CLI: compat gate with an untrusted CA exits 2 naming the setting, with no password in the output', () => {
    const doc = parseDocument(readFileSync(join(ROOT, 'schemas/examples/orders-multicurrency.yaml'), 'utf8'));
    doc.setIn(['infra', 'registry'], { url: '${PARITY_REGISTRY_URL}', tls: { ca: otherCa } });
    for (const i of [0, 1]) {
      const reader = doc.getIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema']) as string;
      doc.setIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema'], join(ROOT, 'schemas/examples', reader));
    }
    doc.setIn(['infra', 'redis'], { url: '${PARITY_REDIS_URL}', tls: { ca: E.PARITY_CA_FILE } });
    const specFile = join(dir, 'spec.yaml');
    writeFileSync(specFile, doc.toString());
    const r = spawnSync(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), 'compat', 'gate', '--spec', specFile, '--skip-live'], {
      env: { ...process.env, ...E },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('infra.registry.tls.ca');
    for (const secret of [E.PARITY_REDIS_PASSWORD!, new URL(E.PARITY_SOURCE_URL).password]) {
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
  });
});

describe('the registry through the CLI', () => {
  it('compat gate with a wrong registry password exits 2 naming the registry and infra.registry.auth, no password shown', () => {
    const doc = parseDocument(readFileSync(join(ROOT, 'schemas/examples/orders-multicurrency.yaml'), 'utf8'));
    doc.setIn(['infra', 'registry'], {
      url: '${PARITY_REGISTRY_URL}',
      tls: { ca: E.PARITY_CA_FILE },
      auth: { username: E.PARITY_REGISTRY_USER, password: '${PARITY_REGISTRY_PASSWORD}' },
    });
    for (const i of [0, 1]) {
      const reader = doc.getIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema']) as string;
      doc.setIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema'], join(ROOT, 'schemas/examples', reader));
    }
    doc.setIn(['infra', 'redis'], { url: '${PARITY_REDIS_URL}', tls: { ca: E.PARITY_CA_FILE } });
    const specFile = join(dir, 'spec-registry-auth.yaml');
    writeFileSync(specFile, doc.toString());
    const r = spawnSync(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), 'compat', 'gate', '--spec', specFile, '--skip-live'], {
      env: { ...process.env, ...E, PARITY_REGISTRY_PASSWORD: 'wrong-password-123' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`schema registry ${E.PARITY_REGISTRY_URL} refused the credentials (HTTP 401`);
    expect(r.stderr).toContain('infra.registry.auth');
    for (const secret of ['wrong-password-123', E.PARITY_REGISTRY_PASSWORD!, E.PARITY_REDIS_PASSWORD!]) {
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
  });
});

/** Runs `parity <args> --spec <the example spec>` with `env` over the secured stack's settings. */
function cli(args: string[], overrides: Record<string, string>, redisCa = E.PARITY_CA_FILE): { status: number | null; out: string } {
  const doc = parseDocument(readFileSync(join(ROOT, 'schemas/examples/orders-multicurrency.yaml'), 'utf8'));
  doc.setIn(['infra', 'redis'], {
    url: `rediss://127.0.0.1:${config.ports.redis}`,
    username: 'parity',
    password: '${PARITY_REDIS_PASSWORD}',
    tls: { ca: redisCa },
  });
  for (const i of [0, 1]) {
    const reader = doc.getIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema']) as string;
    doc.setIn(['events', 'subjects', 0, 'consumers', i, 'readerSchema'], join(ROOT, 'schemas/examples', reader));
  }
  const specFile = join(dir, `spec-${args.join('-')}.yaml`);
  writeFileSync(specFile, doc.toString());
  const r = spawnSync(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), ...args, '--spec', specFile], {
    env: { ...process.env, ...E, ...overrides },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('refusals through the CLI: exit 2, the connection and the setting named, no secret shown', () => {
  const secrets = () => [E.PARITY_REDIS_PASSWORD!, new URL(E.PARITY_SOURCE_URL).password, 'wrong-password-123'];

  it('PostgreSQL: a wrong password', () => {
    const u = new URL(E.PARITY_SOURCE_URL);
    u.password = 'wrong-password-123';
    const r = cli(['cdc', 'status'], { PARITY_SOURCE_URL: u.toString() });
    expect(r.status).toBe(2);
    expect(r.out).toContain('password authentication failed for user "parity"');
    expect(r.out).toContain('check the password in the database URL');
    for (const secret of secrets()) expect(r.out).not.toContain(secret);
  });

  it('PostgreSQL: an untrusted certificate (sslrootcert of another CA)', () => {
    const r = cli(['cdc', 'status'], { PARITY_SOURCE_URL: withParams(E.PARITY_SOURCE_URL, { sslrootcert: otherCa }) });
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/TLS certificate not accepted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/);
    expect(r.out).toContain('sslrootcert');
    for (const secret of secrets()) expect(r.out).not.toContain(secret);
  });

  it('Redis: a wrong ACL password', () => {
    const r = cli(['flags', 'get'], { PARITY_REDIS_PASSWORD: 'wrong-password-123' });
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/reading flags: WRONGPASS/);
    expect(r.out).toContain('infra.redis.password');
    for (const secret of secrets()) expect(r.out).not.toContain(secret);
  });

  it('Redis: an untrusted certificate (infra.redis.tls.ca of another CA)', () => {
    const r = cli(['flags', 'get'], {}, otherCa);
    expect(r.status).toBe(2);
    expect(r.out).toMatch(
      /Redis \(infra\.redis\): TLS certificate not accepted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\)/,
    );
    expect(r.out).toContain('point infra.redis.tls.ca at the CA that signed the server certificate');
    for (const secret of secrets()) expect(r.out).not.toContain(secret);
  });
});

describe('Kafka SASL_SSL only', () => {
  it('a plaintext client gets no metadata from the secured broker', async () => {
    const admin = new Admin({
      clientId: 'parity-secure-test',
      bootstrapBrokers: [E.PARITY_KAFKA_BROKER],
      retries: 0,
      connectTimeout: 3_000,
      timeout: 5_000,
    });
    try {
      await expect(admin.metadata({ topics: [], forceUpdate: true })).rejects.toThrow();
    } finally {
      await admin.close().catch(() => undefined);
    }
  });
});
