/**
 * Where the local stack lives and how to reach it. Everything is bound to 127.0.0.1 on non-default
 * ports so it never collides with a developer's own PostgreSQL, Kafka or Redis.
 *
 * Settings come from the environment (PARITY_*), except what a state directory fixes when it is first
 * initialised: the Kafka version and broker count are recorded in `<state>/kafka/cluster.json` and
 * reused by later commands (`stack env` prints every broker of a three-node cluster without a flag).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ParityError } from '../core/errors.js';
import { projectRoot } from '../core/project-root.js';

export const PROJECT_ROOT = projectRoot();

/** The Kafka a fresh state directory gets; `PARITY_KAFKA_VERSION` picks another (3.9.x is still tested). */
export const DEFAULT_KAFKA_VERSION = '4.4.0';
/** What a state directory initialised before versions were recorded holds (the only version it could). */
export const LEGACY_KAFKA_VERSION = '3.9.1';
export const APICURIO_VERSION = '3.3.3';
/** Broker counts `stack up --brokers` accepts: one node, or a three-node quorum. */
export const BROKER_COUNTS = [1, 3] as const;

export type ServiceName = 'pg-source' | 'pg-target' | 'kafka' | 'registry' | 'redis';
export const SERVICES: ServiceName[] = ['pg-source', 'pg-target', 'kafka', 'registry', 'redis'];

export interface KafkaSettings {
  version: string;
  brokers: number;
}

export interface StackConfig {
  /**
   * The secured stack (`stack up --secure`, PARITY_STACK_SECURE=1, secure.ts): TLS everywhere, SCRAM
   * users, no plaintext listener; its own state dir (.parity-secure) and ports, so it never touches
   * the plaintext stack.
   */
  secure: boolean;
  stateDir: string;
  cacheDir: string;
  /** PostgreSQL data lives where the non-root server user can reach it. */
  pgRoot: string;
  pgBinDir: string;
  /** `kafka` and `kafkaController` are the first node's; node i (0-based) uses the port + i. */
  ports: {
    pgSource: number;
    pgTarget: number;
    kafka: number;
    kafkaController: number;
    registry: number;
    registryManagement: number;
    redis: number;
  };
  pgUser: string;
  pgDatabase: string;
  /** The stack's own generated password for TCP connections (scram-sha-256); undefined before the first `stack up`. */
  pgPassword: string | undefined;
  kafka: KafkaSettings;
  /** What was asked for explicitly (environment or `--brokers`), to refuse what an existing state dir cannot take. */
  kafkaRequested: Partial<KafkaSettings>;
  /** What the state dir recorded when its Kafka was first formatted, if anything. */
  kafkaRecorded: KafkaSettings | undefined;
}

export interface StackConfigOptions {
  /** `stack up --brokers N`. */
  brokers?: number;
  /** `stack up --secure` (else PARITY_STACK_SECURE=1). */
  secure?: boolean;
}

/** The secured stack's default ports: the plaintext defaults + 100, so both stacks can run at once. */
export const SECURE_PORT_OFFSET = 100;

const PORT_VARIABLES = {
  pgSource: 'PARITY_PG_SOURCE_PORT',
  pgTarget: 'PARITY_PG_TARGET_PORT',
  kafka: 'PARITY_KAFKA_PORT',
  kafkaController: 'PARITY_KAFKA_CONTROLLER_PORT',
  registry: 'PARITY_REGISTRY_PORT',
  registryManagement: 'PARITY_REGISTRY_MANAGEMENT_PORT',
  redis: 'PARITY_REDIS_PORT',
} as const;

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1024 || n > 65535) {
    throw new ParityError('PARITY_BAD_INPUT', `${name}=${v} is not a usable port`, {
      hint: `set ${name} to a whole number between 1024 and 65535, or unset it for the default`,
    });
  }
  return n;
}

/** Checks a Kafka version string: released 3.x (KRaft, 3.7 or newer) or 4.x. */
export function checkKafkaVersion(version: string, source = 'PARITY_KAFKA_VERSION'): string {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  const major = m ? Number(m[1]) : 0;
  const minor = m ? Number(m[2]) : 0;
  if (!m || !((major === 3 && minor >= 7) || major === 4)) {
    throw new ParityError('PARITY_BAD_INPUT', `${source}=${version} is not a Kafka version the local stack can run`, {
      hint: `use a released Apache Kafka 3.7+ or 4.x version such as ${DEFAULT_KAFKA_VERSION} (default) or ${LEGACY_KAFKA_VERSION}`,
    });
  }
  return version;
}

/** Kafka 4.x logs through log4j2, 3.x through reload4j (log4j 1 API); the POM profile and the config file differ. */
export function kafkaLogging(version: string): 'log4j2' | 'reload4j' {
  return version.startsWith('3.') ? 'reload4j' : 'log4j2';
}

export function kafkaClusterFile(stateDir: string): string {
  return join(stateDir, 'kafka', 'cluster.json');
}

