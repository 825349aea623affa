/**
 * The cutover window's commands through the CLI: bad input is refused with exit 2 and changes
 * nothing, and commands that cannot act say why with exit 1 (real PostgreSQL and Redis).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { ORDERS_REVERSE, ordersSpec, type WrittenSpec } from './support.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let db: TestDatabase;
let sameTable: WrittenSpec;
let noReverse: WrittenSpec;

function parity(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'services/cli/bin/parity.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  db = await createTestDatabase('source', 'revcli');
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query('CREATE TABLE public.orders (id int PRIMARY KEY, total_amount int, currency text, total_amount_minor bigint)');
  await c.end();
  const source = { database: db.url, table: 'orders' };
  sameTable = ordersSpec('rev-cli', {
    source,
    target: { kind: 'same-table' },
    reverse: { mapping: ORDERS_REVERSE.mapping },
    cohorts: ['eu'],
  });
  noReverse = ordersSpec('rev-cli-x', {
    source,
    target: { kind: 'other-database', database: db.url, table: 'orders_v2' },
    reverse: undefined,
  });
});

afterAll(async () => {
  await db?.drop();
});

describe('cutover window commands', () => {
  it('refuse bad input with exit 2, naming what is wrong', () => {
    const noReason = parity('cutover', '--spec', sameTable.path, '--cohort', 'eu');
    expect(noReason.code).toBe(2);
    expect(noReason.out).toMatch(/--reason/);
    const badCohort = parity('cutover', '--spec', sameTable.path, '--cohort', 'mars', '--reason', 'x');
    expect(badCohort.code).toBe(2);
    expect(badCohort.out).toMatch(/unknown cohort "mars"/);
    const none = parity('reverse-sync', 'status', '--spec', noReverse.path);
    expect(none.code).toBe(2);
    expect(none.out).toMatch(/no reverse section/);
    const badPort = parity('reverse-sync', 'run', '--spec', sameTable.path, '--status-port', 'nine');
    expect(badPort.code).toBe(2);
    const badCheck = parity('reverse-sync', 'run', '--spec', sameTable.path, '--stream-check', 'maybe');
    expect(badCheck.code).toBe(2);
    expect(badCheck.out).toMatch(/--stream-check must be on or off, got "maybe"/);
  });

  it('say no with exit 1 when there is no window to act on', async () => {
    const rollback = parity('rollback', '--spec', sameTable.path, '--cohort', 'eu', '--reason', 'x');
    expect(rollback.code).toBe(1);
    expect(rollback.out).toMatch(/no open reverse window/);
    const check = parity('reverse-sync', 'check', '--spec', sameTable.path);
    expect(check.code).toBe(1);
    expect(check.out).toMatch(/no reverse window/);
    const early = parity('cutover', '--spec', sameTable.path, '--cohort', 'eu', '--reason', 'x');
    expect(early.code).toBe(1);
    expect(early.out).toMatch(/cutover needs phase ramp/);
    const status = parity('reverse-sync', 'status', '--spec', sameTable.path, '--json');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.out).window).toBeNull();
  });
});
