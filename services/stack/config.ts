/**
 * Where the local stack lives and how to reach it. Everything is bound to 127.0.0.1 on non-default
 * ports so it never collides with a developer's own PostgreSQL, Kafka or Redis.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { projectRoot } from '../core/project-root.js';

export const PROJECT_ROOT = projectRoot();

export const KAFKA_VERSION = '3.9.1';
export const APICURIO_VERSION = '3.3.3';

export type ServiceName = 'pg-source' | 'pg-target' | 'kafka' | 'registry' | 'redis';
export const SERVICES: ServiceName[] = ['pg-source', 'pg-target', 'kafka', 'registry', 'redis'];

export interface StackConfig {
  stateDir: string;
  cacheDir: string;
  /** PostgreSQL data lives where the non-root server user can reach it. */
  pgRoot: string;
  pgBinDir: string;
  ports: { pgSource: number; pgTarget: number; kafka: number; kafkaController: number; registry: number; registryManagement: number; redis: number };
  pgUser: string;
  pgDatabase: string;
}

function int(name: string, fallback: number): number {
  const v = process.env[name];
  return v ? Number.parseInt(v, 10) : fallback;
}

export function stackConfig(env: NodeJS.ProcessEnv = process.env): StackConfig {
  const stateDir = resolve(env.PARITY_STATE_DIR ?? join(PROJECT_ROOT, '.parity'));
  const cacheDir = resolve(env.PARITY_CACHE_DIR ?? join(homedir(), '.cache', 'parity'));
  const isRoot = process.getuid?.() === 0;
  // Run as root, the server runs as the `postgres` user, which may not traverse a private checkout
  // (mktemp -d is mode 700), so its data goes to a folder of its own keyed by the state dir.
  const pgRoot = isRoot ? `/tmp/parity-pg-${createHash('sha1').update(stateDir).digest('hex').slice(0, 10)}` : join(stateDir, 'pg');
  return {
    stateDir,
    cacheDir,
    pgRoot,
    pgBinDir: env.PARITY_PG_BINDIR ?? '/usr/lib/postgresql/15/bin',
    ports: {
      pgSource: int('PARITY_PG_SOURCE_PORT', 54329),
      pgTarget: int('PARITY_PG_TARGET_PORT', 54339),
      kafka: int('PARITY_KAFKA_PORT', 19092),
      kafkaController: int('PARITY_KAFKA_CONTROLLER_PORT', 19093),
      registry: int('PARITY_REGISTRY_PORT', 18081),
      registryManagement: int('PARITY_REGISTRY_MANAGEMENT_PORT', int('PARITY_REGISTRY_PORT', 18081) + 1),
      redis: int('PARITY_REDIS_PORT', 16379),
    },
    pgUser: 'parity',
    pgDatabase: 'parity',
  };
}

export interface StackEnv {
  PARITY_SOURCE_URL: string;
  PARITY_TARGET_URL: string;
  PARITY_KAFKA_BROKER: string;
  PARITY_KAFKA_BROKERS: string;
  PARITY_REGISTRY_URL: string;
  PARITY_REDIS_URL: string;
  PARITY_PG_BINDIR: string;
}

/** Connection settings of a running local stack. No passwords: the local clusters trust loopback. */
export function stackEnv(config: StackConfig = stackConfig()): StackEnv {
  const p = config.ports;
  return {
    PARITY_SOURCE_URL: `postgres://${config.pgUser}@127.0.0.1:${p.pgSource}/${config.pgDatabase}`,
    PARITY_TARGET_URL: `postgres://${config.pgUser}@127.0.0.1:${p.pgTarget}/${config.pgDatabase}`,
    PARITY_KAFKA_BROKER: `127.0.0.1:${p.kafka}`,
    PARITY_KAFKA_BROKERS: `127.0.0.1:${p.kafka}`,
    PARITY_REGISTRY_URL: `http://127.0.0.1:${p.registry}/apis/ccompat/v7`,
    PARITY_REDIS_URL: `redis://127.0.0.1:${p.redis}`,
    PARITY_PG_BINDIR: config.pgBinDir,
  };
}
