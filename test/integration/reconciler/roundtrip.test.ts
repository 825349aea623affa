/**
 * `parity spec check-roundtrip` (issue 23) against the real source PostgreSQL: a reverse mapping that
 * holds, a planted bad reverse that breaks on some rows (listed by key, secret-looking values never
 * shown), rows the old shape cannot represent (counted apart), sampling, and the CLI's exit codes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { isParityError } from '../../../services/core/errors.js';
import type { Spec } from '../../../services/core/spec.js';
import { postgresDialect } from '../../../services/reconciler/dialect.js';
import { checkRoundtrip, type RoundtripResult } from '../../../services/reconciler/roundtrip.js';
import { connectPg, openReadSession } from '../../../services/reconciler/snapshot.js';
import { stackInfra } from '../../support/security.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, type SpecInput } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase('source', 'rt');
  dir = mkdtempSync(join(tmpdir(), 'parity-roundtrip-'));
  await exec(
    db.url,
    // Same table: the old column and the new ones side by side, plus a column neither mapping touches.
    `CREATE TABLE orders (id int PRIMARY KEY, total_amount int, note text, total_amount_minor bigint, currency text)`,
    `INSERT INTO orders (id, total_amount, note) SELECT g, g * 100, 'n' || g FROM generate_series(1, 200) g`,
    // Shadow table kind: only the source is read by the check (the shadow need not exist yet).
    `CREATE TABLE accounts (id int PRIMARY KEY, total_amount int, api_token text)`,
    `INSERT INTO accounts SELECT g, g * 7, 'tok-' || g || '-s3cr3t' FROM generate_series(1, 100) g`,
    // Some rows in a currency the old shape cannot hold.
    `CREATE TABLE sales (id int PRIMARY KEY, total_amount int, region text)`,
    `INSERT INTO sales SELECT g, g, CASE WHEN g % 4 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 100) g`,
    `CREATE TABLE big (id int PRIMARY KEY, total_amount int)`,
    `INSERT INTO big SELECT g, g FROM generate_series(1, 20000) g`,
    `ANALYZE big`,
  );
});

afterAll(async () => {
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const ORDERS: SpecInput = {
  name: 'rt-orders',
  source: { database: '', table: 'orders' },
  target: { kind: 'same-table' },
  key: ['id'],
  mapping: { total_amount_minor: 'total_amount::bigint', currency: "'USD'::text" },
  extra: {
    reverse: {
      mapping: { total_amount: "CASE WHEN currency = 'USD' THEN total_amount_minor::integer END" },
      representable: "currency = 'USD'",
    },
  },
};

function specOf(input: SpecInput): Spec {
  return buildSpec({ ...input, source: { ...input.source, database: db.url } }).spec;
}

async function check(input: SpecInput, sample = 10_000): Promise<RoundtripResult> {
  const session = await openReadSession(connectPg, db.url, postgresDialect, 'parity-roundtrip-test');
  try {
    return await checkRoundtrip(specOf(input), session, { sample });
  } finally {
    await session.end();
  }
}

describe('check-roundtrip', () => {
  it('the worked example round-trips on every row', async () => {
    const r = await check(ORDERS);
    expect(r.sampled).toBe(200);
    expect(r.unrepresentable.count).toBe(0);
    expect(r.mismatched).toBe(0);
    expect(r.rows).toEqual([]);
    expect(r.passed).toBe(true);
  });

  it('a planted bad reverse is caught on exactly the rows it breaks, by key and column', async () => {
    const bad: SpecInput = {
      ...ORDERS,
      extra: {
        reverse: {
          mapping: {
            total_amount: 'CASE WHEN total_amount_minor > 15000 THEN total_amount_minor::integer + 1 ELSE total_amount_minor::integer END',
          },
        },
      },
    };
    const r = await check(bad);
    expect(r.passed).toBe(false);
    expect(r.mismatched).toBe(50); // ids 151..200
    expect(r.rows).toHaveLength(50);
    expect(r.rows[0]).toEqual({ key: ['151'], diffs: [{ column: 'total_amount', row: '15100', roundTrip: '15101', redacted: false }] });
    expect(r.rows.map((x) => Number(x.key[0]))).toEqual(Array.from({ length: 50 }, (_, i) => 151 + i));
  });

  it('the values of a secret-looking column never leave the database; its differences are still counted', async () => {
    const accounts: SpecInput = {
      name: 'rt-accounts',
      source: { database: '', table: 'accounts' },
      target: { kind: 'shadow-table', table: 'accounts_v2' },
      key: ['id'],
      mapping: { total_amount_minor: 'total_amount::bigint', token_v2: 'api_token' },
      extra: {
        reverse: {
          mapping: {
            total_amount: 'total_amount_minor::integer',
            api_token: "CASE WHEN id % 10 = 0 THEN token_v2 || 'x' ELSE token_v2 END",
          },
        },
      },
    };
    const r = await check(accounts);
    expect(r.mismatched).toBe(10);
    expect(r.rows[0]).toEqual({ key: ['10'], diffs: [{ column: 'api_token', row: null, roundTrip: null, redacted: true }] });
    expect(JSON.stringify(r)).not.toContain('s3cr3t');
  });

  it('rows outside representable are counted apart and not checked; without the predicate they are mismatches', async () => {
    const sales: SpecInput = {
      name: 'rt-sales',
      source: { database: '', table: 'sales' },
      target: { kind: 'same-table' },
      key: ['id'],
      mapping: { total_amount_minor: 'total_amount::bigint', currency: "CASE WHEN region = 'eu' THEN 'EUR' ELSE 'USD' END" },
      extra: {
        reverse: {
          mapping: { total_amount: "CASE WHEN currency = 'USD' THEN total_amount_minor::integer END" },
          representable: "currency = 'USD'",
          unrepresentable: 'record',
        },
      },
    };
    // The table has no total_amount_minor/currency columns yet: the new row is computed, not read.
    const r = await check(sales);
    expect(r.sampled).toBe(100);
    expect(r.unrepresentable).toEqual({ count: 25, policy: 'record', keys: Array.from({ length: 25 }, (_, i) => [String(4 * (i + 1))]) });
    expect(r.passed).toBe(true);
    const noPredicate = await check({
      ...sales,
      extra: { reverse: { mapping: { total_amount: "CASE WHEN currency = 'USD' THEN total_amount_minor::integer END" } } },
    });
    expect(noPredicate.unrepresentable.count).toBe(0);
    expect(noPredicate.mismatched).toBe(25);
    expect(noPredicate.rows[0]?.diffs[0]).toMatchObject({ column: 'total_amount', row: '4', roundTrip: null });
  });

  it('samples: a limit on a small table, a Bernoulli sample of a large analyzed one', async () => {
    expect((await check(ORDERS, 30)).sampled).toBe(30);
    const big = await check(
      {
        ...ORDERS,
        name: 'rt-big',
        source: { database: '', table: 'big' },
        mapping: { total_amount_minor: 'total_amount::bigint', currency: "'USD'" },
      },
      500,
    );
    expect(big.samplePercent).not.toBeNull();
    expect(big.samplePercent!).toBeLessThan(10);
    expect(big.sampled).toBeGreaterThan(0);
    expect(big.sampled).toBeLessThanOrEqual(500);
    expect(big.passed).toBe(true);
  });

  it('an old column missing from the table and an expression PostgreSQL refuses are bad input', async () => {
    const missing = await check({ ...ORDERS, extra: { reverse: { mapping: { total_cents: 'total_amount_minor::integer' } } } }).catch(
      (e: unknown) => e,
    );
    expect(isParityError(missing, 'PARITY_BAD_INPUT')).toBe(true);
    expect((missing as Error).message).toContain('has no column "total_cents"');
    const refused = await check({ ...ORDERS, extra: { reverse: { mapping: { total_amount: 'no_such_column::integer' } } } }).catch(
      (e: unknown) => e,
    );
    expect(isParityError(refused, 'PARITY_BAD_INPUT')).toBe(true);
    expect((refused as Error).message).toMatch(/column "no_such_column" does not exist/);
  });
});

describe('parity spec check-roundtrip (the CLI)', () => {
  function writeSpec(name: string, input: SpecInput): string {
    const file = join(dir, `${name}.yaml`);
    const doc = {
      apiVersion: 'parity/v1',
      name: input.name,
      source: { ...input.source, database: '${RT_SOURCE_URL}' },
      target: input.target,
      key: input.key,
      mapping: input.mapping,
      infra: stackInfra(),
      cdc: { slot: 'rt_cli', publication: 'rt_cli', topicPrefix: 'rt-cli' },
      ...input.extra,
    };
    writeFileSync(file, stringify(doc));
    return file;
  }

  function run(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), 'spec', 'check-roundtrip', ...args], {
        cwd: ROOT,
        env: { ...process.env, RT_SOURCE_URL: db.url },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('exit 0 when the round trip holds, 1 with the rows when not, 2 without a reverse section or with a bad --sample', async () => {
    const ok = await run('--spec', writeSpec('ok', ORDERS));
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/200 rows checked.*\n.*outside reverse\.representable: 0\n.*ok: the round trip is the identity/s);
    const bad = writeSpec('bad', { ...ORDERS, extra: { reverse: { mapping: { total_amount: 'total_amount_minor::integer / 2' } } } });
    const no = await run('--spec', bad, '--json');
    expect(no.code).toBe(1);
    const parsed = JSON.parse(no.stdout) as RoundtripResult;
    expect(parsed.mismatched).toBe(200);
    expect(parsed.rows).toHaveLength(100);
    expect(parsed.rows[0]).toEqual({ key: ['1'], diffs: [{ column: 'total_amount', row: '100', roundTrip: '50', redacted: false }] });
    const text = await run('--spec', bad, '--sample', '5');
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('NOT the identity on 5 representable row(s)');
    // The table may be analyzed by now, so which 5 rows is the sample's choice: each listed with its values.
    expect(text.stdout).toMatch(/\(id\)=\((?<id>\d+)\): total_amount: row "\k<id>00", round trip "\d+"/);
    const none = await run('--spec', writeSpec('none', { ...ORDERS, extra: {} }));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no reverse section/);
    const sample = await run('--spec', writeSpec('ok2', ORDERS), '--sample', '0');
    expect(sample.code).toBe(2);
    expect(sample.stderr).toMatch(/--sample must be an integer/);
  });
});
