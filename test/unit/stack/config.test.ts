import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isParityError } from '../../../services/core/errors.js';
import {
  DEFAULT_KAFKA_VERSION,
  kafkaLogging,
  kafkaNodes,
  LEGACY_KAFKA_VERSION,
  stackConfig,
  stackEnv,
} from '../../../services/stack/config.js';
import { scramVerifier } from '../../../services/stack/pg-auth.js';

const dirs: string[] = [];
function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parity-stack-config-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function badInput(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(isParityError(err, 'PARITY_BAD_INPUT')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected PARITY_BAD_INPUT');
}

describe('stack config', () => {
  it('gives a fresh state dir Kafka 4.4.0 on one node, controller right after the broker', () => {
    const c = stackConfig({ PARITY_STATE_DIR: stateDir() });
    expect(c.kafka).toEqual({ version: DEFAULT_KAFKA_VERSION, brokers: 1 });
    expect(c.ports.kafka).toBe(19092);
    expect(c.ports.kafkaController).toBe(19093);
    expect(stackEnv(c).PARITY_KAFKA_BROKERS).toBe('127.0.0.1:19092');
  });

  it('puts three nodes on consecutive ports, controllers after the brokers, all in PARITY_KAFKA_BROKERS', () => {
    const c = stackConfig({ PARITY_STATE_DIR: stateDir(), PARITY_KAFKA_PORT: '30000' }, { brokers: 3 });
    expect(kafkaNodes(c)).toEqual([
      { id: 1, port: 30000, controllerPort: 30003 },
      { id: 2, port: 30001, controllerPort: 30004 },
      { id: 3, port: 30002, controllerPort: 30005 },
    ]);
    expect(stackEnv(c).PARITY_KAFKA_BROKERS).toBe('127.0.0.1:30000,127.0.0.1:30001,127.0.0.1:30002');
    expect(stackEnv(c).PARITY_KAFKA_BROKER).toBe('127.0.0.1:30000');
  });

  it('reads the version and broker count a state dir recorded, and treats an unrecorded formatted one as 3.9.1 on one node', () => {
    const recorded = stateDir();
    mkdirSync(join(recorded, 'kafka'), { recursive: true });
    writeFileSync(join(recorded, 'kafka', 'cluster.json'), JSON.stringify({ version: '4.1.1', brokers: 3 }));
    const c = stackConfig({ PARITY_STATE_DIR: recorded });
    expect(c.kafka).toEqual({ version: '4.1.1', brokers: 3 });
    expect(c.kafkaRequested).toEqual({});
    expect(stackEnv(c).PARITY_KAFKA_BROKERS.split(',')).toHaveLength(3);

    const legacy = stateDir();
    mkdirSync(join(legacy, 'kafka', 'data'), { recursive: true });
    writeFileSync(join(legacy, 'kafka', 'data', 'meta.properties'), 'version=1\n');
    expect(stackConfig({ PARITY_STATE_DIR: legacy }).kafka).toEqual({ version: LEGACY_KAFKA_VERSION, brokers: 1 });

    // What was asked for explicitly is kept apart, so `stack up` can refuse what the state dir cannot take.
    const asked = stackConfig({ PARITY_STATE_DIR: recorded, PARITY_KAFKA_VERSION: '3.9.1' }, { brokers: 1 });
    expect(asked.kafkaRequested).toEqual({ version: '3.9.1', brokers: 1 });
    expect(asked.kafkaRecorded).toEqual({ version: '4.1.1', brokers: 3 });
  });

  it('refuses ports that are not ports, two services on one port, unknown versions and broker counts', () => {
    const dir = stateDir();
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir, PARITY_REDIS_PORT: '6379x' }))).toContain('PARITY_REDIS_PORT=6379x');
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir, PARITY_PG_TARGET_PORT: '70000' }))).toContain('PARITY_PG_TARGET_PORT=70000');
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir, PARITY_REDIS_PORT: '54329' }))).toMatch(
      /port 54329 is wanted by both pg-source and redis/,
    );
    // Three brokers from 19092 need 19092-19094: an explicit controller port inside that range clashes.
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir, PARITY_KAFKA_CONTROLLER_PORT: '19093' }, { brokers: 3 }))).toMatch(
      /kafka node 2 \(broker\)/,
    );
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir, PARITY_KAFKA_VERSION: '2.8.2' }))).toContain('PARITY_KAFKA_VERSION=2.8.2');
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir, PARITY_KAFKA_VERSION: '4.x' }))).toContain('PARITY_KAFKA_VERSION=4.x');
    expect(badInput(() => stackConfig({ PARITY_STATE_DIR: dir }, { brokers: 2 }))).toContain('--brokers 2');
  });

  it('logs Kafka 4.x through log4j2 and 3.x through reload4j', () => {
    expect(kafkaLogging('4.4.0')).toBe('log4j2');
    expect(kafkaLogging('3.9.1')).toBe('reload4j');
  });

  it('puts the generated password in the PostgreSQL URLs, URL-encoded, once a state dir has one', () => {
    const dir = stateDir();
    expect(stackEnv(stackConfig({ PARITY_STATE_DIR: dir })).PARITY_SOURCE_URL).toBe('postgres://parity@127.0.0.1:54329/parity');
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    writeFileSync(join(dir, 'secrets', 'pg-password'), 'a/b@c\n');
    const env = stackEnv(stackConfig({ PARITY_STATE_DIR: dir }));
    expect(env.PARITY_SOURCE_URL).toBe('postgres://parity:a%2Fb%40c@127.0.0.1:54329/parity');
    expect(decodeURIComponent(new URL(env.PARITY_TARGET_URL).password)).toBe('a/b@c');
  });
});