/** The settings a state dir's Kafka was formatted with, if it was. */
export function recordedKafka(stateDir: string): KafkaSettings | undefined {
  const file = kafkaClusterFile(stateDir);
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as KafkaSettings;
    return { version: parsed.version, brokers: parsed.brokers };
  }
  // Formatted by a parity that did not record its settings: one node of the only version it ran.
  if (existsSync(join(stateDir, 'kafka', 'data', 'meta.properties'))) return { version: LEGACY_KAFKA_VERSION, brokers: 1 };
  return undefined;
}

export function pgPasswordFile(stateDir: string): string {
  return join(stateDir, 'secrets', 'pg-password');
}

/** A generated secret of the secured stack (secure.ts): `<state>/secrets/<name>`, mode 600. */
export type StackSecretName = 'redis-password' | 'kafka-password' | 'registry-password';

export function stackSecretFile(stateDir: string, name: StackSecretName): string {
  return join(stateDir, 'secrets', name);
}

/** The secured stack's CA bundle (its own CA and the Kafka broker's): the one CA file its clients need. */
export function caBundleFile(stateDir: string): string {
  return join(stateDir, 'certs', 'ca-bundle.pem');
}

const readSecret = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim() : '');

export function stackConfig(env: NodeJS.ProcessEnv = process.env, options: StackConfigOptions = {}): StackConfig {
  const secure = options.secure ?? env.PARITY_STACK_SECURE === '1';
  const stateDir = resolve(env.PARITY_STATE_DIR ?? join(PROJECT_ROOT, secure ? '.parity-secure' : '.parity'));
  const off = secure ? SECURE_PORT_OFFSET : 0;
  const cacheDir = resolve(env.PARITY_CACHE_DIR ?? join(homedir(), '.cache', 'parity'));
  const isRoot = process.getuid?.() === 0;
  // Run as root, the server runs as the `postgres` user, which may not traverse a private checkout
  // (mktemp -d is mode 700), so its data goes to a folder of its own keyed by the state dir.
  const pgRoot = isRoot ? `/tmp/parity-pg-${createHash('sha1').update(stateDir).digest('hex').slice(0, 10)}` : join(stateDir, 'pg');

  const requested: Partial<KafkaSettings> = {};
  if (env.PARITY_KAFKA_VERSION) requested.version = checkKafkaVersion(env.PARITY_KAFKA_VERSION);
  if (options.brokers !== undefined) {
    if (!(BROKER_COUNTS as readonly number[]).includes(options.brokers)) {
      throw new ParityError('PARITY_BAD_INPUT', `--brokers ${options.brokers} is not supported`, {
        hint: `use --brokers ${BROKER_COUNTS.join(' or --brokers ')}`,
      });
    }
    requested.brokers = options.brokers;
  }
  const recorded = recordedKafka(stateDir);
  const kafka: KafkaSettings = {
    version: requested.version ?? recorded?.version ?? DEFAULT_KAFKA_VERSION,
    brokers: requested.brokers ?? recorded?.brokers ?? 1,
  };

  const kafkaPort = port(env, PORT_VARIABLES.kafka, 19092 + off);
  const registryPort = port(env, PORT_VARIABLES.registry, 18081 + off);
  const ports = {
    pgSource: port(env, PORT_VARIABLES.pgSource, 54329 + off),
    pgTarget: port(env, PORT_VARIABLES.pgTarget, 54339 + off),
    kafka: kafkaPort,
    // Controllers follow the brokers: 19093 for one node, 19095-19097 for three.
    kafkaController: port(env, PORT_VARIABLES.kafkaController, kafkaPort + kafka.brokers),
    registry: registryPort,
    registryManagement: port(env, PORT_VARIABLES.registryManagement, registryPort + 1),
    redis: port(env, PORT_VARIABLES.redis, 16379 + off),
  };
  checkPortsDistinct(ports, kafka.brokers);

  const passwordFile = pgPasswordFile(stateDir);
  return {
    secure,
    stateDir,
    cacheDir,
    pgRoot,
    pgBinDir: env.PARITY_PG_BINDIR ?? '/usr/lib/postgresql/15/bin',
    ports,
    pgUser: 'parity',
    pgDatabase: 'parity',
    pgPassword: existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : undefined,
    kafka,
    kafkaRequested: requested,
    kafkaRecorded: recorded,
  };
}

/** Two services (or two Kafka nodes) on one port would fail at start with a confusing log line. */
function checkPortsDistinct(ports: StackConfig['ports'], brokers: number): void {
  const owners = new Map<number, string>();
  const claim = (p: number, who: string) => {
    const other = owners.get(p);
    if (other) {
      throw new ParityError('PARITY_BAD_INPUT', `port ${p} is wanted by both ${other} and ${who}`, {
        hint: `move one of them with ${Object.values(PORT_VARIABLES).join(', ')} (Kafka node i uses PARITY_KAFKA_PORT + i and PARITY_KAFKA_CONTROLLER_PORT + i)`,
      });
    }
    owners.set(p, who);
  };
  claim(ports.pgSource, 'pg-source');
  claim(ports.pgTarget, 'pg-target');
  for (let i = 0; i < brokers; i++) {
    claim(ports.kafka + i, `kafka node ${i + 1} (broker)`);
    claim(ports.kafkaController + i, `kafka node ${i + 1} (controller)`);
  }
  claim(ports.registry, 'registry');
  claim(ports.registryManagement, 'registry (management)');
  claim(ports.redis, 'redis');
}

