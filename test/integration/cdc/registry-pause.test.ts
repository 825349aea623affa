/**
 * A table change the registry refuses (a column type change under BACKWARD): the connector pauses
 * without acknowledging anything past the change, says why and what to do on /healthz, and resumes by
 * itself once the subject's owner relaxes the level; nothing is lost.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, STACK, type TestDatabase, uniqueName } from '../../support/stack.js';
import { deleteTopics, readTopic, runConnector, waitForSlotCatchUp, writeCdcSpec } from './support.js';

async function setCompatibility(subject: string, level: string): Promise<void> {
  const res = await fetch(`${STACK.PARITY_REGISTRY_URL}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: level }),
  });
  expect(res.ok).toBe(true);
}

describe('registry rejection', () => {
  let db: TestDatabase;
  const slot = uniqueName('reject');
  const prefix = uniqueName('reject');
  const topic = `${prefix}.public.accounts`;

  beforeAll(async () => {
    db = await createTestDatabase('source', 'cdcrej');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE accounts (id int PRIMARY KEY, amount int)');
    await c.end();
  });

  afterAll(async () => {
    await db?.drop();
    await deleteTopics([topic]);
    await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${topic}-value`, { method: 'DELETE' }).catch(() => undefined);
    await fetch(`${STACK.PARITY_REGISTRY_URL}/subjects/${topic}-key`, { method: 'DELETE' }).catch(() => undefined);
  });

  it('pauses without acknowledging, explains on /healthz, and resumes once the schema is accepted', async () => {
    const spec = writeCdcSpec({
      database: db.url,
      table: 'accounts',
      slot,
      topicPrefix: prefix,
      snapshot: 'never',
      heartbeatIntervalSeconds: 1,
    });
    const running = await runConnector(spec);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('INSERT INTO accounts VALUES (1, 100)');
      expect((await readTopic(topic, (x) => x.length >= 1, 30_000)).length).toBe(1);

      await setCompatibility(`${topic}-value`, 'BACKWARD');
      await c.query('ALTER TABLE accounts ALTER COLUMN amount TYPE text');
      await c.query(`INSERT INTO accounts VALUES (2, 'two hundred')`);
      const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      const afterChange = rows[0]!.lsn;

      // Paused, with the reason and what to do, on /healthz.
      const url = running.connector.statusUrl!;
      let health: { ok: boolean; status: string; reason?: string } | null = null;
      for (let i = 0; i < 100; i++) {
        const res = await fetch(`${url}/healthz`);
        health = (await res.json()) as typeof health;
        if (res.status === 503 && health!.status === 'paused') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(health).toMatchObject({ ok: false, status: 'paused' });
      expect(health!.reason).toMatch(/rejected the new schema for .*-value/);
      expect(health!.reason).toMatch(/what to do: .*compatibility level/);

      // Nothing past the change is acknowledged, even with heartbeats and keepalives flowing.
      await new Promise((r) => setTimeout(r, 3_000));
      const stuck = await c.query<{ behind: boolean }>(
        'SELECT confirmed_flush_lsn < $2::pg_lsn AS behind FROM pg_replication_slots WHERE slot_name = $1',
        [slot, afterChange],
      );
      expect(stuck.rows[0]!.behind).toBe(true);
      const during = await readTopic(topic, () => false, 5_000, 2_000);
      expect(during.length).toBe(1);

      // The owner relaxes the level: the connector resumes by itself, and the held change arrives.
      await setCompatibility(`${topic}-value`, 'NONE');
      const after = await readTopic(topic, (x) => x.length >= 2, 60_000);
      expect(after[after.length - 1]!.envelope.after).toEqual({ id: 2, amount: 'two hundred' });
      await waitForSlotCatchUp(c, slot);
      expect(running.connector.health().status).toBe('streaming');
    } finally {
      await c.end();
      await running.stop();
    }
  });
});
