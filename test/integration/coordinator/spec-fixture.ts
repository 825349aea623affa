/** Writes a small migration spec for a test database and loads it, for coordinator tests. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadSpec, type LoadedSpec } from '../../../services/core/spec.js';
import { STACK, KAFKA_BROKERS } from '../../support/stack.js';

export interface SpecFixtureOptions {
  name: string;
  databaseUrl: string;
  table?: string;
  cohorts?: string[];
  ddl?: Record<string, unknown>;
  gates?: Record<string, unknown>;
  lock?: Record<string, unknown>;
}

export function writeSpec(options: SpecFixtureOptions): LoadedSpec {
  const doc = {
    apiVersion: 'parity/v1',
    name: options.name,
    source: { database: options.databaseUrl, schema: 'public', table: options.table ?? 'orders' },
    target: { kind: 'same-table' },
    key: ['id'],
    mapping: { currency: "'USD'::text" },
    cohorts: options.cohorts ?? [],
    infra: { kafka: { brokers: KAFKA_BROKERS }, registry: { url: STACK.PARITY_REGISTRY_URL }, redis: { url: STACK.PARITY_REDIS_URL } },
    cdc: { slot: options.name.replace(/-/g, '_'), publication: options.name.replace(/-/g, '_'), topicPrefix: options.name },
    ddl: { lockTimeoutMs: 500, statementTimeoutMs: 30_000, retries: 2, ...options.ddl },
    gates: { contract: { driftWindowMinutes: 0, ...options.gates } },
    lock: { ttlMs: 3_000, renewEveryMs: 1_000, driftMarginMs: 300, ...options.lock },
  };
  const file = join(mkdtempSync(join(tmpdir(), 'parity-spec-')), `${options.name}.yaml`);
  writeFileSync(file, stringify(doc));
  return loadSpec(file);
}
