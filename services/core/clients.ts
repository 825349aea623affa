/**
 * Client factories for the four real parts parity talks to. Services receive clients through their
 * factory parameters; only the CLI layer calls these.
 */
import pg from 'pg';
import {
  Admin,
  Consumer,
  Producer,
  stringDeserializer,
  type ConnectionOptions,
  type ConsumerOptions,
  type Message,
  type ProducerOptions,
} from '@platformatic/kafka';
import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Redis, RedisOptions } from 'ioredis';
import { createRequire } from 'node:module';
import type { Logger } from './log.js';
import { noteConnectionRefusal } from './errors.js';
import { resolveKafkaSecurity, type KafkaSecurity, type KafkaSecuritySpec } from './kafka-security.js';
import { resolveRedisSecurity, resolveRegistrySecurity, type RedisSpec, type RegistrySpec } from './connection-security.js';
import { Agent as HttpsAgent } from 'node:https';

// Loaded on first use, not at import: every service imports this module, and the registry client (with its
// JSON Schema and HTTP stacks) and ioredis together add ~50 MB of resident code to processes that never
// use them (`cdc run` uses neither). Both packages are CommonJS, so a synchronous require keeps the
// factories synchronous.
const requireLazily = createRequire(import.meta.url);

export interface PgOptions {
  applicationName?: string;
  max?: number;
  statementTimeoutMs?: number;
}

/** The same PostgreSQL connection URL pointed at another database on that server. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export function createPgPool(connectionString: string, options: PgOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    application_name: options.applicationName ?? 'parity',
    max: options.max ?? 4,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

export function createPgClient(connectionString: string, options: PgOptions = {}): pg.Client {
  return new pg.Client({ connectionString, application_name: options.applicationName ?? 'parity' });
}

/** Bytes for Kafka: Buffers as they are, text as UTF-8. */
export type KafkaBytes = Buffer | string;

function toBytes(data?: KafkaBytes): Buffer | undefined {
  return data === undefined || data === null ? undefined : typeof data === 'string' ? Buffer.from(data) : data;
}

/** A producer taking Buffer or text keys, values and header values (null key: leave `key` out). */
export type KafkaProducer = Producer<KafkaBytes, KafkaBytes, string, KafkaBytes>;
/** A consumer handing out raw key and value bytes (undefined for null) and text header names. */
export type KafkaConsumer = Consumer<Buffer, Buffer, string, Buffer>;
/** A message such a consumer hands out: raw key and value bytes (undefined for null), bigint offset. */
export type ConsumedMessage = Message<Buffer, Buffer, string, Buffer>;

export interface KafkaProducerOptions {
  /** Idempotent with acks=all (default true): what every parity producer wants. */
  idempotent?: boolean;
  clientId?: string;
  /** Send attempts after the first for one request (the client's own retry); default 5. */
  retries?: number;
}

