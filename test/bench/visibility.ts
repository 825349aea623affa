/**
 * The decode-before-visible window (connectors/postgres-source/visibility.ts), measured:
 * `npm run bench:visibility [-- --seconds S] [-- --writers W]`.
 *
 * W writers insert single-row transactions into a table of a fresh database for S seconds (defaults
 * 15 and 4); a pgoutput slot streams the inserts, and for each one a reader queries the row at once,
 * the way an "apply the row as it is now" consumer does. Run twice: reading at once, and reading after
 * `waitUntilVisible` on the transaction's xid. `missed` counts inserts the read did not find although
 * the stream had delivered them. Progress on stderr; the last stdout line is one JSON object.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { waitUntilVisible } from '../../connectors/postgres-source/visibility.js';
import { createTestDatabase } from '../support/stack.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '15' }, writers: { type: 'string', default: '4' } } });
const SECONDS = Number(values.seconds);
const WRITERS = Number(values.writers);

async function round(url: string, wait: boolean): Promise<{ seen: number; missed: number }> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('DROP TABLE IF EXISTS vis_t; CREATE TABLE vis_t (id bigserial PRIMARY KEY, v int)');
  await admin.query('DROP PUBLICATION IF EXISTS vis_pub; CREATE PUBLICATION vis_pub FOR TABLE vis_t');
  await admin.query(`SELECT pg_create_logical_replication_slot('vis_slot', 'pgoutput')`);
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  let seen = 0;
  let missed = 0;
  let xid = 0;
  let checks: Promise<void> = Promise.resolve();
  const service = new LogicalReplicationService({ connectionString: url }, { acknowledge: { auto: true, timeoutSeconds: 1 } });
  service.on('data', (_lsn: string, m: Pgoutput.Message) => {
    if (m.tag === 'begin') xid = m.xid;
    if (m.tag !== 'insert') return;
    const id = m.new.id;
    const x = xid;
    checks = checks.then(async () => {
      if (wait) await waitUntilVisible(reader, [x]);
      const r = await reader.query('SELECT 1 FROM vis_t WHERE id = $1', [id]);
      seen++;
      if (r.rowCount === 0) missed++;
    });
  });
  void service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['vis_pub'] }), 'vis_slot');
  let stop = false;
  const writers = await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const loops = writers.map(async (c) => {
    while (!stop) await c.query('INSERT INTO vis_t (v) VALUES (1)');
  });
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  await Promise.all(loops);
  await new Promise((r) => setTimeout(r, 2000));
  await checks;
  await service.stop();
  for (const w of writers) await w.end();
  await reader.end();
  await admin.query(`SELECT pg_drop_replication_slot('vis_slot')`);
  await admin.end();
  return { seen, missed };
}

const db = await createTestDatabase('source', 'bench_vis');
try {
  const immediate = await round(db.url, false);
  process.stderr.write(`read at once: ${immediate.missed} of ${immediate.seen} delivered inserts not found\n`);
  const waited = await round(db.url, true);
  process.stderr.write(`read after waitUntilVisible: ${waited.missed} of ${waited.seen} not found\n`);
  console.log(
    JSON.stringify({
      seconds: SECONDS,
      writers: WRITERS,
      read_at_once: immediate,
      read_after_wait: waited,
    }),
  );
} finally {
  await db.drop();
}
