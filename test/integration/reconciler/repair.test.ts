/**
 * Repair: dry run by default, idempotent, compare-and-set against what verification observed, and
 * fenced by the target database. Races are staged exactly: the test's hook runs between the
 * observation (verification, then the read of the source) and the target write.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createFlagsReader } from '../../../services/client/flags.js';
import { createFlagStore } from '../../../services/coordinator/flag-store.js';
import { isParityError } from '../../../services/core/errors.js';
import { issueToken } from '../../../services/core/fence.js';
import { silentLogger } from '../../../services/core/log.js';
import { controlDatabase, targetDatabase, type LoadedSpec } from '../../../services/core/spec.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { buildProjection } from '../../../services/reconciler/projection.js';
import { repairRun, type RepairContext } from '../../../services/reconciler/repair.js';
import { connectPg, openReadSession, openWriteSession } from '../../../services/reconciler/snapshot.js';
import { createTestDatabase, KAFKA_BROKERS, STACK, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, keys, keysWithStatus, query, verify, type SpecInput } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let src: TestDatabase;
let tgt: TestDatabase;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_rep_s'), createTestDatabase('target', 'rc_rep_t')]);
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
});

async function withRepairContext<T>(loaded: LoadedSpec, fn: (ctx: RepairContext) => Promise<T>): Promise<T> {
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

/** A cross-database pair with one update, one row only in the source and one only in the target. */
async function drifted(table: string): Promise<SpecInput> {
  await exec(
    src.url,
    `CREATE TABLE ${table} (id int PRIMARY KEY, price numeric(10,2), tag text)`,
    `INSERT INTO ${table} SELECT g, g * 1.5, 't' || g FROM generate_series(1, 2000) g`,
  );
  await exec(
    tgt.url,
    `CREATE TABLE ${table} (id int PRIMARY KEY, price_cents bigint, tag text)`,
    `INSERT INTO ${table} SELECT g, g * 150, 't' || g FROM generate_series(1, 2000) g`,
    `UPDATE ${table} SET price_cents = 0 WHERE id IN (10, 20)`,
    `UPDATE ${table} SET tag = 'stale' WHERE id = 30`,
    `DELETE FROM ${table} WHERE id = 40`,
    `INSERT INTO ${table} VALUES (5000, 1, 'orphan')`,
  );
  return {
    name: `rep-${table}`,
    source: { database: src.url, table },
    target: { kind: 'other-database', database: tgt.url, table },
    key: ['id'],
    mapping: { price_cents: '(price * 100)::bigint', tag: 'tag' },
  };
}

async function outcomes(runId: number): Promise<Record<string, string>> {
  const rows = await query<{ key: string[]; outcome: string }>(
    tgt.url,
    `SELECT key, outcome FROM parity.repairs WHERE run_id = $1 ORDER BY id`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.key.join('|'), r.outcome]));
}