export interface KafkaConsumerOptions {
  groupId: string;
  clientId?: string;
  /** How long a fetch may wait for data, ms; default 100. */
  maxWaitMs?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Messages buffered ahead of the application (the stream's high-water mark); default 1024. */
  highWaterMark?: number;
}

/**
 * One place that knows how to reach Kafka (brokers, client id, and later TLS/SASL): services get
 * this and ask it for the admin, producers and consumers they need (all @platformatic/kafka).
 */
export interface KafkaClients {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** TLS and SASL settings, resolved (the CDC's hand-written produce path connects with the same). */
  readonly security: KafkaSecurity;
  admin(clientId?: string): Admin;
  producer(options?: KafkaProducerOptions): KafkaProducer;
  consumer(options: KafkaConsumerOptions): KafkaConsumer;
}

/** kafka.security as @platformatic/kafka's public connection options (tls, sasl). */
function platformaticSecurity(security: KafkaSecurity): Pick<ConnectionOptions, 'tls' | 'sasl'> {
  const out: Pick<ConnectionOptions, 'tls' | 'sasl'> = {};
  if (security.tls) out.tls = security.tls;
  if (security.sasl) {
    const { mechanism, username, password, token } = security.sasl;
    out.sasl = { mechanism, ...(username ? { username } : {}), ...(password ? { password } : {}), ...(token ? { token } : {}) };
  }
  return out;
}

/** Client factory for Kafka. `brokers` are host:port strings; use 127.0.0.1 rather than localhost. */
export function createKafka(
  brokers: string[],
  options: { clientId?: string; logger?: Logger; timeoutMs?: number; security?: KafkaSecurity } = {},
): KafkaClients {
  const clientId = options.clientId ?? 'parity';
  const security = options.security ?? { protocol: 'PLAINTEXT' as const };
  const base = {
    ...platformaticSecurity(security),
    bootstrapBrokers: [...brokers],
    timeout: options.timeoutMs ?? 30_000,
    connectTimeout: 10_000,
    retries: 5,
    retryDelay: 250,
    // Topics are created explicitly (with their partition count); never by a metadata request.
    autocreateTopics: false,
  };
  return {
    brokers: [...brokers],
    clientId,
    security,
    admin(id) {
      return new Admin({ ...base, clientId: id ?? `${clientId}-admin` });
    },
    producer(p = {}) {
      const opts: ProducerOptions<KafkaBytes, KafkaBytes, string, KafkaBytes> = {
        ...base,
        clientId: p.clientId ?? `${clientId}-producer`,
        idempotent: p.idempotent ?? true,
        retries: p.retries ?? 5,
        serializers: { key: toBytes, value: toBytes, headerKey: toBytes, headerValue: toBytes },
      };
      if (opts.idempotent) opts.acks = -1;
      return new Producer(opts);
    },
    consumer(c) {
      const opts: ConsumerOptions<Buffer, Buffer, string, Buffer> = {
        ...base,
        clientId: c.clientId ?? `${clientId}-consumer`,
        groupId: c.groupId,
        maxWaitTime: c.maxWaitMs ?? 100,
        sessionTimeout: c.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: c.heartbeatIntervalMs ?? 3_000,
        highWaterMark: c.highWaterMark ?? 1024,
        deserializers: { headerKey: (data?: Buffer) => stringDeserializer(data) ?? '' },
      };
      return new Consumer(opts);
    },
  };
}

/**
 * The Kafka clients of a spec's `infra.kafka`: its brokers with its security settings resolved (CA,
 * client certificate and key read from their files, the OAUTHBEARER token from its variable).
 * Throws PARITY_BAD_INPUT when a file or the token is missing.
 */
export function createKafkaForSpec(
  kafka: { brokers: string[]; security?: KafkaSecuritySpec | undefined },
  options: { clientId?: string; logger?: Logger; timeoutMs?: number } = {},
): KafkaClients {
  return createKafka(kafka.brokers, { ...options, security: resolveKafkaSecurity(kafka.security) });
}

/**
 * The registry client of @kafkajs/confluent-schema-registry for `infra.registry` (or a bare URL, the
 * Confluent-compatible base, e.g. http://127.0.0.1:18081/apis/ccompat/v7): its CA through an https
 * agent, basic auth or a bearer token as the Authorization header.
 */
export function createSchemaRegistry(registry: string | RegistrySpec): SchemaRegistry {
  const spec = typeof registry === 'string' ? { url: registry } : registry;
  const security = resolveRegistrySecurity(spec);
  const authorization = security.authorization;
  const { SchemaRegistry: Registry } = requireLazily(
    '@kafkajs/confluent-schema-registry',
  ) as typeof import('@kafkajs/confluent-schema-registry');
  return new Registry({
    host: spec.url,
    ...(security.tls ? { agent: new HttpsAgent({ ...security.tls, keepAlive: true }) } : {}),
    // A header middleware rather than the library's `auth`: it carries a bearer token as well.
    ...(authorization
      ? {
          middlewares: [
            () => ({
              prepareRequest: (next: () => Promise<{ enhance(r: { headers: Record<string, string> }): unknown }>) =>
                next().then((req) => req.enhance({ headers: { authorization } })),
            }),
          ] as never,
        }
      : {}),
  });
}

/**
 * A Redis client for `infra.redis` (or a bare URL): rediss:// with its CA and client certificate,
 * the ACL user and password from the spec (the URL's own user:password otherwise).
 */
export function createRedis(redis: string | RedisSpec, options: RedisOptions = {}): Redis {
  const spec = typeof redis === 'string' ? { url: redis } : redis;
  const security = resolveRedisSecurity(spec);
  const { Redis: RedisClient } = requireLazily('ioredis') as typeof import('ioredis');
  const client = new RedisClient(spec.url, {
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    ...(security.tls ? { tls: security.tls } : {}),
    ...(security.username ? { username: security.username } : {}),
    ...(security.password ? { password: security.password } : {}),
    ...options,
  });
  // ioredis reports a TLS or login refusal only as this event; its commands then fail with "max retries".
  // Being a listener, it also keeps an 'error' event from crashing the process: callers need none of their own.
  client.on('error', (err: unknown) => noteConnectionRefusal(err, 'Redis (infra.redis)', 'infra.redis.tls.ca'));
  return client;
}
