import pg from 'pg';
import { createTestDatabase, uniqueName } from '/work/main/test/support/stack.ts';
import { startCdc, writeCdcSpec } from '/work/main/test/integration/cdc/support.ts';
const db = await createTestDatabase('source', 'dbg');
const c = new pg.Client({ connectionString: db.url }); await c.connect();
await c.query('CREATE TABLE bulk (id int PRIMARY KEY, seq int NOT NULL, note text)');
await c.query(`INSERT INTO bulk SELECT g, 1, md5(g::text) FROM generate_series(1, 100000) g`);
const slot = uniqueName('dbg');
const spec = writeCdcSpec({ database: db.url, table: 'bulk', slot, topicPrefix: uniqueName('dbg'), snapshotChunkRows: 1000 });
const cdc = startCdc(spec);
const t0 = Date.now();
for (let i = 0; i < 200; i++) {
  const r = await c.query(`SELECT rows, state FROM parity.cdc_snapshot_tables WHERE slot = $1`, [slot]).catch((e) => ({ rows: [{ err: e.message }] }));
  if (i % 10 === 0) console.log(Date.now() - t0, JSON.stringify(r.rows));
  await new Promise((res) => setTimeout(res, 100));
}
await cdc.kill('SIGTERM');
console.log(cdc.output().slice(0, 3000));
await c.end(); await db.drop();
