/**
 * Shared helpers for the reconciler's integration tests: specs built in memory (validated by the
 * real spec parser), in-process verification runs with quiet logs, and readers of what a run
 * recorded in the control schema.
 */
import pg from 'pg';
import { stringify } from 'yaml';
import { silentLogger } from '../../../services/core/log.js';
import { createMetricsRegistry } from '../../../services/core/metrics.js';
import { controlDatabase, parseSpec, targetDatabase, type LoadedSpec } from '../../../services/core/spec.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import type { RepairContext } from '../../../services/reconciler/repair.js';
import { connectPg, openReadSession, openWriteSession } from '../../../services/reconciler/snapshot.js';
import { DEFAULT_VERIFY_OPTIONS, runVerify, type VerifyOptions, type VerifyOutcome } from '../../../services/reconciler/verify.js';
import { SPEC_ENV, stackInfra } from '../../support/security.js';

export interface SpecInput {
  name: string;
  source: { database: string; table: string; schema?: string };
  target:
    | { kind: 'same-table' }
    | { kind: 'shadow-table'; table: string; schema?: string }
    | { kind: 'other-database'; database: string; table: string; schema?: string };
  key: string[];
  mapping: Record<string, string>;
  normalize?: Record<string, unknown>;
  reconcile?: Record<string, unknown>;
  gates?: Record<string, unknown>;
  control?: { database?: string; schema?: string };
  cdc?: { slot?: string; topicPrefix?: string };
  extra?: Record<string, unknown>;
}

export function buildSpec(input: SpecInput): LoadedSpec {
  const doc: Record<string, unknown> = {
    apiVersion: 'parity/v1',
    name: input.name,
    source: input.source,
    target: input.target,
    key: input.key,
    mapping: input.mapping,
    ...(input.normalize ? { normalize: input.normalize } : {}),
    ...(input.control ? { control: input.control } : {}),
    // The stack's security settings (test/support/security.ts); secrets as ${VAR}, resolved from SPEC_ENV.
    infra: stackInfra(),
    cdc: {
      slot: input.cdc?.slot ?? input.name.replace(/-/g, '_'),
      publication: input.name.replace(/-/g, '_'),
      topicPrefix: input.cdc?.topicPrefix ?? input.name,
    },
    // No writers in most tests: a short settle time keeps slot-less confirmations quick (tests with writers set their own).
    reconcile: { segmentRows: 400, bisectionThreshold: 25, settleMs: 300, ...input.reconcile },
    ...(input.gates ? { gates: input.gates } : {}),
    ...input.extra,
  };
  return parseSpec(stringify(doc), `${input.name}.yaml`, SPEC_ENV);
}

export const FAST: Partial<VerifyOptions> = { jobs: 2, recheckWaitMs: 100, maxRechecks: 3 };

export async function verify(loaded: LoadedSpec, options: Partial<VerifyOptions> = {}): Promise<VerifyOutcome> {
  return runVerify(loaded, { ...DEFAULT_VERIFY_OPTIONS, ...FAST, ...options } as VerifyOptions, {
    logger: silentLogger(),
    registry: createMetricsRegistry({ defaultMetrics: false }),
  });
}

/**
 * Runs statements in their own session. The search path is pinned to public: the stack's user is
 * called "parity", like the control schema, so once that schema exists "$user" would win.
 */
export async function exec(url: string, ...statements: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('SET search_path TO public');
    for (const s of statements) await c.query(s);
  } finally {
    await c.end();
  }
}

export async function query<T = Record<string, unknown>>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Keys of a run's mismatches with a status, each as its key texts joined by "|", sorted. */
export async function keysWithStatus(controlUrl: string, runId: number, status: string, schema = 'parity'): Promise<string[]> {
  const rows = await query<{ key: string[] }>(
    controlUrl,
    `SELECT key FROM ${pg.escapeIdentifier(schema)}.verify_mismatches WHERE run_id = $1 AND status = $2`,
    [runId, status],
  );
  return rows.map((r) => r.key.join('|')).sort();
}

/** The injected keys, normalized like keysWithStatus. */
export function keys(...k: Array<string | number | Array<string | number>>): string[] {
  return k.map((x) => (Array.isArray(x) ? x.map(String).join('|') : String(x))).sort();
}

/** Runs `fn` with a repair context on the spec's databases (sessions closed afterwards). */
export async function withRepairContext<T>(loaded: LoadedSpec, fn: (ctx: RepairContext) => Promise<T>): Promise<T> {
  const { spec } = loaded;
  const source = await openReadSession(connectPg, spec.source.database, postgresDialect, 'test');
  const target = await openWriteSession(connectPg, targetDatabase(spec), postgresDialect, 'test');
  const control = await openWriteSession(connectPg, controlDatabase(spec), postgresDialect, 'test');
  try {
    const projection = await buildProjection(spec, source, target, postgresDialect);
    return await fn({
      spec,
      projection,
      source,
      target,
      control,
      controlIsTarget: controlDatabase(spec) === targetDatabase(spec),
      logger: silentLogger(),
    });
  } finally {
    await Promise.all([source.end(), target.end(), control.end()]);
  }
}