describe('repair', () => {
  it('dry run writes nothing; a repair with the current token fixes every confirmed key once', async () => {
    const input = await drifted('rep_basic');
    const loaded = buildSpec(input);
    const first = await verify(loaded);
    expect(await keysWithStatus(tgt.url, first.result.runId, 'confirmed')).toEqual(keys(10, 20, 30, 40, 5000));

    const dry = await withRepairContext(loaded, (ctx) => repairRun(ctx, first.result.runId, { apply: false, token: null }, 'test'));
    expect(dry.outcomes['dry-run']).toBe(5);
    expect(await query(tgt.url, `SELECT price_cents FROM rep_basic WHERE id = 10`)).toEqual([{ price_cents: '0' }]);

    const token = await withRepairContext(loaded, (ctx) => issueToken(ctx.target, 'parity', loaded.spec.name, 'coordinator'));
    const applied = await withRepairContext(loaded, (ctx) => repairRun(ctx, first.result.runId, { apply: true, token }, 'test'));
    expect(applied.outcomes.applied).toBe(5);
    expect(applied.tokenAcquired).toBe(false);
    // Idempotent: a second repair of the same run finds nothing left to do.
    const again = await withRepairContext(loaded, (ctx) => repairRun(ctx, first.result.runId, { apply: true, token }, 'test'));
    expect(again.planned).toBe(0);

    const second = await verify(loaded);
    expect(second.result.confirmedDrift).toBe(0);
    expect(second.result.passed).toBe(true);
    expect(await query(tgt.url, `SELECT id, price_cents, tag FROM rep_basic WHERE id IN (10, 30, 40, 5000) ORDER BY id`)).toEqual([
      { id: 10, price_cents: '1500', tag: 't10' },
      { id: 30, price_cents: '4500', tag: 't30' },
      { id: 40, price_cents: '6000', tag: 't40' },
    ]);
  });

  it('never overwrites a live write that lands between observation and repair', async () => {
    const input = await drifted('rep_race');
    const loaded = buildSpec(input);
    const run = await verify(loaded);
    // Key 20's source changes after the observation: its repair must not write the stale expectation.
    await exec(src.url, `UPDATE rep_race SET price = 99 WHERE id = 20`);
    const token = await withRepairContext(loaded, (ctx) => issueToken(ctx.target, 'parity', loaded.spec.name, 'coordinator'));
    const summary = await withRepairContext(loaded, (ctx) =>
      repairRun(
        ctx,
        run.result.runId,
        {
          apply: true,
          token,
          // The live writes land after the source was read and before the target write.
          beforeWrite: async (item) => {
            if (item.key[0] === '10') await exec(tgt.url, `UPDATE rep_race SET price_cents = 777 WHERE id = 10`);
            if (item.key[0] === '40') await exec(tgt.url, `INSERT INTO rep_race VALUES (40, 6000, 'live insert')`);
            if (item.key[0] === '5000') await exec(tgt.url, `UPDATE rep_race SET tag = 'live' WHERE id = 5000`);
          },
        },
        'test',
      ),
    );
    expect(await outcomes(run.result.runId)).toEqual({
      '10': 'skipped-changed',
      '20': 'skipped-source-changed',
      '30': 'applied',
      '40': 'skipped-changed',
      '5000': 'skipped-changed',
    });
    expect(summary.outcomes.applied).toBe(1);
    expect(await query(tgt.url, `SELECT id, price_cents, tag FROM rep_race WHERE id IN (10, 20, 30, 40, 5000) ORDER BY id`)).toEqual([
      { id: 10, price_cents: '777', tag: 't10' },
      { id: 20, price_cents: '0', tag: 't20' },
      { id: 30, price_cents: '4500', tag: 't30' },
      { id: 40, price_cents: '6000', tag: 'live insert' },
      { id: 5000, price_cents: '1', tag: 'live' },
    ]);
  });

  it('same-table: the compare-and-set covers the new and the old columns of the row', async () => {
    await exec(
      src.url,
      `CREATE TABLE rep_same (id int PRIMARY KEY, total int, total_minor bigint)`,
      `INSERT INTO rep_same SELECT g, g, g * 100 FROM generate_series(1, 500) g`,
      `UPDATE rep_same SET total_minor = 0 WHERE id IN (1, 2, 3)`,
    );
    const loaded = buildSpec({
      name: 'rep-same',
      source: { database: src.url, table: 'rep_same' },
      target: { kind: 'same-table' },
      key: ['id'],
      mapping: { total_minor: 'total::bigint * 100' },
    });
    const run = await verify(loaded);
    expect(
      await query(src.url, `SELECT count(*)::int AS n FROM parity.verify_mismatches WHERE run_id = $1 AND status = 'confirmed'`, [
        run.result.runId,
      ]),
    ).toEqual([{ n: 3 }]);
    const token = await withRepairContext(loaded, (ctx) => issueToken(ctx.target, 'parity', loaded.spec.name, 'coordinator'));
    await withRepairContext(loaded, (ctx) =>
      repairRun(
        ctx,
        run.result.runId,
        {
          apply: true,
          token,
          beforeWrite: async (item) => {
            if (item.key[0] === '2') await exec(src.url, `UPDATE rep_same SET total_minor = 5 WHERE id = 2`);
            if (item.key[0] === '3') await exec(src.url, `UPDATE rep_same SET total = 7 WHERE id = 3`);
          },
        },
        'test',
      ),
    );
    expect(await query(src.url, `SELECT id, total, total_minor FROM rep_same WHERE id IN (1, 2, 3) ORDER BY id`)).toEqual([
      { id: 1, total: 1, total_minor: '100' },
      { id: 2, total: 2, total_minor: '5' },
      { id: 3, total: 7, total_minor: '0' },
    ]);
  });

  it('a stale fencing token repairs nothing', async () => {
    const input = await drifted('rep_fence');
    const loaded = buildSpec(input);
    const run = await verify(loaded);
    const mine = await withRepairContext(loaded, (ctx) => issueToken(ctx.target, 'parity', loaded.spec.name, 'repairer'));
    // The coordinator hands the migration to someone else: a newer token exists.
    const newer = await withRepairContext(loaded, (ctx) => issueToken(ctx.target, 'parity', loaded.spec.name, 'coordinator'));
    expect(newer).toBeGreaterThan(mine);
    const before = await query(tgt.url, `SELECT * FROM rep_fence ORDER BY id`);
    let error: unknown;
    await withRepairContext(loaded, (ctx) => repairRun(ctx, run.result.runId, { apply: true, token: mine }, 'test')).catch(
      (e: unknown) => (error = e),
    );
    expect(isParityError(error, 'PARITY_STALE_FENCE')).toBe(true);
    expect(await query(tgt.url, `SELECT * FROM rep_fence ORDER BY id`)).toEqual(before);
    expect(Object.values(await outcomes(run.result.runId))).toEqual(['stale-fence']);
  });

  it('the kill-repair flag (real Redis, through the flags client) makes repairs write nothing', async () => {
    const input = await drifted('rep_kill');
    const loaded = buildSpec(input);
    const run = await verify(loaded);
    const redis = new Redis(STACK.PARITY_REDIS_URL);
    redis.on('error', () => undefined);
    const flags = createFlagsReader({ redis, migration: loaded.spec.name, ttlMs: 0 });
    try {
      await createFlagStore({ redis, migration: loaded.spec.name }).set({
        values: [['kill-repair', 'on']],
        actor: 'test',
        reason: 'incident',
      });
      const before = await query(tgt.url, `SELECT * FROM rep_kill ORDER BY id`);
      const summary = await withRepairContext(loaded, (ctx) =>
        repairRun(
          { ...ctx, killSwitch: async () => (await flags.get()).killRepair },
          run.result.runId,
          { apply: true, token: null },
          'test',
        ),
      );
      expect(summary.outcomes['skipped-kill-switch']).toBe(summary.planned);
      expect(summary.outcomes.applied).toBe(0);
      expect(await query(tgt.url, `SELECT * FROM rep_kill ORDER BY id`)).toEqual(before);
      await createFlagStore({ redis, migration: loaded.spec.name }).set({
        values: [['kill-repair', 'off']],
        actor: 'test',
        reason: 'resolved',
      });
      const again = await verify(loaded);
      const after = await withRepairContext(loaded, (ctx) =>
        repairRun(
          { ...ctx, killSwitch: async () => (await flags.get()).killRepair },
          again.result.runId,
          { apply: true, token: null },
          'test',
        ),
      );
      expect(after.outcomes.applied).toBe(after.planned);
      expect(after.planned).toBeGreaterThan(0);
    } finally {
      await flags.close();
      redis.disconnect();
    }
  });

  it('parity verify --repair without a token acquires one and says so', async () => {
    const input = await drifted('rep_cli');
    const dir = mkdtempSync(join(tmpdir(), 'parity-repair-'));
    try {
      const specFile = join(dir, 'spec.yaml');
      writeFileSync(
        specFile,
        stringify({
          apiVersion: 'parity/v1',
          name: input.name,
          source: input.source,
          target: input.target,
          key: input.key,
          mapping: input.mapping,
          infra: {
            kafka: { brokers: KAFKA_BROKERS },
            registry: { url: STACK.PARITY_REGISTRY_URL },
            redis: { url: STACK.PARITY_REDIS_URL },
          },
          cdc: { slot: 'rep_cli', publication: 'rep_cli', topicPrefix: 'repcli' },
          reconcile: { segmentRows: 500, bisectionThreshold: 20 },
        }),
      );
      const cli = async (...args: string[]) =>
        new Promise<{ code: number | null; stdout: string }>((resolve) => {
          const child = spawn(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), ...args], {
            cwd: ROOT,
            env: { ...process.env, PARITY_LOG_LEVEL: 'warn' },
          });
          let stdout = '';
          child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
          child.on('exit', (code) => resolve({ code, stdout }));
        });
      const dry = await cli('verify', '--spec', specFile, '--recheck-wait-ms', '50', '--dry-run');
      expect(dry.code).toBe(1);
      expect(dry.stdout).toMatch(/repair \(dry run; pass --repair to write\): 5 keys \(dry-run 5\)/);
      const fixed = await cli('verify', '--spec', specFile, '--recheck-wait-ms', '50', '--repair');
      expect(fixed.code).toBe(1);
      expect(fixed.stdout).toMatch(/repair: 5 keys \(applied 5\); fencing token \d+ \(acquired now/);
      const clean = await cli('verify', '--spec', specFile, '--recheck-wait-ms', '50');
      expect(clean.code).toBe(0);
      expect(clean.stdout).toContain('verdict: pass');
      const bad = await cli('verify', '--spec', specFile, '--fence-token', 'x');
      expect(bad.code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
