import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { createTestDatabase, uniqueName, type TestDatabase } from '../../support/stack.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('source', 'stackpg');
});
afterAll(async () => {
  await db?.drop();
});

test('the source cluster runs with wal_level=logical and room for slots', async () => {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const settings = await client.query(
      `SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders')`,
    );
    const byName = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
    expect(byName.wal_level).toBe('logical');
    expect(Number(byName.max_replication_slots)).toBeGreaterThanOrEqual(10);
    expect(Number(byName.max_wal_senders)).toBeGreaterThanOrEqual(10);
    const user = await client.query(`SELECT usename FROM pg_stat_activity WHERE pid = pg_backend_pid()`);
    expect(user.rows[0].usename).toBe('parity');
  } finally {
    await client.end();
  }
});

test('a publication and a logical slot deliver one change through pgoutput, then the slot is dropped', async () => {
  const slot = uniqueName('slot');
  const publication = uniqueName('pub');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const service = new LogicalReplicationService({ connectionString: db.url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  try {
    await client.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await client.query(`CREATE PUBLICATION ${pg.escapeIdentifier(publication)} FOR TABLE items`);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await client.query(`INSERT INTO items VALUES (1, 'first')`);

    const inserted = new Promise<Pgoutput.MessageInsert>((resolve, reject) => {
      service.on('data', (_lsn: string, message: Pgoutput.Message) => {
        if (message.tag === 'insert') resolve(message);
      });
      service.on('error', reject);
    });
    void service
      .subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] }), slot, '0/00000000')
      .catch(() => undefined);
    const change = await inserted;
    expect(change.relation.name).toBe('items');
    expect(change.new).toEqual({ id: 1, name: 'first' });
  } finally {
    await service.stop();
    // The walsender may take a moment to release the slot after the connection closes.
    for (let i = 0; i < 50; i++) {
      const { rows } = await client.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      if (!rows[0]?.active) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
    const left = await client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(left.rows[0].n).toBe(0);
    await client.end();
  }
});
