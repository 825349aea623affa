/**
 * A table change the registry refuses (a column type change under BACKWARD): the connector pauses
 * without acknowledging anything past the change, says why and what to do on /healthz, and resumes by
 * itself once the subject's owner relaxes the level; nothing is lost.
 */
import { describe, expect, it } from 'vitest';
import { readTopic, setCompatibility, streamedTable, streamFrom, waitForSlotCatchUp } from './support.js';

describe('registry rejection', () => {
  const t = streamedTable('cdcrej', 'accounts', '(id int PRIMARY KEY, amount int)');
  const { slot, topic } = t;

  it('pauses without acknowledging, explains on /healthz, and resumes once the schema is accepted', async () => {
    const { running, c } = await streamFrom(t);
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
