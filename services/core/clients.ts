/**
 * Client factories for the four real parts parity talks to. Services receive clients through their
 * factory parameters; only the CLI layer calls these.
 */
import pg from 'pg';
import { Kafka, logLevel as KafkaLogLevel, type KafkaConfig, type logCreator } from 'kafkajs';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from './log.js';

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

/** Routes kafkajs's own logging into pino at warn and above. */
function kafkaLogCreator(logger: Logger | undefined): logCreator {
  return () => ({ level, log }) => {
    if (!logger) return;
    const { message, ...rest } = log;
    if (level <= KafkaLogLevel.ERROR) logger.error({ kafka: rest }, message);
    else if (level === KafkaLogLevel.WARN) logger.warn({ kafka: rest }, message);
  };
}

export function createKafka(brokers: string[], options: { clientId?: string; logger?: Logger; extra?: Partial<KafkaConfig> } = {}): Kafka {
  return new Kafka({
    clientId: options.clientId ?? 'parity',
    brokers,
    logLevel: KafkaLogLevel.WARN,
    logCreator: kafkaLogCreator(options.logger),
    retry: { initialRetryTime: 100, retries: 8 },
    ...options.extra,
  });
}

/** `url` is the Confluent-compatible base, e.g. http://127.0.0.1:18081/apis/ccompat/v7. */
export function createSchemaRegistry(url: string): SchemaRegistry {
  return new SchemaRegistry({ host: url });
}

export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1, ...options });
}