/** The Kafka nodes of the configured cluster: node ids 1..N on consecutive ports. */
export function kafkaNodes(config: StackConfig): { id: number; port: number; controllerPort: number }[] {
  return Array.from({ length: config.kafka.brokers }, (_, i) => ({
    id: i + 1,
    port: config.ports.kafka + i,
    controllerPort: config.ports.kafkaController + i,
  }));
}

export interface StackEnv {
  /** PostgreSQL URLs; on the secured stack with sslmode=verify-full&sslrootcert=<CA bundle>. */
  PARITY_SOURCE_URL: string;
  PARITY_TARGET_URL: string;
  PARITY_KAFKA_BROKER: string;
  PARITY_KAFKA_BROKERS: string;
  PARITY_REGISTRY_URL: string;
  PARITY_REDIS_URL: string;
  PARITY_PG_BINDIR: string;
  /** The secured stack only: CA bundle, Redis ACL user, Kafka SASL settings (with the generated passwords). */
  PARITY_CA_FILE?: string;
  PARITY_REDIS_USER?: string;
  PARITY_REDIS_PASSWORD?: string;
  PARITY_KAFKA_SECURITY_PROTOCOL?: string;
  PARITY_KAFKA_SASL_MECHANISM?: string;
  PARITY_KAFKA_USER?: string;
  PARITY_KAFKA_PASSWORD?: string;
  PARITY_KAFKA_CA?: string;
  /** The secured stack only: the registry's basic-auth user and password. */
  PARITY_REGISTRY_USER?: string;
  PARITY_REGISTRY_PASSWORD?: string;
}

/**
 * Connection settings of the local stack. The PostgreSQL URLs carry the stack's generated dev
 * password (a local throwaway, not a production secret; `stack env` prints it, nothing logs it).
 */
export function stackEnv(config: StackConfig = stackConfig()): StackEnv {
  const p = config.ports;
  const auth = config.pgPassword ? `${config.pgUser}:${encodeURIComponent(config.pgPassword)}` : config.pgUser;
  const brokers = kafkaNodes(config).map((n) => `127.0.0.1:${n.port}`);
  if (config.secure) return secureStackEnv(config, auth, brokers);
  return {
    PARITY_SOURCE_URL: `postgres://${auth}@127.0.0.1:${p.pgSource}/${config.pgDatabase}`,
    PARITY_TARGET_URL: `postgres://${auth}@127.0.0.1:${p.pgTarget}/${config.pgDatabase}`,
    PARITY_KAFKA_BROKER: brokers[0]!,
    PARITY_KAFKA_BROKERS: brokers.join(','),
    PARITY_REGISTRY_URL: `http://127.0.0.1:${p.registry}/apis/ccompat/v7`,
    PARITY_REDIS_URL: `redis://127.0.0.1:${p.redis}`,
    PARITY_PG_BINDIR: config.pgBinDir,
  };
}

/**
 * The secured stack's settings (secure.ts): PostgreSQL with verify-full against the CA bundle, Redis
 * over rediss:// as the ACL user, the registry over https://, Kafka SASL_SSL with SCRAM-SHA-512. The
 * passwords are the state dir's generated local ones (mode 600 files), printed here and nowhere else.
 */
function secureStackEnv(config: StackConfig, auth: string, brokers: string[]): StackEnv {
  const p = config.ports;
  const ca = caBundleFile(config.stateDir);
  const tls = `?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;
  const redisPassword = readSecret(stackSecretFile(config.stateDir, 'redis-password'));
  return {
    PARITY_SOURCE_URL: `postgres://${auth}@127.0.0.1:${p.pgSource}/${config.pgDatabase}${tls}`,
    PARITY_TARGET_URL: `postgres://${auth}@127.0.0.1:${p.pgTarget}/${config.pgDatabase}${tls}`,
    PARITY_KAFKA_BROKER: brokers[0]!,
    PARITY_KAFKA_BROKERS: brokers.join(','),
    PARITY_REGISTRY_URL: `https://127.0.0.1:${p.registry}/apis/ccompat/v7`,
    PARITY_REDIS_URL: `rediss://parity:${encodeURIComponent(redisPassword)}@127.0.0.1:${p.redis}`,
    PARITY_PG_BINDIR: config.pgBinDir,
    PARITY_CA_FILE: ca,
    PARITY_REDIS_USER: 'parity',
    PARITY_REDIS_PASSWORD: redisPassword,
    PARITY_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
    PARITY_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    PARITY_KAFKA_USER: 'parity',
    PARITY_KAFKA_PASSWORD: readSecret(stackSecretFile(config.stateDir, 'kafka-password')),
    PARITY_KAFKA_CA: ca,
    PARITY_REGISTRY_USER: 'parity',
    PARITY_REGISTRY_PASSWORD: readSecret(stackSecretFile(config.stateDir, 'registry-password')),
  };
}