describe('scram verifier', () => {
  it('has PostgreSQL’s text form and the keys RFC 5802 derives from the password and salt', () => {
    const salt = Buffer.from('0123456789abcdef');
    const verifier = scramVerifier('pencil', salt, 4096);
    const m = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1]!, 'base64')).toEqual(salt);
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
    const serverKey = createHmac('sha256', salted).update('Server Key').digest('base64');
    expect(m![2]).toBe(storedKey);
    expect(m![3]).toBe(serverKey);
    // A fresh salt each time: two verifiers of one password differ.
    expect(scramVerifier('pencil')).not.toBe(scramVerifier('pencil'));
  });
});

describe('the secured stack settings (stack up --secure)', () => {
  it('has its own state dir and ports (+100), so it never touches the plaintext stack', () => {
    const plain = stackConfig({});
    const secure = stackConfig({}, { secure: true });
    expect(secure.secure).toBe(true);
    expect(secure.stateDir).toMatch(/\.parity-secure$/);
    expect(secure.stateDir).not.toBe(plain.stateDir);
    expect(secure.ports.pgSource).toBe(plain.ports.pgSource + 100);
    expect(secure.ports.redis).toBe(plain.ports.redis + 100);
    expect(stackConfig({ PARITY_STACK_SECURE: '1' }).secure).toBe(true);
    expect(stackConfig({ PARITY_STACK_SECURE: '0' }).secure).toBe(false);
  });

  it('stack env prints verify-full URLs, rediss:// with the ACL user, https:// with basic auth and the Kafka SASL settings', () => {
    const dir = stateDir();
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    writeFileSync(join(dir, 'secrets', 'pg-password'), 'pgpw1234\n');
    writeFileSync(join(dir, 'secrets', 'redis-password'), 'redispw1234\n');
    writeFileSync(join(dir, 'secrets', 'kafka-password'), 'kafkapw1234\n');
    writeFileSync(join(dir, 'secrets', 'registry-password'), 'registrypw1234\n');
    const env = stackEnv(stackConfig({ PARITY_STATE_DIR: dir }, { secure: true }));
    const ca = join(dir, 'certs', 'ca-bundle.pem');
    const source = new URL(env.PARITY_SOURCE_URL);
    expect(source.password).toBe('pgpw1234');
    expect(source.searchParams.get('sslmode')).toBe('verify-full');
    expect(source.searchParams.get('sslrootcert')).toBe(ca);
    expect(env.PARITY_REDIS_URL).toBe('rediss://parity:redispw1234@127.0.0.1:16479');
    expect(env.PARITY_REGISTRY_URL).toBe('https://127.0.0.1:18181/apis/ccompat/v7');
    expect(env).toMatchObject({
      PARITY_CA_FILE: ca,
      PARITY_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      PARITY_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      PARITY_KAFKA_USER: 'parity',
      PARITY_KAFKA_PASSWORD: 'kafkapw1234',
      PARITY_REGISTRY_USER: 'parity',
      PARITY_REGISTRY_PASSWORD: 'registrypw1234',
    });
    // The plaintext stack's settings carry none of it.
    expect(stackEnv(stackConfig({ PARITY_STATE_DIR: dir })).PARITY_CA_FILE).toBeUndefined();
  });
});
