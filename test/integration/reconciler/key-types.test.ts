/**
 * Key type migrations (issue 20): keys are compared in a common type chosen from both sides' key
 * types, so bounds, bisection and exact diffs work whichever side has more rows or wider values;
 * keys are printed and stored as one canonical text per key type; key types without a common type
 * fail with an error naming both types, the column and the spec field that fixes it.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isParityError } from '../../../services/core/errors.js';
import { repairRun } from '../../../services/reconciler/repair.js';
import { buildReport } from '../../../services/reconciler/report.js';
import { renderJson, renderMarkdown } from '../../../services/reconciler/report-render.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, keys, keysWithStatus, query, verify, withRepairContext, type SpecInput } from './fixtures.js';

let src: TestDatabase;
let tgt: TestDatabase;

beforeAll(async () => {
  [src, tgt] = await Promise.all([createTestDatabase('source', 'rc_keys_s'), createTestDatabase('target', 'rc_keys_t')]);
});

afterAll(async () => {
  await Promise.all([src?.drop(), tgt?.drop()]);
});

function cross(name: string, table: string, extra: Partial<SpecInput> = {}): SpecInput {
  return {
    name,
    source: { database: src.url, table },
    target: { kind: 'other-database', database: tgt.url, table },
    key: ['id'],
    mapping: { v: 'v' },
    reconcile: { segmentRows: 400, bisectionThreshold: 25 },
    ...extra,
  };
}

const HIGH = ['2147483648', '3000000000', '9000000000000'];

describe('key type migrations', () => {
  it('int -> bigint with extra keys above 2^31 on the target (the larger side): drift reported exactly', async () => {
    await exec(
      src.url,
      `CREATE TABLE kt_a (id int PRIMARY KEY, v text)`,
      `INSERT INTO kt_a SELECT g, 'v' || g FROM generate_series(1, 2000) g`,
      'ANALYZE kt_a',
    );
    await exec(
      tgt.url,
      `CREATE TABLE kt_a (id bigint PRIMARY KEY, v text)`,
      `INSERT INTO kt_a SELECT g, 'v' || g FROM generate_series(1, 2000) g`,
      // More rows on the target, all of them above 2^31: bounds are planned from this side.
      `INSERT INTO kt_a SELECT 2147483647::bigint + g, 'high' FROM generate_series(1, 2500) g`,
      `INSERT INTO kt_a VALUES (9000000000000, 'far')`,
      `UPDATE kt_a SET v = 'drift' WHERE id = 777`,
      `DELETE FROM kt_a WHERE id = 1500`,
      'ANALYZE kt_a',
    );
    const outcome = await verify(buildSpec(cross('kt-int-bigint', 'kt_a')));
    expect(outcome.result.exclusiveTarget).toBe(2501);
    expect(outcome.result.exclusiveSource).toBe(1);
    expect(outcome.result.updated).toBe(1);
    const confirmed = await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed');
    expect(confirmed).toHaveLength(2503);
    expect(confirmed).toEqual(expect.arrayContaining(keys(777, 1500, '2147483648', '2147486147', '9000000000000')));
    // Segment bounds above 2^31 were used against the integer side without a cast to integer.
    const [bounds] = await query<{ n: number }>(
      tgt.url,
      `SELECT count(*)::int AS n FROM parity.verify_segments WHERE run_id = $1 AND (lo->>0)::numeric > 2147483647`,
      [outcome.result.runId],
    );
    expect(bounds!.n).toBeGreaterThan(0);
  });

  it('bigint source with keys above 2^31 -> int target: the high source keys are reported as missing', async () => {
    await exec(
      src.url,
      `CREATE TABLE kt_b (id bigint PRIMARY KEY, v text)`,
      `INSERT INTO kt_b SELECT g, 'v' || g FROM generate_series(1, 1500) g`,
      `INSERT INTO kt_b VALUES (2147483648, 'x'), (3000000000, 'y'), (9000000000000, 'z')`,
      'ANALYZE kt_b',
    );
    await exec(
      tgt.url,
      `CREATE TABLE kt_b (id int PRIMARY KEY, v text)`,
      `INSERT INTO kt_b SELECT g, 'v' || g FROM generate_series(1, 1500) g`,
      `UPDATE kt_b SET v = 'drift' WHERE id = 42`,
      'ANALYZE kt_b',
    );
    const outcome = await verify(buildSpec(cross('kt-bigint-int', 'kt_b')));
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(keys(42, ...HIGH));
    expect(outcome.result.exclusiveSource).toBe(3);
    expect(outcome.result.updated).toBe(1);
  });

  it('uuid key on the source, text key (some upper case) on the target', async () => {
    await exec(
      src.url,
      `CREATE TABLE kt_c (id uuid PRIMARY KEY, v int)`,
      `INSERT INTO kt_c SELECT md5(g::text)::uuid, g FROM generate_series(1, 1200) g`,
      'ANALYZE kt_c',
    );
    await exec(
      tgt.url,
      `CREATE TABLE kt_c (id text PRIMARY KEY, v int)`,
      `INSERT INTO kt_c SELECT CASE WHEN g % 2 = 0 THEN upper(md5(g::text)::uuid::text) ELSE md5(g::text)::uuid::text END, g FROM generate_series(1, 1200) g`,
      `UPDATE kt_c SET v = -1 WHERE lower(id) = md5('10')::uuid::text`,
      `DELETE FROM kt_c WHERE lower(id) = md5('11')::uuid::text`,
      `INSERT INTO kt_c VALUES ('not-a-uuid', 0)`,
      'ANALYZE kt_c',
    );
    const [u10, u11] = await query<{ u: string }>(src.url, `SELECT md5(x::text)::uuid::text AS u FROM unnest(ARRAY[10, 11]) x ORDER BY x`);
    const outcome = await verify(buildSpec(cross('kt-uuid-text', 'kt_c')));
    // Keys are named by their canonical (lower-case) text.
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(keys(u10!.u, u11!.u, 'not-a-uuid'));
    expect(outcome.result.updated).toBe(1);
    expect(outcome.result.exclusiveSource).toBe(1);
    expect(outcome.result.exclusiveTarget).toBe(1);
  });

  it('numeric keys: one canonical text in the control tables, the report (JSON and Markdown) and repairs', async () => {
    await exec(
      src.url,
      `CREATE TABLE kt_d (id numeric(12,2) PRIMARY KEY, v text)`,
      `INSERT INTO kt_d SELECT g / 10.0, 'v' || g FROM generate_series(-6000, 12000, 7) g`,
      `INSERT INTO kt_d VALUES (-500.00, 'x'), (1000.10, 'y')`,
      'ANALYZE kt_d',
    );
    await exec(
      tgt.url,
      `CREATE TABLE kt_d (id numeric PRIMARY KEY, v text)`,
      `INSERT INTO kt_d SELECT g / 10.0, 'v' || g FROM generate_series(-6000, 12000, 7) g`,
      `INSERT INTO kt_d VALUES (-500, 'changed'), (1000.1, 'changed'), (77.000, 'only here')`,
      'ANALYZE kt_d',
    );
    const loaded = buildSpec(cross('kt-numeric', 'kt_d'));
    const outcome = await verify(loaded);
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(keys('-500', '1000.1', '77'));
    const report = await withControl(tgt.url, (c) => buildReport(c, loaded));
    expect(report.samples.keys.map((s) => s.key[0]).sort()).toEqual(['-500', '1000.1', '77']);
    const json = renderJson(report);
    expect(json).not.toMatch(/"-500\.00"|"1000\.10"|"77\.000"/);
    expect(renderMarkdown(report)).toContain('| 1000.1 |');
    // Segment bounds are canonical too (no trailing fraction zeros).
    const bounds = await query<{ lo: string }>(
      tgt.url,
      `SELECT lo->>0 AS lo FROM parity.verify_segments WHERE run_id = $1 AND lo IS NOT NULL`,
      [outcome.result.runId],
    );
    expect(bounds.length).toBeGreaterThan(0);
    for (const b of bounds) expect(b.lo).not.toMatch(/\.\d*0$/);
    // Repairs record and write the same key text; the writes find their rows.
    const dry = await withRepairContext(loaded, (ctx) => repairRun(ctx, outcome.result.runId, { apply: false, token: null }, 'test'));
    expect(dry.outcomes['dry-run']).toBe(3);
    const recorded = await query<{ key: string[] }>(tgt.url, `SELECT key FROM parity.repairs WHERE run_id = $1`, [outcome.result.runId]);
    expect(recorded.map((r) => r.key[0]).sort()).toEqual(['-500', '1000.1', '77']);
    const applied = await withRepairContext(loaded, (ctx) => repairRun(ctx, outcome.result.runId, { apply: true, token: null }, 'test'));
    expect(applied.outcomes.applied).toBe(3);
    expect((await verify(loaded, { newRun: true })).result.confirmedDrift).toBe(0);
  });

  it('key types with no common type: a bad-input error (exit 2) naming both types, the column and reconcile.keyCasts; a key cast fixes it', async () => {
    await exec(src.url, `CREATE TABLE kt_e (id int PRIMARY KEY, v int)`, `INSERT INTO kt_e SELECT g, g FROM generate_series(1, 300) g`);
    await exec(
      tgt.url,
      `CREATE TABLE kt_e (id text PRIMARY KEY, v int)`,
      `INSERT INTO kt_e SELECT g::text, g FROM generate_series(1, 300) g`,
      `UPDATE kt_e SET v = 0 WHERE id = '250'`,
    );
    const err = await verify(buildSpec(cross('kt-incomparable', 'kt_e'))).catch((e: unknown) => e);
    expect(isParityError(err, 'PARITY_BAD_INPUT')).toBe(true);
    const e = err as Error & { hint?: string };
    expect(e.message).toMatch(/key column "id" is integer on the source and text on the target/);
    expect(e.hint).toMatch(/reconcile\.keyCasts\.id/);
    const outcome = await verify(
      buildSpec(cross('kt-cast', 'kt_e', { reconcile: { segmentRows: 400, bisectionThreshold: 25, keyCasts: { id: 'text' } } })),
    );
    expect(await keysWithStatus(tgt.url, outcome.result.runId, 'confirmed')).toEqual(keys(250));
  });
});

async function withControl<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
