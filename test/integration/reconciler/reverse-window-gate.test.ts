/**
 * The contract gate's "reverse window clean for N minutes" criterion (issue 23), against real
 * evidence rows in the control schema: not applicable (and not blocking) while no reverse window
 * exists, then judged by how long the recorded window has been clean; 0 minutes turns it off.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordEvidence } from '../../../services/core/control.js';
import { evaluateContractGate, formatGate, type Criterion } from '../../../services/reconciler/contract-gate.js';
import { createTestDatabase, type TestDatabase } from '../../support/stack.js';
import { buildSpec } from './fixtures.js';

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('source', 'rc_rw');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

const NOW = new Date('2026-06-01T12:00:00Z');

function spec(name: string, minutes?: number) {
  return buildSpec({
    name,
    source: { database: db.url, table: 'orders' },
    target: { kind: 'same-table' },
    key: ['id'],
    mapping: { total_amount_minor: 'total_amount::bigint' },
    gates: { contract: minutes === undefined ? {} : { reverseWindowCleanMinutes: minutes } },
  });
}

async function criterion(name: string, minutes?: number): Promise<{ c: Criterion; text: string }> {
  const r = await evaluateContractGate(spec(name, minutes), {
    control: client,
    source: client,
    now: () => NOW,
    sleep: async () => undefined,
  });
  const c = r.criteria.find((x) => x.name === 'reverse window clean');
  if (!c) throw new Error('no reverse window criterion');
  return { c, text: formatGate(r) };
}

async function window(migration: string, passed: boolean, cleanSince: string | null, summary: string): Promise<void> {
  await recordEvidence(client, 'parity', { migration, kind: 'reverse-window', passed, summary, value: { cleanSince } });
}

describe('contract gate: reverse window clean', () => {
  it('is not applicable, and does not block, while no reverse window exists (default 60 min)', async () => {
    const { c, text } = await criterion('rw-none');
    expect(c).toMatchObject({ passed: true, applicable: false, required: 'clean for >= 60 min' });
    expect(c.measured).toMatch(/^n\/a \(no reverse window/);
    expect(text).toMatch(/PASS {2}reverse window clean +required clean for >= 60 min; measured n\/a/);
  });

  it('a window clean for less than N minutes fails with how long; long enough passes with its basis', async () => {
    await window('rw-young', true, new Date(NOW.getTime() - 3 * 60_000).toISOString(), 'old side current, 0 drift');
    const young = (await criterion('rw-young', 5)).c;
    expect(young).toMatchObject({ passed: false, measured: expect.stringMatching(/^clean for 3\.0 min/) });
    expect(young.reason).toMatch(/3\.0 of the 5 min required/);
    expect(young.basis).toMatch(/^reverse-window@/);
    await window('rw-old', true, new Date(NOW.getTime() - 90 * 60_000).toISOString(), 'old side current, 0 drift');
    expect((await criterion('rw-old')).c).toMatchObject({ passed: true, measured: expect.stringMatching(/^clean for 90\.0 min/) });
  });

  it('a window that is not clean fails with the evidence summary; 0 minutes turns the criterion off', async () => {
    await window('rw-dirty', false, null, '3 rows drifted on the old side');
    const dirty = (await criterion('rw-dirty', 5)).c;
    expect(dirty).toMatchObject({ passed: false, measured: expect.stringMatching(/^not clean/) });
    expect(dirty.reason).toMatch(/3 rows drifted on the old side/);
    expect((await criterion('rw-dirty', 0)).c).toMatchObject({ passed: true, required: 'none (reverseWindowCleanMinutes: 0)' });
  });
});
