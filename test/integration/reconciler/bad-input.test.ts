/**
 * Bad input stops verification before anything is recorded, with an error that names the problem
 * and says what to do: an unknown column in the mapping, NULL keys, values that cannot be compared,
 * a remapped key, and bad command-line options (exit code 2).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isParityError, type ParityError } from '../../../services/core/errors.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { buildSpec, exec, query, verify, type SpecInput } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('source', 'rc_bad');
  await exec(
    db.url,
    `CREATE TABLE old_t (id int, v text, doc text)`,
    `INSERT INTO old_t SELECT g, 'v' || g, '{"a": ' || g || '}' FROM generate_series(1, 50) g`,
    `CREATE TABLE new_t (id int PRIMARY KEY, v text, doc jsonb)`,
    `INSERT INTO new_t SELECT g, 'v' || g, ('{"a": ' || g || '}')::jsonb FROM generate_series(1, 50) g`,
  );
});

afterAll(async () => {
  await db?.drop();
});

function spec(overrides: Partial<SpecInput>): SpecInput {
  return {
    name: 'bad-input',
    source: { database: db.url, table: 'old_t' },
    target: { kind: 'shadow-table', table: 'new_t' },
    key: ['id'],
    mapping: { v: 'v' },
    ...overrides,
  };
}

async function failure(input: SpecInput): Promise<ParityError> {
  let caught: unknown;
  await verify(buildSpec(input)).catch((e: unknown) => (caught = e));
  expect(isParityError(caught)).toBe(true);
  return caught as ParityError;
}

async function runs(): Promise<number> {
  const rows = await query<{ n: number }>(
    db.url,
    `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'parity' AND tablename = 'verify_runs'`,
  );
  if (rows[0]!.n === 0) return 0;
  return (await query<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM parity.verify_runs`))[0]!.n;
}

describe('bad input', () => {
  it('an unknown column in the mapping is named, and no run is created', async () => {
    const e = await failure(spec({ mapping: { v: 'no_such_column' } }));
    expect(e.code).toBe('PARITY_BAD_INPUT');
    expect(e.message).toMatch(/cannot read the source public\.old_t through the mapping: column "no_such_column" does not exist/);
    expect(e.hint).toMatch(/SQL expressions in the spec/);
    expect(await runs()).toBe(0);
  });

  it('NULL keys are refused before any work', async () => {
    await exec(db.url, `INSERT INTO old_t VALUES (NULL, 'orphan', '{}')`);
    try {
      const e = await failure(spec({}));
      expect(e.code).toBe('PARITY_BAD_INPUT');
      expect(e.message).toContain('has rows with a NULL key (id)');
      expect(await runs()).toBe(0);
    } finally {
      await exec(db.url, `DELETE FROM old_t WHERE id IS NULL`);
    }
  });

  it('a value that cannot be normalized is bad input, not an internal error', async () => {
    await exec(db.url, `UPDATE old_t SET doc = 'not json' WHERE id = 7`);
    try {
      const e = await failure(spec({ name: 'bad-json', mapping: { doc: 'doc' } }));
      expect(e.code).toBe('PARITY_BAD_INPUT');
      expect(e.message).toContain('invalid input syntax for type json');
      expect(e.hint).toMatch(/cannot be normalized/);
    } finally {
      await exec(db.url, `UPDATE old_t SET doc = '{"a": 7}' WHERE id = 7`);
    }
  });

  it('a mapping that remaps the key is refused', async () => {
    const e = await failure(spec({ name: 'bad-key', mapping: { id: 'id + 1', v: 'v' } }));
    expect(e.message).toContain('mapping.id remaps key column "id"');
  });

  it('bad options exit with code 2 and the usage', async () => {
    const out = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), 'verify', '--spec', 'x.yaml', '--jobs', 'zero'], {
        cwd: ROOT,
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/PARITY_BAD_INPUT|PARITY_SPEC/);
  });
});
